"""End to end: `reinforcetrade optimize` and `reinforcetrade walkforward`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cli_support import cli
from report_support import parse

SPACE = (
    "tower.entry_confidence: [0.5, 0.6, 0.7]\nrisk.stop_loss: {low: 0.03, high: 0.06, step: 0.03}\n"
)


@pytest.fixture(autouse=True)
def _isolated(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    (clean_env / "reinforcetrade.yaml").write_text(
        "data:\n  synthetic:\n    bars: 3000\n    symbols: [BTC/USDT]\n"
        "optimization:\n  n_jobs: 1\n  min_trades: 0\n  storage: sqlite:///studies.db\n"
    )
    (clean_env / "space.yaml").write_text(SPACE)


def test_optimize_grid_writes_trials_best_result_and_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = cli(
        capsys, "optimize", "--method", "grid", "--space", "space.yaml", "--objective", "sharpe",
        "--constraint", "trade_count>=1", "--out", "opt",
    )  # fmt: skip
    assert code == 0, err
    assert "grid search: 6 trials" in out
    assert "deflated Sharpe ratio" in out
    assert "probability of backtest overfitting" in out
    trials = pd.read_csv(tmp_path / "opt" / "trials.csv")
    assert len(trials) == 6
    summary = json.loads((tmp_path / "opt" / "summary.json").read_text())
    best = trials[trials["feasible"]].sort_values("sharpe_ratio", ascending=False).iloc[0]
    assert summary["best_number"] == best["number"]
    assert summary["best_params"]["tower.entry_confidence"] == best["tower.entry_confidence"]
    saved = json.loads((tmp_path / "opt" / "best" / "metrics.json").read_text())
    assert saved["metrics"]["sharpe_ratio"] == pytest.approx(best["sharpe_ratio"], rel=1e-12)
    assert saved["optimization"]["best_number"] == summary["best_number"]
    html = (tmp_path / "opt" / "best" / "report" / "report.html").read_text()
    tags = parse(html)
    assert "optimization" in [a["data-section"] for a in tags.having("data-section")]
    assert [a["data-diagnostic"] for a in tags.having("data-diagnostic")] == [
        "deflated_sharpe_ratio", "pbo",
    ]  # fmt: skip
    assert "report written to opt/best/report/report.html" in out
    # the same command again resumes the stored study: the grid is complete, nothing reruns
    code, out, err = cli(
        capsys, "optimize", "--method", "grid", "--space", "space.yaml", "--objective", "sharpe",
        "--constraint", "trade_count>=1", "--out", "opt", "--no-report",
    )  # fmt: skip
    assert code == 0, err
    assert summary["study"] in out
    assert len(pd.read_csv(tmp_path / "opt" / "trials.csv")) == 6


def test_optimize_two_objectives_with_genetic_search(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = cli(
        capsys, "optimize", "--method", "genetic", "--space", "space.yaml", "--objective",
        "sharpe", "--objective", "max_drawdown", "--trials", "8", "--out", "ga", "--no-report",
        "--storage", f"sqlite:///{tmp_path / 'ga.db'}",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((tmp_path / "ga" / "summary.json").read_text())
    assert [o["name"] for o in summary["objectives"]] == ["sharpe_ratio", "max_drawdown"]
    assert summary["trials"] == 8
    assert summary["best_number"] in summary["pareto"]
    assert (tmp_path / "ga.db").is_file()


def test_walkforward_prints_both_sides_and_writes_the_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = cli(
        capsys, "walkforward", "--folds", "2", "--train", "0.6", "--method", "random",
        "--trials", "3", "--space", "space.yaml", "--purge", "5", "--out", "wf",
    )  # fmt: skip
    assert code == 0, err
    assert "in-sample (IS) vs out-of-sample (OOS)" in out
    assert "parameter stability" in out
    assert "stitched out-of-sample: return" in out
    folds = pd.read_csv(tmp_path / "wf" / "folds.csv")
    assert folds["fold"].tolist() == [1, 2]
    assert {"is_sharpe_ratio", "oos_sharpe_ratio", "tower.entry_confidence"} <= set(folds)
    html = (tmp_path / "wf" / "report" / "report.html").read_text()
    sections = [a["data-section"] for a in parse(html).having("data-section")]
    assert {"walk-forward", "segments"} <= set(sections)
    assert "report written to wf/report/report.html" in out


def test_bad_space_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "bad.yaml").write_text("risk.stop_los: [0.01]\n")
    code, _, err = cli(capsys, "optimize", "--space", "bad.yaml")
    assert code == 2
    assert "did you mean 'risk.stop_loss'" in err
    assert "Traceback" not in err
    code, _, err = cli(capsys, "walkforward", "--folds", "2000", "--train", "0.9")
    assert code == 2
    assert "use fewer folds or more data" in err


@pytest.mark.slow
def test_walkforward_rl_trains_a_model_per_fold(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "reinforcetrade.yaml").write_text(
        "data:\n  synthetic:\n    bars: 3000\n    symbols: [BTC/USDT]\n"
        "rl:\n  window: 8\n  episode_bars: 256\n  eval_every: 256\n"
        "  hyperparameters:\n    ppo: {n_steps: 128, batch_size: 64, n_epochs: 2}\n"
    )
    code, out, err = cli(
        capsys, "walkforward", "--rl", "--timesteps", "256", "--folds", "2", "--train", "0.6",
        "--out", "wfrl", "--no-report",
    )  # fmt: skip
    assert code == 0, err
    folds = pd.read_csv(tmp_path / "wfrl" / "folds.csv")
    assert folds["model"].nunique() == 2
    assert (tmp_path / "models").is_dir()
    assert "walk-forward written to wfrl" in out
    assert not (tmp_path / "wfrl" / "report").exists()

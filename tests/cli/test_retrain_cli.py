"""`reinforcetrade retrain`: options, a scheduled run recorded twice, weights written as YAML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli_support import cli
from reinforcetrade.config import load_settings
from reinforcetrade.data.writers import write_ohlcv
from reinforcetrade.storage import Journal
from retrain_support import loop_settings
from rl_support import market


def setup(tmp_path: Path) -> tuple[Path, Path, str]:
    """Write a config (quick retrains into tmp_path/models) and a data file; return them."""
    settings = loop_settings(tmp_path / "models", **{"retrain.reweight_min_votes": 5})
    config = tmp_path / "config.yaml"
    config.write_text(settings.to_yaml())
    data = write_ohlcv(market(bars=1_500), tmp_path / "btc.csv")
    return config, data, f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--weights-out", "w.yaml"], "--weights-out and --from-run need --reweight"),
        (["--from-run", "1"], "--weights-out and --from-run need --reweight"),
        (["--runs", "2"], "--runs needs a schedule"),
        (["--every", "soon"], "soon"),
    ],
)
def test_inconsistent_options_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], why: str
) -> None:
    config, data, url = setup(tmp_path)
    code, _, err = cli(capsys, "--config", str(config), "retrain", "--data", str(data),
                       "--journal", url, *args)  # fmt: skip
    assert code == 2
    assert why in err


@pytest.mark.slow
def test_a_scheduled_retrain_runs_records_and_writes_weights(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, data, url = setup(tmp_path)
    weights = tmp_path / "weights.yaml"
    code, out, err = cli(capsys, "--config", str(config), "retrain", "--data", str(data),
                         "--symbol", "BTC/USDT", "--journal", url, "--timesteps", "256",
                         "--every", "1s", "--runs", "2", "--reweight", "--weights-out",
                         str(weights), "--json")  # fmt: skip
    assert code == 0, err
    verdicts = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert "fold 2/2: training the challenger" in err
    with Journal(url) as journal:
        rows = journal.retrains()
    assert [r.trigger for r in rows] == ["schedule", "schedule"]
    assert sorted(r.id for r in rows) == sorted(v["record"] for v in verdicts)
    assert all(r.tried["timesteps"] == 256 and r.weights is not None for r in rows)
    written = yaml.safe_load(weights.read_text())
    assert rows[0].weights is not None
    assert written["tower"]["weights"] == rows[0].weights["after"]
    tuned = load_settings(config).with_params({"tower.weights": written["tower"]["weights"]})
    assert set(tuned.tower.weights) == {"trending", "ranging", "high_volatility"}


def test_a_retrain_prints_both_sides_and_its_verdict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, data, url = setup(tmp_path)
    code, out, err = cli(capsys, "--config", str(config), "retrain", "--data", str(data),
                         "--journal", url, "--timesteps", "256")  # fmt: skip
    assert code == 0, err
    assert "challenger" in out
    assert "one per fold" in out
    assert "rule agents" in out  # no champion yet: the rule agents are the side to beat
    assert "recorded as retrain 1" in out
    with Journal(url) as journal:
        (row,) = journal.retrains()
    assert row.reason.replace("\n", " ").split(":")[0] in out.replace("\n", " ")

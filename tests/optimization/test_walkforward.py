"""Walk-forward: per-fold search, honest out-of-sample runs, stitching, stability, saving."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reinforcetrade.backtesting import EnhancedBacktester, load_result, stitch
from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data import generate_market
from reinforcetrade.optimization import (
    SearchSpace,
    WalkForward,
    WalkForwardResult,
    WalkForwardTraining,
)
from reinforcetrade.reports import ReportGenerator
from reinforcetrade.strategies import MultiAgentStrategy
from report_support import page_data, parse
from rl_support import fast_settings, market

SETTINGS = Settings(optimization={"n_jobs": 1, "min_trades": 0, "batch_size": 4})


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return dict(generate_market(["BTC/USDT", "ETH/USDT"], bars=5_000, seed=4).frames)


@pytest.fixture(scope="module")
def walked(frames: dict[str, pd.DataFrame]) -> tuple[WalkForward, WalkForwardResult]:
    space = SearchSpace.from_mapping(
        {"tower.entry_confidence": [0.5, 0.6, 0.7], "risk.stop_loss": [0.03, 0.06]}
    )
    walk = WalkForward(frames, space, folds=3, train=0.6, purge=24, embargo=12, method="grid",
                       settings=SETTINGS, storage=None)  # fmt: skip
    return walk, walk.run()


def test_each_fold_tunes_in_sample_and_trades_after_it(
    walked: tuple[WalkForward, WalkForwardResult], frames: dict[str, pd.DataFrame]
) -> None:
    walk, result = walked
    index = walk.index
    assert len(result.folds) == 3
    for f in result.folds:
        search = f.search
        assert search is not None
        assert len(search.trials) == 6
        assert f.params == search.best_params
        # the in-sample backtest is exactly the chosen trial
        chosen = search.trials.set_index("number").loc[search.best_number]
        assert f.in_sample.metrics["sharpe_ratio"] == chosen["sharpe_ratio"]
        # spans: tuned on [train), traded on [test), with the purge and embargo between
        assert f.in_sample.equity.index[0] == index[f.fold.train[0]]
        assert f.in_sample.equity.index[-1] == index[f.fold.train[1] - 1]
        assert f.out_of_sample.equity.index[0] == index[f.fold.test[0]]
        assert f.out_of_sample.equity.index[-1] == index[f.fold.test[1] - 1]
        gap = f.out_of_sample.equity.index[0] - f.in_sample.equity.index[-1]
        assert gap == pd.Timedelta(hours=24 + 12 + 1)
        decided = f.out_of_sample.decisions["time"]
        assert decided.min() >= f.test_span[0]
        # out of sample it trades from the first bar: no warm-up lost (history came before)
        assert f.out_of_sample.decisions["time"].min() - f.test_span[0] < pd.Timedelta(hours=48)


def test_out_of_sample_never_sees_the_future(
    walked: tuple[WalkForward, WalkForwardResult], frames: dict[str, pd.DataFrame]
) -> None:
    _, result = walked
    fold = result.folds[1]
    settings = SETTINGS.with_params(fold.params)
    end = fold.test_span[1]
    cut = {s: f.loc[f.index <= end] for s, f in frames.items()}
    alone = EnhancedBacktester(MultiAgentStrategy(settings=settings), settings=settings).run(
        cut, start=fold.test_span[0]
    )
    pd.testing.assert_series_equal(alone.equity, fold.out_of_sample.equity)
    pd.testing.assert_frame_equal(alone.decisions, fold.out_of_sample.decisions)


def test_the_stitched_history_chains_the_folds(
    walked: tuple[WalkForward, WalkForwardResult],
) -> None:
    _, result = walked
    oos = [f.out_of_sample for f in result.folds]
    stitched = result.stitched
    assert len(stitched.equity) == sum(len(r.equity) for r in oos)
    growth = np.prod([1 + r.metrics["total_return"] for r in oos]) - 1
    assert stitched.metrics["total_return"] == pytest.approx(growth, rel=1e-12)
    assert stitched.metrics["trade_count"] == sum(r.metrics["trade_count"] for r in oos)
    assert stitched.decisions.index.is_unique
    assert len(stitched.decisions) == sum(len(r.decisions) for r in oos)
    assert stitched.equity.iloc[0] == pytest.approx(
        oos[0].equity.iloc[0] * stitched.initial_balance / oos[0].initial_balance
    )
    assert stitched.trades["segment"].max() <= 2
    with pytest.raises(Exception, match="overlap"):
        stitch([oos[1], oos[0]])


def test_the_fold_table_and_parameter_stability(
    walked: tuple[WalkForward, WalkForwardResult],
) -> None:
    _, result = walked
    table = result.table()
    assert table["fold"].tolist() == [1, 2, 3]
    for name in ("sharpe_ratio", "total_return", "max_drawdown", "trade_count"):
        assert f"is_{name}" in table
        assert f"oos_{name}" in table
    stability = result.stability()
    chosen = [f.params["tower.entry_confidence"] for f in result.folds]
    row = stability.loc["tower.entry_confidence"]
    assert row["values"] == chosen
    placed = [(v - 0.5) / 0.2 for v in chosen]  # choices placed by their index: 0, 0.5, 1
    assert row["spread"] == pytest.approx(float(np.std(placed)))
    assert row["changes"] == sum(a != b for a, b in itertools.pairwise(chosen))
    assert row["mode_share"] == max(chosen.count(v) for v in chosen) / 3


def test_saving_writes_every_fold_and_a_report(
    walked: tuple[WalkForward, WalkForwardResult], tmp_path: Path
) -> None:
    _, result = walked
    folder = result.save(tmp_path / "wf")
    ReportGenerator().generate_full_report(result.segments(), folder / "report")
    summary = json.loads((folder / "walkforward.json").read_text())
    assert len(summary["folds"]) == 3
    assert summary["out_of_sample"]["trade_count"] == result.stitched.metrics["trade_count"]
    for k in (1, 2, 3):
        assert load_result(folder / f"fold-{k}" / "out-of-sample").metrics
    stitched = load_result(folder / "out-of-sample")
    assert stitched.metrics["total_return"] == pytest.approx(
        result.stitched.metrics["total_return"]
    )
    html = (folder / "report" / "report.html").read_text()
    sections = [a["data-section"] for a in parse(html).having("data-section")]
    assert "segments" in sections
    assert "walk-forward" in sections
    names = [s["name"] for s in page_data(html)["segments"]]
    assert names[-1] == "out-of-sample (stitched)"
    assert names[:2] == ["fold 1 in-sample", "fold 1 out-of-sample"]
    assert len(pd.read_csv(folder / "folds.csv")) == 3


@pytest.mark.slow
def test_rl_trains_in_sample_and_trades_out_of_sample(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "models")
    frame = market(bars=3_000, seed=12)
    training = WalkForwardTraining(frame, "ppo", timesteps=256, folds=2, train=0.6,
                                   settings=settings, seed=0)  # fmt: skip
    result = training.run()
    assert len(result.folds) == 2
    ids = set()
    for f in result.folds:
        assert f.model is not None
        ids.add(f.model["id"])
        data = f.model["data"]
        # trained (and validated) only on bars inside the fold's in-sample span
        assert pd.Timestamp(data["first_bar"]) >= f.train_span[0]
        assert pd.Timestamp(data["last_bar"]) <= f.train_span[1]
        assert "signal_rl" in f.out_of_sample.decisions
        assert f.out_of_sample.models[0]["id"] == f.model["id"]
        assert f.out_of_sample.equity.index[0] == f.test_span[0]
    assert len(ids) == 2  # a model per fold
    table = result.table()
    assert table["model"].tolist() == [f.model["id"] for f in result.folds if f.model]
    assert result.stability().empty
    assert result.stitched.metrics["trade_count"] == sum(
        f.out_of_sample.metrics["trade_count"] for f in result.folds
    )
    with pytest.raises(UserInputError, match="one model per symbol"):
        WalkForwardTraining({"A": frame, "B": frame}, settings=settings)

"""`StrategyOptimizer`: every method, constraints, Pareto fronts, persistence, determinism."""

from __future__ import annotations

import math
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from distributed import LocalCluster

from reinforcetrade.backtesting import EnhancedBacktester
from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data import DataLoader
from reinforcetrade.optimization import SearchSpace, StrategyOptimizer
from reinforcetrade.optimization.objectives import Objective, pareto_front
from reinforcetrade.strategies import MultiAgentStrategy


def top(frame: pd.DataFrame, column: str) -> pd.Series:
    """Return the row with the largest value in a column (the first of equals)."""
    return frame.sort_values(column, ascending=False, kind="stable").iloc[0]


def record(seen: list[tuple[int, int]], done: int, total: int) -> None:
    seen.append((done, total))


SERIAL = Settings(optimization={"n_jobs": 1, "min_trades": 0, "batch_size": 4})


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=4_000, seed=7)


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace.from_mapping(
        {
            "tower.entry_confidence": {"low": 0.5, "high": 0.8, "step": 0.1},
            "risk.stop_loss": [0.03, 0.06],
        }
    )


def test_grid_runs_every_point_and_its_numbers_are_the_backtests(
    data: pd.DataFrame, space: SearchSpace
) -> None:
    result = StrategyOptimizer(data, space, method="grid", settings=SERIAL, storage=None).optimize()
    trials = result.trials
    assert len(trials) == 8
    points = {(r["tower.entry_confidence"], r["risk.stop_loss"]) for _, r in trials.iterrows()}
    assert points == {(e, s) for e in (0.5, 0.6, 0.7, 0.8) for s in (0.03, 0.06)}
    for _, row in trials.sample(3, random_state=0).iterrows():
        params = {"tower.entry_confidence": row["tower.entry_confidence"],
                  "risk.stop_loss": row["risk.stop_loss"]}  # fmt: skip
        settings = SERIAL.with_params(params)
        direct = EnhancedBacktester(MultiAgentStrategy(settings=settings), settings=settings).run(
            data
        )
        assert row["sharpe_ratio"] == direct.metrics["sharpe_ratio"]
        assert row["trade_count"] == direct.metrics["trade_count"]
    best = top(trials, "sharpe_ratio")
    assert result.best_number == best["number"]
    assert result.best_params == {
        "tower.entry_confidence": best["tower.entry_confidence"],
        "risk.stop_loss": best["risk.stop_loss"],
    }
    assert result.pareto == (result.best_number,)
    d = result.diagnostics
    assert d["distinct_trials"] == 8
    assert 0.0 <= d["deflated_sharpe_ratio"] <= 1.0
    assert 0.0 <= d["pbo"] <= 1.0
    assert d["pbo_combinations"] == 12_870
    again = StrategyOptimizer(data, space, method="grid", settings=SERIAL, storage=None)
    assert again.best_result(result).metrics["sharpe_ratio"] == best["sharpe_ratio"]


def test_constraints_keep_infeasible_trials_out(data: pd.DataFrame, space: SearchSpace) -> None:
    result = StrategyOptimizer(
        data, space, method="grid", settings=SERIAL, storage=None,
        constraints=["trade_count>=8"],
    ).optimize()  # fmt: skip
    trials = result.trials
    assert (trials["feasible"] == (trials["trade_count"] >= 8)).all()
    assert 0 < trials["feasible"].sum() < len(trials)
    feasible = trials[trials["feasible"]]
    assert result.best_number == top(feasible, "sharpe_ratio")["number"]
    # the config's min_trades is a constraint too
    strict = SERIAL.with_params({"optimization.min_trades": 10_000})
    none = StrategyOptimizer(data, space, method="grid", settings=strict, storage=None)
    result = none.optimize()
    assert result.best_params is None
    assert not result.trials["feasible"].any()
    with pytest.raises(UserInputError, match="no feasible trial"):
        none.best_result(result)


def test_several_objectives_give_the_pareto_front(data: pd.DataFrame, space: SearchSpace) -> None:
    result = StrategyOptimizer(
        data, space, ["sharpe", "max_drawdown"], method="grid", settings=SERIAL, storage=None
    ).optimize()
    trials = result.trials
    values = trials[["sharpe_ratio", "max_drawdown"]].to_numpy()
    expected = set(trials["number"][pareto_front(values, ["maximize", "maximize"])])
    assert set(result.pareto) == expected
    on_front = trials[trials["number"].isin(expected)]
    assert result.best_number == top(on_front, "sharpe_ratio")["number"]
    assert set(result.best_values) == {"sharpe_ratio", "max_drawdown"}


@pytest.mark.parametrize("method", ["genetic", "tpe", "random"])
def test_samplers_are_seeded_and_stay_in_the_space(
    method: str, data: pd.DataFrame, space: SearchSpace
) -> None:
    space = SearchSpace.from_mapping(
        {"tower.entry_confidence": {"low": 0.5, "high": 0.8}, "agents.trend.fast_ma": [20, 50]}
    )

    def run() -> pd.DataFrame:
        opt = StrategyOptimizer(data, space, ["sharpe", "max_drawdown"], method=method,
                                settings=SERIAL, storage=None, n_trials=10)  # fmt: skip
        return opt.optimize().trials

    first, second = run(), run()
    assert len(first) == 10
    pd.testing.assert_frame_equal(first.drop(columns="seconds"), second.drop(columns="seconds"))
    assert first["tower.entry_confidence"].between(0.5, 0.8).all()
    assert set(first["agents.trend.fast_ma"]) <= {20, 50}


def test_a_function_of_the_result_is_an_objective(data: pd.DataFrame, space: SearchSpace) -> None:
    per_trade = Objective(
        "return_per_trade",
        function=lambda r: r.metrics["total_return"] / max(r.metrics["trade_count"], 1.0),
    )
    result = StrategyOptimizer(
        data, space, [per_trade], method="grid", settings=SERIAL, storage=None
    ).optimize()
    trials = result.trials
    np.testing.assert_allclose(
        trials["return_per_trade"], trials["total_return"] / trials["trade_count"].clip(lower=1)
    )
    assert result.best_number == top(trials, "return_per_trade")["number"]


def test_invalid_combinations_are_recorded_not_fatal(data: pd.DataFrame) -> None:
    space = SearchSpace.from_mapping({"agents.trend.fast_ma": [50, 250]})
    result = StrategyOptimizer(data, space, method="grid", settings=SERIAL, storage=None).optimize()
    bad = result.trials.set_index("agents.trend.fast_ma").loc[250]
    assert not bad["feasible"]
    assert "must be shorter than slow_ma" in bad["error"]
    assert result.best_params == {"agents.trend.fast_ma": 50}


def test_a_study_in_sqlite_resumes_where_it_stopped(
    data: pd.DataFrame, space: SearchSpace, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"

    def optimizer() -> StrategyOptimizer:
        return StrategyOptimizer(data, space, method="grid", settings=SERIAL, storage=storage)

    first = optimizer().optimize(3)
    assert len(first.trials) == 3
    second = optimizer().optimize()  # the same search: the same study, the 5 points left
    assert second.study_name == first.study_name
    assert len(second.trials) == 8
    assert len({tuple(r) for r in second.trials[list(space.paths)].to_numpy()}) == 8
    pd.testing.assert_frame_equal(
        second.trials.head(3).drop(columns="seconds"), first.trials.drop(columns="seconds")
    )
    stored = optuna.storages.RDBStorage(storage)
    assert len(optuna.load_study(study_name=first.study_name, storage=stored).trials) == 8
    stored.engine.dispose()
    tpe = StrategyOptimizer(data, space, method="tpe", settings=SERIAL, storage=storage)
    tpe.optimize(4)
    assert len(tpe.optimize(3).trials) == 7  # n more trials each call


def test_a_study_in_postgresql_is_shared(
    data: pd.DataFrame, space: SearchSpace, postgres_url: str
) -> None:
    name = f"test-{uuid.uuid4().hex[:10]}"
    try:
        made = StrategyOptimizer(data, space, method="random", settings=SERIAL,
                                 storage=postgres_url, study_name=name, n_trials=3)  # fmt: skip
        made.optimize()
        # another "machine": a new optimizer on the same URL and name continues the study
        other = StrategyOptimizer(data, space, method="random", settings=SERIAL,
                                  storage=postgres_url, study_name=name, n_trials=2)  # fmt: skip
        result = other.optimize()
        assert len(result.trials) == 5
        assert result.trials["sharpe_ratio"].notna().all()
    finally:
        stored = optuna.storages.RDBStorage(postgres_url)
        optuna.delete_study(study_name=name, storage=stored)
        stored.engine.dispose()


def test_bad_input_is_a_clear_error(data: pd.DataFrame, space: SearchSpace) -> None:
    with pytest.raises(UserInputError, match="method must be one of"):
        StrategyOptimizer(data, space, method="annealing", storage=None)
    with pytest.raises(UserInputError, match="unknown metric"):
        StrategyOptimizer(data, space, ["sharpness"], storage=None)
    with pytest.raises(UserInputError, match="not 'metric>=number'"):
        StrategyOptimizer(data, space, constraints=["trades=3"], storage=None)


def test_nan_objectives_are_failed_trials(data: pd.DataFrame) -> None:
    space = SearchSpace.from_mapping({"backtest.warmup_bars": [200, 10_000]})  # 10,000: never
    result = StrategyOptimizer(data, space, method="grid", settings=SERIAL, storage=None).optimize()
    never = result.trials.set_index("backtest.warmup_bars").loc[10_000].to_dict()
    assert never["trade_count"] == 0
    assert math.isnan(float(never["sharpe_ratio"]))
    assert not never["feasible"]
    assert result.best_params == {"backtest.warmup_bars": 200}


@pytest.mark.network
@pytest.mark.slow
def test_the_search_is_the_same_on_every_executor(
    data: pd.DataFrame, cluster: LocalCluster
) -> None:
    space = SearchSpace.from_mapping(
        {"tower.entry_confidence": {"low": 0.5, "high": 0.8}, "risk.stop_loss": [0.03, 0.06]}
    )
    settings = SERIAL.with_params({"optimization.batch_size": 6})
    tables = {}
    kinds: dict[str, dict[str, Any]] = {
        "serial": {"optimization.n_jobs": 1},
        "local": {"optimization.n_jobs": 2},
        "dask": {"optimization.dask_address": cluster.scheduler_address},  # an address: Dask
    }  # fmt: skip
    for name, updates in kinds.items():
        optimizer = StrategyOptimizer(
            data, space, method="tpe", settings=settings.with_params(updates), storage=None,
            n_trials=12,
        )  # fmt: skip
        seen: list[tuple[int, int]] = []
        result = optimizer.optimize(progress=partial(record, seen))
        assert seen[-1] == (12, 12)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        assert result.workers == (1 if name == "serial" else 2)
        tables[name] = result.trials.drop(columns="seconds")
    pd.testing.assert_frame_equal(tables["serial"], tables["local"])
    pd.testing.assert_frame_equal(tables["serial"], tables["dask"])

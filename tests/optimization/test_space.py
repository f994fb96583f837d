"""Search spaces, objectives, constraints and walk-forward folds: the rules, checked by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reinforcetrade.config import Settings
from reinforcetrade.config.settings import settings_schema
from reinforcetrade.core.errors import ConfigError, UserInputError
from reinforcetrade.optimization.folds import walk_forward_folds
from reinforcetrade.optimization.objectives import (
    Constraint,
    Objective,
    objectives_from,
    pareto_front,
)
from reinforcetrade.optimization.space import Param, SearchSpace


def test_ranges_are_declared_beside_the_settings_they_tune() -> None:
    declared = {p.path: p for p in SearchSpace.declared()}
    assert {"tower.entry_confidence", "risk.stop_loss", "agents.trend.fast_ma"} <= set(declared)
    stop = declared["risk.stop_loss"]
    assert (stop.low, stop.high, stop.log, stop.integer) == (0.01, 0.15, True, False)
    assert declared["agents.short_term.rsi_period"].integer
    schema = settings_schema()["$defs"]["RiskConfig"]["properties"]["stop_loss"]
    assert schema["search"] == {"low": 0.01, "high": 0.15, "log": True}  # in the JSON schema too
    assert {p.path for p in SearchSpace.declared("tower.")} == {
        "tower.entry_confidence", "tower.exit_confidence", "tower.consensus_agents",
    }  # fmt: skip
    assert declared["execution.algo"].choices == ("immediate", "twap", "vwap", "auto")
    for param in declared.values():  # every declared end or choice is a valid value
        for value in param.choices or (param.low, param.high):
            Settings().with_params({param.path: value})


def test_a_space_file_picks_narrows_and_lists_choices(tmp_path: Path) -> None:
    file = tmp_path / "space.yaml"
    file.write_text(
        "tower.entry_confidence: {low: 0.5, high: 0.7, step: 0.1}\n"
        "agents.short_term.rsi_period: [7, 14]\n"
        "risk.stop_loss: declared\n"
        "risk.take_profit: {low: 0.02, high: 0.08, log: true, points: 3}\n"
    )
    space = SearchSpace.from_yaml(file)
    assert space.paths == (
        "tower.entry_confidence", "agents.short_term.rsi_period", "risk.stop_loss",
        "risk.take_profit",
    )  # fmt: skip
    values = {p.path: p.values() for p in space}
    assert values["tower.entry_confidence"] == (0.5, 0.6, 0.7)
    assert values["agents.short_term.rsi_period"] == (7, 14)
    assert values["risk.take_profit"] == pytest.approx((0.02, 0.04, 0.08))
    grid = space.grid()
    assert len(grid) == 3 * 2 * 5 * 3
    assert grid[0] == {
        "tower.entry_confidence": 0.5, "agents.short_term.rsi_period": 7,
        "risk.stop_loss": 0.01, "risk.take_profit": 0.02,
    }  # fmt: skip
    assert len({tuple(g.values()) for g in grid}) == len(grid)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"risk.stop_los": {"low": 0.01, "high": 0.1}}, "did you mean 'risk.stop_loss'"),
        ({"risk.stop_loss": {"low": 0.01, "high": 2.0}}, "2.0 is refused"),
        ({"risk.stop_loss": {"low": 0.1, "high": 0.01}}, "must be below high"),
        ({"risk.stop_loss": {"low": 0.0, "high": 0.1, "log": True}}, "log scale needs low > 0"),
        ({"agents.trend.fast_ma": {"low": 10, "high": 20.5}}, "integer low, high and step"),
        ({"risk.stop_loss": 3}, "give {low, high"),
        ({"risk.stop_loss": {"low": 0.01, "hi": 0.1}}, "unknown keys"),
        ({"backtest.seed": "declared"}, "no declared range"),
        ({}, "empty"),
    ],
)
def test_bad_spaces_say_what_to_fix(spec: dict[str, object], message: str) -> None:
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace("{", r"\{")):
        SearchSpace.from_mapping(spec)


def test_the_grid_refuses_to_explode() -> None:
    space = SearchSpace(tuple(Param(f"p{i}", choices=tuple(range(10))) for i in range(7)))
    with pytest.raises(UserInputError, match="10,000,000 points"):
        space.grid()


def test_dict_settings_and_cross_field_rules() -> None:
    space = SearchSpace.from_mapping(
        {"tower.weights.trending.trend": [0.3, 0.6], "agents.trend.fast_ma": [50, 250]}
    )
    assert len(space.grid()) == 4  # fast_ma 250 ≥ slow_ma 200 is an invalid trial, not a bad space
    with pytest.raises(ConfigError, match="must be shorter than slow_ma"):
        Settings().with_params({"agents.trend.fast_ma": 250})
    tuned = Settings().with_params({"tower.weights.trending.trend": 0.6})
    assert tuned.tower.weights["trending"]["trend"] == 0.6
    assert tuned.tower.weights["ranging"] == Settings().tower.weights["ranging"]


@given(st.floats(0.0, 1.0))
def test_sampled_values_land_on_the_settings_type(u: float) -> None:
    rsi = Param("agents.short_term.rsi_period", 7, 28, step=7, integer=True)
    value = rsi.clean(7 + u * 21)
    assert isinstance(value, int)
    stop = Param("risk.stop_loss", 0.01, 0.15, log=True)
    assert 0.0 <= stop.normalise(stop.clean(0.01 * 15**u)) <= 1.0 + 1e-9


def test_objectives_know_their_direction() -> None:
    assert Objective.parse("sharpe") == Objective("sharpe_ratio", "maximize")
    assert Objective.parse("max_drawdown").direction == "maximize"  # drawdowns are ≤ 0
    assert Objective.parse("volatility") == Objective("annual_volatility", "minimize")
    assert Objective.parse("min:trade_count") == Objective("trade_count", "minimize")
    with pytest.raises(UserInputError, match="unknown metric 'sharp'"):
        Objective.parse("sharp")
    with pytest.raises(UserInputError, match="given twice"):
        objectives_from(["sharpe", "sharpe_ratio"])
    custom = Objective("return_per_trade", function=lambda r: r.metrics["total_return"] / 2)
    assert custom.value({}, type("R", (), {"metrics": {"total_return": 0.5}})()) == 0.25
    assert Objective.parse("sharpe").better(1.0, math.nan)
    assert not Objective.parse("sharpe").better(math.nan, 1.0)


def test_constraints_measure_how_far_a_trial_breaks_them() -> None:
    c = Constraint.parse("trade_count>=30")
    assert c == Constraint("trade_count", ">=", 30.0)
    assert c.violation({"trade_count": 45.0}) == -15.0
    assert c.violation({"trade_count": 10.0}) == 20.0
    assert c.violation({}) == math.inf
    d = Constraint.parse("max_drawdown >= -0.25")
    assert d.violation({"max_drawdown": -0.3}) == pytest.approx(0.05)
    assert Constraint.parse("annual_volatility<=0.4").violation({"annual_volatility": 0.2}) < 0
    with pytest.raises(UserInputError, match="not 'metric>=number'"):
        Constraint.parse("trades > 3")


def test_pareto_front_by_hand() -> None:
    values = [[1.0, -0.3], [2.0, -0.5], [1.5, -0.2], [0.5, -0.6], [math.nan, 0.0], [2.0, -0.5]]
    front = pareto_front(values, ["maximize", "maximize"])
    assert front.tolist() == [False, True, True, False, False, True]  # ties stay on the front
    assert pareto_front([[1.0], [3.0], [2.0]], ["minimize"]).tolist() == [True, False, False]


@given(
    st.integers(200, 20_000),
    st.integers(1, 8),
    st.floats(0.3, 0.9),
    st.booleans(),
    st.integers(0, 20),
    st.integers(0, 20),
)
def test_folds_never_test_on_what_they_tuned_on(
    n: int, k: int, train: float, anchored: bool, purge: int, embargo: int
) -> None:
    try:
        folds = walk_forward_folds(n, k, train, anchored=anchored, purge=purge, embargo=embargo)
    except UserInputError:
        return  # too little data for these folds: refused with a message
    assert len(folds) == k
    for i, f in enumerate(folds):
        assert f.train[0] >= 0
        assert f.train[1] + purge + embargo == f.test[0]  # the gap, exactly
        assert f.test[1] <= n
        if anchored:
            assert f.train[0] == 0
        if i:
            before = folds[i - 1]
            assert before.test[1] + embargo == f.test[0]  # out-of-sample spans tile the end
            if not anchored:
                assert f.train[0] > before.train[0]
    assert folds[-1].test[1] == n


def test_fold_errors() -> None:
    with pytest.raises(UserInputError, match="fewer folds or more data"):
        walk_forward_folds(20, 10, 0.7)
    with pytest.raises(UserInputError, match="between 0 and 1"):
        walk_forward_folds(1000, 3, 1.2)
    with pytest.raises(UserInputError, match="at least 1"):
        walk_forward_folds(1000, 0)

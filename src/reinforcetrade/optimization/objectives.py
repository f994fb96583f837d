"""What a search optimises and what it must respect: objectives and constraints.

An objective is any metric of the result ("sharpe", "max_drawdown", "min:annual_volatility")
or a function of the `BacktestResult`; constraints bound metrics ("trade_count>=30",
"max_drawdown>=-0.25"). A trial that breaks a constraint is infeasible: never the best, never on
the Pareto front, and the samplers learn to avoid it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.features.performance import METRIC_KEYS

Direction = Literal["maximize", "minimize"]
ResultFunction = Callable[[Any], float]

#: short names users type for metrics
ALIASES: Mapping[str, str] = {
    "sharpe": "sharpe_ratio",
    "sortino": "sortino_ratio",
    "calmar": "calmar_ratio",
    "return": "total_return",
    "drawdown": "max_drawdown",
    "volatility": "annual_volatility",
    "trades": "trade_count",
    "var": "value_at_risk",
    "cvar": "conditional_value_at_risk",
}
#: metrics where less is better (drawdowns and VaR are negative numbers: more is better)
LOWER_IS_BETTER = frozenset(
    {"annual_volatility", "max_drawdown_duration_bars", "max_drawdown_duration_ns", "turnover"}
)
METRICS = frozenset(METRIC_KEYS) | {"final_equity", "blocked_entries", "decisions"}


def metric_name(name: str) -> str:
    """Return the metric a user's name means, or a clear error listing the known ones."""
    key = ALIASES.get(name, name)
    if key not in METRICS:
        known = ", ".join(sorted(set(ALIASES) | METRICS))
        raise UserInputError(f"unknown metric {name!r}; known: {known}")
    return key


@dataclass(frozen=True)
class Objective:
    """A value to optimise: a metric of the result, or `function(result)`, in a direction."""

    name: str
    direction: Direction = "maximize"
    function: ResultFunction | None = None

    @classmethod
    def parse(cls, text: str) -> Objective:
        """Return the objective "metric", "max:metric" or "min:metric" names."""
        direction: Direction | None = None
        name = text.strip()
        if name.startswith(("max:", "min:")):
            direction = "maximize" if name.startswith("max:") else "minimize"
            name = name[4:]
        key = metric_name(name)
        if direction is None:
            direction = "minimize" if key in LOWER_IS_BETTER else "maximize"
        return cls(key, direction)

    def value(self, metrics: Mapping[str, float], result: Any = None) -> float:
        """Return the objective's value for a trial (NaN when undefined)."""
        if self.function is not None:
            if result is None:
                raise ValueError(f"objective {self.name!r} needs the result itself")
            return float(self.function(result))
        return float(metrics.get(self.name, math.nan))

    def better(self, a: float, b: float) -> bool:
        """Return whether value a beats value b (NaN never beats anything)."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a > b if self.direction == "maximize" else a < b


@dataclass(frozen=True)
class Constraint:
    """A bound on a metric: `metric >= bound` or `metric <= bound`."""

    metric: str
    op: Literal[">=", "<="]
    bound: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Return the constraint "trade_count>=30" or "max_drawdown >= -0.25" names."""
        match = re.fullmatch(r"\s*([A-Za-z_:]+)\s*(>=|<=)\s*([-+0-9.eE]+)\s*", text)
        if not match:
            raise UserInputError(f"constraint {text!r} is not 'metric>=number' or 'metric<=number'")
        name, op, bound = match.groups()
        try:
            value = float(bound)
        except ValueError:
            raise UserInputError(f"constraint {text!r}: {bound!r} is not a number") from None
        return cls(metric_name(name), ">=" if op == ">=" else "<=", value)

    def violation(self, metrics: Mapping[str, float]) -> float:
        """Return how far a trial breaks the bound (≤ 0: kept; NaN metrics count as broken)."""
        value = float(metrics.get(self.metric, math.nan))
        if math.isnan(value):
            return math.inf
        return self.bound - value if self.op == ">=" else value - self.bound

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


def objectives_from(items: Sequence[str | Objective]) -> tuple[Objective, ...]:
    """Return objectives from names or objects; at least one, no metric twice."""
    parsed = tuple(o if isinstance(o, Objective) else Objective.parse(o) for o in items)
    if not parsed:
        raise UserInputError("give at least one objective (e.g. sharpe)")
    names = [o.name for o in parsed]
    if len(set(names)) != len(names):
        raise UserInputError(f"an objective is given twice: {names}")
    return parsed


def pareto_front(values: npt.ArrayLike, directions: Sequence[Direction]) -> npt.NDArray[np.bool_]:
    """Return which rows are not dominated by another (rows with NaN never are on the front).

    >>> pareto_front([[1.0, 5.0], [2.0, 4.0], [1.5, 3.0], [0.5, 6.0]], ["maximize"] * 2).tolist()
    [True, True, False, True]
    """
    v = np.atleast_2d(np.asarray(values, dtype=np.float64)).copy()
    if v.size == 0:
        return np.zeros(0, dtype=np.bool_)
    for j, direction in enumerate(directions):
        if direction == "minimize":
            v[:, j] = -v[:, j]
    ok = np.asarray(~np.isnan(v).any(axis=1), dtype=np.bool_)
    front = ok.copy()
    for i in np.flatnonzero(ok):
        others = v[ok]
        dominated = np.any(np.all(others >= v[i], axis=1) & np.any(others > v[i], axis=1))
        front[i] = not dominated
    return front

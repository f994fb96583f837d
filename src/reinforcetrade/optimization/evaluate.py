"""One trial on a worker: settings with the trial's parameters → backtest → what the search needs.

`TrialData` is shipped to each worker once (market, base settings, objectives); a `TrialTask`
is small (a trial's parameters and its span). `evaluate_trial` is the function the executors
run; it returns a `TrialOutcome` — metrics, objective values, constraint violations and the
per-block return statistics the overfitting diagnostics need — never the whole result.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reinforcetrade.backtesting import BacktestResult, EnhancedBacktester
from reinforcetrade.config import Settings
from reinforcetrade.core.errors import ConfigError
from reinforcetrade.core.threads import thread_limit
from reinforcetrade.optimization.diagnostics import block_stats
from reinforcetrade.optimization.objectives import Constraint, Objective
from reinforcetrade.strategies import MultiAgentStrategy, SignalCache

Data = pd.DataFrame | Mapping[str, pd.DataFrame]

#: time blocks per trial for the probability of backtest overfitting (CSCV)
PBO_BLOCKS = 16
#: this process's agent signals by bars and agent settings: trials that tune only the tower
#: and the risk rules reuse them
SIGNALS = SignalCache()


@dataclass(frozen=True)
class TrialData:
    """What every worker holds once: the market, the base settings, objectives and constraints."""

    data: Data
    settings: Settings
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    blocks: int = PBO_BLOCKS


@dataclass(frozen=True)
class TrialTask:
    """One trial: its number, its parameters, and the span it trades ([start, end))."""

    number: int
    params: dict[str, Any]
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None


@dataclass(frozen=True)
class TrialOutcome:
    """What a trial returns: metrics, objective values, constraint violations, block stats."""

    number: int
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    values: tuple[float, ...] = ()
    violations: tuple[float, ...] = ()
    blocks: list[list[float]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def feasible(self) -> bool:
        """Return whether the trial ran, has every objective and keeps every constraint."""
        return (
            self.error is None
            and all(math.isfinite(v) for v in self.values)
            and all(v <= 0 for v in self.violations)
        )


def run_backtest(
    data: Data,
    settings: Settings,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    cache: SignalCache | None = None,
) -> BacktestResult:
    """Backtest the multi-agent strategy with `settings`, trading [start, end) of the data."""
    if end is not None:
        data = _until(data, end)
    strategy = MultiAgentStrategy(settings=settings, signal_cache=cache)
    return EnhancedBacktester(strategy, settings=settings).run(data, start=start)


def evaluate_trial(shared: TrialData, task: TrialTask) -> TrialOutcome:
    """Run one trial (on a worker) and return what the search needs from it."""
    began = time.perf_counter()
    try:
        settings = shared.settings.with_params(task.params)
    except ConfigError as exc:
        return TrialOutcome(task.number, task.params, error=str(exc))
    with thread_limit(1):  # trials are the parallel unit: no threads inside one
        result = run_backtest(shared.data, settings, task.start, task.end, SIGNALS)
    metrics = {k: float(v) for k, v in result.metrics.items()}
    values = tuple(o.value(metrics, result) for o in shared.objectives)
    returns = result.returns.to_numpy(dtype=np.float64)
    stats = block_stats(returns, min(shared.blocks, max(1, returns.size)))
    return TrialOutcome(
        task.number,
        task.params,
        metrics=metrics,
        values=values,
        violations=tuple(c.violation(metrics) for c in shared.constraints),
        blocks=np.asarray(stats, dtype=np.float64).reshape(-1, 3).tolist(),
        seconds=time.perf_counter() - began,
    )


def data_fingerprint(data: Data) -> str:
    """Return a short hash of the market (symbols, times, closes): names a study's data."""
    frames = {"": data} if isinstance(data, pd.DataFrame) else dict(data)
    digest = hashlib.sha256()
    for name in sorted(frames):
        frame = frames[name]
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(pd.DatetimeIndex(frame.index).asi8).tobytes())
        digest.update(np.ascontiguousarray(frame["close"].to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()[:12]


def _until(data: Data, end: pd.Timestamp) -> Data:
    """Return the bars before `end`."""
    if isinstance(data, pd.DataFrame):
        return data.loc[data.index < end]
    return {name: frame.loc[frame.index < end] for name, frame in data.items()}

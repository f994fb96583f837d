"""Benchmark the optimiser; prints one JSON line.

- search_1000: 1,000 parameter sets of the full multi-agent strategy (three agents, tower, risk,
  simulated broker, metrics and the per-block returns for the diagnostics) on 100,000 hourly
  bars, random search over the declared tower and risk ranges (the CLI's default space), study
  in a SQLite file (the default storage), 2 local worker processes (`optimization.n_jobs`).
  The time is the whole `optimize()` call: worker start-up, shipping the data, every trial,
  Optuna's bookkeeping and the diagnostics (deflated Sharpe, PBO over 12,870 combinations).
- scaling: trials per second with 1 and 2 worker processes (`LocalExecutor`) and with a Dask
  `LocalCluster` of 1 and 2 workers, 240 trials each: over the whole call (start-up included)
  and steady (after the first quarter of the trials); speed-up = steady rate with 2 workers /
  with 1. On this 2-core machine the parent (sampler, bookkeeping) and, for Dask, the scheduler
  share the two cores with the workers.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import machine  # benchmarks/common.py
from reinforcetrade.config import Settings
from reinforcetrade.data import generate_market
from reinforcetrade.optimization import SearchSpace, StrategyOptimizer

BARS = 100_000
TRIALS = 1_000
SCALING_TRIALS = 240


def timed_search(
    frame: Any, settings: Settings, trials: int, storage: str | None, seed: int
) -> tuple[float, Any]:
    """Return the seconds of one whole search and its result."""
    space = SearchSpace.declared("tower.", "risk.")
    optimizer = StrategyOptimizer(
        frame, space, ["sharpe"], method="random", settings=settings, storage=storage,
        n_trials=trials, seed=seed,
    )  # fmt: skip
    start = time.perf_counter()
    result = optimizer.optimize()
    return time.perf_counter() - start, result


def steady_rate(optimizer: StrategyOptimizer, executor: Any) -> tuple[float, float]:
    """Return (trials/s over the whole call, trials/s after the first quarter of the trials)."""
    marks: list[tuple[int, float]] = []
    start = time.perf_counter()
    optimizer.optimize(
        executor=executor, progress=lambda d, _t: marks.append((d, time.perf_counter()))
    )
    whole = SCALING_TRIALS / (time.perf_counter() - start)
    quarter = next(m for m in marks if m[0] >= SCALING_TRIALS // 4)
    return whole, (SCALING_TRIALS - quarter[0]) / (marks[-1][1] - quarter[1])


def scaling(frame: Any, base: Settings) -> dict[str, Any]:
    """Return trials/s with 1 and 2 worker processes, locally and on a Dask LocalCluster."""
    from distributed import LocalCluster

    from reinforcetrade.optimization.executors import DaskExecutor, LocalExecutor

    optimizer = StrategyOptimizer(
        frame, SearchSpace.declared("tower.", "risk."), ["sharpe"], method="random",
        settings=base, storage=None, n_trials=SCALING_TRIALS, seed=2,
    )  # fmt: skip
    rates: dict[str, tuple[float, float]] = {}
    for workers in (1, 2):
        with LocalExecutor(optimizer.trial_data(), workers) as executor:
            rates[f"local_{workers}"] = steady_rate(optimizer, executor)
    for workers in (1, 2):
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
        )  # fmt: skip
        with cluster, DaskExecutor(optimizer.trial_data(), cluster.scheduler_address) as dask:
            rates[f"dask_{workers}"] = steady_rate(optimizer, dask)
    return {
        "trials": SCALING_TRIALS,
        "trials_per_s_whole_call": {k: round(v[0], 1) for k, v in rates.items()},
        "trials_per_s_steady": {k: round(v[1], 1) for k, v in rates.items()},
        "speedup_local_1_to_2": round(rates["local_2"][1] / rates["local_1"][1], 2),
        "speedup_dask_1_to_2": round(rates["dask_2"][1] / rates["dask_1"][1], 2),
    }


def main() -> None:
    """Print the figures as one JSON line."""
    frame = generate_market(["BTC/USDT"], bars=BARS, seed=7).frames["BTC/USDT"]
    base = Settings(optimization={"min_trades": 0})
    figures: dict[str, Any] = {"bench": "optimize", "bars": BARS}
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'bench.db'}"
        seconds, result = timed_search(
            frame, base.with_params({"optimization.n_jobs": 2}), TRIALS, storage, seed=1
        )
        figures["search_1000"] = {
            "trials": len(result.trials),
            "distinct": result.diagnostics["distinct_trials"],
            "seconds": round(seconds, 2),
            "trials_per_s": round(len(result.trials) / seconds, 1),
            "workers": result.workers,
            "target_s": 60,
            "pbo": result.diagnostics.get("pbo"),
            "deflated_sharpe_ratio": result.diagnostics.get("deflated_sharpe_ratio"),
        }
        figures["scaling"] = scaling(frame, base)
    figures["machine"] = machine()
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Benchmark the data hot paths against pandas; prints one JSON line.

- csv: read + validate the real BTC/USDT 1m file (../shared/data/btcusdt_1m.csv.gz, 130,708
  rows, gzip) with `load_ohlcv`, in rows per second (set RT_SHARED_DATA to its folder elsewhere);
- resample: 10,000,000 synthetic 1m bars → 1h, `reinforcetrade.data.resample` vs
  `DataFrame.resample("1h").agg(...)`, in bars per second (source bars in / time);
- rolling mean, std and z-score (window 20) on 10,000,000 values, vs `Series.rolling(20)`, in
  values per second.

Each figure is the median of 5 timed runs after one untimed warm-up call (numba compiles or
loads its cache there). Ours runs with its default threading (one thread per 2M bars / 1M
values, at most 4 and at most the usable cores) and, for reference, forced onto one thread.
The input is a seeded random walk built with plain numpy.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common import machine, median_seconds  # benchmarks/common.py
from reinforcetrade.core.threads import thread_count, thread_limit
from reinforcetrade.data import load_ohlcv
from reinforcetrade.data.schema import make_ohlcv
from reinforcetrade.features.stats import rolling_mean, rolling_std, rolling_zscore

BARS = 10_000_000
VALUES = 10_000_000
WINDOW = 20
RUNS = 5
SEED = 20240101
AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}

# The modules by name: `reinforcetrade.data.resample` is also the name of the function.
resample_module = importlib.import_module("reinforcetrade.data.resample")


def synthetic_bars(n: int, seed: int = SEED) -> pd.DataFrame:
    """A 1m OHLCV random walk from 2020-01-01 UTC, gap-free, as a contract frame."""
    rng = np.random.default_rng(seed)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 5e-4, n)))
    open_ = np.concatenate(([30_000.0], close[:-1]))
    spread = np.abs(rng.normal(0.0, 2e-4, (2, n)))
    high = np.maximum(open_, close) * (1.0 + spread[0])
    low = np.minimum(open_, close) * (1.0 - spread[1])
    volume = rng.exponential(5.0, n).round(5)
    start = np.datetime64("2020-01-01T00:00", "ns").astype(np.int64)
    ts = start + np.arange(n, dtype=np.int64) * 60_000_000_000
    return make_ohlcv(ts, open_, high, low, close, volume, symbol="SYN/USDT", timeframe="1m")


def shared_data() -> Path:
    """Return the folder of real market data."""
    override = os.environ.get("RT_SHARED_DATA")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "shared" / "data"


def bench_csv() -> dict[str, Any]:
    """Time reading and validating the real 1m file (gzip CSV) into a contract frame."""
    path = shared_data() / "btcusdt_1m.csv.gz"
    if not path.is_file():
        return {"csv_read_validate": {"skipped": f"{path} not found"}}
    rows = len(load_ohlcv(path, gaps="raise"))
    seconds = median_seconds(lambda: load_ohlcv(path, gaps="raise"), RUNS)
    return {
        "csv_read_validate": {
            "file": path.name,
            "rows": rows,
            "seconds": round(seconds, 5),
            "rows_per_s": round(rows / seconds),
        }
    }


def bench_resample(bars: pd.DataFrame) -> dict[str, Any]:
    """Time 1m → 1h with ours and with pandas; check that both give the same bars first."""
    ours = resample_module.resample(bars, "1h", partial="keep")
    theirs = bars.resample("1h").agg(AGG).dropna()
    if not ours.equals(theirs):
        raise SystemExit("resample: ours and pandas disagree; fix before timing")
    t_ours = median_seconds(lambda: resample_module.resample(bars, "1h"), RUNS)
    with thread_limit(1):
        t_ours_1 = median_seconds(lambda: resample_module.resample(bars, "1h"), RUNS)
    t_pandas = median_seconds(lambda: bars.resample("1h").agg(AGG), RUNS)
    n = len(bars)
    return {
        "resample_1m_to_1h": {
            "bars": n,
            "ours_threads": thread_count(n, resample_module._BARS_PER_WORKER),
            "ours_s": round(t_ours, 5),
            "ours_bars_per_s": round(n / t_ours),
            "ours_1_thread_bars_per_s": round(n / t_ours_1),
            "pandas_s": round(t_pandas, 5),
            "pandas_bars_per_s": round(n / t_pandas),
            "speedup": round(t_pandas / t_ours, 2),
            "speedup_1_thread": round(t_pandas / t_ours_1, 2),
        }
    }


def bench_rolling(x: np.ndarray) -> dict[str, Any]:
    """Time rolling mean, std and z-score with ours and with pandas."""
    s = pd.Series(x)

    def pandas_zscore() -> pd.Series:
        r = s.rolling(WINDOW)
        return (s - r.mean()) / r.std()

    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "rolling_mean": (lambda: rolling_mean(x, WINDOW), lambda: s.rolling(WINDOW).mean()),
        "rolling_std": (lambda: rolling_std(x, WINDOW), lambda: s.rolling(WINDOW).std()),
        "rolling_zscore": (lambda: rolling_zscore(x, WINDOW), pandas_zscore),
    }
    out: dict[str, Any] = {}
    for name, (ours, theirs) in cases.items():
        t_ours = median_seconds(ours, RUNS)
        with thread_limit(1):
            t_ours_1 = median_seconds(ours, RUNS)
        t_pandas = median_seconds(theirs, RUNS)
        out[name] = {
            "values": x.size,
            "window": WINDOW,
            "ours_values_per_s": round(x.size / t_ours),
            "ours_1_thread_values_per_s": round(x.size / t_ours_1),
            "pandas_values_per_s": round(x.size / t_pandas),
            "speedup": round(t_pandas / t_ours, 2),
            "speedup_1_thread": round(t_pandas / t_ours_1, 2),
        }
    return out


def main() -> None:
    """Run every benchmark and print the figures as one JSON line."""
    bars = synthetic_bars(BARS)
    figures: dict[str, Any] = {"benchmark": "data", "runs": RUNS, "statistic": "median"}
    figures.update(bench_csv())
    figures.update(bench_resample(bars))
    figures.update(bench_rolling(bars["close"].to_numpy(dtype=np.float64)[:VALUES].copy()))
    figures["machine"] = machine()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

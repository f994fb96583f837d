"""Benchmark the backtester against its peers; prints one JSON line.

- sma: an SMA(10/50) crossover, long-only, all-in at the next open, 0.1% commission, through our
  `Backtester` on 1,000,000 hourly bars (the whole call: data in, result object out), timed in the
  same run against vectorbt and backtesting.py on the same bars, and backtrader on 100,000 bars
  (it is slow). Every engine runs the same signals (tests/peers/sma.py) and the trade counts are
  reported so that agreement can be seen.
- multi_agent: the full `MultiAgentStrategy` (three agents, tower, risk, simulated broker) on
  1,000,000 bars of one symbol, every decision recorded; and 10 symbols × 100,000 bars.
  `run_s` is the call that returns the result; `with_tables_s` also builds the decisions,
  orders and fills tables (built on first access).

Each figure is the median of 3 timed runs after an untimed warm-up (numba compiles there).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import machine, median_seconds  # benchmarks/common.py
from peers.sma import (
    gbm_hourly,
    run_backtesting_py,
    run_backtrader,
    run_vectorbt,
    sma_crossover_signals,
)
from reinforcetrade.backtesting import Backtester, EnhancedBacktester
from reinforcetrade.data import generate_market
from reinforcetrade.strategies import MultiAgentStrategy

RUNS = 3


def sma_strategy(frame: pd.DataFrame) -> pd.Series:
    """The peers' SMA(10/50) crossover as target positions."""
    entries, exits = sma_crossover_signals(frame["close"].to_numpy(), 10, 50)
    target = np.full(len(frame), np.nan)
    target[entries] = 1.0
    target[exits] = 0.0
    return pd.Series(target, index=frame.index)


def bench_sma() -> dict[str, Any]:
    """Time our Backtester and the peers on the same crossover."""
    big = gbm_hourly(1_000_000, seed=42)
    small = big.iloc[:100_000]
    ours = Backtester(sma_strategy, commission=0.001)
    figures: dict[str, Any] = {}
    for name, frame in (("1m_bars", big), ("100k_bars", small)):
        t_ours = median_seconds(lambda f=frame: ours.run(f))  # type: ignore[misc]
        t_vbt = median_seconds(lambda f=frame: run_vectorbt(f, 10, 50, commission=0.001))  # type: ignore[misc]
        result = ours.run(frame)
        peer = run_vectorbt(frame, 10, 50, commission=0.001)
        figures[name] = {
            "bars": len(frame),
            "ours_bars_per_s": round(len(frame) / t_ours),
            "vectorbt_bars_per_s": round(len(frame) / t_vbt),
            "ours_vs_vectorbt": round(t_vbt / t_ours, 2),
            "trades_ours": len(result.trades),
            "trades_vectorbt": len(peer.trades),
        }
    t_bt = median_seconds(lambda: run_backtesting_py(small, 10, 50, commission=0.001), runs=1)
    figures["100k_bars"]["backtesting_py_bars_per_s"] = round(len(small) / t_bt)
    tiny = small.iloc[:100_000]
    t_btr = median_seconds(lambda: run_backtrader(tiny, 10, 50, commission=0.001), runs=1)
    figures["100k_bars"]["backtrader_bars_per_s"] = round(len(tiny) / t_btr)
    figures["100k_bars"]["trades_backtrader"] = len(
        run_backtrader(tiny, 10, 50, commission=0.001).trades
    )
    return {"sma_crossover": figures}


def bench_multi_agent() -> dict[str, Any]:
    """Time the full strategy on one long series and on a ten-symbol portfolio."""
    one = generate_market(["BTC/USDT"], timeframe="1m", bars=1_000_000, seed=7).frames
    symbols = [f"S{i:02d}/USDT" for i in range(10)]
    many = generate_market(symbols, timeframe="1h", bars=100_000, seed=7).frames
    figures: dict[str, Any] = {}
    for name, frames in (("1_symbol_1m_bars", one), ("10_symbols_100k_bars", many)):
        bars = sum(len(f) for f in frames.values())
        engine = EnhancedBacktester(MultiAgentStrategy())
        t_run = median_seconds(lambda fr=frames, e=engine: e.run(fr))  # type: ignore[misc]

        def with_tables(
            fr: dict[str, pd.DataFrame] = frames, e: EnhancedBacktester = engine
        ) -> None:
            result = e.run(fr)
            _ = result.decisions, result.orders, result.fills, result.trades

        t_tables = median_seconds(with_tables)
        result = engine.run(frames)
        figures[name] = {
            "bars": bars,
            "run_s": round(t_run, 4),
            "bars_per_s": round(bars / t_run),
            "with_tables_s": round(t_tables, 4),
            "bars_per_s_with_tables": round(bars / t_tables),
            "decisions": int(result.metrics["decisions"]),
            "trades": int(result.metrics["trade_count"]),
        }
    return {"multi_agent": figures}


def main() -> None:
    """Run every benchmark and print the figures as one JSON line."""
    figures: dict[str, Any] = {"benchmark": "backtest", "runs": RUNS, "statistic": "median"}
    figures.update(bench_sma())
    figures.update(bench_multi_agent())
    figures["machine"] = machine()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

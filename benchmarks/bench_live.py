"""Benchmark the live engine's bar-to-order latency on the paper broker; prints one JSON line.

One symbol, 10,000 hourly bars (synthetic market, seed 4) replayed as fast as they come
through `LiveEngine` with the `PaperBroker` and a SQLite journal in a temporary folder, twice:
with the three rule-based agents, and with a small trained PPO model as a fourth agent (the
RL agent runs on the newest observation only, carrying its own side from bar to bar).

Latency is measured inside the engine for every bar: from the closed bar handed over to the
last order handed to the broker — agents on the latest `trading.history_bars` bars, tower,
risk rules, simulated fills, each order written to the journal before it is sent, protective
stops — excluding the exchange round trip (none on paper) and the journalling of the bar's
records that follows. The first `warm` bars (numba compiling, the agents warming up) are
excluded from the percentiles. Also reported: wall time per bar including all journal writes.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import machine  # benchmarks/common.py
from reinforcetrade.data import generate_market
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.feeds import ReplayFeed
from reinforcetrade.trading.paper import PaperBroker

BARS = 10_000
WARM = 300
TARGET_P99_MS = 5.0


def session(strategy: MultiAgentStrategy, folder: Path, tag: str) -> dict[str, float]:
    """Replay the bars through a paper engine; return latency percentiles and wall time."""
    frames = dict(generate_market(["BTC/USDT"], bars=BARS, seed=4).frames)
    with Journal(f"sqlite:///{folder / tag}.db") as journal:
        engine = LiveEngine(strategy, ReplayFeed(frames), PaperBroker(), journal, name=tag)
        started = time.perf_counter()
        summary = engine.run()
        wall = time.perf_counter() - started
    lat = summary.latencies_ms[WARM:]
    return {
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
        "max_ms": round(float(lat.max()), 3),
        "wall_ms_per_bar": round(wall / BARS * 1e3, 3),
        "decisions": summary.decisions,
        "orders": summary.orders,
    }


def main() -> None:
    from rl_support import fast_settings, market, train

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rules = session(MultiAgentStrategy(), folder, "rules")
        record = train(folder / "models", "ppo", 1_024, data=market(2_000, seed=7))
        rl_strategy = MultiAgentStrategy(model=record, settings=fast_settings(folder / "models"))
        with_rl = session(rl_strategy, folder, "rl")
    print(
        json.dumps(
            {
                "bench": "live",
                "bars": BARS,
                "history_bars": MultiAgentStrategy().settings.trading.history_bars,
                "rules": rules,
                "with_rl": with_rl,
                "target_p99_ms": TARGET_P99_MS,
                "meets_target": with_rl["p99_ms"] <= TARGET_P99_MS,
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()

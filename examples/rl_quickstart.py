"""Train a PPO agent, make it the champion, and backtest the multi-agent strategy with it.

Run it with `.venv/bin/python examples/rl_quickstart.py [OUT_DIR] [TIMESTEPS]` (the models go to
OUT_DIR/models; 4,096 timesteps by default, a few seconds — use 50,000 or more for a real run).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from reinforcetrade.agents import ModelRegistry, TrainingPipeline
from reinforcetrade.backtesting import EnhancedBacktester
from reinforcetrade.config import Settings
from reinforcetrade.data import DataLoader
from reinforcetrade.strategies import MultiAgentStrategy


def main(out_dir: Path, timesteps: int) -> None:
    settings = Settings(rl={"models_dir": out_dir / "models"})
    data = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=8_760, seed=6)
    train, held_out = data.iloc[:6_500], data.iloc[6_500:]  # agents warm up on held_out's start

    record = TrainingPipeline("ppo", settings=settings).train(train, timesteps, seed=0)
    print(f"trained {record.id}: validation Sharpe {record.metric('validation_sharpe'):.2f}")
    decision = ModelRegistry(settings.rl.models_dir).promote(record.id)
    print(decision.reason)

    strategy = MultiAgentStrategy(use_rl=True, settings=settings)
    results = EnhancedBacktester(strategy).run(held_out)
    m = results.metrics
    print(
        f"held-out {held_out.index[0]:%Y-%m-%d} → {held_out.index[-1]:%Y-%m-%d}: "
        f"return {m['total_return']:+.2%}, Sharpe {m['sharpe_ratio']:.2f}, "
        f"{m['trade_count']:.0f} trades"
    )
    columns = ["time", "action", "signal_rl", "confidence_rl", "reasons"]
    print(results.decisions[columns].tail(5).to_string(index=False))


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 4_096
    main(folder, steps)

"""What working orders over bars costs or saves: one market, four execution algorithms.

The same multi-agent strategy is backtested on a thin synthetic market (its volume scaled down
so that an entry is a real share of a bar) with each `execution.algo`; the orders table shows
each order's cost against the close it was decided on (`shortfall_bps`) and what it left
unfilled. Run it with `.venv/bin/python examples/execution_tour.py`.
"""

from __future__ import annotations

from reinforcetrade.backtesting import EnhancedBacktester
from reinforcetrade.config import Settings
from reinforcetrade.data import generate_market
from reinforcetrade.strategies import MultiAgentStrategy

SYMBOL = "BTC/USDT"


def main() -> None:
    bars = generate_market([SYMBOL], bars=3_000, seed=4).frames[SYMBOL]
    thin = bars.assign(volume=bars["volume"] * 2e-5)  # a thin market: ~0.05 BTC a bar
    print(f"{'algo':<10}{'orders':>7}{'children':>9}{'shortfall bps':>14}{'unfilled':>10}"
          f"{'return':>9}")  # fmt: skip
    for algo in ("immediate", "twap", "vwap", "auto"):
        settings = Settings(execution={"algo": algo, "horizon_bars": 4, "volume_period": 24})
        result = EnhancedBacktester(MultiAgentStrategy(settings=settings)).run({SYMBOL: thin})
        orders = result.orders[result.orders["type"] == "market"]
        filled = orders[orders["filled_qty"] > 0]
        print(f"{algo:<10}{len(orders):>7}{int(orders['children'].sum()):>9}"
              f"{filled['shortfall_bps'].mean():>14.2f}{orders['unfilled_qty'].sum():>10.4f}"
              f"{result.metrics['total_return']:>9.2%}")  # fmt: skip


if __name__ == "__main__":
    main()  # an output folder given on the command line is not needed: it only prints

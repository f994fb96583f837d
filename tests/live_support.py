"""Shared parts of the live-engine tests: a market, a venue that trades it, an engine on it.

The bars come from the synthetic market; before each bar is handed to the engine the fake
venue trades through it (open, high, low, close), so market orders fill at the close and
stops trigger when the bar's range reaches them. Run as a script, this module is the engine
process the crash tests kill (see `child_main`).
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import ccxt
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reinforcetrade.config import Settings
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.data import generate_market
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.ccxt_broker import CcxtBroker
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.events import Alert
from reinforcetrade.trading.feeds import ClosedBar, ReplayFeed

SYMBOL = "BTC/USDT"
HOUR_NS = 3_600 * 10**9
BARS = 1_300
CANARY_KEY = "CANARYKEY-7f3a9c1e5b2d"
CANARY_SECRET = "CANARYSECRET-0d4e8b6a2c9f"  # noqa: S105 - a canary, planted to be looked for


def frame(bars: int = BARS) -> pd.DataFrame:
    """Return the hourly market the live tests trade (deterministic)."""
    return generate_market([SYMBOL], bars=bars, seed=4).frames[SYMBOL]


def first_entry(data: pd.DataFrame) -> int:
    """Return the index of the first bar whose close decides an entry (as a backtest does)."""
    from reinforcetrade.backtesting import EnhancedBacktester

    decisions = EnhancedBacktester(MultiAgentStrategy()).run({SYMBOL: data}).decisions
    entries = decisions.loc[decisions["action"].isin(["enter_long", "enter_short"]), "time"]
    return int(data.index.searchsorted(entries.iloc[0]))


@cache
def market() -> pd.DataFrame:
    """Return `frame()`, made once per test process."""
    return frame()


@cache
def entry_bar() -> int:
    """Return `first_entry(market())`, found once per test process."""
    return first_entry(market())


def broker(config: dict[str, Any]) -> CcxtBroker:
    """Return a CcxtBroker on the fake venue (canary credentials)."""
    exchange = ccxt.binance(
        {**config, "apiKey": CANARY_KEY, "secret": CANARY_SECRET, "enableRateLimit": False}
    )
    return CcxtBroker(exchange, sleep=lambda _s: None)


def engine(
    journal: Journal,
    venue_config: dict[str, Any],
    data: pd.DataFrame,
    *,
    name: str = "desk",
    clock: Any = None,
    alerts: list[Alert] | None = None,
) -> LiveEngine:
    """Return a live engine on the fake venue (the feed only names the symbol and timeframe)."""
    settings = Settings(trading={"api_key": CANARY_KEY, "api_secret": CANARY_SECRET})
    return LiveEngine(
        MultiAgentStrategy(settings=settings),
        ReplayFeed({SYMBOL: data}),
        broker(venue_config),
        journal,
        clock,
        mode="live",
        name=name,
        alert=None if alerts is None else alerts.append,
    )


def bar(data: pd.DataFrame, i: int) -> ClosedBar:
    """Return bar i as the feed hands it over."""
    row = data.iloc[i]
    return ClosedBar(SYMBOL, int(data.index[i].value), float(row["open"]), float(row["high"]),
                     float(row["low"]), float(row["close"]), float(row["volume"]))  # fmt: skip


def trade_through(venue: Any, data: pd.DataFrame, i: int) -> None:
    """Let the venue trade bar i's open, high, low and close (its clock at the bar's close)."""
    b = bar(data, i)
    venue.clock.set(max(venue.clock.now_ns(), b.ts + HOUR_NS - 1_000))
    for price in (b.open, b.high, b.low, b.close):
        venue.set_price(SYMBOL, round(price, 2))


def drive(live: LiveEngine, venue: Any, data: pd.DataFrame, start: int, stop: int) -> None:
    """Trade bars [start, stop) on the venue and hand each to the engine."""
    for i in range(start, stop):
        if venue is not None:
            trade_through(venue, data, i)
        live.on_bars([bar(data, i)])


def child_main() -> None:
    """The engine process of the crash tests: drive bars up to one, then wait to be killed."""
    config, url, stop, now = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    data = frame()
    clock = FixedClock(int(now))  # the venue's time, as the parent's journal keeps it
    with Journal(url, clock=clock) as journal:
        live = engine(journal, config, data, clock=clock)
        live.start()
        drive(live, None, data, 0, stop)
        print("done", flush=True)


if __name__ == "__main__":
    child_main()

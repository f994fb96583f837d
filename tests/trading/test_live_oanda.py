"""The live engine on OANDA (the real httpx client, a fake v20 venue): the same engine, venue."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from fakes.oanda import ACCOUNT_ID, FakeOanda
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.data import generate_market
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.feeds import ClosedBar, ReplayFeed
from reinforcetrade.trading.oanda import OandaBroker

pytestmark = pytest.mark.network

SYMBOL = "EUR/USD"
HOUR = 3_600 * 10**9


@cache
def market() -> pd.DataFrame:
    frames = generate_market([SYMBOL], bars=1_300, seed=4, start_prices={SYMBOL: 1.1}).frames
    return frames[SYMBOL]


@pytest.fixture
def venue() -> Iterator[FakeOanda]:
    data = market()
    clock = FixedClock(int(data.index[0].value))
    with FakeOanda(clock, balance="10000", prices={SYMBOL: f"{data['open'].iloc[0]:.5f}"}) as v:
        yield v


@pytest.fixture
def journal(tmp_path: Path, venue: FakeOanda) -> Iterator[Journal]:
    with Journal(f"sqlite:///{tmp_path / 'live.db'}", clock=venue.clock) as j:
        yield j


def engine(journal: Journal, venue: FakeOanda) -> LiveEngine:
    broker = OandaBroker(ACCOUNT_ID, "token-1234", base_url=venue.url, stream_url=venue.url,
                         sleep=lambda _s: None)  # fmt: skip
    live = LiveEngine(MultiAgentStrategy(), ReplayFeed({SYMBOL: market()}), broker, journal,
                      venue.clock, mode="live", name="fx")  # fmt: skip
    live.start()
    return live


def drive(live: LiveEngine, venue: FakeOanda, start: int, stop: int) -> None:
    data, clock = market(), venue.clock
    assert isinstance(clock, FixedClock)
    for i in range(start, stop):
        row, ts = data.iloc[i], int(data.index[i].value)
        clock.set(max(clock.now_ns(), ts + HOUR - 1_000))
        o, h, lo, c = (float(row[k]) for k in ("open", "high", "low", "close"))
        for price in (o, h, lo, c):
            venue.set_price(SYMBOL, f"{price:.5f}")
        live.on_bars([ClosedBar(SYMBOL, ts, o, h, lo, c, float(row["volume"]))])


def units(venue: FakeOanda) -> Decimal:
    return venue.positions.get("EUR_USD", (Decimal(0), Decimal(0)))[0]


def test_a_live_fx_session_trades_protects_and_restarts_where_it_was(
    venue: FakeOanda, journal: Journal
) -> None:
    live = engine(journal, venue)
    entered = None
    for i in range(len(market())):
        drive(live, venue, i, i + 1)
        if units(venue) > 0:
            entered = i
            break
    assert entered is not None, "the session never entered"
    held = float(live.stepper.run.book.pos_f[0, 0])
    assert held == float(units(venue))  # whole units, no fee taken in the instrument
    stops = [o for o in venue.orders if o.type == "STOP" and o.state == "PENDING"]
    assert len(stops) == 1
    assert -stops[0].units == units(venue)  # a sell stop for the position
    live.shutdown("stopped")
    again = engine(journal, venue)
    assert again.run_id == live.run_id
    assert float(again.stepper.run.book.pos_f[0, 0]) == held  # restored, stop kept
    assert len([o for o in venue.orders if o.type == "STOP"]) == 1
    drive(again, venue, entered + 1, len(market()))
    again.shutdown()
    fills = journal.read_table("fills", run_id=again.run_id)
    venue_fills = [t for t in venue.transactions if t["type"] == "ORDER_FILL"]
    assert len(fills) == len(venue_fills)
    assert float(again.stepper.run.book.pos_f[0, 0]) == float(units(venue))


def test_a_stop_filled_while_the_engine_was_down_is_booked_at_restart(
    venue: FakeOanda, journal: Journal
) -> None:
    live = engine(journal, venue)
    for i in range(len(market())):
        drive(live, venue, i, i + 1)
        if units(venue) > 0:
            break
    live.shutdown("stopped")
    (stop,) = [o for o in venue.orders if o.type == "STOP" and o.state == "PENDING"]
    assert stop.price is not None
    venue.set_price(SYMBOL, f"{float(stop.price) * 0.999:.5f}")  # triggers and fills
    assert units(venue) == 0
    again = engine(journal, venue)
    assert stop.client_id is not None
    booked = journal.orders_by_client_id([stop.client_id])[stop.client_id]
    assert booked.status == "filled"
    assert journal.fills_for(stop.client_id)
    assert float(again.stepper.run.book.pos_f[0, 0]) == 0.0
    assert [o for o in venue.orders if o.state == "PENDING"] == []  # no stop for a flat book
    again.shutdown()

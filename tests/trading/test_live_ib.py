"""The live engine on Interactive Brokers (the real ib_async client, a fake TWS)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from fakes.ib_tws import FakeTws
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.data import generate_market
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.feeds import ClosedBar, ReplayFeed
from reinforcetrade.trading.ib import IbBroker, Pacer

pytestmark = pytest.mark.network

SYMBOL = "AAPL"
HOUR = 3_600 * 10**9


@cache
def market() -> pd.DataFrame:
    frames = generate_market(["AAPL/USD"], bars=1_300, seed=4, start_prices={"AAPL/USD": 190.0})
    return frames.frames["AAPL/USD"]


@pytest.fixture
def tws() -> Iterator[FakeTws]:
    data = market()
    with FakeTws(FixedClock(int(data.index[0].value)), cash=10_000.0) as fake:
        fake.set_price(SYMBOL, round(float(data["open"].iloc[0]), 2))
        yield fake
        assert fake.errors == []


@pytest.fixture
def journal(tmp_path: Path, tws: FakeTws) -> Iterator[Journal]:
    with Journal(f"sqlite:///{tmp_path / 'live.db'}", clock=tws.clock) as j:
        yield j


def engine(journal: Journal, tws: FakeTws) -> LiveEngine:
    broker = IbBroker(port=tws.port, timeout=5.0, sleep=lambda _s: None, clock=tws.clock,
                      history_pacer=Pacer(1e6, 1e6))  # fmt: skip
    feed = ReplayFeed({SYMBOL: market()})
    live = LiveEngine(MultiAgentStrategy(), feed, broker, journal, tws.clock, mode="live",
                      name="stocks")  # fmt: skip
    live.start()
    return live


def drive(live: LiveEngine, tws: FakeTws, start: int, stop: int) -> None:
    data, clock = market(), tws.clock
    for i in range(start, stop):
        row, ts = data.iloc[i], int(data.index[i].value)
        clock.set(max(clock.now_ns(), ts + HOUR - 1_000))
        o, h, lo, c = (round(float(row[k]), 2) for k in ("open", "high", "low", "close"))
        for price in (o, h, lo, c):
            tws.set_price(SYMBOL, price)
        live.on_bars([ClosedBar(SYMBOL, ts, o, h, lo, c, float(row["volume"]))])


def shares(tws: FakeTws) -> float:
    held = tws.holdings.get(SYMBOL)
    return 0.0 if held is None else float(held[1])


def test_a_live_stock_session_trades_protects_and_restarts_where_it_was(
    tws: FakeTws, journal: Journal
) -> None:
    live = engine(journal, tws)
    entered = None
    for i in range(len(market())):
        drive(live, tws, i, i + 1)
        if shares(tws) > 0:
            entered = i
            break
    assert entered is not None, "the session never entered"
    assert float(live.stepper.run.book.pos_f[0, 0]) == shares(tws)
    stops = [o for o in tws.orders if o.order_type in ("STP", "STP LMT") and not o.done]
    assert len(stops) == 1
    live.shutdown("stopped")
    again = engine(journal, tws)
    assert again.run_id == live.run_id
    assert float(again.stepper.run.book.pos_f[0, 0]) == shares(tws)  # restored, stop kept
    assert len([o for o in tws.orders if o.order_type in ("STP", "STP LMT")]) == 1
    drive(again, tws, entered + 1, len(market()))
    again.shutdown()
    fills = journal.read_table("fills", run_id=again.run_id)
    assert len(fills) == len(tws.executions)
    assert float(again.stepper.run.book.pos_f[0, 0]) == pytest.approx(shares(tws))

"""`IbBroker` and the IB feeds on the real `ib_async` client against a fake TWS (IB's socket API)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from fakes.ib_tws import ACCOUNT, FakeTws
from order_support import order_manager
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.trading.broker import (
    BrokerUnavailable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OutcomeUnknown,
)
from reinforcetrade.trading.ib import IbBroker, Pacer, contract_for, symbol_of
from reinforcetrade.trading.ib_feeds import IbBarFeed, ib_history
from reinforcetrade.trading.orders import OrderManager

pytestmark = pytest.mark.network

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00Z
MIN = 60_000_000_000


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def tws(clock: FixedClock) -> Iterator[FakeTws]:
    with FakeTws(clock) as fake:
        fake.set_price("AAPL", 190.0)
        fake.set_price("EUR.USD", 1.1)
        yield fake
        assert fake.errors == []


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def broker(tws: FakeTws, sleeps: list[float], clock: FixedClock) -> Iterator[IbBroker]:
    unpaced = Pacer(1e6, 1e6)  # pacing has its own test
    with IbBroker(port=tws.port, timeout=2.0, sleep=sleeps.append, clock=clock,
                  history_pacer=unpaced) as b:  # fmt: skip
        yield b


@pytest.fixture
def manager(broker: IbBroker, tmp_path: Path) -> Iterator[OrderManager]:
    with order_manager(broker, tmp_path, "AAPL") as made:
        yield made


def market(cid: str, qty: float = 10, side: str = "buy", symbol: str = "AAPL") -> OrderRequest:
    return OrderRequest(cid, symbol, side, "market", qty)  # type: ignore[arg-type]


# -- orders ------------------------------------------------------------------------------------
def test_market_order_fills_and_is_booked_once(
    tws: FakeTws, broker: IbBroker, manager: OrderManager, clock: FixedClock
) -> None:
    request = market(manager.client_id())
    done = manager.submit(request)
    assert done.outcome == "placed"
    assert [f[2] for f in tws.received(71)] == ["17"]  # startApi with our client id
    [sent] = tws.placed(request.client_order_id)  # the client id travels as orderRef
    assert (sent.action, sent.quantity, sent.order_type, sent.contract.sec_type) == (
        "BUY", 10, "MKT", "STK",
    )  # fmt: skip
    assert (sent.contract.symbol, sent.contract.exchange, sent.contract.currency) == (
        "AAPL", "SMART", "USD",
    )  # fmt: skip
    state = broker.fetch_order("AAPL", request.client_order_id)
    assert (state.status, state.filled_quantity, state.average_price) == ("filled", 10, 190.0)
    assert state.exchange_order_id == str(sent.perm_id)
    manager.book(state)
    assert manager.sync_fills("AAPL") == 1
    assert manager.sync_fills("AAPL") == 0  # the same execution again: booked once
    [fill] = manager.journal.fills_for(request.client_order_id)
    assert (fill.qty, fill.price, fill.fee, fill.fee_currency) == (10, 190.0, 1.0, "USD")
    assert manager.positions.position("AAPL").quantity == pytest.approx(10)
    assert broker.fills("EUR/USD") == []
    tws.advance(60)
    tws.set_price("AAPL", 191.0)
    broker.create_order(market("m-2", 5, "sell"))
    later = broker.fills("AAPL", since_ns=clock.now_ns())
    assert [(f.quantity, f.price, f.side, f.client_order_id) for f in later] == [
        (5, 191.0, "sell", "m-2")
    ]


def test_limit_rests_is_listed_and_cancelled(tws: FakeTws, broker: IbBroker) -> None:
    state = broker.create_order(OrderRequest("l-1", "AAPL", "buy", "limit", 10, price=180.0))
    assert (state.status, state.filled_quantity) == ("open", 0)
    [sent] = tws.placed("l-1")
    assert (sent.order_type, sent.limit, sent.tif) == ("LMT", 180.0, "GTC")
    assert [o.client_order_id for o in broker.open_orders("AAPL")] == ["l-1"]
    assert broker.open_orders("EUR/USD") == []
    cancelled = broker.cancel_order("AAPL", "l-1")
    assert (cancelled.status, cancelled.filled_quantity) == ("cancelled", 0)
    assert broker.fetch_order("AAPL", "l-1").status == "cancelled"
    assert broker.open_orders() == []
    with pytest.raises(OrderNotFound):
        broker.fetch_order("AAPL", "no-such-order")


def test_resting_orders_fill_when_the_price_reaches_them(tws: FakeTws, broker: IbBroker) -> None:
    broker.create_order(OrderRequest("l-2", "AAPL", "buy", "limit", 10, price=185.0))
    stop = broker.create_order(OrderRequest("s-1", "AAPL", "sell", "stop", 4, stop_price=187.0))
    assert stop.status == "open"
    assert tws.placed("s-1")[0].order_type == "STP"
    assert tws.placed("s-1")[0].aux == 187.0
    stop_limit = OrderRequest("sl-1", "AAPL", "buy", "stop_limit", 3, price=196.0, stop_price=195.0)
    broker.create_order(stop_limit)
    assert tws.placed("sl-1")[0].order_type == "STP LMT"
    tws.set_price("AAPL", 188.0)  # nothing reached
    assert {o.client_order_id for o in broker.open_orders()} == {"l-2", "s-1", "sl-1"}
    tws.set_price("AAPL", 186.5)  # the stop triggers and sells at the market
    assert broker.fetch_order("AAPL", "s-1").status == "filled"
    assert broker.fetch_order("AAPL", "s-1").average_price == 186.5
    tws.set_price("AAPL", 184.0)  # the limit buy is reached
    assert broker.fetch_order("AAPL", "l-2").status == "filled"
    tws.set_price("AAPL", 197.0)  # stop_limit triggered, but above its limit: still resting
    assert broker.fetch_order("AAPL", "sl-1").status == "open"
    tws.set_price("AAPL", 195.5)
    filled = broker.fetch_order("AAPL", "sl-1")
    assert (filled.status, filled.filled_quantity, filled.average_price) == ("filled", 3, 195.5)
    cancelled = broker.cancel_order("AAPL", "sl-1")  # too late: what became of it instead
    assert cancelled.status == "filled"
    assert broker.open_orders() == []


def test_a_rejection_is_recorded_and_never_retried(
    tws: FakeTws, broker: IbBroker, manager: OrderManager
) -> None:
    tws.script_next_order("reject", "insufficient buying power")
    with pytest.raises(OrderRejected, match=r"201.*insufficient buying power"):
        broker.create_order(market("r-1"))
    tws.script_next_order("reject", "insufficient buying power")
    request = market(manager.client_id())
    done = manager.submit(request)
    assert (done.outcome, done.order.status) == ("rejected", "rejected")
    assert "insufficient buying power" in (done.reason or "")
    assert len(tws.placed(request.client_order_id)) == 1
    assert len(tws.received(3)) == 2  # one placeOrder per order, never resent
    assert manager.submit(market(manager.client_id())).outcome == "placed"


def test_ack_lost_and_connection_dropped_resolves_to_one_order(
    tws: FakeTws, broker: IbBroker, manager: OrderManager
) -> None:
    tws.script_next_order("drop")  # taken and filled at the fake, then the connection is cut
    request = market(manager.client_id())
    done = manager.submit(request)
    assert (done.outcome, done.order.status, done.order.filled_qty) == ("placed", "filled", 10)
    assert len(tws.placed(request.client_order_id)) == 1  # never sent twice
    assert len(tws.received(3)) == 1
    assert broker.connects == 2  # reconnected to find it
    assert manager.sync_fills("AAPL") == 1


def test_a_dropped_connection_after_sending_is_outcome_unknown(
    tws: FakeTws, broker: IbBroker
) -> None:
    broker.positions()  # connected
    tws.script_next_order("drop")
    with pytest.raises(OutcomeUnknown, match="connection dropped after it was sent"):
        broker.create_order(market("d-1"))
    assert broker.fetch_order("AAPL", "d-1").status == "filled"
    tws.script_next_order("silent")  # taken, never acknowledged: the wait times out
    broker.timeout = 0.3
    with pytest.raises(OutcomeUnknown, match="no answer"):
        broker.create_order(OrderRequest("d-2", "AAPL", "buy", "limit", 1, price=100.0))
    assert broker.fetch_order("AAPL", "d-2").status == "open"
    assert len(tws.received(3)) == 2


def test_an_unreachable_tws_is_unavailable_and_reads_reconnect(
    tws: FakeTws, broker: IbBroker, sleeps: list[float]
) -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()
    with IbBroker(port=closed_port, timeout=1.0, sleep=sleeps.append) as down:
        with pytest.raises(BrokerUnavailable, match="cannot connect"):
            down.create_order(market("u-1"))
        with pytest.raises(BrokerUnavailable, match="after 4 attempts"):
            down.positions()
    assert sleeps == [0.5, 1.0, 2.0]  # doubling from 0.5
    sleeps.clear()
    broker.create_order(market("u-2"))
    tws.drop_connections()  # TWS restarts: the next read reconnects
    assert broker.fetch_order("AAPL", "u-2").status == "filled"
    assert broker.connects == 2
    assert len(sleeps) <= 1  # the first read may find the dead socket, then reconnects


def test_positions_are_net_quantities_and_cash(tws: FakeTws, broker: IbBroker) -> None:
    broker.create_order(market("p-1", 10))
    broker.create_order(market("p-2", 20_000, "sell", "EUR/USD"))
    tws.set_price("ES:202612", 6000.0)
    broker.create_order(market("p-3", 2, symbol="ES/USD:202612"))
    future = tws.placed("p-3")[0].contract
    assert (future.sec_type, future.last_trade, future.exchange) == ("FUT", "202612", "CME")
    assert tws.placed("p-2")[0].contract.sec_type == "CASH"
    held = broker.positions()
    assert held["AAPL"] == 10  # keyed by the spelling the orders used
    assert held["EUR/USD"] == -20_000
    assert held["ES/USD:202612"] == 2
    assert held["EUR"] == -20_000
    # 100k - 10 x 190 - 1 + 20k x 1.1 - 100 - 2 x 6000 - 1 (fees: 0.005/unit, at least 1)
    assert held["USD"] == pytest.approx(100_000 - 1_901 + 22_000 - 100 - 12_001)
    with pytest.raises(OrderRejected, match="would not reduce"):
        broker.create_order(OrderRequest("p-4", "AAPL", "sell", "market", 11, reduce_only=True))
    reduced = broker.create_order(OrderRequest("p-5", "AAPL", "sell", "market", 4,
                                                reduce_only=True))  # fmt: skip
    assert reduced.client_order_id == "p-5"
    assert tws.placed("p-4") == []


def test_symbol_mapping() -> None:
    assert symbol_of(contract_for("AAPL")) == "AAPL/USD"
    assert contract_for("VOD/GBP@LSE").exchange == "LSE"
    assert symbol_of(contract_for("EUR/USD")) == "EUR/USD"
    assert contract_for("NQ/USD:202703").secType == "FUT"
    with pytest.raises(UserInputError, match="name its exchange"):
        contract_for("XX/USD:202612")
    with pytest.raises(UserInputError):
        contract_for("ES/USD:2026")


# -- market data -------------------------------------------------------------------------------
def test_bar_feed_hands_over_closed_bars_only(
    tws: FakeTws, broker: IbBroker, clock: FixedClock, sleeps: list[float]
) -> None:
    feed = IbBarFeed(broker, ["AAPL", "EUR/USD"], "1m", start_ns=T0, clock=clock,
                     sleep=lambda _s: None)  # fmt: skip
    tws.advance(30)
    tws.set_price("AAPL", 191.0)
    tws.set_price("EUR.USD", 1.102)
    assert feed.next_bars(timeout=0) is None  # the minute is still forming
    assert tws.received(20) == []  # and nothing was asked: no bar can have closed
    tws.advance(35)  # 00:01:05: the first minute is complete, the second is forming
    tws.set_price("AAPL", 192.0)
    bars = feed.next_bars(timeout=0)
    assert bars is not None
    assert [(b.symbol, b.ts) for b in bars] == [("AAPL", T0), ("EUR/USD", T0)]
    aapl = bars[0]
    assert (aapl.open, aapl.high, aapl.low, aapl.close, aapl.volume) == (190, 191, 190, 191, 2)
    assert bars[1].close == 1.102
    assert feed.next_bars(timeout=1.0) is None  # polled, nothing new closed
    tws.advance(60)  # 00:02:05: EUR/USD was quiet in minute 1; AAPL's bar waits one more bar
    assert feed.next_bars(timeout=0) is None
    tws.advance(60)
    assert [(b.symbol, b.ts, b.close) for b in feed.next_bars(timeout=0) or []] == [
        ("AAPL", T0 + MIN, 192.0)
    ]
    tws.set_price("EUR.USD", 1.103)  # 00:03:05
    tws.advance(60)
    tws.fail_next_history(162, "pacing violation")  # retried after a pause, then served
    assert feed.next_bars(timeout=0) is None  # AAPL quiet since 00:01: EUR/USD waits a bar
    assert sleeps == [0.5]
    tws.advance(60)
    assert [(b.symbol, b.ts, b.close) for b in feed.next_bars(timeout=0) or []] == [
        ("EUR/USD", T0 + 3 * MIN, 1.103)
    ]
    feed.close()


def test_history_is_complete_bars_as_an_ohlcv_frame(tws: FakeTws, broker: IbBroker) -> None:
    for minute in range(1, 8):
        tws.advance(60)
        tws.set_price("AAPL", 190.0 + minute)
    tws.advance(10)  # 00:07:10: the 8th minute is still forming
    frame = ib_history(broker, "AAPL", "1m", T0, T0 + 60 * MIN)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert str(pd.DatetimeIndex(frame.index).tz) == "UTC"
    assert frame.attrs["symbol"] == "AAPL"
    assert len(frame) == 7
    assert frame.index[0] == pd.Timestamp(T0, unit="ns", tz="UTC")
    assert list(frame["close"]) == [190.0 + m for m in range(7)]
    windowed = ib_history(broker, "AAPL", "1m", T0 + 2 * MIN, T0 + 4 * MIN)
    assert list(windowed["open"]) == [192.0, 193.0]
    [request] = tws.received(20)[-1:]
    assert (request[15], request[16], request[17], request[19]) == (
        "20260101-00:04:00", "1 min", "120 S", "TRADES",
    )  # fmt: skip


def test_requests_are_paced(tws: FakeTws, clock: FixedClock) -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(0.5, 2, clock=lambda: now[0], sleep=sleep)
    with IbBroker(port=tws.port, history_pacer=pacer, clock=clock) as broker:
        tws.advance(120)
        for _ in range(4):
            broker.history("AAPL", "1 min", end_ns=None, duration="120 S")
        assert slept == [2.0, 2.0]  # two at once, then one every 2 s
        assert len(tws.received(20)) == 4
        tws.fail_next_history(162, "pacing violation")
        retried = IbBroker(port=tws.port, clock=clock, sleep=slept.append)
        with retried:
            assert retried.history("AAPL", "1 min", end_ns=None, duration="120 S")
        assert slept[-1] == 0.5  # the violation was retried after a pause
    assert ACCOUNT in {f[3] for f in tws.received(6)}  # account updates asked for our account


def test_a_history_request_that_times_out_is_retried_not_empty(
    tws: FakeTws, clock: FixedClock, sleeps: list[float]
) -> None:
    tws.advance(30)
    tws.set_price("AAPL", 191.0)
    tws.advance(40)
    with IbBroker(port=tws.port, timeout=0.3, sleep=sleeps.append, clock=clock) as broker:
        feed = IbBarFeed(broker, ["AAPL"], "1m", start_ns=T0, clock=clock, sleep=lambda _s: None)
        tws.stall_next_history()  # no answer: a timeout, never "no bars" (which would skip one)
        bars = feed.next_bars(timeout=0)
    assert [(b.ts, b.open, b.close) for b in bars or []] == [(T0, 190.0, 191.0)]
    assert sleeps == [0.5]
    assert len(tws.received(20)) == 2

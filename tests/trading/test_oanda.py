"""`OandaBroker` and the OANDA feeds on the real httpx client against a fake v20 venue."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from pydantic import SecretStr

from fakes import ServerError, Stall
from fakes.oanda import (
    ACCOUNT_ID,
    AcceptThenStall,
    DropBefore,
    EchoAuth,
    FakeOanda,
    RateLimited,
    Reject,
    Unavailable,
)
from order_support import order_manager
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.trading.broker import (
    BrokerError,
    BrokerUnavailable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
)
from reinforcetrade.trading.oanda import OandaBroker
from reinforcetrade.trading.oanda_feeds import OandaCandleFeed, OandaStreamFeed, oanda_history
from reinforcetrade.trading.orders import OrderManager

pytestmark = pytest.mark.network

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00Z
MIN = 60_000_000_000
TOKEN = "canary-7d1f0b9e3a5c4e2f8a6b0c1d2e3f4a5b-x9"  # noqa: S105 (a planted canary)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def venue(clock: FixedClock) -> Iterator[FakeOanda]:
    with FakeOanda(clock, commission="0.0001", heartbeat_seconds=0.05) as fake:
        fake.set_price("EUR/USD", "1.10000")
        fake.set_price("USD/JPY", "155.000")
        yield fake
        assert fake.errors == []


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def broker(venue: FakeOanda, sleeps: list[float]) -> Iterator[OandaBroker]:
    with OandaBroker(
        ACCOUNT_ID, SecretStr(TOKEN), base_url=venue.url, stream_url=venue.url, timeout=1.0,
        sleep=sleeps.append,
    ) as b:  # fmt: skip
        yield b


@pytest.fixture
def manager(broker: OandaBroker, tmp_path: Path) -> Iterator[OrderManager]:
    with order_manager(broker, tmp_path, "EUR/USD") as made:
        yield made


def market(cid: str, qty: float = 1000, side: str = "buy", symbol: str = "EUR/USD") -> OrderRequest:
    return OrderRequest(cid, symbol, side, "market", qty)  # type: ignore[arg-type]


# -- orders ------------------------------------------------------------------------------------
def test_market_order_fills_in_the_create_answer(venue: FakeOanda, broker: OandaBroker) -> None:
    state = broker.create_order(market("m-1"))
    assert (state.status, state.filled_quantity, state.average_price) == ("filled", 1000, 1.1)
    assert state.exchange_order_id == venue.order("m-1").id  # type: ignore[union-attr]
    sent = venue.orders_sent("m-1")[0]
    assert sent == {
        "instrument": "EUR_USD", "units": "1000", "positionFill": "DEFAULT",
        "clientExtensions": {"id": "m-1"}, "type": "MARKET", "timeInForce": "FOK",
    }  # fmt: skip
    fetched = broker.fetch_order("EUR/USD", "m-1")
    assert (fetched.status, fetched.filled_quantity, fetched.average_price) == ("filled", 1000, 1.1)
    assert venue.requests[-2].path == f"{venue.orders_path}/@m-1"  # found by client id
    sold = broker.create_order(market("m-2", 400, "sell"))
    assert venue.orders_sent("m-2")[0]["units"] == "-400"
    assert sold.status == "filled"


def test_limit_rests_is_listed_and_cancelled(venue: FakeOanda, broker: OandaBroker) -> None:
    request = OrderRequest("l-1", "EUR/USD", "buy", "limit", 1000, price=1.09)
    state = broker.create_order(request)
    assert (state.status, state.filled_quantity) == ("open", 0)
    assert venue.orders_sent("l-1")[0] == {
        "instrument": "EUR_USD", "units": "1000", "positionFill": "DEFAULT",
        "clientExtensions": {"id": "l-1"}, "type": "LIMIT", "price": "1.09000", "timeInForce": "GTC",
    }  # fmt: skip
    assert [o.client_order_id for o in broker.open_orders("EUR/USD")] == ["l-1"]
    assert broker.open_orders("USD/JPY") == []
    cancelled = broker.cancel_order("EUR/USD", "l-1")
    assert cancelled.status == "cancelled"
    assert broker.fetch_order("EUR/USD", "l-1").status == "cancelled"
    assert broker.open_orders() == []


def test_resting_orders_fill_when_the_price_reaches_them(
    venue: FakeOanda, broker: OandaBroker
) -> None:
    broker.create_order(OrderRequest("l-2", "EUR/USD", "buy", "limit", 1000, price=1.095))
    broker.create_order(OrderRequest("s-1", "EUR/USD", "sell", "stop", 500, stop_price=1.092))
    stop_limit = OrderRequest("sl-1", "EUR/USD", "buy", "stop_limit", 200, price=1.1060,
                              stop_price=1.1050)  # fmt: skip
    assert broker.create_order(stop_limit).status == "open"
    assert venue.orders_sent("sl-1")[0]["price"] == "1.10500"
    assert venue.orders_sent("sl-1")[0]["priceBound"] == "1.10600"
    venue.set_price("EUR/USD", "1.09400")
    limit = broker.fetch_order("EUR/USD", "l-2")
    assert (limit.status, limit.filled_quantity, limit.average_price) == ("filled", 1000, 1.094)
    assert broker.fetch_order("EUR/USD", "s-1").status == "open"
    venue.set_price("EUR/USD", "1.09150")
    assert broker.fetch_order("EUR/USD", "s-1").average_price == 1.0915
    venue.set_price("EUR/USD", "1.10800")  # triggered, but beyond the bound: waits
    assert broker.fetch_order("EUR/USD", "sl-1").status == "open"
    venue.set_price("EUR/USD", "1.10550")
    assert broker.fetch_order("EUR/USD", "sl-1").status == "filled"
    # a cancel that comes after the fill reports the fill
    late = broker.cancel_order("EUR/USD", "l-2")
    assert (late.status, late.filled_quantity) == ("filled", 1000)
    with pytest.raises(OrderNotFound):
        broker.cancel_order("EUR/USD", "never-sent")


def test_units_and_prices_are_rounded_and_minimums_refused(
    venue: FakeOanda, broker: OandaBroker
) -> None:
    broker.create_order(OrderRequest("r-1", "EUR/USD", "buy", "limit", 1000.7, price=1.0123456789))
    assert venue.orders_sent("r-1")[0]["units"] == "1000"  # rounded down, never up
    assert venue.orders_sent("r-1")[0]["price"] == "1.01235"
    broker.create_order(OrderRequest("r-2", "USD/JPY", "sell", "limit", 5, price=160.12345))
    assert venue.orders_sent("r-2")[0]["price"] == "160.123"
    with pytest.raises(OrderRejected, match="below OANDA's minimum trade size 1"):
        broker.create_order(market("r-3", 0.6))
    with pytest.raises(OrderRejected, match="cannot trade 'BTC/USD'"):
        broker.create_order(market("r-4", symbol="BTC/USD"))
    assert venue.orders_sent("r-3") == venue.orders_sent("r-4") == []  # refused before sending
    assert len(venue.requests_to(f"{venue.account_path}/instruments")) == 1  # loaded once


def test_the_venue_itself_refuses_unrounded_orders_and_reused_ids(
    venue: FakeOanda, broker: OandaBroker
) -> None:
    raw = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "10.5"}}
    answer = httpx.post(f"{venue.url}{venue.orders_path}", json=raw,
                        headers={"Authorization": "Bearer x"})  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["orderRejectTransaction"]["rejectReason"] == "UNITS_PRECISION_EXCEEDED"
    broker.create_order(market("dup-1"))
    with pytest.raises(OrderRejected, match="CLIENT_ORDER_ID_ALREADY_EXISTS"):
        broker.create_order(market("dup-1"))


def test_reduce_only_is_sent_and_refused_with_nothing_to_reduce(
    venue: FakeOanda, broker: OandaBroker
) -> None:
    request = OrderRequest("ro-1", "EUR/USD", "sell", "market", 1000, reduce_only=True)
    with pytest.raises(OrderRejected, match="REDUCE_ONLY"):
        broker.create_order(request)
    assert venue.orders_sent("ro-1")[0]["positionFill"] == "REDUCE_ONLY"
    broker.create_order(market("ro-2", 300))
    state = broker.create_order(OrderRequest("ro-3", "EUR/USD", "sell", "market", 1000,
                                             reduce_only=True))  # fmt: skip
    assert (state.status, state.filled_quantity) == ("filled", 300)  # capped at the position
    assert "EUR/USD" not in broker.positions()


# -- the order faults, through the order manager and a real journal -------------------------------
def test_rejections_are_recorded_and_never_retried(venue: FakeOanda, manager: OrderManager) -> None:
    too_big = market(manager.client_id(), 10_000_000)  # margin 366k USD > 100k balance
    done = manager.submit(too_big)
    assert (done.outcome, done.order.status) == ("rejected", "rejected")
    assert "INSUFFICIENT_MARGIN" in (done.order.reason or "")
    venue.script(f"POST {venue.orders_path}", Reject("PENDING_ORDERS_ALLOWED_EXCEEDED"))
    done = manager.submit(market(manager.client_id()))
    assert "PENDING_ORDERS_ALLOWED_EXCEEDED" in (done.order.reason or "")
    assert len(venue.orders_sent()) == 2  # each sent once


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [(RateLimited(2.0), 2.0), (Unavailable(5.0), 5.0), (ServerError(503), None)],
)
def test_rate_limits_and_outages_are_unavailable(
    venue: FakeOanda, broker: OandaBroker, manager: OrderManager, fault: object,
    retry_after: float | None,
) -> None:  # fmt: skip
    venue.script(f"POST {venue.orders_path}", fault, fault)  # type: ignore[arg-type]
    with pytest.raises(BrokerUnavailable) as caught:
        broker.create_order(market("u-1"))
    assert caught.value.retry_after == retry_after
    done = manager.submit(market(manager.client_id()))
    assert (done.outcome, done.order.status) == ("unavailable", "rejected")
    assert manager.degraded is not None
    assert venue.orders == []
    assert manager.submit(market(manager.client_id())).outcome == "placed"
    assert manager.degraded is None


def test_reads_are_retried_with_backoff_then_give_up(
    venue: FakeOanda, broker: OandaBroker, sleeps: list[float]
) -> None:
    broker.create_order(market("rd-1"))
    path = f"{venue.orders_path}/@rd-1"
    venue.script(path, RateLimited(0.25), ServerError(502), Stall(2.0))
    assert broker.fetch_order("EUR/USD", "rd-1").status == "filled"
    assert sleeps == [0.25, 1.0, 2.0]  # Retry-After, then doubling from 0.5
    sleeps.clear()
    venue.script(path, *[ServerError(503)] * 4)
    with pytest.raises(BrokerUnavailable, match="after 4 attempts"):
        broker.fetch_order("EUR/USD", "rd-1")
    assert sleeps == [0.5, 1.0, 2.0]
    with pytest.raises(OrderNotFound):
        broker.fetch_order("EUR/USD", "no-such-order")


def test_accepted_but_the_answer_timed_out_resolves_to_one_order(
    venue: FakeOanda, manager: OrderManager
) -> None:
    venue.script(f"POST {venue.orders_path}", AcceptThenStall(2.0))
    request = market(manager.client_id())
    done = manager.submit(request)
    assert (done.outcome, done.order.status, done.order.filled_qty) == ("placed", "filled", 1000)
    assert len(venue.orders_sent(request.client_order_id)) == 1  # never sent twice
    assert len(venue.orders) == 1


def test_dropped_before_the_venue_saw_it_is_absent(venue: FakeOanda, manager: OrderManager) -> None:
    venue.script(f"POST {venue.orders_path}", DropBefore())
    first = manager.submit(market(manager.client_id()))
    assert (first.outcome, first.order.status) == ("absent", "rejected")
    again = manager.submit(market(manager.client_id()))
    assert again.outcome == "placed"
    assert len(venue.orders) == 1


def test_fills_are_booked_once(
    venue: FakeOanda, broker: OandaBroker, manager: OrderManager, clock: FixedClock
) -> None:
    buy = market(manager.client_id(), 1000)
    manager.submit(buy)
    manager.submit(market(manager.client_id(), 400, "sell"))
    manager.submit(market(manager.client_id(), 10, symbol="USD/JPY"))
    assert manager.sync_fills("EUR/USD") == 2
    assert manager.sync_fills("EUR/USD") == 0  # the same transactions again: booked once
    [fill] = manager.journal.fills_for(buy.client_order_id)
    assert (fill.qty, fill.price, fill.fee, fill.fee_currency) == (1000, 1.1, 0.11, "USD")
    assert manager.positions.position("EUR/USD").quantity == pytest.approx(600)
    venue.advance(60)
    venue.set_price("EUR/USD", "1.10100")
    manager.submit(market(manager.client_id(), 5))
    later = broker.fills("EUR/USD", since_ns=clock.now_ns())
    assert [(f.quantity, f.price, f.side) for f in later] == [(5, 1.101, "buy")]


def test_positions_are_net_units_and_the_balance(venue: FakeOanda, broker: OandaBroker) -> None:
    broker.create_order(market("p-1", 1000))
    broker.create_order(market("p-2", 2000, "sell", "USD/JPY"))
    held = broker.positions()
    assert held["EUR/USD"] == 1000.0
    assert held["USD/JPY"] == -2000.0
    assert held["USD"] == pytest.approx(100_000 - 0.11 - 0.2)  # commissions paid


# -- market data -----------------------------------------------------------------------------------
def test_candle_feed_hands_over_complete_candles_all_symbols_together(
    venue: FakeOanda, broker: OandaBroker, clock: FixedClock
) -> None:
    feed = OandaCandleFeed(broker, ["EUR/USD", "USD/JPY"], "1m", start_ns=T0, clock=clock,
                           sleep=lambda _s: None)  # fmt: skip
    venue.advance(30)
    venue.set_price("EUR/USD", "1.10200")
    venue.set_price("USD/JPY", "154.500")
    assert feed.next_bars(timeout=0) is None  # the minute is still forming
    venue.advance(35)  # 00:01:05: the first minute is complete, the second is forming
    venue.set_price("EUR/USD", "1.10300")
    bars = feed.next_bars(timeout=0)
    assert bars is not None
    assert [(b.symbol, b.ts) for b in bars] == [("EUR/USD", T0), ("USD/JPY", T0)]
    eur = bars[0]
    assert (eur.open, eur.high, eur.low, eur.close, eur.volume) == (1.1, 1.102, 1.1, 1.102, 2)
    assert feed.next_bars(timeout=1.0) is None  # polled, nothing new (sleep is instant)
    # USD/JPY is quiet in the second minute: EUR/USD's bar waits until USD/JPY reports past it
    venue.advance(60)
    assert feed.next_bars(timeout=0) is None
    venue.set_price("USD/JPY", "154.700")
    venue.set_price("EUR/USD", "1.10400")
    venue.advance(60)
    assert [(b.symbol, b.ts) for b in feed.next_bars(timeout=0) or []] == [("EUR/USD", T0 + MIN)]
    assert [b.symbol for b in feed.next_bars(timeout=0) or []] == ["EUR/USD", "USD/JPY"]
    venue.script("/v3/instruments/EUR_USD/candles", *[ServerError(503)] * 4)
    assert feed.next_bars(timeout=0) is None  # an outage is no crash: the engine sees stale data
    with pytest.raises(UserInputError, match="no candles for timeframe '2h'"):
        OandaCandleFeed(broker, ["EUR/USD"], "2h")
    feed.close()


def test_history_is_complete_candles_as_an_ohlcv_frame(
    venue: FakeOanda, broker: OandaBroker
) -> None:
    for minute in range(7):
        venue.set_price("EUR/USD", f"{1.1 + minute / 1000:.5f}")
        venue.advance(60)
    venue.set_price("EUR/USD", "1.20000")  # the 8th minute is still forming
    frame = oanda_history(broker, "EUR/USD", "1m", T0, T0 + 60 * MIN, page=3)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert str(pd.DatetimeIndex(frame.index).tz) == "UTC"
    assert frame.attrs["symbol"] == "EUR/USD"
    assert len(frame) == 7
    assert frame.index[0] == pd.Timestamp(T0, unit="ns", tz="UTC")
    assert frame["close"].iloc[-1] == pytest.approx(1.106)
    assert len(venue.requests_to("/v3/instruments/EUR_USD/candles")) == 3  # pages of 3
    windowed = oanda_history(broker, "EUR/USD", "1m", T0 + 2 * MIN, T0 + 4 * MIN)
    assert list(windowed["open"]) == pytest.approx([1.102, 1.103])


def test_stream_feed_builds_bars_and_survives_a_dropped_stream(
    venue: FakeOanda, broker: OandaBroker, clock: FixedClock
) -> None:
    venue.advance(30)  # mid-minute: the feed starts with the next bar
    feed = OandaStreamFeed(broker, ["EUR/USD", "USD/JPY"], "1m", clock=clock, backoff=0.05)
    try:
        assert venue.wait_streams(1)
        venue.set_price("EUR/USD", "1.20000")  # in the bar under way: never emitted
        venue.advance(30)
        for price in ("1.10100", "1.10300"):
            venue.set_price("EUR/USD", price)
        venue.set_price("USD/JPY", "155.100")
        venue.advance(10)
        venue.set_price("EUR/USD", "1.10000")
        venue.drop_streams()
        assert venue.wait_streams(2)
        venue.set_price("EUR/USD", "1.09900")  # after the reconnect (its snapshot came first)
        assert feed.next_bars(timeout=0.2) is None  # nothing has closed yet
        venue.advance(50)  # 00:02:00: the next heartbeat closes the 00:01 bars
        bars = feed.next_bars(timeout=5)
        assert bars is not None
        eur, jpy = bars
        assert (eur.symbol, eur.ts) == ("EUR/USD", T0 + MIN)
        assert (eur.open, eur.high, eur.low, eur.close) == (1.101, 1.103, 1.099, 1.099)
        assert eur.volume == 5  # 4 prices and the reconnect's snapshot
        assert (jpy.symbol, jpy.ts, jpy.open, jpy.close) == ("USD/JPY", T0 + MIN, 155.1, 155.1)
        assert feed.reconnects >= 1
    finally:
        feed.close()
    assert not feed._thread.is_alive()


# -- configuration and secrets -------------------------------------------------------------------
def test_the_token_never_appears_in_errors_or_logs(
    venue: FakeOanda, broker: OandaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    venue.script(f"POST {venue.orders_path}", EchoAuth())
    with pytest.raises(OrderRejected) as rejected:
        broker.create_order(market("t-1"))
    seen.append(str(rejected.value))
    assert "***" in seen[-1]  # the echoed header, masked
    venue.script(f"{venue.account_path}/summary", EchoAuth())
    with pytest.raises(BrokerError) as refused:
        broker.positions()
    seen.append(str(refused.value))
    venue.script(f"{venue.orders_path}/@t-2", *[ServerError(503)] * 4)
    with pytest.raises(BrokerUnavailable) as down:
        broker.fetch_order("EUR/USD", "t-2")
    seen.append(str(down.value))
    assert venue.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    for text in [*seen, caplog.text, repr(broker.__dict__)]:
        assert TOKEN not in text


def test_a_refused_token_says_what_to_check(clock: FixedClock) -> None:
    with FakeOanda(clock, token="the-right-one") as venue:  # noqa: S106
        with OandaBroker(ACCOUNT_ID, TOKEN, base_url=venue.url, sleep=lambda _s: None) as broker:
            with pytest.raises(BrokerError, match="check the token and environment") as caught:
                broker.positions()
            assert TOKEN not in str(caught.value)
        assert httpx.get(f"{venue.url}{venue.account_path}/summary").status_code == 401


def test_environments_and_bad_settings() -> None:
    with (
        OandaBroker("101-1", "t") as practice,
        OandaBroker("001-1", "t", environment="live") as live,
    ):
        assert practice.base_url == "https://api-fxpractice.oanda.com"
        assert practice.stream_url == "https://stream-fxpractice.oanda.com"
        assert live.base_url == "https://api-fxtrade.oanda.com"
        assert live.stream_url == "https://stream-fxtrade.oanda.com"
        assert practice.name == "oanda"
    with pytest.raises(UserInputError, match="'practice' or 'live'"):
        OandaBroker("101-1", "t", environment="demo")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="API token"):
        OandaBroker("101-1", SecretStr(" "))

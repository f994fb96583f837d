"""`CcxtBroker` against a fake Binance that the real ccxt client talks to: every fault sorted."""

from __future__ import annotations

from collections.abc import Iterator

import ccxt
import pytest

from fakes.binance import AcceptThenStall, DropBefore, Maintenance, RateLimited, Reject
from fakes.binance_trading import FakeBinanceExchange, FillDuringCancel, PartialFill
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.trading.broker import (
    BrokerError,
    BrokerUnavailable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OutcomeUnknown,
)
from reinforcetrade.trading.ccxt_broker import CcxtBroker

pytestmark = pytest.mark.network

KEY, SECRET = "canary-key-5b1e", "canary-secret-9c2d"


@pytest.fixture
def venue() -> Iterator[FakeBinanceExchange]:
    with FakeBinanceExchange(FixedClock(1_767_225_600_000_000_000)) as fake:
        fake.set_price("BTC/USDT", 50_000)
        yield fake


@pytest.fixture
def waits() -> list[float]:
    """The backoff waits the broker asked for (it sleeps through this list)."""
    return []


@pytest.fixture
def broker(venue: FakeBinanceExchange, waits: list[float]) -> CcxtBroker:
    exchange = ccxt.binance(venue.ccxt_config(apiKey=KEY, secret=SECRET, timeout=800))
    return CcxtBroker(exchange, sleep=waits.append, read_attempts=3)


def buy(cid: str, qty: float = 0.01) -> OrderRequest:
    return OrderRequest(cid, "BTC/USDT", "buy", "market", qty)


def test_orders_by_client_id(venue: FakeBinanceExchange, broker: CcxtBroker) -> None:
    done = broker.create_order(buy("rt-a1"))
    assert (done.status, done.filled_quantity, done.average_price) == ("filled", 0.01, 50_000.0)
    assert broker.fetch_order("BTC/USDT", "rt-a1") == done
    stop = broker.create_order(
        OrderRequest("rt-a2", "BTC/USDT", "sell", "stop", 0.009, stop_price=48_000.123)
    )
    assert stop.status == "open"
    sent = venue.orders_sent("rt-a2")[0]
    assert sent["type"] == "STOP_LOSS_LIMIT"
    assert float(sent["stopPrice"]) == 48_000.12  # rounded to the tick size
    assert float(sent["price"]) < 48_000.12  # a stop-limit through the trigger
    assert [o.client_order_id for o in broker.open_orders("BTC/USDT")] == ["rt-a2"]
    cancelled = broker.cancel_order("BTC/USDT", "rt-a2")
    assert (cancelled.client_order_id, cancelled.status) == ("rt-a2", "cancelled")
    fills = broker.fills("BTC/USDT")
    assert [(f.exchange_order_id, f.quantity, f.price) for f in fills] == [
        (done.exchange_order_id, 0.01, 50_000.0)
    ]
    assert broker.positions()["BTC"] == pytest.approx(0.00999)


def test_a_timed_out_create_is_found_by_its_client_id(
    venue: FakeBinanceExchange, broker: CcxtBroker
) -> None:
    venue.script("POST /api/v3/order", AcceptThenStall(2.0))
    with pytest.raises(OutcomeUnknown, match="RequestTimeout"):
        broker.create_order(buy("rt-b1"))
    assert broker.fetch_order("BTC/USDT", "rt-b1").status == "filled"
    assert len(venue.orders_sent("rt-b1")) == 1  # never resent
    venue.script("POST /api/v3/order", DropBefore())
    with pytest.raises(OutcomeUnknown):
        broker.create_order(buy("rt-b2"))
    with pytest.raises(OrderNotFound):
        broker.fetch_order("BTC/USDT", "rt-b2")  # it never reached the venue


def test_rejections_are_final_and_local_minimums_apply(
    venue: FakeBinanceExchange, broker: CcxtBroker
) -> None:
    with pytest.raises(OrderRejected, match="InsufficientFunds"):
        broker.create_order(buy("rt-c1", qty=5.0))
    venue.script("POST /api/v3/order", Reject(-1013, "Filter failure: PRICE_FILTER"))
    with pytest.raises(OrderRejected, match="Filter failure"):
        broker.create_order(buy("rt-c2"))
    before = len(venue.orders_sent())
    with pytest.raises(OrderRejected, match="minimum"):
        broker.create_order(buy("rt-c3", qty=0.0000001))
    with pytest.raises(OrderRejected, match="notional"):
        broker.create_order(buy("rt-c4", qty=0.00001))  # 0.5 USDT, under the minimum notional
    assert len(venue.orders_sent()) == before  # checked here, never sent


def test_rate_limits_and_maintenance(
    venue: FakeBinanceExchange, broker: CcxtBroker, waits: list[float]
) -> None:
    venue.script("POST /api/v3/order", RateLimited(retry_after=3))
    with pytest.raises(BrokerUnavailable) as caught:
        broker.create_order(buy("rt-d1"))
    assert caught.value.retry_after == 3.0  # the Retry-After header
    with pytest.raises(OrderNotFound):
        broker.fetch_order("BTC/USDT", "rt-d1")  # a 429 took nothing
    broker.create_order(buy("rt-d2"))
    venue.script("GET /api/v3/order", Maintenance(), RateLimited(retry_after=1))
    assert broker.fetch_order("BTC/USDT", "rt-d2").status == "filled"  # reads retried
    assert len(waits) == 2
    venue.script("GET /api/v3/openOrders", Maintenance(), Maintenance(), Maintenance())
    with pytest.raises(BrokerUnavailable, match="after 3 attempts"):
        broker.open_orders("BTC/USDT")


def test_a_late_cancel_reports_the_fill(venue: FakeBinanceExchange, broker: CcxtBroker) -> None:
    broker.create_order(OrderRequest("rt-e1", "BTC/USDT", "buy", "limit", 0.01, price=49_000))
    venue.script("DELETE /api/v3/order", FillDuringCancel())
    state = broker.cancel_order("BTC/USDT", "rt-e1")
    assert (state.status, state.filled_quantity) == ("filled", 0.01)  # never assumed cancelled
    broker.create_order(OrderRequest("rt-e2", "BTC/USDT", "buy", "limit", 0.01, price=49_000))
    venue.script("DELETE /api/v3/order", FillDuringCancel(stall=2.0))
    with pytest.raises(OutcomeUnknown):
        broker.cancel_order("BTC/USDT", "rt-e2")
    assert broker.fetch_order("BTC/USDT", "rt-e2").status == "filled"


def test_partial_fill_then_the_rest_expires(venue: FakeBinanceExchange, broker: CcxtBroker) -> None:
    venue.script("POST /api/v3/order", PartialFill(0.4))
    state = broker.create_order(buy("rt-f1"))
    assert state.filled_quantity == pytest.approx(0.004)
    assert state.status == "expired"  # a market order's unfilled rest expires


def test_errors_never_show_the_keys(venue: FakeBinanceExchange, broker: CcxtBroker) -> None:
    texts: list[str] = []
    for fault in (Reject(-2015, f"Invalid API-key {KEY}"), RateLimited(), DropBefore()):
        venue.script("POST /api/v3/order", fault)
        with pytest.raises(BrokerError) as caught:
            broker.create_order(buy(f"rt-g{len(texts)}"))
        texts.append(str(caught.value))
    assert all(KEY not in t and SECRET not in t for t in texts)
    assert any("***" in t for t in texts)

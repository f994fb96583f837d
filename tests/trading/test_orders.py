"""`OrderManager` on the real ccxt client, a fake Binance and a real journal: the order faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ccxt
import pytest

from fakes.binance import AcceptThenStall, DropBefore, Maintenance, Reject
from fakes.binance_trading import FakeBinanceExchange, FillDuringCancel, PartialFill
from order_support import order_manager
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.trading.broker import OrderRequest
from reinforcetrade.trading.ccxt_broker import CcxtBroker
from reinforcetrade.trading.orders import OrderManager

pytestmark = pytest.mark.network


@pytest.fixture
def venue() -> Iterator[FakeBinanceExchange]:
    with FakeBinanceExchange(FixedClock(1_767_225_600_000_000_000)) as fake:
        fake.set_price("BTC/USDT", 50_000)
        yield fake


@pytest.fixture
def manager(venue: FakeBinanceExchange, tmp_path: Path) -> Iterator[OrderManager]:
    keys = {"apiKey": "k-test", "secret": "s-test"}  # the fake venue accepts any
    exchange = ccxt.binance(venue.ccxt_config(**keys, timeout=800))
    broker = CcxtBroker(exchange, sleep=lambda _s: None)
    with order_manager(broker, tmp_path, "BTC/USDT", kind="paper") as made:
        yield made


def buy(manager: OrderManager, qty: float = 0.01) -> OrderRequest:
    return OrderRequest(manager.client_id(), "BTC/USDT", "buy", "market", qty)


def statuses(manager: OrderManager, cid: str) -> list[str]:
    return [e.to_status for e in manager.journal.order_events(cid)]


def test_written_before_sent_and_booked_after(manager: OrderManager) -> None:
    request = buy(manager)
    assert request.client_order_id == f"rt{manager.run_id}-0001"
    done = manager.submit(request, decision=7)
    assert done.outcome == "placed"
    assert (done.order.status, done.order.filled_qty, done.order.decision_number) == (
        "filled", 0.01, 7,
    )  # fmt: skip
    assert statuses(manager, request.client_order_id) == ["pending", "filled"]
    assert manager.sync_fills("BTC/USDT") == 1
    assert manager.sync_fills("BTC/USDT") == 0  # the same trades again: booked once
    fills = manager.journal.fills_for(request.client_order_id)
    assert [(f.qty, f.price) for f in fills] == [(0.01, 50_000.0)]
    position = manager.positions.position("BTC/USDT")
    assert position.quantity == pytest.approx(0.01)


def test_1_accepted_but_the_answer_timed_out(
    venue: FakeBinanceExchange, manager: OrderManager
) -> None:
    venue.script("POST /api/v3/order", AcceptThenStall(2.0))
    request = buy(manager)
    done = manager.submit(request)
    assert (done.outcome, done.order.status) == ("placed", "filled")
    assert len(venue.orders_sent(request.client_order_id)) == 1  # one order at the exchange
    assert len(venue.orders()) == 1


def test_2_dropped_before_the_exchange_saw_it(
    venue: FakeBinanceExchange, manager: OrderManager
) -> None:
    venue.script("POST /api/v3/order", DropBefore())
    first = manager.submit(buy(manager))
    assert (first.outcome, first.order.status) == ("absent", "rejected")
    assert "never reached the venue" in (first.order.reason or "")
    again = manager.submit(buy(manager))  # the strategy still wants it: a new id
    assert again.outcome == "placed"
    assert again.order.client_order_id != first.order.client_order_id
    assert len(venue.orders()) == 1


def test_3_rejections_are_final_with_their_reason(
    venue: FakeBinanceExchange, manager: OrderManager
) -> None:
    done = manager.submit(buy(manager, qty=5.0))
    assert (done.outcome, done.order.status) == ("rejected", "rejected")
    assert "insufficient balance" in (done.order.reason or "")
    venue.script("POST /api/v3/order", Reject(-1013, "Filter failure: LOT_SIZE"))
    done = manager.submit(buy(manager))
    assert "LOT_SIZE" in (done.order.reason or "")
    assert len(venue.orders_sent()) == 2  # each sent once, never retried


def test_4_maintenance_places_nothing_and_says_so(
    venue: FakeBinanceExchange, manager: OrderManager
) -> None:
    venue.script("POST /api/v3/order", Maintenance())
    done = manager.submit(buy(manager))
    assert (done.outcome, done.order.status) == ("unavailable", "rejected")
    assert manager.degraded is not None
    assert venue.orders() == []
    assert manager.submit(buy(manager)).outcome == "placed"
    assert manager.degraded is None


def test_5_a_cancel_that_loses_the_race_books_the_fill(
    venue: FakeBinanceExchange, manager: OrderManager
) -> None:
    request = OrderRequest(manager.client_id(), "BTC/USDT", "buy", "limit", 0.01, price=49_000)
    assert manager.submit(request).order.status == "submitted"
    venue.script("DELETE /api/v3/order", FillDuringCancel(stall=2.0))
    row = manager.cancel("BTC/USDT", request.client_order_id)
    assert (row.status, row.filled_qty) == ("filled", 0.01)
    assert "cancelled" not in statuses(manager, request.client_order_id)


def test_7_partial_fill_then_the_rest_expires(
    venue: FakeBinanceExchange, manager: OrderManager
) -> None:
    venue.script("POST /api/v3/order", PartialFill(0.5))
    request = buy(manager)
    done = manager.submit(request)
    assert done.order.filled_qty == pytest.approx(0.005)
    assert done.order.status == "expired"
    manager.sync_fills("BTC/USDT")
    assert manager.positions.position("BTC/USDT").quantity == pytest.approx(0.005)


def test_pending_orders_are_resolved_after_a_crash(
    venue: FakeBinanceExchange, manager: OrderManager
) -> None:
    # a crash between the journal write and the send: the order is pending, the venue never saw it
    lost = buy(manager)
    manager.journal.record_order(
        {"client_order_id": lost.client_order_id, "run_id": manager.run_id,
         "symbol": "BTC/USDT", "side": "buy", "type": "market", "qty": 0.01}
    )  # fmt: skip
    # a crash between the venue's ack and the journal write: pending here, filled there
    acked = buy(manager)
    manager.journal.record_order(
        {"client_order_id": acked.client_order_id, "run_id": manager.run_id,
         "symbol": "BTC/USDT", "side": "buy", "type": "market", "qty": 0.01}
    )  # fmt: skip
    manager.broker.create_order(acked)
    found = {r.order.client_order_id: r.outcome for r in manager.resolve_pending()}
    assert found == {lost.client_order_id: "absent", acked.client_order_id: "placed"}
    rows = manager.journal.orders_by_client_id([lost.client_order_id, acked.client_order_id])
    assert rows[acked.client_order_id].status == "filled"
    assert rows[lost.client_order_id].status == "rejected"
    assert len(venue.orders()) == 1

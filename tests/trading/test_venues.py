"""`RoutedBroker`'s rules on in-memory venues: stale or failing quotes, parents from children."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from reinforcetrade.agents.execution import Router
from reinforcetrade.agents.routing import VenueQuote
from reinforcetrade.config.sections import RoutingConfig
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.trading.broker import (
    BrokerFill,
    BrokerUnavailable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderSide,
    OrderState,
    VenueStatus,
)
from reinforcetrade.trading.venues import RoutedBroker

NOW = 1_767_225_600 * 10**9
SYMBOL = "BTC/USDT"


@dataclass
class Venue:
    """A venue in memory: a fixed quote; market orders fill `fill_share` of what they ask."""

    name: str
    ask: float
    room: float = 10.0
    quote_age_s: float | None = None  # None: the venue does not date its book
    quote_fails: bool = False
    fill_share: float = 1.0
    orders: dict[str, OrderState] = field(default_factory=dict)

    def quote(self, symbol: str, side: OrderSide) -> VenueQuote:
        if self.quote_fails:
            raise BrokerUnavailable(f"{self.name}: 503")
        stamp = 0 if self.quote_age_s is None else NOW - int(self.quote_age_s * 1e9)
        return VenueQuote(self.name, self.ask - 1.0, self.ask, self.ask, 5.0, 0.001, self.room,
                          time_ns=stamp)  # fmt: skip

    def create_order(self, request: OrderRequest) -> OrderState:
        filled = request.quantity * self.fill_share
        status: VenueStatus = "filled" if self.fill_share == 1.0 else "cancelled"
        state = OrderState(request.client_order_id, f"x{len(self.orders)}", request.symbol,
                           status, filled, self.ask if filled else None)  # fmt: skip
        self.orders[request.client_order_id] = state
        return state

    def fetch_order(self, symbol: str, client_order_id: str) -> OrderState:
        if client_order_id not in self.orders:
            raise OrderNotFound(client_order_id)
        return self.orders[client_order_id]

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderState:
        return self.fetch_order(symbol, client_order_id)

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        return []

    def fills(self, symbol: str, since_ns: int | None = None) -> list[BrokerFill]:
        return []

    def positions(self) -> dict[str, float]:
        return {"USDT": 1_000.0}


def routed(*venues: Venue, stale_quote_s: float = 10.0) -> RoutedBroker:
    router = Router(RoutingConfig(latency_bps_per_ms=0.0, down_after_errors=2))
    return RoutedBroker(list(venues), router, clock=FixedClock(NOW), stale_quote_s=stale_quote_s)


def buy(qty: float = 1.0, cid: str = "p1") -> OrderRequest:
    return OrderRequest(cid, SYMBOL, "buy", "market", qty)


def test_a_stale_book_or_a_failing_quote_leaves_the_venue_out() -> None:
    cheap, dear = Venue("cheap", 100.0, quote_age_s=30.0), Venue("dear", 101.0)
    broker = routed(cheap, dear)
    state = broker.create_order(buy())
    assert (state.status, state.filled_quantity) == ("filled", 1.0)
    assert list(dear.orders) == ["p1.1"]  # the cheap venue's book was 30 s old
    assert cheap.orders == {}
    assert broker.router.stats("cheap").errors == 1
    cheap.quote_age_s, cheap.quote_fails = 1.0, True
    broker.create_order(buy(cid="p2"))
    assert broker.router.stats("cheap").health == "down"  # two failed calls in a row
    cheap.quote_fails = False
    broker.create_order(buy(cid="p3"))
    assert "p3.1" in dear.orders  # down: skipped until its cool-down ends


def test_no_venue_quoting_is_unavailable_and_no_room_is_a_refusal() -> None:
    failing = Venue("a", 100.0, quote_fails=True)
    with pytest.raises(BrokerUnavailable, match="no venue quotes"):
        routed(failing).create_order(buy())
    full = Venue("b", 100.0, room=0.0)
    with pytest.raises(OrderRejected, match="no venue can take"):
        routed(full).create_order(buy())


def test_the_parent_is_its_childrens_sum() -> None:
    small, big = Venue("small", 100.0, room=0.4), Venue("big", 100.5, fill_share=0.5)
    broker = routed(small, big)
    state = broker.create_order(buy(1.0))
    # small takes 0.4 and fills it; big takes 0.6 and fills half: 0.7 of 1.0, the rest cancelled
    assert state.status == "cancelled"
    assert state.filled_quantity == pytest.approx(0.7)
    assert state.average_price == pytest.approx((0.4 * 100.0 + 0.3 * 100.5) / 0.7)
    assert state.exchange_order_id == "small:x0;big:x0"
    assert broker.fetch_order(SYMBOL, "p1") == state
    with pytest.raises(OrderNotFound):
        broker.fetch_order(SYMBOL, "never-sent")
    assert math.isclose(broker.positions()["USDT"], 2_000.0)  # both venues' cash

"""The `Broker` protocol every venue adapter follows, its records, and its error taxonomy.

The order manager reasons about what an error means for money, not about exchange codes, so
adapters sort every failure into four kinds:

- `OrderRejected`: the venue refused this order for good (invalid, below the minimum,
  insufficient funds). Never retried; the reason is recorded.
- `BrokerUnavailable`: the venue did not take the request (rate limit, maintenance). Nothing
  happened; back off, and place no new entries while it lasts.
- `OutcomeUnknown`: the request may or may not have reached the venue (a timeout, a dropped
  connection after sending). An order creation is never blindly retried after this: its fate is
  found by its client order id.
- `OrderNotFound`: the venue has no order with that id (so an unknown outcome was "not placed").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from reinforcetrade.core.errors import ReinforceTradeError

OrderType = Literal["market", "limit", "stop", "stop_limit"]
OrderSide = Literal["buy", "sell"]
VenueStatus = Literal["open", "partially_filled", "filled", "cancelled", "rejected", "expired"]

#: the client order ids every adapter accepts (Binance's rule: 1-36 of these characters)
CLIENT_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,36}$")


class BrokerError(ReinforceTradeError):
    """A venue call failed; the subclass says what that means for the order."""


class OrderRejected(BrokerError):
    """The venue refused the order for good; do not retry it."""


class BrokerUnavailable(BrokerError):
    """The venue did not take the request (rate limit, maintenance); `retry_after` in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutcomeUnknown(BrokerError):
    """The request may have reached the venue; find out by client order id before acting."""


class OrderNotFound(BrokerError):
    """The venue has no such order."""


@dataclass(frozen=True)
class OrderRequest:
    """An order to place: client id, symbol, side, type, quantity, prices, reduce-only flag."""

    client_order_id: str
    symbol: str
    side: OrderSide
    type: OrderType
    quantity: float
    price: float | None = None  # limit price (limit, stop_limit)
    stop_price: float | None = None  # trigger (stop, stop_limit)
    reduce_only: bool = False

    def __post_init__(self) -> None:
        if not CLIENT_ID.fullmatch(self.client_order_id):
            raise ValueError(
                f"client order id {self.client_order_id!r} is not 1-36 of [A-Za-z0-9._:/-]"
            )
        if not self.quantity > 0:
            raise ValueError(f"order {self.client_order_id}: quantity must be positive")
        if self.type in ("limit", "stop_limit") and not (self.price or 0) > 0:
            raise ValueError(f"order {self.client_order_id}: a {self.type} order needs a price")
        if self.type in ("stop", "stop_limit") and not (self.stop_price or 0) > 0:
            raise ValueError(
                f"order {self.client_order_id}: a {self.type} order needs a stop price"
            )


@dataclass(frozen=True)
class OrderState:
    """What the venue says about an order now."""

    client_order_id: str
    exchange_order_id: str | None
    symbol: str
    status: VenueStatus
    filled_quantity: float
    average_price: float | None
    reason: str | None = None


@dataclass(frozen=True)
class BrokerFill:
    """One execution at the venue, with the venue's unique trade id."""

    trade_id: str
    client_order_id: str | None
    symbol: str
    side: OrderSide
    ts: int  # epoch ns
    quantity: float
    price: float
    fee: float
    fee_currency: str | None = None
    exchange_order_id: str | None = None  # venues that omit our client id give theirs
    reference_price: float | None = None  # the price the cost is measured from (paper, routed)
    slippage: float | None = None  # cost against it in quote currency (paper, routed)
    venue: str | None = None  # the venue that executed it, behind a router (else the broker)
    latency_ms: float | None = None  # its order's measured round trip (routed)


class Broker(Protocol):
    """A venue: paper (the shared simulator on live prices) or an exchange adapter."""

    @property
    def name(self) -> str:
        """Return the venue's name (e.g. 'paper', 'binance')."""
        ...

    def create_order(self, request: OrderRequest) -> OrderState:
        """Place an order; raises OrderRejected, BrokerUnavailable or OutcomeUnknown."""
        ...

    def fetch_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Return an order's state by client id; raises OrderNotFound if the venue has none."""
        ...

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Cancel an order; the returned state may be `filled` if it filled first."""
        ...

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        """Return the venue's open orders."""
        ...

    def fills(self, symbol: str, since_ns: int | None = None) -> list[BrokerFill]:
        """Return the venue's executions for a symbol since a time."""
        ...

    def positions(self) -> dict[str, float]:
        """Return the venue's holdings by symbol (spot: base-currency balances)."""
        ...

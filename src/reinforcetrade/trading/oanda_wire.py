"""OANDA v20 payloads parsed into our records, at the boundary: symbols, times, orders, fills.

Prices and units arrive as strings and are parsed here, once.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from reinforcetrade.trading.broker import (
    BrokerFill,
    OrderRejected,
    OrderRequest,
    OrderState,
    VenueStatus,
)

_NS = 1_000_000_000


@dataclass(frozen=True)
class Instrument:
    """What OANDA allows for one instrument: precisions and trade-size limits."""

    name: str
    display_precision: int
    units_precision: int
    minimum_units: Decimal
    maximum_units: Decimal | None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Instrument:
        """Return an instrument from a `GET /instruments` entry."""
        most = Decimal(str(raw.get("maximumOrderUnits") or "0"))
        return cls(
            name=str(raw["name"]),
            display_precision=int(raw.get("displayPrecision", 5)),
            units_precision=int(raw.get("tradeUnitsPrecision", 0)),
            minimum_units=Decimal(str(raw.get("minimumTradeSize") or "1")),
            maximum_units=most if most > 0 else None,
        )


class Candle(NamedTuple):
    """One mid candle: open time (epoch ns), OHLC, tick volume, and whether it is complete."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    complete: bool


def to_wire(symbol: str) -> str:
    """Return OANDA's instrument name for a symbol ('EUR/USD' -> 'EUR_USD')."""
    return symbol.strip().upper().replace("/", "_")


def from_wire(instrument: str) -> str:
    """Return our symbol for an OANDA instrument ('EUR_USD' -> 'EUR/USD')."""
    return instrument.replace("_", "/")


def rfc3339(ns: int) -> str:
    """Return an epoch-ns time as OANDA's RFC 3339 text.

    >>> rfc3339(1_767_225_600_123_456_789)
    '2026-01-01T00:00:00.123456789Z'
    """
    seconds, frac = divmod(int(ns), _NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def parse_time(text: str) -> int:
    """Return epoch ns from OANDA's RFC 3339 ('...T00:00:00.000000000Z') or Unix ('1.5') text.

    >>> parse_time("2026-01-01T00:00:00.5Z") - parse_time("1767225600")
    500000000
    """
    if "T" not in text:
        whole, _, frac = text.partition(".")
        return int(whole) * _NS + int((frac + "000000000")[:9])
    head, _, frac = text.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    return seconds * _NS + int((frac + "000000000")[:9])


def status_of(state: str, filled: float) -> VenueStatus:
    """Return our status for a v20 order state (PENDING/TRIGGERED/FILLED/CANCELLED).

    >>> status_of("PENDING", 0.0), status_of("TRIGGERED", 5.0), status_of("FILLED", 5.0)
    ('open', 'partially_filled', 'filled')
    """
    if state == "FILLED":
        return "filled"
    if state == "CANCELLED":
        return "cancelled"
    return "partially_filled" if filled > 0 else "open"


def fill_price(txn: dict[str, Any]) -> float | None:
    """Return a fill transaction's average price (`fullVWAP`, else `price`)."""
    price = txn.get("fullVWAP") or txn.get("price")
    return None if price is None else float(price)


def created_state(request: OrderRequest, data: dict[str, Any]) -> OrderState:
    """Return the state a create answer shows; an order cancelled at once is a rejection."""
    cid = request.client_order_id
    reject = data.get("orderRejectTransaction")
    if reject:
        raise OrderRejected(f"oanda order {cid}: {reject.get('rejectReason') or 'rejected'}")
    create = data.get("orderCreateTransaction") or {}
    fill = data.get("orderFillTransaction") or {}
    cancel = data.get("orderCancelTransaction") or {}
    filled = abs(float(fill.get("units") or 0))
    if cancel and not filled:
        raise OrderRejected(f"oanda order {cid}: cancelled at once: {cancel.get('reason')}")
    wanted = abs(float(create.get("units") or request.quantity))
    status: VenueStatus = "open"
    if cancel:
        status = "cancelled"  # partly filled, the rest cancelled
    elif filled and (filled >= wanted or request.type == "market"):
        status = "filled"  # a market order is done once filled (reduce-only: up to the position)
    elif filled:
        status = "partially_filled"
    order_id = create.get("id")
    return OrderState(
        client_order_id=cid,
        exchange_order_id=None if order_id is None else str(order_id),
        symbol=request.symbol,
        status=status,
        filled_quantity=filled,
        average_price=fill_price(fill) if filled else None,
        reason=cancel.get("reason"),
    )


def parse_fill(txn: dict[str, Any], currency: str) -> BrokerFill:
    """Return an ORDER_FILL transaction as a `BrokerFill` (fee: commission + guaranteed fee)."""
    units = float(txn["units"])
    fee = float(txn.get("commission") or 0) + float(txn.get("guaranteedExecutionFee") or 0)
    client = txn.get("clientOrderID")
    return BrokerFill(
        trade_id=str(txn["id"]),
        client_order_id=None if client is None else str(client),
        exchange_order_id=None if txn.get("orderID") is None else str(txn["orderID"]),
        symbol=from_wire(str(txn["instrument"])),
        side="buy" if units > 0 else "sell",
        ts=parse_time(str(txn["time"])),
        quantity=abs(units),
        price=float(fill_price(txn) or 0.0),
        fee=abs(fee),
        fee_currency=currency,
    )


def parse_candle(raw: dict[str, Any]) -> Candle:
    """Return one `candles` entry with mid prices as a `Candle`."""
    mid = raw["mid"]
    return Candle(parse_time(str(raw["time"])), float(mid["o"]), float(mid["h"]),
                  float(mid["l"]), float(mid["c"]), float(raw.get("volume") or 0),
                  bool(raw.get("complete")))  # fmt: skip

"""`CcxtBroker`: any ccxt exchange behind the `Broker` protocol; exchange quirks live here.

Orders carry our client order id (`clientOrderId`), quantities and prices are rounded to the
market's precision and checked against its minimums before anything is sent, and every ccxt
error is sorted into the `Broker` taxonomy (rejected / unavailable / outcome unknown / not
found). Reads are retried with backoff on network errors and rate limits, within a bound;
writes never are. Error texts are scrubbed of the API key, secret and password.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import ccxt

from reinforcetrade.agents.routing import VenueQuote
from reinforcetrade.core.secrets import redact_loggers, register_secrets, scrub
from reinforcetrade.trading.broker import (
    BrokerError,
    BrokerFill,
    BrokerUnavailable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderSide,
    OrderState,
    OutcomeUnknown,
    VenueStatus,
)

T = TypeVar("T")

#: a stop order is sent as a stop-limit this far through the trigger (spot venues such as
#: Binance take stop-limits everywhere but plain stop-market orders only on some markets)
STOP_LIMIT_SLACK = 0.005
QUOTE_DEPTH = 5  # order book levels read for a quote (a limit every exchange accepts)

_UNAVAILABLE = (ccxt.RateLimitExceeded, ccxt.DDoSProtection, ccxt.OnMaintenance,
                ccxt.ExchangeNotAvailable)  # fmt: skip
_REJECTED = (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.BadRequest, ccxt.BadSymbol,
             ccxt.PermissionDenied, ccxt.AccountSuspended)  # fmt: skip


class CcxtBroker:
    """A ccxt exchange as a `Broker` (spot)."""

    def __init__(
        self,
        exchange: ccxt.Exchange,
        *,
        read_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        name: str | None = None,
        fee_bps: float | None = None,
    ) -> None:
        """`name` tells two accounts of one exchange apart; `fee_bps` overrides its taker fee."""
        self.exchange = exchange
        self._name = name
        self.fee_bps = fee_bps
        register_secrets(*(getattr(exchange, n, None) for n in CREDENTIALS))
        self.read_attempts = read_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._loaded = False

    @property
    def name(self) -> str:
        """Return the venue's name (the exchange's ccxt id unless named)."""
        return self._name or str(self.exchange.id)

    # --- orders -----------------------------------------------------------------------------
    def create_order(self, request: OrderRequest) -> OrderState:
        """Place an order, never retried (OrderRejected, BrokerUnavailable, OutcomeUnknown)."""
        symbol = request.symbol
        amount, price, params, kind = self.prepare(request)
        try:
            raw = self.exchange.create_order(symbol, kind, request.side, amount, price, params)
        except ccxt.OrderNotFound as exc:  # an InvalidOrder subclass: not a rejection here
            raise OutcomeUnknown(self._scrub(exc)) from None
        except _REJECTED as exc:
            raise OrderRejected(self._scrub(exc)) from None
        except _UNAVAILABLE as exc:
            raise BrokerUnavailable(self._scrub(exc), self._retry_after(exc)) from None
        except (ccxt.RequestTimeout, ccxt.NetworkError) as exc:
            raise OutcomeUnknown(self._scrub(exc)) from None
        except ccxt.BaseError as exc:
            raise BrokerError(self._scrub(exc)) from None
        return _state(raw, request.client_order_id, symbol)

    def prepare(self, request: OrderRequest) -> tuple[float, float | None, dict[str, Any], str]:
        """Return (amount, price, params, ccxt type): rounded, checked against the minimums."""
        market = self._market(request.symbol)
        try:
            return self._prepare(request, market)
        except ccxt.BaseError as exc:  # ccxt's own precision checks
            raise OrderRejected(f"{request.client_order_id}: {self._scrub(exc)}") from None

    def _prepare(
        self, request: OrderRequest, market: dict[str, Any]
    ) -> tuple[float, float | None, dict[str, Any], str]:
        ex = self.exchange
        amount = float(ex.amount_to_precision(request.symbol, request.quantity))
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        price: float | None = None
        kind = "market"
        if request.type == "limit":
            kind, price = "limit", float(ex.price_to_precision(request.symbol, request.price))
        elif request.type in ("stop", "stop_limit"):
            trigger = float(ex.price_to_precision(request.symbol, request.stop_price))
            limit = request.price
            if limit is None:  # a stop: a stop-limit through the trigger
                slack = 1 - STOP_LIMIT_SLACK if request.side == "sell" else 1 + STOP_LIMIT_SLACK
                limit = trigger * slack
            kind, price = "limit", float(ex.price_to_precision(request.symbol, limit))
            params["triggerPrice"] = trigger
        limits = market.get("limits", {})
        least = (limits.get("amount") or {}).get("min")
        if not amount > 0 or (least and amount < float(least)):
            raise OrderRejected(
                f"{request.client_order_id}: quantity {request.quantity} rounds to {amount}, "
                f"below {request.symbol}'s minimum {least}"
            )
        reference = price if price is not None else self._last_price(request.symbol)
        least_cost = (limits.get("cost") or {}).get("min")
        if least_cost and reference and amount * reference < float(least_cost):
            raise OrderRejected(
                f"{request.client_order_id}: notional {amount * reference:.8g} is below "
                f"{request.symbol}'s minimum {least_cost}"
            )
        return amount, price, params, kind

    def fetch_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Return an order by client id (reads retried); raises OrderNotFound if it is unknown."""
        raw = self._read(
            lambda: self.exchange.fetch_order(None, symbol, {"origClientOrderId": client_order_id})
        )
        return _state(raw, client_order_id, symbol)

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Cancel an order; if the venue no longer has it open, return what became of it."""
        try:
            raw = self.exchange.cancel_order(None, symbol, {"origClientOrderId": client_order_id})
        except ccxt.OrderNotFound:
            return self.fetch_order(symbol, client_order_id)  # filled (or gone) meanwhile
        except _UNAVAILABLE as exc:
            raise BrokerUnavailable(self._scrub(exc), self._retry_after(exc)) from None
        except (ccxt.RequestTimeout, ccxt.NetworkError) as exc:
            raise OutcomeUnknown(self._scrub(exc)) from None
        except ccxt.BaseError as exc:
            raise BrokerError(self._scrub(exc)) from None
        return _state(raw, client_order_id, symbol)

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        """Return the venue's open orders (reads retried)."""
        rows = self._read(lambda: self.exchange.fetch_open_orders(symbol))
        return [_state(r, None, r.get("symbol") or symbol or "") for r in rows]

    def fills(self, symbol: str, since_ns: int | None = None) -> list[BrokerFill]:
        """Return the venue's executions for a symbol since a time (reads retried)."""
        since = None if since_ns is None else since_ns // 1_000_000
        rows = self._read(lambda: self.exchange.fetch_my_trades(symbol, since))
        return [_fill(r) for r in rows]

    def positions(self) -> dict[str, float]:
        """Return total balances of every asset (spot holdings)."""
        balance = self._read(lambda: self.exchange.fetch_balance())
        totals = balance.get("total") or {}
        return {str(k): float(v) for k, v in totals.items() if v}

    def quote(self, symbol: str, side: OrderSide) -> VenueQuote:
        """Return what the venue offers for `symbol` now: top of book, taker fee, minimum, room.

        The room (`available`) is what the account can trade on `side` here: the free quote
        currency over the ask (net of the fee) to buy, the free base asset to sell. The taker
        fee is `fee_bps` if given, else the market's (ccxt's fee table). Reads are retried.
        """
        market = self._market(symbol)
        book = self._read(lambda: self.exchange.fetch_order_book(symbol, QUOTE_DEPTH))
        bid = float(book["bids"][0][0]) if book.get("bids") else math.nan
        ask = float(book["asks"][0][0]) if book.get("asks") else math.nan
        last = (bid + ask) / 2.0 if bid > 0 and ask > 0 else self._last_price(symbol) or math.nan
        free = self._read(lambda: self.exchange.fetch_balance()).get("free") or {}
        fee = self.fee_bps if self.fee_bps is not None else float(market.get("taker") or 0) * 1e4
        stamp = book.get("timestamp")
        quote = VenueQuote(self.name, bid, ask, last, fee, 0.0, 0.0,
                           time_ns=int(stamp) * 1_000_000 if stamp else 0)  # fmt: skip
        price = quote.price(side)
        if side == "buy":
            room = float(free.get(market["quote"]) or 0.0) / (price * (1 + fee / 1e4))
        else:
            room = float(free.get(market["base"]) or 0.0)
        limits = market.get("limits", {})
        least = float((limits.get("amount") or {}).get("min") or 0.0)
        least_cost = float((limits.get("cost") or {}).get("min") or 0.0)
        least = max(least, least_cost / price if price > 0 else 0.0)
        return replace(quote, min_qty=least, available=room)

    # --- internals ----------------------------------------------------------------------------
    def _market(self, symbol: str) -> dict[str, Any]:
        if not self._loaded:
            self._read(lambda: self.exchange.load_markets())
            self._loaded = True
        try:
            market: dict[str, Any] = self.exchange.market(symbol)
        except ccxt.BaseError:
            raise OrderRejected(f"{self.name} has no market {symbol!r}") from None
        return market

    def _last_price(self, symbol: str) -> float | None:
        ticker = self._read(lambda: self.exchange.fetch_ticker(symbol))
        last = ticker.get("last") or ticker.get("close")
        return float(last) if last else None

    def _read(self, call: Callable[[], T]) -> T:
        """Run a read, retrying network errors and rate limits with capped exponential backoff."""
        delay = self.backoff
        for attempt in range(1, self.read_attempts + 1):
            try:
                return call()
            except ccxt.OrderNotFound as exc:
                raise OrderNotFound(self._scrub(exc)) from None
            except (*_UNAVAILABLE, ccxt.RequestTimeout, ccxt.NetworkError) as exc:
                if attempt == self.read_attempts:
                    raise BrokerUnavailable(
                        f"{self.name}: {self._scrub(exc)} (after {attempt} attempts)",
                        self._retry_after(exc),
                    ) from None
                wait = self._retry_after(exc) or delay
                self._sleep(min(wait, self.max_backoff))
                delay = min(delay * 2, self.max_backoff)
            except ccxt.BaseError as exc:
                raise BrokerError(self._scrub(exc)) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_after(self, exc: BaseException) -> float | None:
        """Return the seconds the venue asked to wait (its Retry-After header), if it said."""
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        for name, value in dict(headers).items():
            if str(name).lower() == "retry-after":
                try:
                    return float(value)
                except (TypeError, ValueError):
                    return None
        return _retry_after_text(exc)

    def _scrub(self, exc: BaseException) -> str:
        """Return an error's text with every credential replaced by ***."""
        return scrub(f"{type(exc).__name__}: {exc}")


CREDENTIALS = ("apiKey", "secret", "password", "uid", "privateKey", "token")
redact_loggers("ccxt.base.exchange", "ccxt.async_support.base.exchange")  # debug logs headers


def _retry_after_text(exc: BaseException) -> float | None:
    """Return the seconds a venue asked to wait, if it said."""
    text = str(exc)
    marker = "Retry-After"
    if marker in text:
        tail = text.split(marker, 1)[1].lstrip(":= \"'")
        digits = "".join(c for c in tail[:8] if c.isdigit() or c == ".")
        try:
            return float(digits) if digits else None
        except ValueError:
            return None
    return None


def _status(raw: dict[str, Any]) -> VenueStatus:
    status = str(raw.get("status") or "open")
    filled = float(raw.get("filled") or 0.0)
    if status == "closed":
        return "filled"
    if status in ("canceled", "cancelled"):
        return "cancelled"
    if status in ("rejected", "expired"):
        return "rejected" if status == "rejected" else "expired"
    return "partially_filled" if filled > 0 else "open"


def _state(raw: dict[str, Any], client_order_id: str | None, symbol: str) -> OrderState:
    filled = float(raw.get("filled") or 0.0)
    average = (raw.get("average") or raw.get("price")) if filled > 0 else None
    return OrderState(
        client_order_id=str(client_order_id or raw.get("clientOrderId") or ""),
        exchange_order_id=None if raw.get("id") is None else str(raw["id"]),
        symbol=str(raw.get("symbol") or symbol),
        status=_status(raw),
        filled_quantity=filled,
        average_price=float(average) if average and math.isfinite(float(average)) else None,
    )


def _fill(raw: dict[str, Any]) -> BrokerFill:
    fee = raw.get("fee") or {}
    info = raw.get("info") or {}
    client = raw.get("clientOrderId") or info.get("clientOrderId")
    return BrokerFill(
        trade_id=str(raw["id"]),
        client_order_id=None if client is None else str(client),
        exchange_order_id=None if raw.get("order") is None else str(raw["order"]),
        symbol=str(raw["symbol"]),
        side="buy" if raw["side"] == "buy" else "sell",
        ts=int(raw["timestamp"]) * 1_000_000,
        quantity=float(raw["amount"]),
        price=float(raw["price"]),
        fee=float(fee.get("cost") or 0.0),
        fee_currency=fee.get("currency"),
    )

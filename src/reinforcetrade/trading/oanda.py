"""`OandaBroker`: an OANDA v20 account behind the `Broker` protocol, over httpx.

Symbols are 'EUR/USD' here and 'EUR_USD' on the wire; units are signed (buy +, sell −). Our
client order id travels as the order's `clientExtensions.id`, and orders are fetched and
cancelled by it (`orders/@<id>`). Units and prices are rounded to the instrument's precision
and checked against its minimum trade size before anything is sent. Every failure is sorted
into the `Broker` taxonomy (rejected / unavailable / outcome unknown / not found). Reads are
retried with capped backoff; a creation never is. The API token goes only into the
Authorization header and is scrubbed from every error text and every httpx/httpcore log line.
Payload parsing lives in `oanda_wire.py`; the feeds and the history loader in `oanda_feeds.py`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.secrets import redact_loggers, register_secrets, scrub
from reinforcetrade.trading.broker import (
    BrokerError,
    BrokerFill,
    BrokerUnavailable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderState,
    OutcomeUnknown,
)
from reinforcetrade.trading.oanda_wire import (
    Candle,
    Instrument,
    created_state,
    fill_price,
    from_wire,
    parse_candle,
    parse_fill,
    rfc3339,
    status_of,
    to_wire,
)

log = logging.getLogger(__name__)

Environment = Literal["practice", "live"]
#: REST and streaming hosts per environment
URLS: dict[str, tuple[str, str]] = {
    "practice": ("https://api-fxpractice.oanda.com", "https://stream-fxpractice.oanda.com"),
    "live": ("https://api-fxtrade.oanda.com", "https://stream-fxtrade.oanda.com"),
}


class _Failure(Exception):
    """A request that did not get a usable 2xx answer (internal; mapped by the callers)."""

    def __init__(
        self, status: int | None, text: str, *, sent: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(text)
        self.status, self.text, self.sent, self.retry_after = status, text, sent, retry_after

    @property
    def transient(self) -> bool:
        """Return True for failures a read may retry (network, rate limit, 5xx, garbled body)."""
        return self.status is None or self.status == 429 or self.status >= 500 or self.status < 400


class OandaBroker:
    """An OANDA v20 account as a `Broker` (netting positions; fees in the account currency)."""

    def __init__(
        self,
        account_id: str,
        token: str | SecretStr,
        *,
        environment: Environment = "practice",
        base_url: str | None = None,
        stream_url: str | None = None,
        timeout: float = 10.0,
        read_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        secret = token.get_secret_value() if isinstance(token, SecretStr) else str(token)
        if not secret.strip():
            raise UserInputError("OANDA needs an API token: create one under 'Manage API Access'")
        if not account_id.strip():
            raise UserInputError("OANDA needs an account id, e.g. '101-004-1234567-001'")
        if environment not in URLS:
            raise UserInputError(
                f"OANDA environment must be 'practice' or 'live', got {environment!r}"
            )
        register_secrets(secret)
        self.account_id = account_id
        self.environment = environment
        self.base_url = (base_url or URLS[environment][0]).rstrip("/")
        self.stream_url = (stream_url or URLS[environment][1]).rstrip("/")
        self.timeout = timeout
        self.read_attempts = max(1, read_attempts)
        self.backoff, self.max_backoff = backoff, max_backoff
        self._sleep = sleep
        self._headers = httpx.Headers(  # its repr masks the token
            {"Authorization": f"Bearer {secret}", "Accept-Datetime-Format": "RFC3339"}
        )
        self._client = httpx.Client(base_url=self.base_url, headers=self._headers, timeout=timeout)
        self._stream_client: httpx.Client | None = None
        self._account = f"/v3/accounts/{quote(account_id, safe='')}"
        self._instruments: dict[str, Instrument] | None = None
        self._currency: str | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """Return 'oanda'."""
        return "oanda"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()
        if self._stream_client is not None:
            self._stream_client.close()

    def __enter__(self) -> OandaBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scrub(self, text: str) -> str:
        """Return `text` with every known token replaced by ***."""
        return scrub(text)

    # --- orders -----------------------------------------------------------------------------
    def create_order(self, request: OrderRequest) -> OrderState:
        """Place an order, never retried (OrderRejected, BrokerUnavailable, OutcomeUnknown)."""
        body = {"order": self.prepare(request)}
        what = f"order {request.client_order_id}"
        data = self._write("POST", f"{self._account}/orders", body, what)
        return created_state(request, data)

    def prepare(self, request: OrderRequest) -> dict[str, Any]:
        """Return the v20 order body: units and prices rounded, checked against the limits."""
        inst = self.instrument(request.symbol)
        cid = request.client_order_id
        units = _round(request.quantity, inst.units_precision, ROUND_DOWN)
        if units <= 0 or units < inst.minimum_units:
            raise OrderRejected(
                f"{cid}: {request.quantity} {request.symbol} rounds to {units} units, below "
                f"OANDA's minimum trade size {inst.minimum_units}"
            )
        if inst.maximum_units is not None and units > inst.maximum_units:
            raise OrderRejected(
                f"{cid}: {units} units of {request.symbol} exceed OANDA's maximum order size "
                f"{inst.maximum_units}; split the order"
            )
        order: dict[str, Any] = {
            "instrument": inst.name,
            "units": str(units if request.side == "buy" else -units),
            "positionFill": "REDUCE_ONLY" if request.reduce_only else "DEFAULT",
            "clientExtensions": {"id": cid},
        }
        if request.type == "market":
            return {**order, "type": "MARKET", "timeInForce": "FOK"}
        if request.type == "limit":
            return {**order, "type": "LIMIT", "price": self._price(request, request.price, inst),
                    "timeInForce": "GTC"}  # fmt: skip
        order |= {"type": "STOP", "price": self._price(request, request.stop_price, inst),
                  "timeInForce": "GTC"}  # fmt: skip
        if request.type == "stop_limit":
            order["priceBound"] = self._price(request, request.price, inst)
        return order

    def fetch_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Return an order by client id (reads retried); raises OrderNotFound if it is unknown."""
        data = self._read(f"{self._account}/orders/{_spec(client_order_id)}")
        return self._state(data.get("order") or {}, client_order_id, symbol)

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Cancel an order; if OANDA no longer has it pending, return what became of it."""
        path = f"{self._account}/orders/{_spec(client_order_id)}/cancel"
        try:
            data = self._write("PUT", path, None, f"cancel {client_order_id}", OrderNotFound)
        except OrderNotFound:
            return self.fetch_order(symbol, client_order_id)  # filled (or never there)
        txn = data.get("orderCancelTransaction") or {}
        order_id = txn.get("orderID")
        return OrderState(client_order_id, None if order_id is None else str(order_id), symbol,
                          "cancelled", 0.0, None, reason=txn.get("reason"))  # fmt: skip

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        """Return the pending entry orders (not trade-linked stop-loss/take-profit ones)."""
        rows = self._read(f"{self._account}/pendingOrders").get("orders") or []
        wire = None if symbol is None else to_wire(symbol)
        return [
            self._state(r, None, from_wire(str(r["instrument"])))
            for r in rows
            if r.get("instrument") and (wire is None or r["instrument"] == wire)
        ]

    def fills(self, symbol: str, since_ns: int | None = None) -> list[BrokerFill]:
        """Return the account's ORDER_FILL transactions for a symbol since a time.

        The fee is `commission` + `guaranteedExecutionFee` in the account currency; financing
        (overnight carry) is not an execution cost and is left out.
        """
        params = {"type": "ORDER_FILL", "pageSize": "1000"}
        if since_ns is not None:
            params["from"] = rfc3339(since_ns)
        index = self._read(f"{self._account}/transactions", params)
        currency = self.account_currency()
        wire = to_wire(symbol)
        out: list[BrokerFill] = []
        for page in index.get("pages") or []:
            for txn in self._read(self._same_origin(str(page))).get("transactions") or []:
                if txn.get("type") != "ORDER_FILL" or txn.get("instrument") != wire:
                    continue
                fill = parse_fill(txn, currency)
                if since_ns is None or fill.ts >= since_ns:
                    out.append(fill)
        return out

    def positions(self) -> dict[str, float]:
        """Return net units per instrument ('EUR/USD': 1000.0) and the balance ('USD': ...)."""
        account = self._read(f"{self._account}/summary").get("account") or {}
        out: dict[str, float] = {}
        for row in self._read(f"{self._account}/openPositions").get("positions") or []:
            units = float((row.get("long") or {}).get("units") or 0) + float(
                (row.get("short") or {}).get("units") or 0
            )
            if units:
                out[from_wire(str(row["instrument"]))] = units
        self._currency = str(account["currency"])
        out[self._currency] = float(account["balance"])
        return out

    # --- account and market data ----------------------------------------------------------
    def account_currency(self) -> str:
        """Return the account's home currency (read once)."""
        if self._currency is None:
            account = self._read(f"{self._account}/summary").get("account") or {}
            self._currency = str(account["currency"])
        return self._currency

    def instrument(self, symbol: str) -> Instrument:
        """Return an instrument's limits (the account's instruments are loaded once)."""
        with self._lock:
            if self._instruments is None:
                rows = self._read(f"{self._account}/instruments").get("instruments") or []
                self._instruments = {str(r["name"]): Instrument.parse(r) for r in rows}
        found = self._instruments.get(to_wire(symbol))
        if found is None:
            known = ", ".join(sorted(from_wire(n) for n in self._instruments)[:8])
            raise OrderRejected(f"the OANDA account cannot trade {symbol!r} (it has: {known}...)")
        return found

    def candles(
        self, symbol: str, granularity: str, *, start_ns: int, count: int | None = None
    ) -> list[Candle]:
        """Return mid candles from `start_ns` (UTC-aligned; the last one may be incomplete)."""
        params = {"price": "M", "granularity": granularity, "from": rfc3339(start_ns),
                  "dailyAlignment": "0", "alignmentTimezone": "UTC"}  # fmt: skip
        if count is not None:
            params["count"] = str(count)
        data = self._read(f"/v3/instruments/{to_wire(symbol)}/candles", params)
        return [parse_candle(c) for c in data.get("candles") or [] if c.get("mid")]

    @contextmanager
    def pricing_stream(
        self, symbols: Sequence[str], *, read_timeout: float
    ) -> Iterator[httpx.Response]:
        """Open the pricing stream (NDJSON lines); raises BrokerError if OANDA refuses it."""
        if self._stream_client is None:
            self._stream_client = httpx.Client(
                base_url=self.stream_url, headers=self._headers, timeout=self.timeout
            )
        params = {"instruments": ",".join(to_wire(s) for s in symbols)}
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        path = f"{self._account}/pricing/stream"
        with self._stream_client.stream("GET", path, params=params, timeout=timeout) as response:
            if response.status_code != 200:
                response.read()
                failure = _failure_of(response)
                raise (BrokerUnavailable if failure.transient else BrokerError)(
                    self.scrub(f"oanda pricing stream refused: {failure.text}")
                )
            yield response

    # --- internals ----------------------------------------------------------------------------
    def _price(self, request: OrderRequest, value: float | None, inst: Instrument) -> str:
        price = _round(float(value or 0), inst.display_precision, ROUND_HALF_EVEN)
        if price <= 0:
            raise OrderRejected(
                f"{request.client_order_id}: price {value} rounds to {price} at {inst.name}'s "
                f"{inst.display_precision} decimals"
            )
        return str(price)

    def _state(self, raw: dict[str, Any], cid: str | None, symbol: str) -> OrderState:
        """Return our view of a v20 order; a filled one's price comes from its fill."""
        filled, average = 0.0, None
        filling = raw.get("fillingTransactionID")
        if filling is not None:
            txn = self._read(f"{self._account}/transactions/{filling}").get("transaction") or {}
            filled, average = abs(float(txn.get("units") or 0)), fill_price(txn)
        client = cid or (raw.get("clientExtensions") or {}).get("id") or ""
        instrument = raw.get("instrument")
        return OrderState(
            client_order_id=str(client),
            exchange_order_id=None if raw.get("id") is None else str(raw["id"]),
            symbol=from_wire(str(instrument)) if instrument else symbol,
            status=status_of(str(raw.get("state") or "PENDING"), filled),
            filled_quantity=filled,
            average_price=average,
        )

    def _same_origin(self, page: str) -> str:
        """Return a page link's path and query; refuse links to another host (the token)."""
        url, base = httpx.URL(page), httpx.URL(self.base_url)
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise BrokerError(f"oanda sent a page link to another host ({url.host}); not followed")
        return url.raw_path.decode("ascii")

    def _call(
        self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """Send one request; return a 2xx JSON body or raise `_Failure`."""
        try:
            response = self._client.request(method, path, params=params, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _Failure(
                None, f"cannot connect ({type(exc).__name__}: {exc})", sent=False
            ) from None
        except httpx.TransportError as exc:  # sent, then a timeout or a dropped connection
            raise _Failure(None, f"no answer ({type(exc).__name__}: {exc})") from None
        if not response.is_success:
            raise _failure_of(response)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise _Failure(response.status_code, f"an unreadable answer: {response.text[:120]!r}")
        return data

    def _write(
        self,
        method: str,
        path: str,
        body: Any,
        what: str,
        not_found: type[BrokerError] = OrderRejected,
    ) -> dict[str, Any]:
        """Send a write once, mapping its failure into the Broker taxonomy."""
        try:
            return self._call(method, path, body=body)
        except _Failure as f:
            text = self.scrub(f"oanda {what}: {f.text}")
            if f.status is None and not f.sent:
                raise BrokerUnavailable(f"{text}; nothing was sent") from None
            if f.status in (429, 503):
                raise BrokerUnavailable(text, f.retry_after) from None
            if f.status in (401, 403):
                raise BrokerError(f"{text}; check the token and environment") from None
            if f.status == 404:
                raise not_found(text) from None
            if f.status is not None and 400 <= f.status < 500:
                raise OrderRejected(text) from None
            raise OutcomeUnknown(f"{text}; find it by its client order id") from None

    def _read(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """Run a read, retrying network errors, 429 and 5xx with capped exponential backoff."""
        delay = self.backoff
        for attempt in range(1, self.read_attempts + 1):
            try:
                return self._call("GET", path, params)
            except _Failure as f:
                text = self.scrub(f"oanda GET {path.split('?')[0]}: {f.text}")
                if f.status == 404:
                    raise OrderNotFound(text) from None
                if not f.transient:
                    hint = "; check the token and environment" if f.status in (401, 403) else ""
                    raise BrokerError(text + hint) from None
                if attempt == self.read_attempts:
                    raise BrokerUnavailable(
                        f"{text} (after {attempt} attempts)", f.retry_after
                    ) from None
                wait = min(f.retry_after or delay, self.max_backoff)
                log.warning("%s; retrying in %.2fs (attempt %d)", text, wait, attempt)
                self._sleep(wait)
                delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")  # pragma: no cover


redact_loggers(__name__, "reinforcetrade.trading.oanda_feeds", "httpx", "httpcore.http11",
               "httpcore.connection", "httpcore.http2", "httpcore.proxy")  # fmt: skip


def _spec(client_order_id: str) -> str:
    """Return the order specifier for a client id ('@id', path-escaped)."""
    return "@" + quote(client_order_id, safe="")


def _round(value: float, places: int, mode: str) -> Decimal:
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=mode)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _failure_of(response: httpx.Response) -> _Failure:
    """Return a non-2xx answer as a `_Failure` with OANDA's reason and message."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        txn = body.get("orderRejectTransaction") or body.get("orderCancelRejectTransaction") or {}
        reason = txn.get("rejectReason") or body.get("errorCode")
        message = body.get("errorMessage") or ""
        text = ": ".join(str(p) for p in (reason, message) if p)
    else:
        text = response.text[:120].strip()
    text = f"HTTP {response.status_code} {text or response.reason_phrase}"[:300]
    return _Failure(response.status_code, text, retry_after=_retry_after(response))

"""Live order routing: a real venue's fills booked into the engine's loop, stops on the venue.

In live mode the compiled loop decides but fills nothing (`BarStepper(live=True)`); this module
is the other half. Each order's role is written into its client id (`e` entry, `x` exit, `s`
stop, `t` take-profit exit), so a restart reads it back from the journal. It

- books every new execution (once: the journal's trade-id key) into the loop's account, net of
  a fee paid in the asset bought (spot venues charge it there, so that is what is held);
- when an entry is done (filled, or partly filled and the rest cancelled), releases the loop's
  pending order and places the position's stop on the venue for the quantity held; a stop the
  venue refuses makes it exit the position at market and raise an alert;
- manages the take-profit locally (spot venues lock the holding for one sell order): a bar
  reaching it cancels the stop and exits at market;
- cancels the stop before an exit (a cancel that loses the race books the stop's fill instead);
- writes off the dust a closing order leaves (the venue's quantity step; < 1% of the order);
- at start, reconciles: orders left pending by a crash are looked up by client id, open orders
  are booked as the venue reports them, fills made while down (a stop) are booked, and the
  holdings the journal implies are checked against the venue's balances. A failed query stops
  the start (never read as "flat"); a venue holding less than the journal says halts it with
  the figures; stops left for closed positions are cancelled, missing ones re-placed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from reinforcetrade.backtesting.records import D_ACTION, D_EXIT, D_STOP, D_TAKE
from reinforcetrade.backtesting.stepper import BarStepper
from reinforcetrade.core.codes import Action, ExitReason
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.simulation.account import CASH, ENTRY_PX, PEAK, QTY, TAKE
from reinforcetrade.simulation.fills import stop_prices
from reinforcetrade.simulation.orders import DEC, KIND, NONE, STOP_FRAC, TAKE_FRAC
from reinforcetrade.storage import Journal
from reinforcetrade.storage.rows import OrderRow
from reinforcetrade.trading.broker import Broker, BrokerError, BrokerFill, OrderRequest, OrderSide
from reinforcetrade.trading.feeds import ClosedBar
from reinforcetrade.trading.orders import OrderManager
from reinforcetrade.trading.venues import RoutedBroker, summed

ENTRY, EXIT, STOP_TAG, TAKE_TAG = "e", "x", "s", "t"
FINAL = frozenset({"filled", "cancelled", "rejected", "expired"})
_DUST = 1e-6  # relative: holdings closer than this agree
DUST_SHARE = 0.01  # a closing order leaving less than this share of itself held: dust


class ReconciliationError(UserInputError):
    """The venue and the journal disagree, or the venue could not be asked: no trading."""


@dataclass(frozen=True)
class Holding:
    """A symbol's position as the journal's fills imply it."""

    quantity: float
    average_price: float


def role_of(client_order_id: str) -> str | None:
    """Return the role letter an order's client id carries (None: not one of ours).

    >>> role_of("l3s-0a1b"), role_of("l3-0a1b")
    ('s', None)
    """
    tag = client_order_id.split("-", 1)[0][-1:]
    return tag if tag in (ENTRY, EXIT, STOP_TAG, TAKE_TAG) else None


def net_quantity(fill: BrokerFill) -> float:
    """Return a fill's signed quantity held afterwards (a fee in the base asset is not held)."""
    base = fill.symbol.split("/")[0]
    qty = fill.quantity - (fill.fee if fill.fee_currency == base and fill.side == "buy" else 0.0)
    return qty if fill.side == "buy" else -qty


def quote_fee(fill: BrokerFill) -> float:
    """Return the fee paid in the quote currency (0 when it was taken from the asset bought)."""
    base = fill.symbol.split("/")[0]
    if fill.fee_currency == base:
        return 0.0 if fill.side == "buy" else fill.fee * fill.price
    return fill.fee


class LiveRouting:
    """The venue's side of a live session: fills in, protection out, reconciliation at start."""

    def __init__(
        self,
        stepper: BarStepper,
        orders: OrderManager,
        broker: Broker,
        journal: Journal,
        alert: Callable[[str, str], None],
        decision_base: int,
    ) -> None:
        self.stepper = stepper
        self.orders = orders
        self.broker = broker
        self.journal = journal
        self.alert = alert
        self.base = decision_base  # journal decision number of the stepper's decision 0
        self.since_ns: int | None = None
        self._exits: dict[str, int] = {}  # a stop/take order's exit decision row
        self.fills = 0  # executions booked into the loop's account
        orders.on_fill = self.on_fill

    @property
    def symbols(self) -> Sequence[str]:
        """Return the symbols traded."""
        return self.stepper.symbols

    # -- fills and order states ---------------------------------------------------------------
    def sync(self, symbols: Sequence[str] | None = None) -> None:
        """Book new fills and order states from the venue; act on orders that are done."""
        for symbol in symbols or self.symbols:
            self.orders.sync_fills(symbol, since_ns=self.since_ns)
        self.orders.degraded = None  # the venue answers again
        for row in self.journal.open_orders(self.orders.run_id):
            if row.status == "pending" or (symbols and row.symbol not in symbols):
                continue
            booked = self.orders.book(self.broker.fetch_order(row.symbol, row.client_order_id))
            if booked.status in FINAL:
                self.done(booked)

    def settle(self, symbol: str, order: OrderRow) -> None:
        """Book a just-placed order's fills, and act on it if its answer said it is done."""
        self.sync([symbol])  # a market order is usually done at once
        if order.status in FINAL:  # done in its answer: never seen open
            self.done(order)

    def before_bar(self, bars: Sequence[ClosedBar]) -> None:
        """Catch up with the venue before deciding on a bar: fills, stops, take-profits."""
        self.sync()
        self.take_profits(bars)

    def on_fill(self, fill: BrokerFill, order: OrderRow | None) -> None:
        """Book one new execution into the loop's account."""
        if fill.symbol not in self.symbols:
            return
        s = self.symbols.index(fill.symbol)
        role = None if order is None else role_of(order.client_order_id)
        if role is None:
            self.alert("reconcile", f"{fill.symbol}: a fill of an order not ours "
                       f"({fill.trade_id}); the position is checked at the next start")  # fmt: skip
            return
        decision, code = self._decision_of(order), 0
        if role in (STOP_TAG, TAKE_TAG) and order is not None:
            code = int(ExitReason.STOP_LOSS if role == STOP_TAG else ExitReason.TAKE_PROFIT)
            if order.client_order_id not in self._exits:
                row = self.stepper.record_exit(s, code, abs(self._held(s)))
                self._exits[order.client_order_id] = row
            decision = self._exits[order.client_order_id]
        elif role == EXIT and decision >= 0:
            di, _ = self.stepper.decision_rows(range(decision, decision + 1))
            code = int(di[0, D_EXIT])
        self.stepper.book_fill(s, net_quantity(fill), fill.price, quote_fee(fill), decision, code,
                               fill.latency_ms)  # fmt: skip
        self.fills += 1

    def done(self, row: OrderRow) -> None:
        """Act on an order the venue is done with."""
        role = role_of(row.client_order_id)
        s = self.symbols.index(row.symbol)
        held = self._held(s)
        closing = role in (EXIT, STOP_TAG, TAKE_TAG) and row.status == "filled"
        if closing and held != 0.0 and abs(held) <= DUST_SHARE * row.qty:
            # what the venue's quantity step left over: written off in the loop's account
            price = row.avg_price or float(self.stepper.run.book.pos_f[s, ENTRY_PX])
            self.stepper.book_fill(s, -held, price, 0.0, -1, 0)
        if role in (ENTRY, EXIT):
            self.release(s, self._decision_of(row))
        if role == ENTRY and self._held(s) != 0.0:
            self.cancel_protection(row.symbol)  # a worked entry's child: the stop grows with it
            self.protect(s, self._decision_of(row))
        if role in (EXIT, STOP_TAG, TAKE_TAG) and self._held(s) == 0.0:
            self.cancel_protection(row.symbol)

    # -- protection -------------------------------------------------------------------------
    def protect(self, s: int, decision: int, stop: float | None = None) -> None:
        """Place the stop of symbol s's position on the venue (exit if it is refused)."""
        held = self._held(s)
        pend_f = self.stepper.run.pending.pend_f
        direction = 1 if held > 0 else -1
        if stop is None:
            entry = float(self.stepper.run.book.pos_f[s, ENTRY_PX])
            stop, take = stop_prices(direction, entry, pend_f[s, STOP_FRAC], pend_f[s, TAKE_FRAC])
        else:
            take = self._take_of(decision)
        self.stepper.protect(s, stop, take)
        if not math.isfinite(stop):
            return
        symbol = self.symbols[s]
        side: OrderSide = "sell" if held > 0 else "buy"
        request = OrderRequest(self.orders.client_id(STOP_TAG), symbol, side, "stop", abs(held),
                               stop_price=stop, reduce_only=True)  # fmt: skip
        result = self.orders.submit(request, decision=self.number(decision))
        if result.outcome == "placed":
            return
        self.alert("stop_rejected", f"{symbol}: the venue refused the stop at {stop:g} "
                   f"({result.reason}); exiting the position")  # fmt: skip
        self.exit(s, EXIT, decision=-1)

    def cancel_protection(self, symbol: str) -> None:
        """Cancel the open stop orders of a symbol (a stop that filled first is booked)."""
        for row in self.journal.open_orders(self.orders.run_id):
            if row.symbol == symbol and role_of(row.client_order_id) == STOP_TAG:
                booked = self.orders.cancel(symbol, row.client_order_id)
                if booked.status == "filled":
                    self.orders.sync_fills(symbol, since_ns=self.since_ns)

    def exit(self, s: int, tag: str, decision: int) -> bool:
        """Cancel the stop, then close what is still held at market; return whether sent."""
        symbol = self.symbols[s]
        self.cancel_protection(symbol)
        held = self._held(s)
        if held == 0.0:
            self.release(s, decision)
            return False
        side: OrderSide = "sell" if held > 0 else "buy"
        request = OrderRequest(self.orders.client_id(tag), symbol, side, "market", abs(held))
        result = self.orders.submit(request, decision=self.number(decision))
        if result.outcome != "placed":
            self.release(s, decision)
            self.alert("exit_failed", f"{symbol}: the exit was not placed ({result.reason})")
            return False
        self.settle(symbol, result.order)
        return True

    def take_profits(self, bars: Sequence[ClosedBar]) -> None:
        """Exit positions whose take-profit the bar reached (managed here, not on the venue)."""
        pos_f = self.stepper.run.book.pos_f
        for bar in bars:
            s = self.symbols.index(bar.symbol)
            held, take = float(pos_f[s, QTY]), float(pos_f[s, TAKE])
            if held == 0.0 or not math.isfinite(take):
                continue
            if (held > 0 and bar.high >= take) or (held < 0 and bar.low <= take):
                self.exit(s, TAKE_TAG, decision=-1)

    # -- start ------------------------------------------------------------------------------
    def reconcile(self, started_ns: int) -> list[str]:
        """Bring the journal, the loop's account and the venue into agreement; return notes."""
        notes: list[str] = []
        self.orders.on_fill = None  # what was booked before is rebuilt below, not replayed
        fills: list[BrokerFill] = []
        try:
            for resolved in self.orders.resolve_pending():
                notes.append(f"order {resolved.order.client_order_id}: {resolved.outcome}")
            for row in self.journal.open_orders(self.orders.run_id):
                if row.status != "pending":
                    self.orders.book(self.broker.fetch_order(row.symbol, row.client_order_id))
            for symbol in self.symbols:
                self.orders.sync_fills(symbol, since_ns=started_ns)
                fills += self.broker.fills(symbol, started_ns)
            per_venue = (self.broker.venue_positions()
                         if isinstance(self.broker, RoutedBroker) else None)  # fmt: skip
            balances = self.broker.positions() if per_venue is None else summed(per_venue)
        except BrokerError as exc:
            raise ReconciliationError(
                f"startup reconciliation failed, so the account's state is unknown and nothing "
                f"is traded: {exc}"
            ) from exc
        finally:
            self.orders.on_fill = self.on_fill
        rows = self.journal.orders_by_client_id(run_id=self.orders.run_id).values()
        ours = {o.client_order_id for o in rows} | {o.exchange_order_id for o in rows}
        ours.discard(None)
        mine = [f for f in fills if f.client_order_id in ours or f.exchange_order_id in ours]
        for s, symbol in enumerate(self.symbols):
            held = _held(symbol, mine, balances, "the venue")
            for venue, venue_balances in (per_venue or {}).items():  # routed: each venue apart
                _held(symbol, [f for f in mine if f.venue == venue], venue_balances, venue)
            if held.quantity != 0.0:
                self.stepper.book_fill(s, held.quantity, held.average_price, 0.0, -1)
                self._restore_stop(s, symbol, notes)
            else:
                self.cancel_protection(symbol)
        quote = _quote_of(self.symbols[0])
        if quote in balances:
            pf = self.stepper.run.pf
            pf[CASH] = float(balances[quote])
            pf[PEAK] = 0.0  # the first close sets it
        self.since_ns = started_ns
        return notes

    def _restore_stop(self, s: int, symbol: str, notes: list[str]) -> None:
        open_stops = [r for r in self.journal.open_orders(self.orders.run_id)
                      if r.symbol == symbol and role_of(r.client_order_id) == STOP_TAG]  # fmt: skip
        entry = self._last_entry(symbol)
        if open_stops:
            stop = float(open_stops[-1].stop_price or math.nan)
            self.stepper.protect(s, stop, entry[1] if entry else math.nan)
            notes.append(f"{symbol}: position of {self._held(s):g} kept, its stop stays")
            return
        stop = entry[0] if entry else math.nan
        if not math.isfinite(stop):  # the entry's decision never reached the journal
            held = self._held(s)
            average = float(self.stepper.run.book.pos_f[s, ENTRY_PX])
            risk = self.stepper.strategy.settings.risk
            stop, _ = stop_prices(1 if held > 0 else -1, average, risk.stop_loss, math.nan)
        notes.append(f"{symbol}: position of {self._held(s):g} had no stop; placing one")
        self.alert("stop_replaced", f"{symbol}: no stop on the venue for the position; placed")
        self.protect(s, -1, stop=stop)

    def _last_entry(self, symbol: str) -> tuple[float, float] | None:
        decisions = self.journal.read_table("decisions", run_id=self.orders.run_id)
        mine = decisions[(decisions["symbol"] == symbol)
                         & decisions["action"].isin(["enter_long", "enter_short"])]  # fmt: skip
        if mine.empty:
            return None
        last = mine.sort_values("number").iloc[-1]
        return float(last["stop"]), float(last["take_profit"])

    # -- helpers ----------------------------------------------------------------------------
    def _held(self, s: int) -> float:
        return float(self.stepper.run.book.pos_f[s, QTY])

    def _decision_of(self, order: OrderRow | None) -> int:
        """Return the stepper's decision row of an order (-1: another session's, or none)."""
        if order is None or order.decision_number is None:
            return -1
        k = int(order.decision_number) - self.base
        return k if 0 <= k < int(self.stepper.run.book.cnt[0]) else -1

    def number(self, decision: int) -> int | None:
        """Return the journal's number of a stepper decision (None for none)."""
        return None if decision < 0 else decision + self.base

    def _take_of(self, decision: int) -> float:
        if decision < 0:
            return math.nan
        _, df = self.stepper.decision_rows(range(decision, decision + 1))
        return float(df[0, D_TAKE])

    def release(self, s: int, decision: int) -> None:
        """Release symbol s's pending order in the loop (that decision's, or any if -1)."""
        pend_i = self.stepper.run.pending.pend_i
        if pend_i[s, KIND] != NONE and (decision < 0 or int(pend_i[s, DEC]) == decision):
            pend_i[s, KIND] = NONE

    def is_entry(self, decision: int) -> bool:
        """Return whether a stepper decision row is an entry."""
        di, _ = self.stepper.decision_rows(range(decision, decision + 1))
        return int(di[0, D_ACTION]) in (int(Action.ENTER_LONG), int(Action.ENTER_SHORT))

    def stop_of(self, decision: int) -> float:
        """Return the stop price a decision chose."""
        _, df = self.stepper.decision_rows(range(decision, decision + 1))
        return float(df[0, D_STOP])


def _quote_of(symbol: str) -> str:
    """Return the currency a symbol is priced in ('BTC/USDT' → USDT; a bare stock: USD).

    >>> _quote_of("ES/USD:202612"), _quote_of("VOD/GBP@LSE"), _quote_of("AAPL")
    ('USD', 'GBP', 'USD')
    """
    if "/" not in symbol:
        return "USD"
    return symbol.split("/", 1)[1].split(":")[0].split("@")[0]


def _shortfall(symbol: str, held: float, balances: Mapping[str, float]) -> str | None:
    """Say how the venue holds less than the journal, or None if it holds enough.

    Venues that report positions per instrument (OANDA, IB) key them by symbol, signed; spot
    venues report balances per asset (the base asset of a long position). Holdings beyond the
    journal's are not this engine's and are left alone.
    """
    if held == 0.0:
        return None
    if symbol in balances:
        venue = float(balances[symbol])
        enough = venue * held > 0 and abs(venue) >= abs(held) * (1 - _DUST)
        return None if enough else f"reports a position of {venue:g}"
    base = symbol.split("/")[0]
    venue = float(balances.get(base, 0.0))
    if held < 0:
        return f"reports no short position (a {base} balance of {venue:g})"
    return None if venue >= held * (1 - _DUST) else f"holds {venue:g} {base}"


def _held(
    symbol: str, fills: Sequence[BrokerFill], balances: Mapping[str, float], where: str
) -> Holding:
    """Return what the fills imply is held (a closing order's dust: flat), if `where` holds it.

    Raises `ReconciliationError` naming `where` when its balances hold less.
    """
    held = _holdings(fills).get(symbol, Holding(0.0, math.nan))
    largest = max((f.quantity for f in fills if f.symbol == symbol), default=0.0)
    if abs(held.quantity) <= DUST_SHARE * largest:  # a closing order's leftover
        return Holding(0.0, math.nan)
    short_of = _shortfall(symbol, held.quantity, balances)
    if short_of is not None:
        raise ReconciliationError(
            f"{symbol}: the journal's fills hold {held.quantity:g} but {where} {short_of}; "
            "resolve it on the venue, then restart"
        )
    return held


def _holdings(fills: Sequence[BrokerFill]) -> dict[str, Holding]:
    """Return each symbol's net quantity and average entry price from its fills in time order."""
    out: dict[str, Holding] = {}
    for fill in sorted(fills, key=lambda f: (f.ts, f.trade_id)):
        held = out.get(fill.symbol, Holding(0.0, math.nan))
        qty, before = net_quantity(fill), held.quantity
        total = before + qty
        if abs(total) <= 1e-12 * max(1.0, abs(before)):
            out[fill.symbol] = Holding(0.0, math.nan)
        elif before == 0.0 or (qty > 0) == (before > 0):  # opening or adding: average cost
            cost = (held.average_price * abs(before) if before else 0.0) + fill.price * abs(qty)
            out[fill.symbol] = Holding(total, cost / abs(total))
        elif (total > 0) == (before > 0):  # reducing: the entry price stays
            out[fill.symbol] = Holding(total, held.average_price)
        else:  # crossed zero: the rest is a new position at this price
            out[fill.symbol] = Holding(total, fill.price)
    return out

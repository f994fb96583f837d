"""Orders between a decision and its fill: pending orders, and filling them at the next open.

Shared by the backtester (the compiled loop calls these on its rare paths) and the RL
environment (which rebalances one asset with `rebalance_qty`). A decision taken on bar t's
close leaves a pending order (entry, close, or — for target
strategies — rebalance) that fills at bar t+1's open as a market order priced off the previous
bar's range. Open positions' stops and take-profits trigger inside a bar. These run on the rare
paths of the compiled loop (only when there is something to fill).

An entry or a signal close may instead be *worked* (`simulation.slicing`, `plan`): it stays
pending with its algorithm, the bars left of its horizon, its children so far and (an entry)
the quantity still to fill, and each bar's open fills one child (`work_entry`, `work_close`)
with the same market fill. IMMEDIATE orders take the one-shot paths (`fill_entry`,
`fill_close`) exactly as before.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.codes import ExitReason, Reason
from reinforcetrade.core.jit import njit
from reinforcetrade.simulation.account import (
    CASH,
    ENTRY_PX,
    F_ALGO,
    F_CHILD,
    N_FILL,
    QTY,
    STOP,
    TAKE,
    Book,
    apply_fill,
    equity_at,
    observe_cost,
)
from reinforcetrade.simulation.costs import (
    CostParams,
    affordable_qty,
    commission,
    fillable_qty,
    market_fill_price,
)
from reinforcetrade.simulation.fills import resolve_exit, stop_prices
from reinforcetrade.simulation.slicing import NO_SLICING, Slicing, next_child, pick_algo

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]

# pending orders, pend_f[s, …] / pend_i[s, …]
NOTIONAL: Final = 0
STOP_FRAC: Final = 1
TAKE_FRAC: Final = 2
TARGET: Final = 3
REMAINING: Final = 4  # a worked entry's quantity still to fill
PEND_F: Final = 5
KIND: Final = 0
DEC: Final = 1
DIR: Final = 2
EXIT: Final = 3
ALGO: Final = 4  # how the order is worked (`slicing.Algo`; IMMEDIATE: the one-shot paths)
LEFT: Final = 5  # a worked order's bars left in its horizon, counting the next one
CHILD: Final = 6  # a worked order's children filled so far
PEND_I: Final = 7
NONE: Final = 0
ENTRY: Final = 1
CLOSE: Final = 2
REBALANCE: Final = 3
# the last completed bar of each symbol, prev[s, …]
P_OPEN: Final = 0
P_HIGH: Final = 1
P_LOW: Final = 2
P_CLOSE: Final = 3

_PARTIAL = int(Reason.PARTIAL_FILL)
_X_SIGNAL = int(ExitReason.SIGNAL)


class Execution(NamedTuple):
    """How fills are priced: the broker's costs, the costs the strategy assumes, feedback rate."""

    costs: CostParams  # what the (simulated) broker charges
    model: CostParams  # what the strategy's cost model predicts for the same fill
    latency_ms: float
    alpha: float  # weight of each fill in the running cost estimates
    slicing: Slicing = NO_SLICING  # how entries and signal closes are worked over bars


class Pending(NamedTuple):
    """Orders waiting for the next open, and the last completed bar of each symbol."""

    pend_f: F8
    pend_i: I8
    prev: F8


def new_pending(symbols: int) -> Pending:
    """Return no pending orders and no previous bar for `symbols` symbols."""
    return Pending(
        np.zeros((symbols, PEND_F), dtype=np.float64),
        np.zeros((symbols, PEND_I), dtype=np.int64),
        np.full((symbols, 4), np.nan, dtype=np.float64),
    )


@njit
def market(
    book: Book, ex: Execution, prev: F8, s: int, t: int, qty: float, o: float, v: float,
    dec: int, flags: int, reason: int,
) -> None:  # fmt: skip
    """Fill a market order of signed qty at this bar's open, priced off the previous bar's range."""
    side = 1 if qty > 0.0 else -1
    high, low, ref_open = prev[s, P_HIGH], prev[s, P_LOW], prev[s, P_OPEN]
    if not (ref_open == ref_open):  # first bar: no range known yet
        high, low, ref_open = o, o, o
    price, _ = market_fill_price(side, o, ref_open, high, low, abs(qty), v, ex.costs)
    predicted, _ = market_fill_price(side, o, ref_open, high, low, abs(qty), v, ex.model)
    fee = commission(abs(qty) * price, False, ex.costs)
    apply_fill(book, s, t, qty, price, o, fee, dec, flags, reason)
    observe_cost(book.pf, o, price, predicted, ex.latency_ms, ex.alpha)


@njit
def fill_entry(
    book: Book, ex: Execution, pending: Pending, s: int, t: int, o: float, v: float
) -> None:
    """Fill a pending entry: its notional at the open, capped by cash and the bar's volume."""
    wanted = pending.pend_f[s, NOTIONAL] / o
    pending.pend_i[s, KIND] = NONE
    _enter(book, ex, pending, s, t, o, v, wanted, wanted)


@njit
def _enter(
    book: Book, ex: Execution, pending: Pending, s: int, t: int, o: float, v: float,
    wanted: float, whole: float,
) -> float:  # fmt: skip
    """Buy or sell up to `wanted` at the open, capped by cash and the bar's volume; set stops.

    Flagged partial when it fills less than `whole`; stops and take-profit are set from the
    position's average entry. Returns the quantity filled.
    """
    pend_f, pend_i, prev = pending
    pos_f, cp = book.pos_f, ex.costs
    direction = pend_i[s, DIR]
    qty = wanted
    if direction > 0:
        price = o * (1.0 + cp.half_spread + cp.slippage_fixed)
        qty = min(qty, affordable_qty(book.pf[CASH], price, cp))
    qty = fillable_qty(qty, v, cp)
    if not qty > 0.0:
        return 0.0
    flags = _PARTIAL if qty < whole * (1.0 - 1e-9) else 0
    market(book, ex, prev, s, t, direction * qty, o, v, pend_i[s, DEC], flags, 0)
    if pos_f[s, QTY] != 0.0:
        pos_f[s, STOP], pos_f[s, TAKE] = stop_prices(
            direction, pos_f[s, ENTRY_PX], pend_f[s, STOP_FRAC], pend_f[s, TAKE_FRAC]
        )
    return qty


@njit
def plan(pending: Pending, p: Slicing, s: int, t: int, volumes: F8, qty: float) -> None:
    """Decide how symbol s's new order of `qty` (decided on bar t's close) is worked.

    Sets its algorithm (`slicing.pick_algo`: the run's, or AUTO's choice from the recent
    volume), the horizon, no child yet and (an entry) the quantity to fill.
    """
    pend_i = pending.pend_i
    pend_i[s, ALGO] = pick_algo(p, qty, volumes, t)
    pend_i[s, LEFT] = p.horizon_bars
    pend_i[s, CHILD] = 0
    pending.pend_f[s, REMAINING] = qty


@njit
def _child(book: Book, pend_i: I8, s: int) -> None:
    """Number the fill just booked as the next child of symbol s's worked order."""
    child = pend_i[s, CHILD] + 1
    pend_i[s, CHILD] = child
    k = book.cnt[N_FILL] - 1
    book.fill_i[k, F_ALGO] = pend_i[s, ALGO]
    book.fill_i[k, F_CHILD] = child


@njit
def work_entry(
    book: Book, ex: Execution, pending: Pending, s: int, t: int, o: float, volumes: F8
) -> None:
    """Fill this bar's child of a worked entry (capped as `fill_entry` is); done at the horizon.

    What the horizon's last child leaves is flagged partial and dropped (the orders table
    shows it unfilled); a parent done early leaves at once.
    """
    pend_f, pend_i = pending.pend_f, pending.pend_i
    left = pend_i[s, LEFT]
    remaining = pend_f[s, REMAINING]
    want = next_child(ex.slicing, pend_i[s, ALGO], remaining, left, volumes, t)
    last = left <= 1
    filled = _enter(book, ex, pending, s, t, o, volumes[t], want, remaining if last else 0.0)
    if filled > 0.0:
        _child(book, pend_i, s)
    remaining -= filled
    pend_f[s, REMAINING] = remaining
    pend_i[s, LEFT] = left - 1
    if last or not remaining > 0.0:
        pend_i[s, KIND] = NONE


@njit
def work_close(
    book: Book, ex: Execution, pending: Pending, s: int, t: int, o: float, volumes: F8
) -> None:
    """Close this bar's child of a worked exit; after the horizon, the rest as volume allows.

    The remainder is the position itself; like `fill_close`, it is never dropped.
    """
    pend_i = pending.pend_i
    held = book.pos_f[s, QTY]
    if held == 0.0:
        pend_i[s, KIND] = NONE
        return
    left = pend_i[s, LEFT]
    want = next_child(ex.slicing, pend_i[s, ALGO], abs(held), left, volumes, t)
    qty = fillable_qty(want, volumes[t], ex.costs)
    pend_i[s, LEFT] = left - 1
    if not qty > 0.0:
        return
    whole = qty >= abs(held)
    signed = -held if whole else (-qty if held > 0.0 else qty)
    flags = _PARTIAL if left <= 1 and not whole else 0
    market(book, ex, pending.prev, s, t, signed, o, volumes[t], pend_i[s, DEC], flags,
           pend_i[s, EXIT])  # fmt: skip
    _child(book, pend_i, s)
    if book.pos_f[s, QTY] == 0.0:
        pend_i[s, KIND] = NONE


@njit
def fill_close(
    book: Book, ex: Execution, pending: Pending, s: int, t: int, o: float, v: float
) -> None:
    """Close the position at the open; what the bar's volume cannot take waits for the next bar."""
    pend_i, prev = pending.pend_i, pending.prev
    held = book.pos_f[s, QTY]
    if held == 0.0:
        pend_i[s, KIND] = NONE
        return
    qty = fillable_qty(abs(held), v, ex.costs)
    if not qty > 0.0:
        return  # no volume: try again next bar
    partial = qty < abs(held)
    signed = -held if not partial else (-qty if held > 0.0 else qty)
    flags = _PARTIAL if partial else 0
    market(book, ex, prev, s, t, signed, o, v, pend_i[s, DEC], flags, pend_i[s, EXIT])
    if not partial:
        pend_i[s, KIND] = NONE


@njit
def rebalance_qty(
    target: float, value: float, held: float, cash: float, price: float, volume: float,
    cp: CostParams,
) -> tuple[float, bool]:  # fmt: skip
    """Return the signed quantity that moves a holding towards `target` × equity, and if partial.

    Flat to 1.0 buys value / (price × (1 + commission)) units (the all-in convention); a buy is
    capped by the cash it can pay for (cash holds any short's proceeds), every order by the
    bar's volume. Target 0 closes the holding exactly.

    >>> rebalance_qty(1.0, 1_000.0, 0.0, 1_000.0, 10.0, 1e9, CostParams.simple(0.0))
    (100.0, False)
    """
    if target == 0.0:
        delta = -held
    else:
        delta = target * value / (price * (1.0 + cp.taker_commission)) - held
    if delta > 0.0:
        paid = price * (1.0 + cp.half_spread + cp.slippage_fixed)
        delta = min(delta, affordable_qty(cash, paid, cp))
    qty = fillable_qty(abs(delta), volume, cp)
    if not qty > 0.0:
        return 0.0, False
    if qty < abs(delta) * (1.0 - 1e-9):
        return (qty if delta > 0.0 else -qty), True
    return delta, False


@njit
def fill_rebalance(
    book: Book, ex: Execution, pending: Pending, s: int, t: int, o: F8, v: float, mark: F8,
    stop_frac: float, take_frac: float,
) -> None:  # fmt: skip
    """Trade symbol s at this bar's open towards its target fraction of equity."""
    pend_f, pend_i, prev = pending
    pos_f, pf = book.pos_f, book.pf
    bo = o[s, t]
    pend_i[s, KIND] = NONE
    for j in range(o.shape[0]):  # value the book at this open where known
        if o[j, t] == o[j, t]:
            mark[j] = o[j, t]
    value = equity_at(pf, pos_f, mark)
    held = pos_f[s, QTY]
    signed, partial = rebalance_qty(pend_f[s, TARGET], value, held, pf[CASH], bo, v, ex.costs)
    if signed == 0.0:
        return
    flags = _PARTIAL if partial else 0
    reopen = held == 0.0 or (held > 0.0) != (held + signed > 0.0)
    market(book, ex, prev, s, t, signed, bo, v, pend_i[s, DEC], flags, _X_SIGNAL)
    if reopen and pos_f[s, QTY] != 0.0:
        direction = 1 if pos_f[s, QTY] > 0.0 else -1
        pos_f[s, STOP], pos_f[s, TAKE] = stop_prices(
            direction, pos_f[s, ENTRY_PX], stop_frac, take_frac
        )


@njit
def intrabar_exit(
    book: Book, ex: Execution, s: int, t: int, o: float, h: float, lo: float, v: float
) -> int:
    """Trigger the position's stop or take-profit inside this bar; return the exit code (0 none)."""
    pos_f = book.pos_f
    held = pos_f[s, QTY]
    direction = 1 if held > 0.0 else -1
    code, reference, is_limit = resolve_exit(direction, pos_f[s, STOP], pos_f[s, TAKE], o, h, lo)
    if code == 0:
        return 0
    price = reference
    predicted = reference
    if not is_limit:  # a triggered stop is a market order from its reference price
        price, _ = market_fill_price(-direction, reference, o, h, lo, abs(held), v, ex.costs)
        predicted, _ = market_fill_price(-direction, reference, o, h, lo, abs(held), v, ex.model)
    fee = commission(abs(held) * price, is_limit, ex.costs)
    apply_fill(book, s, t, -held, price, reference, fee, -1, 0, code)
    if not is_limit:
        observe_cost(book.pf, reference, price, predicted, ex.latency_ms, ex.alpha)
    return int(code)

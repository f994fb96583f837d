"""Orders between a decision and its fill: pending orders, and filling them at the next open.

Shared by the backtester (the compiled loop calls these on its rare paths) and the RL
environment (which rebalances one asset with `rebalance_qty`). A decision taken on bar t's
close leaves a pending order (entry, close, or — for target
strategies — rebalance) that fills at bar t+1's open as a market order priced off the previous
bar's range. Open positions' stops and take-profits trigger inside a bar. These run on the rare
paths of the compiled loop (only when there is something to fill).
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

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]

# pending orders, pend_f[s, …] / pend_i[s, …]
NOTIONAL: Final = 0
STOP_FRAC: Final = 1
TAKE_FRAC: Final = 2
TARGET: Final = 3
PEND_F: Final = 4
KIND: Final = 0
DEC: Final = 1
DIR: Final = 2
EXIT: Final = 3
PEND_I: Final = 4
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
    pend_f, pend_i, prev = pending
    pos_f, cp = book.pos_f, ex.costs
    direction = pend_i[s, DIR]
    wanted = pend_f[s, NOTIONAL] / o
    qty = wanted
    if direction > 0:
        price = o * (1.0 + cp.half_spread + cp.slippage_fixed)
        qty = min(qty, affordable_qty(book.pf[CASH], price, cp))
    qty = fillable_qty(qty, v, cp)
    pend_i[s, KIND] = NONE
    if not qty > 0.0:
        return
    flags = _PARTIAL if qty < wanted * (1.0 - 1e-9) else 0
    market(book, ex, prev, s, t, direction * qty, o, v, pend_i[s, DEC], flags, 0)
    if pos_f[s, QTY] != 0.0:
        pos_f[s, STOP], pos_f[s, TAKE] = stop_prices(
            direction, pos_f[s, ENTRY_PX], pend_f[s, STOP_FRAC], pend_f[s, TAKE_FRAC]
        )


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

"""The account model: cash, positions, fills and round-trip trades, in arrays a compiled loop owns.

State lives in plain numpy arrays so the same functions serve the backtester (a loop over all bars)
and the live engine (one bar at a time), and so a run can stop and resume.

Accounting: a buy of q at price P costs q·P plus commission; a sell brings q·P less commission
(short sales included: cash holds the proceeds, equity = cash + Σ qty·price). A trade opens when a
position leaves zero and closes when it returns to zero (a fill that crosses zero closes one trade
and opens the next); adding to a position averages its entry price. A closed trade's pnl is its
realised price pnl less every commission and borrow cost paid on it; its return is pnl over the
entry price times the largest quantity held.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.jit import njit
from reinforcetrade.features.stats import ewma_step

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]

# position floats, pos_f[s, …]
QTY: Final = 0
ENTRY_PX: Final = 1
STOP: Final = 2
TAKE: Final = 3
COMM: Final = 4
SLIP: Final = 5
BORROW: Final = 6
REALIZED: Final = 7
MAX_QTY: Final = 8
POS_F: Final = 9
# position ints, pos_i[s, …]
ENTRY_T: Final = 0
ENTRY_DEC: Final = 1
POS_I: Final = 2
# portfolio floats, pf[…]
CASH: Final = 0
PEAK: Final = 1
STATE: Final = 2
STREAK: Final = 3
CLOSED: Final = 4
WINS: Final = 5
SUM_WIN: Final = 6
SUM_LOSS: Final = 7
COST_BPS: Final = 8
LATENCY: Final = 9
EXCESS_BPS: Final = 10
PF: Final = 11
# counters, cnt[…]
N_DEC: Final = 0
N_FILL: Final = 1
N_TRADE: Final = 2
CNT: Final = 3

# fill records: ints fill_i[k, …] and floats fill_f[k, …]
F_T: Final = 0
F_SYMBOL: Final = 1
F_SIDE: Final = 2
F_DECISION: Final = 3
F_FLAGS: Final = 4
F_EXIT: Final = 5
F_ALGO: Final = 6  # how its order was worked (`slicing.Algo`; IMMEDIATE: sent whole)
F_CHILD: Final = 7  # the child's number in its worked parent order, from 1 (0: not a child)
FILL_I: Final = 8
F_QTY: Final = 0
F_PRICE: Final = 1
F_REFERENCE: Final = 2
F_COMMISSION: Final = 3
F_SLIPPAGE: Final = 4
FILL_F: Final = 5
# trade records: ints trade_i[k, …] and floats trade_f[k, …]
T_SYMBOL: Final = 0
T_SIDE: Final = 1
T_ENTRY_T: Final = 2
T_EXIT_T: Final = 3
T_EXIT: Final = 4
T_DECISION: Final = 5
TRADE_I: Final = 6
T_QTY: Final = 0
T_ENTRY_PX: Final = 1
T_EXIT_PX: Final = 2
T_COMMISSION: Final = 3
T_SLIPPAGE: Final = 4
T_BORROW: Final = 5
T_PNL: Final = 6
T_RET: Final = 7
TRADE_F: Final = 8


class Book(NamedTuple):
    """An account's arrays: positions, portfolio figures, fill and trade records, counters."""

    pos_f: F8  # (symbols, POS_F)
    pos_i: I8  # (symbols, POS_I)
    pf: F8  # (PF,)
    fill_i: I8  # (capacity, FILL_I)
    fill_f: F8  # (capacity, FILL_F)
    trade_i: I8  # (capacity, TRADE_I)
    trade_f: F8  # (capacity, TRADE_F)
    cnt: I8  # (CNT,): decisions, fills, trades written


def new_book(symbols: int, cash: float, fills: int, trades: int) -> Book:
    """Return an account holding only cash, with room for `fills` fills and `trades` trades."""
    pos_f, pos_i, pf, cnt = new_account(symbols, cash)
    fill_i, fill_f = records(fills, FILL_I, FILL_F)
    trade_i, trade_f = records(trades, TRADE_I, TRADE_F)
    return Book(pos_f, pos_i, pf, fill_i, fill_f, trade_i, trade_f, cnt)


def new_account(symbols: int, cash: float) -> tuple[F8, I8, F8, I8]:
    """Return fresh (pos_f, pos_i, pf, cnt) arrays for an account holding only cash."""
    pos_f = np.zeros((symbols, POS_F), dtype=np.float64)
    pos_f[:, STOP] = np.nan
    pos_f[:, TAKE] = np.nan
    pos_i = np.full((symbols, POS_I), -1, dtype=np.int64)
    pf = np.zeros(PF, dtype=np.float64)
    pf[CASH] = cash
    pf[PEAK] = cash
    pf[COST_BPS] = np.nan
    pf[LATENCY] = np.nan
    pf[EXCESS_BPS] = np.nan
    return pos_f, pos_i, pf, np.zeros(CNT, dtype=np.int64)


def records(capacity: int, ints: int, floats: int) -> tuple[I8, F8]:
    """Return empty (capacity × ints) int64 and (capacity × floats) float64 record tables."""
    return np.empty((capacity, ints), dtype=np.int64), np.empty(
        (capacity, floats), dtype=np.float64
    )


@njit
def _record_trade(
    s: int,
    t: int,
    exit_px: float,
    reason: int,
    pos_f: F8,
    pos_i: I8,
    pf: F8,
    trade_i: I8,
    trade_f: F8,
    cnt: I8,
) -> None:
    """Write the closed trade of symbol s and fold its outcome into the Kelly and streak stats."""
    k = cnt[N_TRADE]
    pnl = pos_f[s, REALIZED] - pos_f[s, COMM] - pos_f[s, BORROW]
    basis = pos_f[s, ENTRY_PX] * pos_f[s, MAX_QTY]
    ret = pnl / basis if basis > 0.0 else 0.0
    trade_i[k, T_SYMBOL] = s
    trade_i[k, T_SIDE] = 1 if pos_f[s, QTY] > 0.0 else -1
    trade_i[k, T_ENTRY_T] = pos_i[s, ENTRY_T]
    trade_i[k, T_EXIT_T] = t
    trade_i[k, T_EXIT] = reason
    trade_i[k, T_DECISION] = pos_i[s, ENTRY_DEC]
    trade_f[k, T_QTY] = pos_f[s, MAX_QTY]
    trade_f[k, T_ENTRY_PX] = pos_f[s, ENTRY_PX]
    trade_f[k, T_EXIT_PX] = exit_px
    trade_f[k, T_COMMISSION] = pos_f[s, COMM]
    trade_f[k, T_SLIPPAGE] = pos_f[s, SLIP]
    trade_f[k, T_BORROW] = pos_f[s, BORROW]
    trade_f[k, T_PNL] = pnl
    trade_f[k, T_RET] = ret
    cnt[N_TRADE] = k + 1
    pf[CLOSED] += 1.0
    if pnl > 0.0:
        pf[WINS] += 1.0
        pf[SUM_WIN] += ret
        pf[STREAK] = 0.0
    else:
        pf[SUM_LOSS] -= ret
        pf[STREAK] += 1.0


@njit
def _open(
    s: int,
    t: int,
    qty: float,
    price: float,
    comm: float,
    slip: float,
    dec: int,
    pos_f: F8,
    pos_i: I8,
) -> None:
    pos_f[s, QTY] = qty
    pos_f[s, ENTRY_PX] = price
    pos_f[s, COMM] = comm
    pos_f[s, SLIP] = slip
    pos_f[s, BORROW] = 0.0
    pos_f[s, REALIZED] = 0.0
    pos_f[s, MAX_QTY] = abs(qty)
    pos_f[s, STOP] = np.nan
    pos_f[s, TAKE] = np.nan
    pos_i[s, ENTRY_T] = t
    pos_i[s, ENTRY_DEC] = dec


@njit
def apply_fill(
    book: Book,
    s: int,
    t: int,
    qty: float,
    price: float,
    reference: float,
    comm: float,
    dec: int,
    flags: int,
    exit_reason: int,
) -> None:
    """Book a fill of signed `qty` at `price` for symbol s: cash, position, fill and trades."""
    pos_f, pos_i, pf, fill_i, fill_f, trade_i, trade_f, cnt = book
    k = cnt[N_FILL]
    slip = abs(qty) * abs(price - reference)
    fill_i[k, F_T] = t
    fill_i[k, F_SYMBOL] = s
    fill_i[k, F_SIDE] = 1 if qty > 0.0 else -1
    fill_i[k, F_DECISION] = dec
    fill_i[k, F_FLAGS] = flags
    fill_i[k, F_EXIT] = exit_reason
    fill_i[k, F_ALGO] = 0
    fill_i[k, F_CHILD] = 0
    fill_f[k, F_QTY] = abs(qty)
    fill_f[k, F_PRICE] = price
    fill_f[k, F_REFERENCE] = reference
    fill_f[k, F_COMMISSION] = comm
    fill_f[k, F_SLIPPAGE] = slip
    cnt[N_FILL] = k + 1
    pf[CASH] -= qty * price + comm
    current = pos_f[s, QTY]
    if current == 0.0:
        _open(s, t, qty, price, comm, slip, dec, pos_f, pos_i)
        return
    if (current > 0.0) == (qty > 0.0):  # adding to the position
        size = abs(current) + abs(qty)
        pos_f[s, ENTRY_PX] = (pos_f[s, ENTRY_PX] * abs(current) + price * abs(qty)) / size
        pos_f[s, QTY] = current + qty
        pos_f[s, COMM] += comm
        pos_f[s, SLIP] += slip
        pos_f[s, MAX_QTY] = max(pos_f[s, MAX_QTY], size)
        return
    closing = min(abs(qty), abs(current))
    share = closing / abs(qty)
    direction = 1.0 if current > 0.0 else -1.0
    pos_f[s, REALIZED] += closing * (price - pos_f[s, ENTRY_PX]) * direction
    pos_f[s, COMM] += comm * share
    pos_f[s, SLIP] += slip * share
    remaining = current + qty
    if abs(qty) < abs(current) and abs(remaining) > 1e-12 * abs(current):
        pos_f[s, QTY] = remaining
        return
    _record_trade(s, t, price, exit_reason, pos_f, pos_i, pf, trade_i, trade_f, cnt)
    pos_f[s, QTY] = 0.0
    pos_f[s, STOP] = np.nan
    pos_f[s, TAKE] = np.nan
    if abs(qty) > abs(current) * (1.0 + 1e-12):  # crossed zero: the rest opens a new trade
        rest = qty + current
        _open(s, t, rest, price, comm * (1.0 - share), slip * (1.0 - share), dec, pos_f, pos_i)


@njit
def observe_cost(
    pf: F8, reference: float, price: float, predicted: float, latency_ms: float, alpha: float
) -> None:
    """Fold a market fill's slippage, its excess over the prediction, and latency into estimates.

    Slippage and excess are in bps of the reference price; the excess is realised slippage less
    what the cost model predicted for the same fill.
    """
    bps = abs(price - reference) / reference * 1e4
    excess = bps - abs(predicted - reference) / reference * 1e4
    pf[COST_BPS] = ewma_step(pf[COST_BPS], bps, alpha)
    pf[EXCESS_BPS] = ewma_step(pf[EXCESS_BPS], excess, alpha)
    pf[LATENCY] = ewma_step(pf[LATENCY], latency_ms, alpha)


@njit
def equity_at(pf: F8, pos_f: F8, prices: F8) -> float:
    """Return cash plus every position marked at `prices`."""
    value = float(pf[CASH])
    for s in range(pos_f.shape[0]):
        q = pos_f[s, QTY]
        if q != 0.0:
            value += q * prices[s]
    return value

"""The compiled bar loop, run in two modes: the multi-agent tower, or plain target positions.

It walks bars in time order and, for every symbol on every bar, in this order:

1. **Open:** the order decided at the previous close fills at this bar's open (market order:
   spread, slippage from the previous bar's range and a square-root impact, capped at a share of
   the bar's volume; an entry is also capped by the cash it can pay for) — see `orders`. An
   order worked by an execution algorithm (`Execution.slicing`) fills one child per bar
   instead, until its horizon ends (`orders.work_entry`, `orders.work_close`).
2. **Intrabar:** an open position's stop-loss or take-profit triggers from this bar's high and low
   (`simulation.fills` rules: gaps fill at the open, a bar touching both takes the stop); it
   cancels what a worked order had left.
3. **Close:** shorts pay borrow; positions are marked at the close; equity, its peak and the
   drawdown halt are updated; then the next orders are decided from signals known at this
   close, to fill at the next bar's open, each entry and signal exit with its algorithm
   (`orders.plan`); a drawdown halt stops entries still being worked. Nothing is decided on
   the last bar.

State lives in arrays (`simulation.account.Book`, `orders.Pending`), so a loop can stop when a
record table is nearly full and resume where it stopped, and a live engine can run it one bar at
a time.

The per-bar phases are written inline in one function on purpose: numba reference-counts every
array argument of a call it cannot inline, so a decision helper taking twenty arrays would cost
some forty atomic operations on every bar. Helpers taking arrays are called only on the rare
paths (fills, decisions).
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from reinforcetrade.agents.tower import (
    TowerParams,
    entry_gates,
    entry_threshold,
    is_reversal,
    tower_vote,
)
from reinforcetrade.backtesting.records import D_ALGO, NOT_SIZED, Sized, Vote, write_decision
from reinforcetrade.core.codes import Action, ExitReason, Reason, TradingState
from reinforcetrade.core.jit import njit
from reinforcetrade.risk.guards import drawdown_breached, entry_denials, stop_fractions
from reinforcetrade.risk.params import RiskParams
from reinforcetrade.risk.sizing import entry_size
from reinforcetrade.simulation.account import (
    BORROW,
    CASH,
    CLOSED,
    COST_BPS,
    EXCESS_BPS,
    F_DECISION,
    N_DEC,
    N_FILL,
    N_TRADE,
    PEAK,
    QTY,
    STATE,
    STOP,
    STREAK,
    SUM_LOSS,
    SUM_WIN,
    TAKE,
    WINS,
    Book,
)
from reinforcetrade.simulation.costs import borrow_cost
from reinforcetrade.simulation.fills import stop_prices
from reinforcetrade.simulation.orders import (
    ALGO,
    CLOSE,
    DEC,
    DIR,
    ENTRY,
    EXIT,
    KIND,
    NONE,
    NOTIONAL,
    P_CLOSE,
    P_HIGH,
    P_LOW,
    P_OPEN,
    REBALANCE,
    STOP_FRAC,
    TAKE_FRAC,
    TARGET,
    Execution,
    Pending,
    fill_close,
    fill_entry,
    fill_rebalance,
    intrabar_exit,
    plan,
    work_close,
    work_entry,
)

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]
I1 = npt.NDArray[np.int8]
B1 = npt.NDArray[np.bool_]

TOWER: Final = 0
TARGETS: Final = 1
LIVE: Final = 2  # the tower's decisions; fills come from a real venue (`apply_fill`), not here

_ENTER_LONG = int(Action.ENTER_LONG)
_ENTER_SHORT = int(Action.ENTER_SHORT)
_EXIT = int(Action.EXIT)
_BLOCKED = int(Action.BLOCKED)
_OK = int(Reason.CONFIDENCE_OK) | int(Reason.CONSENSUS_OK)
_REVERSAL = int(Reason.REVERSAL)
_STOP_LOSS = int(Reason.STOP_LOSS)
_TAKE_PROFIT = int(Reason.TAKE_PROFIT)
_HALTED = int(Reason.HALTED_DRAWDOWN)
_FLATTEN = int(Reason.FLATTEN_ON_HALT)
_SIZE_ZERO = int(Reason.SIZE_ZERO)
_NO_CASH = int(Reason.NO_CASH)
_DENIED = _HALTED | int(Reason.CIRCUIT_BREAKER) | int(Reason.SHORT_DISABLED) | _SIZE_ZERO | _NO_CASH
_X_SIGNAL = int(ExitReason.SIGNAL)
_X_REVERSAL = int(ExitReason.REVERSAL)
_X_STOP = int(ExitReason.STOP_LOSS)
_X_HALT = int(ExitReason.HALT)
_ACTIVE = float(TradingState.ACTIVE)
_REDUCING = float(TradingState.REDUCING)
_HALTED_STATE = float(TradingState.HALTED)


class TowerInputs(NamedTuple):
    """What the agents and the tower hand the loop (placeholders in TARGETS mode)."""

    directions: I1  # (symbols, bars, agents)
    confidences: F8  # (symbols, bars, agents)
    regime: I1  # (symbols, bars)
    vol_regime: I1
    trend_regime: I1
    breaker: B1
    ready: B1
    weights: F8  # (regimes, agents)
    tower: TowerParams
    risk: RiskParams


class Track(NamedTuple):
    """Per-run arrays beside the book: marks, breaker cool-downs, targets, and per-bar output."""

    mark: F8  # (symbols,) last known price of each symbol
    breaker_until: I8  # (symbols,) first bar on which entries are allowed again
    current: F8  # (symbols,) the last target position (TARGETS mode)
    equity: F8  # (bars,)
    cash: F8  # (bars,)
    exposure: F8  # (symbols, bars) signed exposure as a fraction of equity
    vote: F8  # (symbols, bars) the tower's signed confidence (NaN where it did not vote)
    threshold: F8  # (symbols, bars) the entry threshold in force (NaN where it did not vote)
    state: I1  # (bars,) the risk state at the close (TradingState)
    dec_i: I8  # decision rows (see `records`)
    dec_f: F8


@njit
def run_bars(  # noqa: C901 - one loop on purpose: a call per bar refcounts every array
    t0: int,
    t1: int,
    mode: int,
    warmup: int,
    o: F8,
    h: F8,
    lo: F8,
    c: F8,
    v: F8,
    targets: F8,
    stop_frac: float,
    take_frac: float,
    signals: TowerInputs,
    ex: Execution,
    book: Book,
    pending: Pending,
    track: Track,
    room: int,
) -> int:
    """Run bars t0 ≤ t < t1 in `mode` TOWER (multi-agent), TARGETS or LIVE; return the next bar.

    LIVE is TOWER without the open and intrabar phases: a real venue fills the orders and the
    live engine books its fills into the same book (`apply_fill`).

    TARGETS: `targets[s, t]` is a fraction of equity in [-1, 1] (NaN keeps the last one); an
    order goes out only when it changes, to fill at the next open; flat to 1.0 buys
    cash / (open × (1 + commission)) units. TOWER: the agents' votes go through the Decision
    Tower and the risk manager. Both modes share the open, intrabar and close phases. Stops
    early, returning the bar after the last one run, when fewer than `room` free rows remain in a
    record table; the caller grows the tables and calls again from there.
    """
    directions, confidences, regime, vol_regime, trend_regime, breaker, ready, weights, tp, rp = (
        signals
    )
    pos_f, _, pf, fill_i, _, trade_i, _, cnt = book
    pend_f, pend_i, prev = pending
    mark, breaker_until, current, equity, cash, exposure, vote, thresholds, state, dec_i, dec_f = (
        track
    )
    n_sym = o.shape[0]
    last = o.shape[1] - 1
    for t in range(t0, t1):
        # -- open and intrabar: fills of orders decided at the previous close, then stops --
        for s in range(n_sym):
            bo = o[s, t]
            if not (bo == bo) or mode == LIVE:
                continue
            kind = pend_i[s, KIND]
            if kind == ENTRY:
                if pend_i[s, ALGO] == 0:
                    fill_entry(book, ex, pending, s, t, bo, v[s, t])
                else:
                    work_entry(book, ex, pending, s, t, bo, v[s])
            elif kind == CLOSE:
                if pend_i[s, ALGO] == 0:
                    fill_close(book, ex, pending, s, t, bo, v[s, t])
                else:
                    work_close(book, ex, pending, s, t, bo, v[s])
            elif kind == REBALANCE:
                fill_rebalance(book, ex, pending, s, t, o, v[s, t], mark, stop_frac, take_frac)
            if pos_f[s, QTY] != 0.0 and (
                pos_f[s, STOP] == pos_f[s, STOP] or pos_f[s, TAKE] == pos_f[s, TAKE]
            ):
                code = intrabar_exit(book, ex, s, t, bo, h[s, t], lo[s, t], v[s, t])
                if code != 0 and mode == TOWER:
                    seen = Vote(0, 0.0, regime[s, t], vol_regime[s, t], trend_regime[s, t], 0)
                    bit = _STOP_LOSS if code == _X_STOP else _TAKE_PROFIT
                    k = write_decision(dec_i, dec_f, cnt, t, s, _EXIT, seen, NOT_SIZED, bit,
                                       pf[COST_BPS], np.nan, code)  # fmt: skip
                    fill_i[cnt[N_FILL] - 1, F_DECISION] = k
                    if pend_i[s, KIND] != NONE:  # a pending close, or what an entry had left
                        pend_i[s, KIND] = NONE
        # -- close: borrow, mark to market, equity and its peak --
        value = pf[CASH]
        for s in range(n_sym):
            close = c[s, t]
            if close == close:
                mark[s] = close
                q = pos_f[s, QTY]
                if q < 0.0:
                    cost = borrow_cost(q * close, ex.costs)
                    pf[CASH] -= cost
                    pos_f[s, BORROW] += cost
                    value -= cost
            if pos_f[s, QTY] != 0.0:
                value += pos_f[s, QTY] * mark[s]
        if value > pf[PEAK]:
            pf[PEAK] = value
        gross = 0.0
        for s in range(n_sym):
            x = pos_f[s, QTY] * mark[s] / value if value > 0.0 else 0.0
            exposure[s, t] = x
            gross += abs(x)
        equity[t] = value
        cash[t] = pf[CASH]
        # -- decisions at the close, to fill at the next open (none on the last bar) --
        if mode == TARGETS:
            for s in range(n_sym):
                target = targets[s, t]
                if t >= last or not (target == target) or not (c[s, t] == c[s, t]):
                    continue
                if target == current[s]:
                    continue
                action = _EXIT if target == 0.0 else (_ENTER_LONG if target > 0.0 else _ENTER_SHORT)
                asked = Vote(int(np.sign(target)), 1.0, 0, 1, 0, 0)
                sized = Sized(abs(target), 0.0, np.nan, np.nan)
                reason = _X_SIGNAL if target == 0.0 else 0
                k = write_decision(dec_i, dec_f, cnt, t, s, action, asked, sized, 0, pf[COST_BPS],
                                   np.nan, reason)  # fmt: skip
                current[s] = target
                pend_i[s, KIND] = REBALANCE
                pend_i[s, DEC] = k
                pend_f[s, TARGET] = target
        else:
            halted = pf[STATE] == _HALTED_STATE
            if not halted and drawdown_breached(value, pf[PEAK], rp):
                pf[STATE] = _HALTED_STATE
                halted = True
                if mode == TOWER:  # entries still being worked stop here
                    for s in range(n_sym):
                        if pend_i[s, KIND] == ENTRY:
                            pend_i[s, KIND] = NONE
                if rp.flatten_on_halt and t < last:
                    for s in range(n_sym):
                        if pos_f[s, QTY] == 0.0 or pend_i[s, KIND] == CLOSE:
                            continue
                        seen = Vote(0, 0.0, regime[s, t], vol_regime[s, t], trend_regime[s, t], 0)
                        sized = Sized(0.0, abs(pos_f[s, QTY]), np.nan, np.nan)
                        why = _HALTED | _FLATTEN
                        k = write_decision(dec_i, dec_f, cnt, t, s, _EXIT, seen, sized, why,
                                           pf[COST_BPS], np.nan, _X_HALT)  # fmt: skip
                        pend_i[s, KIND] = CLOSE
                        pend_i[s, DEC] = k
                        pend_i[s, EXIT] = _X_HALT
                        pend_i[s, ALGO] = 0  # a halt closes at once
            if t >= warmup and t < last:
                if not halted:
                    pf[STATE] = _REDUCING if pf[STREAK] >= rp.streak_limit else _ACTIVE
                for s in range(n_sym):
                    price = c[s, t]
                    if not (price == price) or not ready[s, t]:
                        continue
                    if breaker[s, t]:
                        breaker_until[s] = t + rp.breaker_cooldown + 1
                    r = regime[s, t]
                    d, conf, agree = tower_vote(directions[s, t], confidences[s, t], weights[r])
                    seen = Vote(d, conf, r, vol_regime[s, t], trend_regime[s, t], agree)
                    threshold, cost_bit = entry_threshold(tp, pf[EXCESS_BPS])
                    vote[s, t] = d * conf
                    thresholds[s, t] = threshold
                    held = pos_f[s, QTY]
                    if held != 0.0:  # in a position: exit on a confident reversal, else hold
                        if pend_i[s, KIND] != CLOSE and is_reversal(
                            held, d, conf, tp.exit_confidence
                        ):
                            sized = Sized(0.0, abs(held), np.nan, np.nan)
                            k = write_decision(dec_i, dec_f, cnt, t, s, _EXIT, seen, sized,
                                               _REVERSAL, pf[COST_BPS], tp.exit_confidence,
                                               _X_REVERSAL)  # fmt: skip
                            pend_i[s, KIND] = CLOSE
                            pend_i[s, DEC] = k
                            pend_i[s, EXIT] = _X_REVERSAL
                            plan(pending, ex.slicing, s, t, v[s], abs(held))
                            dec_i[k, D_ALGO] = pend_i[s, ALGO]
                        continue
                    if d == 0 or pend_i[s, KIND] != NONE:
                        continue
                    bits = entry_gates(conf, agree, threshold, tp.consensus) | cost_bit
                    size = 0.0
                    if bits & _OK == _OK:  # both gates passed: the risk manager's turn
                        bits |= entry_denials(halted, breaker_until[s], t, d, rp)
                        if not bits & _DENIED:
                            size, size_bits = entry_size(
                                conf, pf[CLOSED], pf[WINS], pf[SUM_WIN], pf[SUM_LOSS],
                                int(pf[STREAK]), abs(exposure[s, t]), gross, rp,
                            )  # fmt: skip
                            bits |= size_bits
                            if size <= 0.0:
                                bits |= _SIZE_ZERO
                            elif d > 0 and pf[CASH] <= 0.0:
                                bits |= _NO_CASH
                    elif not bits & _OK:
                        continue  # neither gate passed: not a candidate worth recording
                    if bits & _OK != _OK or bits & _DENIED:  # a blocked entry, with its reasons
                        write_decision(dec_i, dec_f, cnt, t, s, _BLOCKED, seen, NOT_SIZED, bits,
                                       pf[COST_BPS], threshold, 0)  # fmt: skip
                        continue
                    stop_fraction, take_fraction, wide = stop_fractions(vol_regime[s, t], rp)
                    stop, take = stop_prices(d, price, stop_fraction, take_fraction)
                    notional = size * value
                    action = _ENTER_LONG if d > 0 else _ENTER_SHORT
                    sized = Sized(size, notional / price, stop, take)
                    k = write_decision(dec_i, dec_f, cnt, t, s, action, seen, sized, bits | wide,
                                       pf[COST_BPS], threshold, 0)  # fmt: skip
                    pend_i[s, KIND] = ENTRY
                    pend_i[s, DEC] = k
                    pend_i[s, DIR] = d
                    pend_f[s, NOTIONAL] = notional
                    pend_f[s, STOP_FRAC] = stop_fraction
                    pend_f[s, TAKE_FRAC] = take_fraction
                    plan(pending, ex.slicing, s, t, v[s], sized.qty)
                    dec_i[k, D_ALGO] = pend_i[s, ALGO]
                    gross += size
        state[t] = int(pf[STATE])
        for s in range(n_sym):
            if o[s, t] == o[s, t]:
                prev[s, P_OPEN] = o[s, t]
                prev[s, P_HIGH] = h[s, t]
                prev[s, P_LOW] = lo[s, t]
                prev[s, P_CLOSE] = c[s, t]
        if (
            cnt[N_DEC] + room > dec_i.shape[0]
            or cnt[N_FILL] + room > fill_i.shape[0]
            or cnt[N_TRADE] + room > trade_i.shape[0]
        ):
            return t + 1
    return t1

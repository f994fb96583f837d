"""The compiled bar loop, run in two modes: the multi-agent tower, or plain target positions.

It walks bars in time order and, for every symbol on every bar, in this order:

1. **Open:** the order decided at the previous close fills at this bar's open (market order:
   spread, slippage from the previous bar's range and a square-root impact, capped at a share of
   the bar's volume; an entry is also capped by the cash it can pay for).
2. **Intrabar:** an open position's stop-loss or take-profit triggers from this bar's high and low
   (`simulation.fills` rules: gaps fill at the open, a bar touching both takes the stop).
3. **Close:** shorts pay borrow; positions are marked at the close; equity, its peak and the
   drawdown halt are updated; then the next orders are decided from signals known at this
   close, to fill at the next bar's open. Nothing is decided on the last bar.

State lives in arrays (see `simulation.account`), so a loop can stop when an output buffer is
nearly full and resume where it stopped, and a live engine can run it one bar at a time.

The per-bar phases are written inline in one function on purpose: numba reference-counts every
array argument of a call it cannot inline, so a decision helper taking twenty arrays would cost
some forty atomic operations on every bar. Helpers are called only on the rare paths (fills).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from reinforcetrade.agents.tower import (
    TowerParams,
    entry_gates,
    entry_threshold,
    is_reversal,
    tower_vote,
)
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
    apply_fill,
    equity_at,
    observe_cost,
)
from reinforcetrade.simulation.costs import (
    CostParams,
    affordable_qty,
    borrow_cost,
    commission,
    fillable_qty,
    market_fill_price,
)
from reinforcetrade.simulation.fills import resolve_exit, stop_prices

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]
I1 = npt.NDArray[np.int8]
B1 = npt.NDArray[np.bool_]

# decision records: ints dec_i[k, …] and floats dec_f[k, …]
D_T: Final = 0
D_SYMBOL: Final = 1
D_ACTION: Final = 2
D_DIRECTION: Final = 3
D_REGIME: Final = 4
D_VOL: Final = 5
D_TREND: Final = 6
D_AGREEING: Final = 7
D_REASONS: Final = 8
D_EXIT: Final = 9
DEC_I: Final = 10
D_CONFIDENCE: Final = 0
D_SIZE: Final = 1
D_QTY: Final = 2
D_STOP: Final = 3
D_TAKE: Final = 4
D_COST: Final = 5
D_THRESHOLD: Final = 6
DEC_F: Final = 7

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

_ENTER_LONG = int(Action.ENTER_LONG)
_ENTER_SHORT = int(Action.ENTER_SHORT)
_EXIT = int(Action.EXIT)
_BLOCKED = int(Action.BLOCKED)
_OK = int(Reason.CONFIDENCE_OK) | int(Reason.CONSENSUS_OK)
_PARTIAL = int(Reason.PARTIAL_FILL)
_NO_LIQUIDITY = int(Reason.NO_LIQUIDITY)
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


def new_pending(symbols: int) -> tuple[F8, I8, F8]:
    """Return empty pending-order arrays and the previous-bar array for `symbols` symbols."""
    pend_f = np.zeros((symbols, PEND_F), dtype=np.float64)
    pend_f[:, TARGET] = 0.0
    pend_i = np.zeros((symbols, PEND_I), dtype=np.int64)
    prev = np.full((symbols, 4), np.nan, dtype=np.float64)
    return pend_f, pend_i, prev


@njit
def _decide(
    dec_i: I8,
    dec_f: F8,
    cnt: I8,
    t: int,
    s: int,
    action: int,
    direction: int,
    confidence: float,
    regime: int,
    vol_regime: int,
    trend_regime: int,
    agreeing: int,
    size: float,
    qty: float,
    stop: float,
    take: float,
    reasons: int,
    cost: float,
    threshold: float,
    exit_reason: int,
) -> int:
    """Write one Decision row and return its index."""
    k = cnt[N_DEC]
    dec_i[k, D_T] = t
    dec_i[k, D_SYMBOL] = s
    dec_i[k, D_ACTION] = action
    dec_i[k, D_DIRECTION] = direction
    dec_i[k, D_REGIME] = regime
    dec_i[k, D_VOL] = vol_regime
    dec_i[k, D_TREND] = trend_regime
    dec_i[k, D_AGREEING] = agreeing
    dec_i[k, D_REASONS] = reasons
    dec_i[k, D_EXIT] = exit_reason
    dec_f[k, D_CONFIDENCE] = confidence
    dec_f[k, D_SIZE] = size
    dec_f[k, D_QTY] = qty
    dec_f[k, D_STOP] = stop
    dec_f[k, D_TAKE] = take
    dec_f[k, D_COST] = cost
    dec_f[k, D_THRESHOLD] = threshold
    cnt[N_DEC] = k + 1
    return int(k)


@njit
def _market(
    s: int,
    t: int,
    qty: float,
    o: float,
    v: float,
    prev: F8,
    dec: int,
    flags: int,
    reason: int,
    cp: CostParams,
    cm: CostParams,
    latency: float,
    alpha: float,
    pos_f: F8,
    pos_i: I8,
    pf: F8,
    fill_i: I8,
    fill_f: F8,
    trade_i: I8,
    trade_f: F8,
    cnt: I8,
) -> None:
    """Fill a market order of signed qty at this bar's open, priced off the previous bar's range."""
    side = 1 if qty > 0.0 else -1
    high, low, ref_open = prev[s, P_HIGH], prev[s, P_LOW], prev[s, P_OPEN]
    if not (ref_open == ref_open):  # first bar: no range known yet
        high, low, ref_open = o, o, o
    price, _ = market_fill_price(side, o, ref_open, high, low, abs(qty), v, cp)
    predicted, _ = market_fill_price(side, o, ref_open, high, low, abs(qty), v, cm)
    fee = commission(abs(qty) * price, False, cp)
    apply_fill(
        s,
        t,
        qty,
        price,
        o,
        fee,
        dec,
        flags,
        reason,
        pos_f,
        pos_i,
        pf,
        fill_i,
        fill_f,
        trade_i,
        trade_f,
        cnt,
    )
    observe_cost(pf, o, price, predicted, latency, alpha)


@njit
def _fill_pending_entry(
    s: int,
    t: int,
    o: float,
    v: float,
    prev: F8,
    pend_f: F8,
    pend_i: I8,
    cp: CostParams,
    cm: CostParams,
    latency: float,
    alpha: float,
    pos_f: F8,
    pos_i: I8,
    pf: F8,
    fill_i: I8,
    fill_f: F8,
    trade_i: I8,
    trade_f: F8,
    cnt: I8,
) -> None:
    """Fill a pending entry: its notional at the open, capped by cash and the bar's volume."""
    direction = pend_i[s, DIR]
    wanted = pend_f[s, NOTIONAL] / o
    qty = wanted
    if direction > 0:
        qty = min(qty, affordable_qty(pf[CASH], o * (1.0 + cp.half_spread + cp.slippage_fixed), cp))
    qty = fillable_qty(qty, v, cp)
    pend_i[s, KIND] = NONE
    if not qty > 0.0:
        return
    flags = _PARTIAL if qty < wanted * (1.0 - 1e-9) else 0
    _market(
        s,
        t,
        direction * qty,
        o,
        v,
        prev,
        pend_i[s, DEC],
        flags,
        0,
        cp,
        cm,
        latency,
        alpha,
        pos_f,
        pos_i,
        pf,
        fill_i,
        fill_f,
        trade_i,
        trade_f,
        cnt,
    )
    if pos_f[s, QTY] != 0.0:
        stop, take = stop_prices(direction, pos_f[s, 1], pend_f[s, STOP_FRAC], pend_f[s, TAKE_FRAC])
        pos_f[s, STOP] = stop
        pos_f[s, TAKE] = take


@njit
def _fill_pending_close(
    s: int,
    t: int,
    o: float,
    v: float,
    prev: F8,
    pend_i: I8,
    cp: CostParams,
    cm: CostParams,
    latency: float,
    alpha: float,
    pos_f: F8,
    pos_i: I8,
    pf: F8,
    fill_i: I8,
    fill_f: F8,
    trade_i: I8,
    trade_f: F8,
    cnt: I8,
) -> None:
    """Close the position at the open; what the bar's volume cannot take waits for the next bar."""
    held = pos_f[s, QTY]
    if held == 0.0:
        pend_i[s, KIND] = NONE
        return
    qty = fillable_qty(abs(held), v, cp)
    if not qty > 0.0:
        return  # no volume: try again next bar
    partial = qty < abs(held)
    flags = _PARTIAL if partial else 0
    signed = -held if not partial else (-qty if held > 0.0 else qty)
    _market(
        s,
        t,
        signed,
        o,
        v,
        prev,
        pend_i[s, DEC],
        flags,
        pend_i[s, EXIT],
        cp,
        cm,
        latency,
        alpha,
        pos_f,
        pos_i,
        pf,
        fill_i,
        fill_f,
        trade_i,
        trade_f,
        cnt,
    )
    if not partial:
        pend_i[s, KIND] = NONE


@njit
def _intrabar_exit(
    s: int,
    t: int,
    o: float,
    h: float,
    lo: float,
    v: float,
    cp: CostParams,
    cm: CostParams,
    latency: float,
    alpha: float,
    pos_f: F8,
    pos_i: I8,
    pf: F8,
    fill_i: I8,
    fill_f: F8,
    trade_i: I8,
    trade_f: F8,
    cnt: I8,
) -> int:
    """Trigger the position's stop or take-profit inside this bar; return the exit code (0 none)."""
    held = pos_f[s, QTY]
    direction = 1 if held > 0.0 else -1
    code, reference, is_limit = resolve_exit(direction, pos_f[s, STOP], pos_f[s, TAKE], o, h, lo)
    if code == 0:
        return 0
    price = reference
    predicted = reference
    if not is_limit:  # a triggered stop is a market order from its reference price
        price, _ = market_fill_price(-direction, reference, o, h, lo, abs(held), v, cp)
        predicted, _ = market_fill_price(-direction, reference, o, h, lo, abs(held), v, cm)
    fee = commission(abs(held) * price, is_limit, cp)
    apply_fill(
        s,
        t,
        -held,
        price,
        reference,
        fee,
        -1,
        0,
        code,
        pos_f,
        pos_i,
        pf,
        fill_i,
        fill_f,
        trade_i,
        trade_f,
        cnt,
    )
    if not is_limit:
        observe_cost(pf, reference, price, predicted, latency, alpha)
    return code


@njit
def _rebalance(
    s: int,
    t: int,
    o: F8,
    v: float,
    prev: F8,
    pend_f: F8,
    pend_i: I8,
    stop_frac: float,
    take_frac: float,
    cp: CostParams,
    cm: CostParams,
    latency: float,
    alpha: float,
    pos_f: F8,
    pos_i: I8,
    pf: F8,
    fill_i: I8,
    fill_f: F8,
    trade_i: I8,
    trade_f: F8,
    cnt: I8,
    mark: F8,
) -> None:
    """Trade symbol s at this bar's open towards its target fraction of equity."""
    bo = o[s, t]
    pend_i[s, KIND] = NONE
    for j in range(o.shape[0]):  # value the book at this open where known
        if o[j, t] == o[j, t]:
            mark[j] = o[j, t]
    value = equity_at(pf, pos_f, mark)
    target = pend_f[s, TARGET]
    held = pos_f[s, QTY]
    if target == 0.0:
        delta = -held
    else:
        delta = target * value / (bo * (1.0 + cp.taker_commission)) - held
    if delta > 0.0:  # buying is paid from cash (which holds any short's proceeds)
        cap = affordable_qty(pf[CASH], bo * (1.0 + cp.half_spread + cp.slippage_fixed), cp)
        delta = min(delta, cap)
    qty = fillable_qty(abs(delta), v, cp)
    if not qty > 0.0:
        return
    flags = _PARTIAL if qty < abs(delta) * (1.0 - 1e-9) else 0
    signed = qty if delta > 0.0 else -qty
    if flags == 0:
        signed = delta
    reopen = held == 0.0 or (held > 0.0) != (held + signed > 0.0)
    _market(
        s,
        t,
        signed,
        bo,
        v,
        prev,
        pend_i[s, DEC],
        flags,
        _X_SIGNAL,
        cp,
        cm,
        latency,
        alpha,
        pos_f,
        pos_i,
        pf,
        fill_i,
        fill_f,
        trade_i,
        trade_f,
        cnt,
    )
    if reopen and pos_f[s, QTY] != 0.0:
        direction = 1 if pos_f[s, QTY] > 0.0 else -1
        stop, take = stop_prices(direction, pos_f[s, 1], stop_frac, take_frac)
        pos_f[s, STOP] = stop
        pos_f[s, TAKE] = take


TOWER: Final = 0
TARGETS: Final = 1


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
    directions: I1,
    confidences: F8,
    regime: I1,
    vol_regime: I1,
    trend_regime: I1,
    breaker: B1,
    ready: B1,
    weights: F8,
    tp: TowerParams,
    rp: RiskParams,
    cp: CostParams,
    cm: CostParams,
    latency: float,
    alpha: float,
    pos_f: F8,
    pos_i: I8,
    pf: F8,
    pend_f: F8,
    pend_i: I8,
    prev: F8,
    mark: F8,
    breaker_until: I8,
    current: F8,
    equity: F8,
    cash: F8,
    exposure: F8,
    dec_i: I8,
    dec_f: F8,
    fill_i: I8,
    fill_f: F8,
    trade_i: I8,
    trade_f: F8,
    cnt: I8,
    room: int,
) -> int:
    """Run bars t0 ≤ t < t1 in `mode` TOWER (multi-agent) or TARGETS; return the next bar to run.

    TARGETS: `targets[s, t]` is a fraction of equity in [-1, 1] (NaN keeps the last one); an
    order goes out only when it changes, to fill at the next open; flat to 1.0 buys
    cash / (open × (1 + commission)) units. TOWER: the agents' votes go through the Decision
    Tower and the risk manager. Both modes share
    the open, intrabar and close phases. Stops early, returning the bar after the last one run,
    when fewer than `room` free rows remain in an output table; the caller grows the tables and
    calls again from there. Array arguments the TOWER inputs need are ignored in TARGETS mode
    (pass 1-element dummies), and `targets` is ignored in TOWER mode.
    """
    n_sym = o.shape[0]
    last = o.shape[1] - 1
    for t in range(t0, t1):
        # -- open and intrabar: fills of orders decided at the previous close, then stops --
        for s in range(n_sym):
            bo = o[s, t]
            if not (bo == bo):
                continue
            kind = pend_i[s, KIND]
            if kind == ENTRY:
                _fill_pending_entry(
                    s,
                    t,
                    bo,
                    v[s, t],
                    prev,
                    pend_f,
                    pend_i,
                    cp,
                    cm,
                    latency,
                    alpha,
                    pos_f,
                    pos_i,
                    pf,
                    fill_i,
                    fill_f,
                    trade_i,
                    trade_f,
                    cnt,
                )
            elif kind == CLOSE:
                _fill_pending_close(
                    s,
                    t,
                    bo,
                    v[s, t],
                    prev,
                    pend_i,
                    cp,
                    cm,
                    latency,
                    alpha,
                    pos_f,
                    pos_i,
                    pf,
                    fill_i,
                    fill_f,
                    trade_i,
                    trade_f,
                    cnt,
                )
            elif kind == REBALANCE:
                _rebalance(
                    s,
                    t,
                    o,
                    v[s, t],
                    prev,
                    pend_f,
                    pend_i,
                    stop_frac,
                    take_frac,
                    cp,
                    cm,
                    latency,
                    alpha,
                    pos_f,
                    pos_i,
                    pf,
                    fill_i,
                    fill_f,
                    trade_i,
                    trade_f,
                    cnt,
                    mark,
                )
            if pos_f[s, QTY] != 0.0 and (
                pos_f[s, STOP] == pos_f[s, STOP] or (pos_f[s, TAKE] == pos_f[s, TAKE])
            ):
                code = _intrabar_exit(
                    s,
                    t,
                    bo,
                    h[s, t],
                    lo[s, t],
                    v[s, t],
                    cp,
                    cm,
                    latency,
                    alpha,
                    pos_f,
                    pos_i,
                    pf,
                    fill_i,
                    fill_f,
                    trade_i,
                    trade_f,
                    cnt,
                )
                if code != 0 and mode == TOWER:
                    bit = _STOP_LOSS if code == _X_STOP else _TAKE_PROFIT
                    k = _decide(
                        dec_i,
                        dec_f,
                        cnt,
                        t,
                        s,
                        _EXIT,
                        0,
                        0.0,
                        regime[s, t],
                        vol_regime[s, t],
                        trend_regime[s, t],
                        0,
                        0.0,
                        0.0,
                        np.nan,
                        np.nan,
                        bit,
                        pf[COST_BPS],
                        np.nan,
                        code,
                    )
                    fill_i[cnt[N_FILL] - 1, F_DECISION] = k
                    if pend_i[s, KIND] == CLOSE:
                        pend_i[s, KIND] = NONE
        # -- close: borrow, mark to market, equity and its peak --
        value = pf[CASH]
        for s in range(n_sym):
            close = c[s, t]
            if close == close:
                mark[s] = close
                q = pos_f[s, QTY]
                if q < 0.0:
                    cost = borrow_cost(q * close, cp)
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
                k = _decide(
                    dec_i,
                    dec_f,
                    cnt,
                    t,
                    s,
                    action,
                    int(np.sign(target)),
                    1.0,
                    0,
                    1,
                    0,
                    0,
                    abs(target),
                    0.0,
                    np.nan,
                    np.nan,
                    0,
                    pf[COST_BPS],
                    np.nan,
                    _X_SIGNAL if target == 0.0 else 0,
                )
                current[s] = target
                pend_i[s, KIND] = REBALANCE
                pend_i[s, DEC] = k
                pend_f[s, TARGET] = target
        else:
            halted = pf[STATE] == _HALTED_STATE
            if not halted and drawdown_breached(value, pf[PEAK], rp):
                pf[STATE] = _HALTED_STATE
                halted = True
                if rp.flatten_on_halt and t < last:
                    for s in range(n_sym):
                        if pos_f[s, QTY] != 0.0 and pend_i[s, KIND] != CLOSE:
                            k = _decide(
                                dec_i,
                                dec_f,
                                cnt,
                                t,
                                s,
                                _EXIT,
                                0,
                                0.0,
                                regime[s, t],
                                vol_regime[s, t],
                                trend_regime[s, t],
                                0,
                                0.0,
                                abs(pos_f[s, QTY]),
                                np.nan,
                                np.nan,
                                _HALTED | _FLATTEN,
                                pf[COST_BPS],
                                np.nan,
                                _X_HALT,
                            )
                            pend_i[s, KIND] = CLOSE
                            pend_i[s, DEC] = k
                            pend_i[s, EXIT] = _X_HALT
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
                    held = pos_f[s, QTY]
                    if held != 0.0:
                        if pend_i[s, KIND] != CLOSE and is_reversal(
                            held, d, conf, tp.exit_confidence
                        ):
                            k = _decide(
                                dec_i,
                                dec_f,
                                cnt,
                                t,
                                s,
                                _EXIT,
                                d,
                                conf,
                                r,
                                vol_regime[s, t],
                                trend_regime[s, t],
                                agree,
                                0.0,
                                abs(held),
                                np.nan,
                                np.nan,
                                _REVERSAL,
                                pf[COST_BPS],
                                tp.exit_confidence,
                                _X_REVERSAL,
                            )
                            pend_i[s, KIND] = CLOSE
                            pend_i[s, DEC] = k
                            pend_i[s, EXIT] = _X_REVERSAL
                        continue
                    if d == 0 or pend_i[s, KIND] != NONE:
                        continue
                    threshold, cost_bit = entry_threshold(tp, pf[EXCESS_BPS])
                    gates = entry_gates(conf, agree, threshold, tp.consensus) | cost_bit
                    if gates & _OK != _OK:
                        if gates & _OK:  # one gate passed: a near miss worth recording
                            _decide(
                                dec_i,
                                dec_f,
                                cnt,
                                t,
                                s,
                                _BLOCKED,
                                d,
                                conf,
                                r,
                                vol_regime[s, t],
                                trend_regime[s, t],
                                agree,
                                0.0,
                                0.0,
                                np.nan,
                                np.nan,
                                gates,
                                pf[COST_BPS],
                                threshold,
                                0,
                            )
                        continue
                    bits = gates | entry_denials(halted, breaker_until[s], t, d, rp)
                    size = 0.0
                    if bits == gates:
                        size, size_bits = entry_size(
                            conf,
                            pf[CLOSED],
                            pf[WINS],
                            pf[SUM_WIN],
                            pf[SUM_LOSS],
                            int(pf[STREAK]),
                            abs(exposure[s, t]),
                            gross,
                            rp,
                        )
                        bits |= size_bits
                        if size <= 0.0:
                            bits |= _SIZE_ZERO
                        elif d > 0 and pf[CASH] <= 0.0:
                            bits |= _NO_CASH
                    if bits & _DENIED:
                        _decide(
                            dec_i,
                            dec_f,
                            cnt,
                            t,
                            s,
                            _BLOCKED,
                            d,
                            conf,
                            r,
                            vol_regime[s, t],
                            trend_regime[s, t],
                            agree,
                            0.0,
                            0.0,
                            np.nan,
                            np.nan,
                            bits,
                            pf[COST_BPS],
                            threshold,
                            0,
                        )
                        continue
                    stop_fraction, take_fraction, wide = stop_fractions(vol_regime[s, t], rp)
                    stop, take = stop_prices(d, price, stop_fraction, take_fraction)
                    notional = size * value
                    action = _ENTER_LONG if d > 0 else _ENTER_SHORT
                    k = _decide(
                        dec_i,
                        dec_f,
                        cnt,
                        t,
                        s,
                        action,
                        d,
                        conf,
                        r,
                        vol_regime[s, t],
                        trend_regime[s, t],
                        agree,
                        size,
                        notional / price,
                        stop,
                        take,
                        bits | wide,
                        pf[COST_BPS],
                        threshold,
                        0,
                    )
                    pend_i[s, KIND] = ENTRY
                    pend_i[s, DEC] = k
                    pend_i[s, DIR] = d
                    pend_f[s, NOTIONAL] = notional
                    pend_f[s, STOP_FRAC] = stop_fraction
                    pend_f[s, TAKE_FRAC] = take_fraction
                    gross += size
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

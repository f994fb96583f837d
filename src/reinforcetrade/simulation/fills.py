"""Intrabar stop-loss and take-profit exits, resolved from one bar's open, high and low.

A position's direction is +1 (long) or -1 (short). A long's stop lies below its entry and its
take-profit above; a short's the other way round. Either level may be NaN (absent). The rules,
checked in this order (a candle-by-candle table test pins each):

1. **Gap through the stop.** The bar opens at or beyond the stop (long: open ≤ stop; short:
   open ≥ stop): the stop fills at the OPEN, not at the stop price, which traded nowhere.
2. **Gap through the take-profit.** The bar opens at or beyond the take-profit: it fills at the
   open, the better price. The open is the bar's first trade, so the take-profit came first
   even if the bar later reaches the stop.
3. **Stop touched.** The bar's low (long) or high (short) reaches the stop: it fills at the stop
   price. This is checked before the take-profit, so when one bar touches both levels the
   STOP is taken: the path inside the bar is unknown, and the loss is the conservative guess.
4. **Take-profit touched.** The bar's high (long) or low (short) reaches it: fills at the take
   price.

Touching a level exactly counts as a touch. A NaN level, or a NaN price in the bar, never
triggers. A stop is a market order once triggered: it pays taker commission and slippage from
its reference price (the stop or the open), as `market_fill_price` prices it. A take-profit is a
resting limit order: maker commission, no slippage, at the take price or the better open.
`exit_fill` applies these pricing rules to `resolve_exit`'s answer.
"""

from __future__ import annotations

import math
from typing import Final

from reinforcetrade.core.codes import ExitReason
from reinforcetrade.core.jit import njit
from reinforcetrade.simulation.costs import CostParams, market_fill_price

__all__ = ["NO_EXIT", "exit_fill", "resolve_exit", "stop_prices"]

#: Exit code meaning the position stays open this bar.
NO_EXIT: Final[int] = 0
_STOP: Final[int] = int(ExitReason.STOP_LOSS)
_TAKE: Final[int] = int(ExitReason.TAKE_PROFIT)


@njit
def stop_prices(
    direction: int, entry_price: float, stop_fraction: float, take_fraction: float
) -> tuple[float, float]:
    """Return the (stop, take-profit) prices a fraction away from entry; NaN where not > 0.

    >>> stop_prices(1, 100.0, 0.05, 0.25)
    (95.0, 125.0)
    >>> stop_prices(-1, 100.0, 0.05, math.nan)
    (105.0, nan)
    """
    stop = math.nan
    take = math.nan
    if stop_fraction > 0.0:
        stop = entry_price * (1.0 - direction * stop_fraction)
    if take_fraction > 0.0:
        take = entry_price * (1.0 + direction * take_fraction)
    return stop, take


@njit
def resolve_exit(
    direction: int,
    stop: float,
    take: float,
    bar_open: float,
    bar_high: float,
    bar_low: float,
) -> tuple[int, float, bool]:
    """Return (exit code, reference price, is_limit) for an open position over one bar.

    The code is `ExitReason.STOP_LOSS`, `ExitReason.TAKE_PROFIT` or `NO_EXIT` (0, with a NaN
    price); `is_limit` is True for a take-profit (a resting limit order).

    >>> resolve_exit(1, 95.0, 110.0, 100.0, 104.0, 94.0)  # long, low reaches the stop
    (3, 95.0, False)
    >>> resolve_exit(-1, 105.0, 90.0, 100.0, 101.0, 88.0)  # short, low reaches the take
    (4, 90.0, True)
    >>> resolve_exit(1, 95.0, 110.0, 93.0, 96.0, 92.0)  # long, gap down through the stop
    (3, 93.0, False)
    """
    if direction > 0:
        # long: adverse prices are low ones
        if bar_open <= stop:
            return _STOP, bar_open, False
        if bar_open >= take:
            return _TAKE, bar_open, True
        if bar_low <= stop:
            return _STOP, stop, False
        if bar_high >= take:
            return _TAKE, take, True
    elif direction < 0:
        # short: adverse prices are high ones
        if bar_open >= stop:
            return _STOP, bar_open, False
        if bar_open <= take:
            return _TAKE, bar_open, True
        if bar_high >= stop:
            return _STOP, stop, False
        if bar_low <= take:
            return _TAKE, take, True
    return NO_EXIT, math.nan, False


@njit
def exit_fill(
    direction: int,
    stop: float,
    take: float,
    bar_open: float,
    bar_high: float,
    bar_low: float,
    qty: float,
    bar_volume: float,
    p: CostParams,
) -> tuple[int, float, float, bool]:
    """Return (exit code, fill price, slippage per unit, is_limit) for one bar's stop or take.

    A stop sells a long (buys back a short) at market from its reference price; a take-profit
    fills at its reference price with no slippage. Charge commission with
    `commission(qty * price, is_limit, p)`: maker for the take-profit, taker for the stop.

    >>> p = CostParams.simple(0.001, slippage=0.01)
    >>> exit_fill(1, 95.0, 110.0, 100.0, 104.0, 94.0, 1.0, 1e6, p)
    (3, 94.05, 0.95, False)
    >>> exit_fill(1, 95.0, 110.0, 100.0, 111.0, 99.0, 1.0, 1e6, p)
    (4, 110.0, 0.0, True)
    """
    code, reference, is_limit = resolve_exit(direction, stop, take, bar_open, bar_high, bar_low)
    if code == NO_EXIT or is_limit:
        return code, reference, 0.0, is_limit
    price, slippage = market_fill_price(
        -direction, reference, bar_open, bar_high, bar_low, qty, bar_volume, p
    )
    return code, price, slippage, False

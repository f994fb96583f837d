"""What trading costs: fill prices, commission, volume caps, affordable size and borrow.

Every function is a compiled scalar kernel, called inside the bar loops of the backtester, the
RL environment and the paper broker, so that all three charge exactly the same costs. Parameters
travel as `CostParams`, a NamedTuple of floats that numba passes by value.

A market order fills away from its reference price (the bar's open, or a stop price) by a
fraction made of four parts, paid on buys and received in mirror on sells:

    half_spread + slippage_fixed + slippage_volatility × range
                + impact_coefficient × range × sqrt(qty / bar_volume),   range = (high - low) / open

The impact part is zero when the bar has no volume to compare against (volume 0 or NaN); then
`fillable_qty` refuses the order anyway unless participation is uncapped. A sell never receives
less than zero. Commission is a fraction of notional: taker for market orders, maker for resting
limit orders (take-profits). Quantities are magnitudes (≥ 0); the side is +1 buy, -1 sell.

`CostParams.simple(c)` reproduces the frictionless all-in convention exactly: a buy at the open
fills at the open, and `affordable_qty(cash, open, p) == cash / (open * (1 + c))` bit for bit.
In exact arithmetic that buy spends all the cash; in floating point `cash - notional - fee`
lands within a few ulps of zero, either side, so an account should treat |rest| ≤ 1e-12 × cash
as zero.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.jit import njit

if TYPE_CHECKING:
    from reinforcetrade.config.sections import CostsConfig

__all__ = [
    "CostParams",
    "affordable_qty",
    "borrow_cost",
    "commission",
    "fillable_qty",
    "market_fill_price",
]

_BPS = 1e-4
# Quantities within this many lots of the next lot count as reaching it (0.3 / 0.1 = 2.9999…).
_LOT_TOLERANCE = 1e-9


class CostParams(NamedTuple):
    """Cost parameters as plain floats, ready for compiled kernels (fractions, not bps)."""

    taker_commission: float
    maker_commission: float
    half_spread: float
    slippage_fixed: float
    slippage_volatility: float
    impact_coefficient: float
    max_participation: float
    borrow_per_bar: float
    lot_size: float

    @classmethod
    def from_config(cls, costs: CostsConfig, bars_per_year: float) -> CostParams:
        """Return the parameters of a `CostsConfig` for bars of which `bars_per_year` fit a year.

        Basis points become fractions, half the spread is paid per side, and the annual borrow
        rate is spread evenly over the bars (simple, not compounded).

        >>> from reinforcetrade.config.sections import CostsConfig
        >>> p = CostParams.from_config(CostsConfig(spread_bps=2.0, slippage_bps=5.0), 8760)
        >>> p.half_spread, p.slippage_fixed, p.borrow_per_bar == 0.05 / 8760
        (0.0001, 0.0005, True)
        """
        if not (math.isfinite(bars_per_year) and bars_per_year > 0):
            raise UserInputError(
                f"bars_per_year must be a positive number (e.g. 8760 for hourly crypto bars, "
                f"252 for daily equities), got {bars_per_year!r}"
            )
        return cls(
            taker_commission=costs.commission_rate,
            maker_commission=costs.maker_commission_rate,
            half_spread=costs.spread_bps * _BPS / 2.0,
            slippage_fixed=costs.slippage_bps * _BPS,
            slippage_volatility=costs.slippage_volatility,
            impact_coefficient=costs.impact_coefficient,
            max_participation=costs.max_participation,
            borrow_per_bar=costs.borrow_rate_annual / bars_per_year,
            lot_size=costs.lot_size,
        )

    @classmethod
    def simple(cls, commission: float, slippage: float = 0.0) -> CostParams:
        """Return the plain backtester's costs: one commission per side and a fixed slippage.

        No spread, impact, volume cap, borrow or lots; maker and taker pay the same.

        >>> CostParams.simple(0.001).max_participation
        inf
        """
        for name, value in (("commission", commission), ("slippage", slippage)):
            if not 0.0 <= value < 1.0:
                raise UserInputError(
                    f"{name} is a fraction per side in [0, 1) (0.001 = 0.1 %), got {value!r}"
                )
        return cls(
            taker_commission=commission,
            maker_commission=commission,
            half_spread=0.0,
            slippage_fixed=slippage,
            slippage_volatility=0.0,
            impact_coefficient=0.0,
            max_participation=math.inf,
            borrow_per_bar=0.0,
            lot_size=0.0,
        )


@njit
def market_fill_price(
    side: int,
    reference: float,
    bar_open: float,
    bar_high: float,
    bar_low: float,
    qty: float,
    bar_volume: float,
    p: CostParams,
) -> tuple[float, float]:
    """Return a market order's fill price and its cost per unit against `reference`.

    Side is +1 (buy, pays above the reference) or -1 (sell, receives below it).

    >>> p = CostParams.simple(0.001, slippage=0.01)
    >>> market_fill_price(1, 100.0, 100.0, 110.0, 90.0, 1.0, 1000.0, p)
    (101.0, 1.0)
    >>> market_fill_price(-1, 100.0, 100.0, 110.0, 90.0, 1.0, 1000.0, p)
    (99.0, 1.0)
    """
    frac = p.half_spread + p.slippage_fixed
    if p.slippage_volatility > 0.0 or p.impact_coefficient > 0.0:
        bar_range = (bar_high - bar_low) / bar_open
        if p.slippage_volatility > 0.0:
            frac += p.slippage_volatility * bar_range
        if p.impact_coefficient > 0.0 and bar_volume > 0.0 and qty > 0.0:
            frac += p.impact_coefficient * bar_range * math.sqrt(qty / bar_volume)
    if side > 0:
        return reference * (1.0 + frac), reference * frac
    frac = min(frac, 1.0)
    return reference * (1.0 - frac), reference * frac


@njit
def commission(notional: float, maker: bool, p: CostParams) -> float:
    """Return the commission on a fill of this notional (maker rate for resting limit orders).

    >>> p = CostParams(0.001, 0.0002, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    >>> commission(10_000.0, False, p), commission(10_000.0, True, p)
    (10.0, 2.0)
    """
    rate = p.maker_commission if maker else p.taker_commission
    return abs(notional) * rate


@njit
def _round_down_lots(qty: float, lot_size: float) -> float:
    """Return qty rounded down to a whole number of lots (unchanged when lot_size is 0)."""
    if lot_size > 0.0 and qty < math.inf:
        lots = math.floor(qty / lot_size + _LOT_TOLERANCE)
        return min(lots * lot_size, qty)
    return qty


@njit
def fillable_qty(qty: float, bar_volume: float, p: CostParams) -> float:
    """Return how much of an order one bar fills: at most max_participation × volume, in lots.

    A finite cap on a bar without volume (0 or NaN) fills nothing; an infinite cap fills all.

    >>> p = CostParams(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.0, 0.5)
    >>> fillable_qty(100.0, 1000.0, p), fillable_qty(7.9, 1000.0, p), fillable_qty(5.0, 0.0, p)
    (100.0, 7.5, 0.0)
    """
    if not qty > 0.0:
        return 0.0
    if p.max_participation < math.inf:
        if not bar_volume > 0.0:
            return 0.0
        qty = min(qty, p.max_participation * bar_volume)
    return _round_down_lots(qty, p.lot_size)


@njit
def affordable_qty(cash: float, price: float, p: CostParams) -> float:
    """Return the largest quantity whose notional plus taker commission fits in `cash`, in lots.

    >>> affordable_qty(850.0, 8.0, CostParams.simple(0.0625))  # 850 / (8 × 1.0625)
    100.0
    """
    if not (cash > 0.0 and price > 0.0):
        return 0.0
    return _round_down_lots(cash / (price * (1.0 + p.taker_commission)), p.lot_size)


@njit
def borrow_cost(short_notional: float, p: CostParams) -> float:
    """Return one bar's cost of holding a short position of this notional (either sign).

    >>> p = CostParams(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0001, 0.0)
    >>> borrow_cost(-20_000.0, p)
    2.0
    """
    return abs(short_notional) * p.borrow_per_bar

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reinforcetrade.config.sections import CostsConfig
from reinforcetrade.core.codes import Side
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.simulation.costs import (
    CostParams,
    affordable_qty,
    borrow_cost,
    commission,
    fillable_qty,
    market_fill_price,
)

SETTINGS = settings(max_examples=300, deadline=None)
EPS = sys.float_info.epsilon


def params(**changes: float) -> CostParams:
    """Frictionless parameters with some fields changed."""
    return CostParams.simple(0.0)._replace(**changes)


# ---- parameters


def test_from_config_converts_units() -> None:
    costs = CostsConfig(
        commission_rate=0.001,
        maker_commission_rate=0.0002,
        spread_bps=4.0,
        slippage_bps=3.0,
        slippage_volatility=0.05,
        impact_coefficient=0.2,
        max_participation=0.1,
        borrow_rate_annual=0.0876,
        lot_size=0.01,
    )
    p = CostParams.from_config(costs, bars_per_year=8760)
    assert p._replace(half_spread=0.0, slippage_fixed=0.0, borrow_per_bar=0.0) == CostParams(
        0.001, 0.0002, 0.0, 0.0, 0.05, 0.2, 0.1, 0.0, 0.01
    )
    assert p.half_spread == pytest.approx(2e-4, rel=1e-15)
    assert p.slippage_fixed == pytest.approx(3e-4, rel=1e-15)
    assert p.borrow_per_bar == pytest.approx(1e-5, rel=1e-15)
    assert all(isinstance(v, float) for v in p)


def test_from_config_defaults() -> None:
    p = CostParams.from_config(CostsConfig(), 365.0)
    assert p.half_spread == pytest.approx(0.5e-4)
    assert p.slippage_fixed == pytest.approx(2e-4)
    assert p.borrow_per_bar == pytest.approx(0.05 / 365)


@pytest.mark.parametrize("bars_per_year", [0.0, -1.0, math.nan, math.inf])
def test_from_config_refuses_bad_bars_per_year(bars_per_year: float) -> None:
    with pytest.raises(UserInputError, match="bars_per_year"):
        CostParams.from_config(CostsConfig(), bars_per_year)


def test_simple_has_no_frictions_beyond_commission_and_slippage() -> None:
    p = CostParams.simple(0.001, 0.0005)
    assert p == CostParams(0.001, 0.001, 0.0, 0.0005, 0.0, 0.0, math.inf, 0.0, 0.0)


@pytest.mark.parametrize(("commission_", "slippage"), [(-0.1, 0.0), (1.0, 0.0), (0.0, math.nan)])
def test_simple_refuses_bad_fractions(commission_: float, slippage: float) -> None:
    with pytest.raises(UserInputError, match="fraction"):
        CostParams.simple(commission_, slippage)


# ---- fill prices: one row per cost component (bar: open 100, high 104, low 96 -> range 0.08)

PRICE_CASES = {
    "frictionless": (params(), 0.0),
    "half spread": (params(half_spread=0.0005), 0.0005),
    "fixed slippage": (params(slippage_fixed=0.001), 0.001),
    "volatility slippage": (params(slippage_volatility=0.5), 0.5 * 0.08),
    "square-root impact": (params(impact_coefficient=0.1), 0.1 * 0.08 * math.sqrt(25.0 / 100.0)),
    "all together": (
        params(half_spread=0.0005, slippage_fixed=0.001, slippage_volatility=0.5, impact_coefficient=0.1),
        0.0005 + 0.001 + 0.04 + 0.004,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("p", "frac"), list(PRICE_CASES.values()), ids=list(PRICE_CASES))
def test_market_fill_price_components(p: CostParams, frac: float) -> None:
    buy = market_fill_price(1, 100.0, 100.0, 104.0, 96.0, 25.0, 100.0, p)
    sell = market_fill_price(-1, 100.0, 100.0, 104.0, 96.0, 25.0, 100.0, p)
    assert buy == pytest.approx((100.0 * (1 + frac), 100.0 * frac), rel=1e-14, abs=1e-14)
    assert sell == pytest.approx((100.0 * (1 - frac), 100.0 * frac), rel=1e-14, abs=1e-14)


def test_side_enum_is_accepted() -> None:
    p = params(slippage_fixed=0.01)
    assert market_fill_price(Side.BUY, 50.0, 50.0, 51.0, 49.0, 1.0, 10.0, p)[0] == 50.5
    assert market_fill_price(Side.SELL, 50.0, 50.0, 51.0, 49.0, 1.0, 10.0, p)[0] == 49.5


@pytest.mark.parametrize("volume", [0.0, math.nan])
def test_no_impact_without_volume(volume: float) -> None:
    p = params(impact_coefficient=1.0)
    assert market_fill_price(1, 100.0, 100.0, 104.0, 96.0, 5.0, volume, p) == (100.0, 0.0)


def test_sell_never_receives_less_than_zero() -> None:
    p = params(slippage_volatility=10.0)
    assert market_fill_price(-1, 100.0, 100.0, 150.0, 50.0, 1.0, 1.0, p) == (0.0, 100.0)


# ---- commission, volume cap, lots, affordability, borrow


def test_commission_maker_and_taker() -> None:
    p = params(taker_commission=0.001, maker_commission=0.0002)
    assert commission(5000.0, False, p) == 5.0
    assert commission(5000.0, True, p) == 1.0
    assert commission(-5000.0, False, p) == 5.0


FILLABLE = {
    # qty, volume, max_participation, lot_size, expected
    "under the cap": (5.0, 100.0, 0.1, 0.0, 5.0),
    "capped": (50.0, 100.0, 0.1, 0.0, 10.0),
    "no cap": (1e9, 1.0, math.inf, 0.0, 1e9),
    "no cap, no volume": (3.0, 0.0, math.inf, 0.0, 3.0),
    "cap, no volume": (3.0, 0.0, 0.5, 0.0, 0.0),
    "cap, NaN volume": (3.0, math.nan, 0.5, 0.0, 0.0),
    "lots round down": (7.9, 1000.0, 1.0, 0.5, 7.5),
    "cap then lots": (50.0, 99.0, 0.1, 1.0, 9.0),
    "below one lot": (0.4, 1000.0, 1.0, 0.5, 0.0),
    "whole lots stay (0.3 / 0.1)": (0.3, 1000.0, 1.0, 0.1, 0.3),
    "zero qty": (0.0, 1000.0, 1.0, 0.0, 0.0),
    "negative qty": (-5.0, 1000.0, 1.0, 0.0, 0.0),
    "NaN qty": (math.nan, 1000.0, 1.0, 0.0, 0.0),
}


@pytest.mark.parametrize(
    ("qty", "volume", "cap", "lot", "expected"), list(FILLABLE.values()), ids=list(FILLABLE)
)
def test_fillable_qty(qty: float, volume: float, cap: float, lot: float, expected: float) -> None:
    got = fillable_qty(qty, volume, params(max_participation=cap, lot_size=lot))
    assert got == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    ("cash", "price", "lot", "expected"),
    [
        (850.0, 8.0, 0.0, 100.0),
        (850.0, 8.0, 30.0, 90.0),
        (850.0, 8.0, 0.4, 100.0),
        (1000.0, 10.0, 0.0, 1000.0 / (10.0 * 1.0625)),
        (0.0, 10.0, 0.0, 0.0),
        (-5.0, 10.0, 0.0, 0.0),
        (100.0, 0.0, 0.0, 0.0),
    ],
)
def test_affordable_qty(cash: float, price: float, lot: float, expected: float) -> None:
    p = params(taker_commission=0.0625, maker_commission=0.0, lot_size=lot)
    assert affordable_qty(cash, price, p) == expected


def test_borrow_cost() -> None:
    p = params(borrow_per_bar=1e-5)
    assert borrow_cost(-1e6, p) == pytest.approx(10.0)
    assert borrow_cost(0.0, p) == 0.0


# ---- properties

fractions = st.floats(0.0, 0.01)
cost_params = st.builds(
    CostParams,
    taker_commission=fractions,
    maker_commission=fractions,
    half_spread=fractions,
    slippage_fixed=fractions,
    slippage_volatility=st.floats(0.0, 2.0),
    impact_coefficient=st.floats(0.0, 2.0),
    max_participation=st.one_of(st.just(math.inf), st.floats(0.01, 1.0)),
    borrow_per_bar=st.floats(0.0, 1e-4),
    lot_size=st.one_of(st.just(0.0), st.sampled_from([1e-3, 0.01, 0.1, 1.0, 100.0])),
)
prices = st.floats(1e-3, 1e6)
quantities = st.floats(0.0, 1e6)
volumes = st.one_of(st.just(0.0), st.floats(1e-3, 1e9))


@st.composite
def bars(draw: st.DrawFn) -> tuple[float, float, float]:
    """(open, high, low) of a valid bar."""
    o = draw(prices)
    return o, o * draw(st.floats(1.0, 1.5)), o * draw(st.floats(0.5, 1.0))


@SETTINGS
@given(p=cost_params, bar=bars(), ref=prices, qty=quantities, volume=volumes)
def test_buys_never_below_and_sells_never_above_the_reference(
    p: CostParams, bar: tuple[float, float, float], ref: float, qty: float, volume: float
) -> None:
    buy, buy_cost = market_fill_price(1, ref, *bar, qty, volume, p)
    sell, sell_cost = market_fill_price(-1, ref, *bar, qty, volume, p)
    assert buy >= ref
    assert 0.0 <= sell <= ref
    assert buy_cost >= 0.0
    assert sell_cost >= 0.0


@SETTINGS
@given(
    p=cost_params,
    bar=bars(),
    qtys=st.tuples(quantities, quantities),
    volume=volumes,
    side=st.sampled_from([1, -1]),
)
def test_fill_costs_are_monotone_in_qty(
    p: CostParams,
    bar: tuple[float, float, float],
    qtys: tuple[float, float],
    volume: float,
    side: int,
) -> None:
    small, large = sorted(qtys)
    price_small, cost_small = market_fill_price(side, bar[0], *bar, small, volume, p)
    price_large, cost_large = market_fill_price(side, bar[0], *bar, large, volume, p)
    assert cost_small <= cost_large
    assert side * price_small <= side * price_large
    assert fillable_qty(small, volume, p) <= fillable_qty(large, volume, p)
    assert commission(small * bar[0], False, p) <= commission(large * bar[0], False, p)


@SETTINGS
@given(
    p=cost_params,
    o=prices,
    highs=st.tuples(st.floats(1.0, 1.5), st.floats(1.0, 1.5)),
    low=st.floats(0.5, 1.0),
    slip_vols=st.tuples(st.floats(0.0, 2.0), st.floats(0.0, 2.0)),
    qty=quantities,
    volume=volumes,
    side=st.sampled_from([1, -1]),
)
def test_fill_costs_are_monotone_in_volatility(
    p: CostParams,
    o: float,
    highs: tuple[float, float],
    low: float,
    slip_vols: tuple[float, float],
    qty: float,
    volume: float,
    side: int,
) -> None:
    calm, wild = (o * h for h in sorted(highs))
    quiet, loud = (p._replace(slippage_volatility=v) for v in sorted(slip_vols))
    base = market_fill_price(side, o, o, calm, o * low, qty, volume, quiet)[1]
    wider = market_fill_price(side, o, o, wild, o * low, qty, volume, quiet)[1]
    louder = market_fill_price(side, o, o, calm, o * low, qty, volume, loud)[1]
    assert base <= wider
    assert base <= louder


@SETTINGS
@given(p=cost_params, qty=st.floats(0.0, 1e9), volume=volumes)
def test_fillable_qty_is_within_qty_and_cap(p: CostParams, qty: float, volume: float) -> None:
    got = fillable_qty(qty, volume, p)
    assert 0.0 <= got <= qty
    assert got <= p.max_participation * volume or p.max_participation == math.inf
    if p.lot_size > 0.0 and got > 0.0:
        lots = got / p.lot_size
        assert abs(lots - round(lots)) <= 1e-9 * max(1.0, lots)


@SETTINGS
@given(p=cost_params, cash=st.one_of(st.just(0.0), st.floats(1e-6, 1e9)), price=prices)
def test_affordable_qty_fits_in_cash_and_is_the_largest(
    p: CostParams, cash: float, price: float
) -> None:
    qty = affordable_qty(cash, price, p)
    notional = qty * price
    rest = cash - notional - commission(notional, False, p)
    assert qty >= 0.0
    assert rest >= -1e-12 * cash  # exactly 0 in real arithmetic at worst; rounding aside
    if p.lot_size > 0.0:  # whole lots, and one more lot would not fit
        lots = qty / p.lot_size
        assert abs(lots - round(lots)) <= 1e-9 * max(1.0, lots)
        assert qty + p.lot_size > cash / (price * (1.0 + p.taker_commission))
    else:
        assert rest <= 1e-12 * cash


@SETTINGS
@given(
    cash=st.floats(1e-2, 1e12),
    o=prices,
    c=st.floats(0.0, 0.05),
    volume=volumes,
    hl=st.tuples(st.floats(1.0, 1.5), st.floats(0.5, 1.0)),
)
def test_simple_params_reproduce_the_all_in_convention_exactly(
    cash: float, o: float, c: float, volume: float, hl: tuple[float, float]
) -> None:
    p = CostParams.simple(c)
    price, slippage = market_fill_price(1, o, o, o * hl[0], o * hl[1], 1.0, volume, p)
    assert (price, slippage) == (o, 0.0)
    assert market_fill_price(-1, o, o, o * hl[0], o * hl[1], 1.0, volume, p) == (o, 0.0)
    qty = affordable_qty(cash, price, p)
    assert qty == cash / (o * (1 + c))
    assert fillable_qty(qty, volume, p) == qty
    assert commission(qty * o, False, p) == qty * o * c
    assert commission(qty * o, True, p) == qty * o * c


@SETTINGS
@given(o=prices, c=st.floats(0.0, 0.05), s=st.floats(0.0, 0.05))
def test_simple_slippage_moves_the_price_by_its_fraction(o: float, c: float, s: float) -> None:
    p = CostParams.simple(c, s)
    assert market_fill_price(1, o, o, 2 * o, o / 2, 1.0, 0.0, p) == (o * (1.0 + s), o * s)
    assert market_fill_price(-1, o, o, 2 * o, o / 2, 1.0, 0.0, p) == (o * (1.0 - s), o * s)

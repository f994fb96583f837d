from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reinforcetrade.core.codes import ExitReason
from reinforcetrade.simulation.costs import CostParams, commission, market_fill_price
from reinforcetrade.simulation.fills import NO_EXIT, exit_fill, resolve_exit, stop_prices

NAN = math.nan
STOP = int(ExitReason.STOP_LOSS)
TAKE = int(ExitReason.TAKE_PROFIT)
SETTINGS = settings(max_examples=300, deadline=None)

# One row per candle. Long positions entered at 100 with stop 95 / take 110; shorts with stop
# 105 / take 90 (unless the row sets NaN). Columns: direction, stop, take, open, high, low,
# expected code, expected reference price (NaN = no exit).
CANDLES = {
    # ---- long: stop below, take above
    "long no touch":                (1, 95.0, 110.0, 100.0, 105.0, 97.0, NO_EXIT, NAN),
    "long stop touch":              (1, 95.0, 110.0, 100.0, 102.0, 94.0, STOP, 95.0),
    "long stop exact":              (1, 95.0, 110.0, 100.0, 102.0, 95.0, STOP, 95.0),
    "long gap through stop":        (1, 95.0, 110.0, 93.0, 96.0, 92.0, STOP, 93.0),
    "long opens exactly at stop":   (1, 95.0, 110.0, 95.0, 98.0, 94.0, STOP, 95.0),
    "long take touch":              (1, 95.0, 110.0, 100.0, 111.0, 99.0, TAKE, 110.0),
    "long take exact":              (1, 95.0, 110.0, 100.0, 110.0, 99.0, TAKE, 110.0),
    "long gap through take":        (1, 95.0, 110.0, 112.0, 115.0, 111.0, TAKE, 112.0),
    "long gap take, then to stop":  (1, 95.0, 110.0, 112.0, 113.0, 90.0, TAKE, 112.0),
    "long both touched":            (1, 95.0, 110.0, 100.0, 111.0, 94.0, STOP, 95.0),
    "long both touched exactly":    (1, 95.0, 110.0, 100.0, 110.0, 95.0, STOP, 95.0),
    "long NaN stop, no take":       (1, NAN, 110.0, 100.0, 105.0, 50.0, NO_EXIT, NAN),
    "long NaN stop, take touch":    (1, NAN, 110.0, 100.0, 111.0, 50.0, TAKE, 110.0),
    "long NaN take, no stop":       (1, 95.0, NAN, 100.0, 200.0, 97.0, NO_EXIT, NAN),
    "long NaN take, stop touch":    (1, 95.0, NAN, 100.0, 200.0, 94.0, STOP, 95.0),
    "long both NaN":                (1, NAN, NAN, 100.0, 200.0, 1.0, NO_EXIT, NAN),
    "long NaN bar":                 (1, 95.0, 110.0, NAN, NAN, NAN, NO_EXIT, NAN),
    # ---- short: stop above, take below
    "short no touch":               (-1, 105.0, 90.0, 100.0, 103.0, 92.0, NO_EXIT, NAN),
    "short stop touch":             (-1, 105.0, 90.0, 100.0, 106.0, 98.0, STOP, 105.0),
    "short stop exact":             (-1, 105.0, 90.0, 100.0, 105.0, 98.0, STOP, 105.0),
    "short gap through stop":       (-1, 105.0, 90.0, 107.0, 108.0, 104.0, STOP, 107.0),
    "short opens exactly at stop":  (-1, 105.0, 90.0, 105.0, 106.0, 101.0, STOP, 105.0),
    "short take touch":             (-1, 105.0, 90.0, 100.0, 101.0, 89.0, TAKE, 90.0),
    "short take exact":             (-1, 105.0, 90.0, 100.0, 101.0, 90.0, TAKE, 90.0),
    "short gap through take":       (-1, 105.0, 90.0, 88.0, 89.0, 85.0, TAKE, 88.0),
    "short gap take, then to stop": (-1, 105.0, 90.0, 88.0, 110.0, 85.0, TAKE, 88.0),
    "short both touched":           (-1, 105.0, 90.0, 100.0, 106.0, 89.0, STOP, 105.0),
    "short both touched exactly":   (-1, 105.0, 90.0, 100.0, 105.0, 90.0, STOP, 105.0),
    "short NaN stop, no take":      (-1, NAN, 90.0, 100.0, 150.0, 95.0, NO_EXIT, NAN),
    "short NaN stop, take touch":   (-1, NAN, 90.0, 100.0, 150.0, 89.0, TAKE, 90.0),
    "short NaN take, no stop":      (-1, 105.0, NAN, 100.0, 104.0, 1.0, NO_EXIT, NAN),
    "short NaN take, stop touch":   (-1, 105.0, NAN, 100.0, 106.0, 1.0, STOP, 105.0),
    "short both NaN":               (-1, NAN, NAN, 100.0, 200.0, 1.0, NO_EXIT, NAN),
    "short NaN bar":                (-1, 105.0, 90.0, NAN, NAN, NAN, NO_EXIT, NAN),
    # ---- no position
    "flat never exits":             (0, 95.0, 110.0, 100.0, 200.0, 1.0, NO_EXIT, NAN),
}  # fmt: skip


@pytest.mark.parametrize(
    ("direction", "stop", "take", "o", "h", "low", "code", "price"),
    list(CANDLES.values()),
    ids=list(CANDLES),
)
def test_candle_table(
    direction: int,
    stop: float,
    take: float,
    o: float,
    h: float,
    low: float,
    code: int,
    price: float,
) -> None:
    got_code, got_price, is_limit = resolve_exit(direction, stop, take, o, h, low)
    assert got_code == code
    if code == NO_EXIT:
        assert math.isnan(got_price)
    else:
        assert got_price == price
    assert is_limit == (code == TAKE)


def test_codes_are_exit_reasons() -> None:
    assert ExitReason(STOP) is ExitReason.STOP_LOSS
    assert ExitReason(TAKE) is ExitReason.TAKE_PROFIT
    assert NO_EXIT not in {int(r) for r in ExitReason}


# exit_fill: the stop is a market order (taker + slippage from its reference), the take-profit
# a resting limit (maker, no slippage). Costs: 1 % fixed slippage, 0.2 % taker, 0.05 % maker.
P = CostParams(0.002, 0.0005, 0.0, 0.01, 0.0, 0.0, math.inf, 0.0, 0.0)
EXIT_FILLS = {
    # direction, stop, take, open, high, low, code, fill price, slippage per unit, is_limit
    "long stop sells below the stop":   (1, 95.0, 110.0, 100.0, 102.0, 94.0, STOP, 95.0 * 0.99, 0.95, False),
    "long gap stop sells below open":   (1, 95.0, 110.0, 90.0, 92.0, 89.0, STOP, 90.0 * 0.99, 0.9, False),
    "long take fills at the take":      (1, 95.0, 110.0, 100.0, 111.0, 99.0, TAKE, 110.0, 0.0, True),
    "long gap take fills at open":      (1, 95.0, 110.0, 120.0, 121.0, 119.0, TAKE, 120.0, 0.0, True),
    "short stop buys above the stop":   (-1, 105.0, 90.0, 100.0, 106.0, 99.0, STOP, 105.0 * 1.01, 1.05, False),
    "short gap stop buys above open":   (-1, 105.0, 90.0, 110.0, 111.0, 108.0, STOP, 110.0 * 1.01, 1.1, False),
    "short take fills at the take":     (-1, 105.0, 90.0, 100.0, 101.0, 89.0, TAKE, 90.0, 0.0, True),
    "short gap take fills at open":     (-1, 105.0, 90.0, 80.0, 81.0, 79.0, TAKE, 80.0, 0.0, True),
}  # fmt: skip


@pytest.mark.parametrize(
    ("direction", "stop", "take", "o", "h", "low", "code", "price", "slip", "limit"),
    list(EXIT_FILLS.values()),
    ids=list(EXIT_FILLS),
)
def test_exit_fill_prices(
    direction: int,
    stop: float,
    take: float,
    o: float,
    h: float,
    low: float,
    code: int,
    price: float,
    slip: float,
    limit: bool,
) -> None:
    got = exit_fill(direction, stop, take, o, h, low, 10.0, 1e6, P)
    assert got[0] == code
    assert got[1] == pytest.approx(price, rel=1e-15)
    assert got[2] == pytest.approx(slip, rel=1e-15)
    assert got[3] is limit
    rate = P.maker_commission if limit else P.taker_commission
    assert commission(10.0 * got[1], got[3], P) == pytest.approx(10.0 * got[1] * rate)


def test_exit_fill_without_exit() -> None:
    code, price, slip, limit = exit_fill(1, 95.0, 110.0, 100.0, 105.0, 97.0, 1.0, 1e6, P)
    assert (code, slip, limit) == (NO_EXIT, 0.0, False)
    assert math.isnan(price)


def test_exit_fill_stop_uses_the_cost_model() -> None:
    p = CostParams(0.001, 0.0, 0.0005, 0.0002, 0.05, 0.1, 0.1, 0.0, 0.0)
    fill = exit_fill(1, 95.0, 110.0, 100.0, 102.0, 94.0, 50.0, 1000.0, p)
    assert fill[:2] == (STOP, market_fill_price(-1, 95.0, 100.0, 102.0, 94.0, 50.0, 1000.0, p)[0])


@pytest.mark.parametrize(
    ("direction", "entry", "stop_fraction", "take_fraction", "expected"),
    [
        (1, 100.0, 0.05, 0.10, (95.0, 110.0)),
        (-1, 100.0, 0.05, 0.10, (105.0, 90.0)),
        (1, 100.0, NAN, 0.10, (NAN, 110.0)),
        (-1, 100.0, 0.05, NAN, (105.0, NAN)),
        (1, 100.0, 0.0, -0.1, (NAN, NAN)),
    ],
)
def test_stop_prices(
    direction: int,
    entry: float,
    stop_fraction: float,
    take_fraction: float,
    expected: tuple[float, float],
) -> None:
    got = stop_prices(direction, entry, stop_fraction, take_fraction)
    for value, want in zip(got, expected, strict=True):
        assert math.isnan(value) if math.isnan(want) else value == pytest.approx(want, rel=1e-15)


@st.composite
def bars_and_levels(draw: st.DrawFn) -> tuple[int, float, float, float, float, float]:
    """A valid bar (low ≤ open ≤ high) and a position's levels on the right sides of an entry."""
    direction = draw(st.sampled_from([1, -1]))
    entry = draw(st.floats(1.0, 1e4))
    stop_f = draw(st.one_of(st.just(NAN), st.floats(0.001, 0.5)))
    take_f = draw(st.one_of(st.just(NAN), st.floats(0.001, 0.5)))
    stop, take = stop_prices(direction, entry, stop_f, take_f)
    o = entry * draw(st.floats(0.4, 1.6))
    h = o * draw(st.floats(1.0, 1.6))
    low = o * draw(st.floats(0.4, 1.0))
    return direction, stop, take, o, h, low


@SETTINGS
@given(case=bars_and_levels())
def test_exits_fill_at_prices_the_bar_traded_and_never_worse_than_a_take(
    case: tuple[int, float, float, float, float, float],
) -> None:
    direction, stop, take, o, h, low = case
    code, price, is_limit = resolve_exit(direction, stop, take, o, h, low)
    if code == NO_EXIT:
        assert math.isnan(price)
        # no level was reached by the bar
        assert not (low <= stop if direction > 0 else h >= stop)
        assert not (h >= take if direction > 0 else low <= take)
        return
    assert low <= price <= h
    if code == TAKE:
        assert is_limit
        assert direction * (price - take) >= 0  # the take price or better
    else:
        assert not is_limit
        assert direction * (price - stop) <= 0  # the stop price or worse (gap)


@SETTINGS
@given(case=bars_and_levels())
def test_a_bar_touching_both_levels_from_between_them_stops_out(
    case: tuple[int, float, float, float, float, float],
) -> None:
    direction, stop, take, o, h, low = case
    adverse, favourable = (low, h) if direction > 0 else (h, low)
    opened_between = direction * (o - stop) > 0 and direction * (take - o) > 0
    touched_both = direction * (adverse - stop) <= 0 and direction * (favourable - take) >= 0
    if opened_between and touched_both:
        assert resolve_exit(direction, stop, take, o, h, low) == (STOP, stop, False)

"""`PositionTracker`: P&L from fills adds up, duplicates and late fills change nothing."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reinforcetrade.core.codes import Side
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.trading.positions import Position, PositionFill, PositionTracker, apply_fill

fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.floats(0.01, 10.0),
        st.floats(50.0, 150.0),
        st.floats(0.0, 0.5),
    ),
    min_size=1,
    max_size=40,
)


def make(rows: list[tuple[Side, float, float, float]]) -> list[PositionFill]:
    return [
        PositionFill(f"t{i:03d}", i, "BTC/USDT", side, qty, price, fee)
        for i, (side, qty, price, fee) in enumerate(rows)
    ]


@given(fills, st.floats(50.0, 150.0))
def test_realised_plus_unrealised_is_the_cash_account(
    rows: list[tuple[Side, float, float, float]], mark: float
) -> None:
    tracker = PositionTracker()
    tracker.apply_all(make(rows))
    tracker.mark({"BTC/USDT": mark})
    position = tracker.position("BTC/USDT")
    qty = sum(q * int(s) for s, q, _, _ in rows)
    cash = -sum(q * int(s) * p for s, q, p, _ in rows) - sum(f for *_, f in rows)
    assert position.quantity == pytest.approx(qty, abs=1e-9)
    total = tracker.realised_pnl() + tracker.unrealised_pnl()
    assert total == pytest.approx(cash + qty * mark, rel=1e-9, abs=1e-6)
    assert position.fees == pytest.approx(sum(f for *_, f in rows))


@given(fills, st.randoms(use_true_random=False))
def test_arrival_order_and_duplicates_do_not_matter(
    rows: list[tuple[Side, float, float, float]], rnd: random.Random
) -> None:
    ordered = PositionTracker()
    ordered.apply_all(make(rows))
    shuffled = make(rows) + make(rows)[: len(rows) // 2]  # some events twice
    rnd.shuffle(shuffled)
    late = PositionTracker()
    assert late.apply_all(shuffled) == len(rows)
    a, b = ordered.position("BTC/USDT"), late.position("BTC/USDT")
    assert b.quantity == pytest.approx(a.quantity, abs=1e-12)
    assert b.average_price == pytest.approx(a.average_price, rel=1e-12)
    assert b.realised_pnl == pytest.approx(a.realised_pnl, rel=1e-9, abs=1e-9)


def test_average_cost_by_hand() -> None:
    p = Position("X")
    p = apply_fill(p, PositionFill("1", 0, "X", Side.BUY, 1.0, 100.0))
    p = apply_fill(p, PositionFill("2", 1, "X", Side.BUY, 1.0, 120.0))
    assert (p.quantity, p.average_price) == (2.0, 110.0)
    p = apply_fill(p, PositionFill("3", 2, "X", Side.SELL, 3.0, 130.0, fee=1.0))
    # closes 2 at 130 (+40), opens a short of 1 at 130; the fee is paid
    assert (p.quantity, p.average_price, p.realised_pnl) == (-1.0, 130.0, 39.0)
    p = apply_fill(p, PositionFill("4", 3, "X", Side.BUY, 1.0, 125.0))
    assert (p.quantity, p.realised_pnl, p.is_flat) == (0.0, 44.0, True)
    assert p.unrealised_pnl == 0.0


def test_marks_and_bad_fills() -> None:
    tracker = PositionTracker()
    tracker.apply(PositionFill("1", 0, "X", Side.SELL, 2.0, 100.0))
    tracker.mark({"X": 90.0, "Y": math.nan})
    assert tracker.position("X").unrealised_pnl == 20.0
    assert tracker.position("X").market_value == -180.0
    assert tracker.position("Y").is_flat
    with pytest.raises(UserInputError, match="quantity must be positive"):
        PositionFill("2", 1, "X", Side.BUY, 0.0, 100.0)
    with pytest.raises(UserInputError, match="price must be positive"):
        PositionFill("3", 1, "X", Side.BUY, 1.0, -1.0)

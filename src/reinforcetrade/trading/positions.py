"""`PositionTracker`: positions and realised/unrealised P&L from fills, marked to market.

Average-cost accounting per symbol: adding to a position moves its average price; reducing it
realises (exit price − average) × quantity; crossing through zero closes the old side and opens
the new one at the fill price. Fees are realised when paid. Each fill is applied once (by its
id), and a fill that arrives out of order (earlier than one already applied) makes the symbol's
position be rebuilt from all its fills in time order: the result never depends on the order the
events came in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from reinforcetrade.core.codes import Side
from reinforcetrade.core.errors import UserInputError


@dataclass(frozen=True)
class PositionFill:
    """A fill as the tracker needs it: unique id, time, symbol, side, quantity, price, fee."""

    fill_id: str
    ts: int
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float = 0.0

    def __post_init__(self) -> None:
        if not (self.quantity > 0 and math.isfinite(self.quantity)):
            raise UserInputError(
                f"fill {self.fill_id}: quantity must be positive, got {self.quantity}"
            )
        if not (self.price > 0 and math.isfinite(self.price)):
            raise UserInputError(f"fill {self.fill_id}: price must be positive, got {self.price}")


@dataclass(frozen=True)
class Position:
    """One symbol's position: signed quantity, average price, realised P&L, last mark."""

    symbol: str
    quantity: float = 0.0
    average_price: float = 0.0
    realised_pnl: float = 0.0
    fees: float = 0.0
    mark: float = math.nan

    @property
    def unrealised_pnl(self) -> float:
        """Return (mark − average) × quantity (0 when flat, NaN before the first mark)."""
        if self.quantity == 0:
            return 0.0
        return (self.mark - self.average_price) * self.quantity

    @property
    def market_value(self) -> float:
        """Return quantity × mark (signed)."""
        return 0.0 if self.quantity == 0 else self.quantity * self.mark

    @property
    def is_flat(self) -> bool:
        """Return whether there is no position."""
        return self.quantity == 0


def apply_fill(position: Position, fill: PositionFill) -> Position:
    """Return the position after one fill (average-cost accounting).

    >>> p = apply_fill(Position("X"), PositionFill("1", 0, "X", Side.BUY, 2.0, 100.0))
    >>> p = apply_fill(p, PositionFill("2", 1, "X", Side.SELL, 1.0, 110.0, fee=0.5))
    >>> p.quantity, p.average_price, p.realised_pnl
    (1.0, 100.0, 9.5)
    """
    signed = fill.quantity * int(fill.side)
    qty, avg = position.quantity, position.average_price
    realised = position.realised_pnl - fill.fee
    if qty == 0 or math.copysign(1, qty) == math.copysign(1, signed):
        new_qty = qty + signed
        new_avg = (avg * abs(qty) + fill.price * abs(signed)) / abs(new_qty)
    else:
        closed = min(abs(signed), abs(qty))
        realised += (fill.price - avg) * closed * math.copysign(1, qty)
        new_qty = qty + signed
        if abs(new_qty) < 1e-12 * max(abs(qty), abs(signed)):
            new_qty, new_avg = 0.0, 0.0
        elif math.copysign(1, new_qty) == math.copysign(1, qty):
            new_avg = avg  # reduced: the rest keeps its cost
        else:
            new_avg = fill.price  # crossed through zero: the new side opens here
    return Position(
        position.symbol,
        new_qty,
        new_avg,
        realised,
        position.fees + fill.fee,
        fill.price if math.isnan(position.mark) else position.mark,
    )


@dataclass
class PositionTracker:
    """Every symbol's position from its fills (each applied once), marked to market."""

    _fills: dict[str, list[PositionFill]] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)
    _positions: dict[str, Position] = field(default_factory=dict)
    _marks: dict[str, float] = field(default_factory=dict)

    def apply(self, fill: PositionFill) -> bool:
        """Apply a fill; return False (and change nothing) if its id was already applied."""
        if fill.fill_id in self._seen:
            return False
        self._seen.add(fill.fill_id)
        fills = self._fills.setdefault(fill.symbol, [])
        late = bool(fills) and (fill.ts, fill.fill_id) < (fills[-1].ts, fills[-1].fill_id)
        fills.append(fill)
        if late:
            fills.sort(key=lambda f: (f.ts, f.fill_id))
            self._positions[fill.symbol] = self._rebuild(fill.symbol)
        else:
            current = self._positions.get(fill.symbol, Position(fill.symbol))
            self._positions[fill.symbol] = apply_fill(current, fill)
        self._remark(fill.symbol)
        return True

    def apply_all(self, fills: Iterable[PositionFill]) -> int:
        """Apply fills; return how many were new."""
        return sum(self.apply(f) for f in fills)

    def mark(self, prices: Mapping[str, float]) -> None:
        """Mark positions to the latest prices."""
        for symbol, price in prices.items():
            if math.isfinite(price) and price > 0:
                self._marks[symbol] = float(price)
                self._remark(symbol)

    def position(self, symbol: str) -> Position:
        """Return a symbol's position (flat if it never traded)."""
        return self._positions.get(symbol, Position(symbol, mark=self._marks.get(symbol, math.nan)))

    def positions(self) -> dict[str, Position]:
        """Return every symbol's position that has traded."""
        return dict(self._positions)

    def realised_pnl(self) -> float:
        """Return the realised P&L of every symbol (fees included)."""
        return sum(p.realised_pnl for p in self._positions.values())

    def unrealised_pnl(self) -> float:
        """Return the unrealised P&L at the latest marks (NaN if an open position has none)."""
        return sum(p.unrealised_pnl for p in self._positions.values())

    def _rebuild(self, symbol: str) -> Position:
        position = Position(symbol)
        for fill in self._fills[symbol]:
            position = apply_fill(position, fill)
        return position

    def _remark(self, symbol: str) -> None:
        position = self._positions.get(symbol)
        mark = self._marks.get(symbol)
        if position is not None and mark is not None:
            self._positions[symbol] = Position(
                symbol,
                position.quantity,
                position.average_price,
                position.realised_pnl,
                position.fees,
                mark,
            )

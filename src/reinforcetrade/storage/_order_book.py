"""The order book part of the journal: orders with their state machine, fills, positions."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update

from reinforcetrade.storage import schema
from reinforcetrade.storage._base import JournalBase, one_of
from reinforcetrade.storage.dml import insert_ignoring, upsert
from reinforcetrade.storage.errors import JournalError
from reinforcetrade.storage.inputs import (
    FILL_OPTIONAL,
    FILL_REQUIRED,
    ORDER_OPTIONAL,
    ORDER_REQUIRED,
    ORDER_UPDATABLE,
    VENUE_STATS,
    checked,
)
from reinforcetrade.storage.orders import (
    OPEN_STATUSES,
    ORDER_STATUSES,
    ORDER_TYPES,
    SIDES,
    check_transition,
)
from reinforcetrade.storage.rows import (
    FillRow,
    OrderEventRow,
    OrderRow,
    PositionRow,
    VenueStatsRow,
    from_row,
)
from reinforcetrade.storage.types import number, plain, utc
from reinforcetrade.storage.vocabulary import LIQUIDITY, VENUE_HEALTH

#: what an update of a position changes (its `opened_at` never does)
_POSITION_CHANGES = (
    "qty",
    "avg_price",
    "realised_pnl",
    "closed_at",
    "stop_client_order_id",
    "updated_at",
)


class OrderBook(JournalBase):
    """Orders (written before they are sent), their status changes, fills and positions."""

    # -- orders and fills ---------------------------------------------------------------------

    def record_order(self, order: Mapping[str, Any]) -> bool:
        """Record an order before it is sent; return whether it was new.

        Required: client_order_id, run_id, symbol, side (buy/sell), type (market, limit, stop,
        stop_limit), qty. The status defaults to ``pending``.
        """
        values = checked(
            f"order {order.get('client_order_id')!r}", order, ORDER_REQUIRED, ORDER_OPTIONAL
        )
        row = {**{c: None for c in ORDER_OPTIONAL}, **values}
        row["status"] = row["status"] or "pending"
        row["filled_qty"] = row["filled_qty"] or 0.0
        row["created_at"] = self._now(row["created_at"])
        row["updated_at"] = utc(row["updated_at"] or row["created_at"])
        row["route"] = None if row["route"] is None else plain(row["route"])
        one_of("order side", row["side"], SIDES)
        one_of("order type", row["type"], ORDER_TYPES)
        one_of("order status", row["status"], ORDER_STATUSES)
        event = {
            "uid": uuid.uuid4().hex,
            "client_order_id": row["client_order_id"],
            "time": row["created_at"],
            "from_status": None,
            "to_status": row["status"],
            "detail": "recorded",
        }
        statement = insert_ignoring(self.dialect, schema.orders, ["client_order_id"])

        def work(connection: Connection) -> bool:
            if connection.execute(statement, row).rowcount != 1:
                return False
            connection.execute(insert(schema.order_events), event)
            return True

        return self._write(f"record order {row['client_order_id']!r}", work)

    def update_order(
        self,
        client_order_id: str,
        status: str,
        *,
        time: object = None,
        detail: str | None = None,
        reason: str | None = None,
        **fields: Any,
    ) -> OrderRow:
        """Move an order to `status` (checked against `orders.TRANSITIONS`); return it after.

        `fields` may set exchange_order_id, filled_qty, avg_price, price and stop_price; an
        order_events row records the change with `detail`.
        """
        checked(f"update of order {client_order_id!r}", fields, (), ORDER_UPDATABLE)
        now = self._now(time)
        changes = {**fields, "status": status, "updated_at": now}
        if reason is not None:
            changes["reason"] = reason
        event = {"uid": uuid.uuid4().hex, "client_order_id": client_order_id, "time": now}
        event |= {"to_status": status, "detail": detail}
        orders = schema.orders

        def work(connection: Connection) -> OrderRow:
            done = select(schema.order_events.c.id).where(schema.order_events.c.uid == event["uid"])
            if connection.execute(done).first() is None:  # not already applied by a lost commit
                current = connection.execute(
                    select(orders.c.status)
                    .where(orders.c.client_order_id == client_order_id)
                    .with_for_update()
                ).scalar_one_or_none()
                if current is None:
                    raise JournalError(
                        f"journal {self.name}: no order {client_order_id!r} "
                        "(record_order it before sending)"
                    )
                check_transition(client_order_id, current, status)
                connection.execute(
                    update(orders).where(orders.c.client_order_id == client_order_id),
                    changes,
                )
                connection.execute(insert(schema.order_events), {**event, "from_status": current})
            found = select(orders).where(orders.c.client_order_id == client_order_id)
            return from_row(OrderRow, connection.execute(found).mappings().one())

        return self._write(f"update order {client_order_id!r}", work)

    def open_orders(self, run_id: int | None = None) -> list[OrderRow]:
        """Return orders that may still fill (of one run, or all), oldest first."""
        orders = schema.orders
        statement = select(orders).where(orders.c.status.in_(OPEN_STATUSES))
        if run_id is not None:
            statement = statement.where(orders.c.run_id == run_id)
        statement = statement.order_by(orders.c.created_at, orders.c.id)
        rows = self._read("read open orders", lambda c: c.execute(statement).mappings().all())
        return [from_row(OrderRow, r) for r in rows]

    def orders_by_client_id(
        self, client_order_ids: Iterable[str] | None = None, *, run_id: int | None = None
    ) -> dict[str, OrderRow]:
        """Return orders keyed by client order id: the ids given, or all (of one run)."""
        orders = schema.orders
        statement = select(orders).order_by(orders.c.id)
        if client_order_ids is not None:
            statement = statement.where(orders.c.client_order_id.in_(list(client_order_ids)))
        if run_id is not None:
            statement = statement.where(orders.c.run_id == run_id)
        rows = self._read("read orders", lambda c: c.execute(statement).mappings().all())
        return {r["client_order_id"]: from_row(OrderRow, r) for r in rows}

    def order_events(self, client_order_id: str) -> list[OrderEventRow]:
        """Return an order's status changes, oldest first."""
        events = schema.order_events
        statement = (
            select(events)
            .where(events.c.client_order_id == client_order_id)
            .order_by(events.c.time, events.c.id)
        )
        rows = self._read("read order events", lambda c: c.execute(statement).mappings().all())
        return [from_row(OrderEventRow, r) for r in rows]

    def record_fill(self, fill: Mapping[str, Any]) -> bool:
        """Record a fill; return False (writing nothing) when its exchange trade id is known.

        Required: exchange, exchange_trade_id, symbol, side, time, qty, price.
        """
        values = checked(
            f"fill {fill.get('exchange_trade_id')!r}", fill, FILL_REQUIRED, FILL_OPTIONAL
        )
        row = {**{c: None for c in FILL_OPTIONAL}, **values}
        row["time"] = utc(row["time"])
        row["reconciliation"] = bool(row["reconciliation"])
        row["exchange_trade_id"] = str(row["exchange_trade_id"])
        one_of("fill side", row["side"], SIDES)
        if row["liquidity"] is not None:
            one_of("fill liquidity", row["liquidity"], LIQUIDITY)
        keys = ["exchange", "symbol", "exchange_trade_id"]
        return self._insert_once(schema.fills, keys, row, f"record fill {row['exchange_trade_id']}")

    def fills_for(self, client_order_id: str) -> list[FillRow]:
        """Return an order's fills, oldest first."""
        fills = schema.fills
        statement = (
            select(fills)
            .where(fills.c.client_order_id == client_order_id)
            .order_by(fills.c.time, fills.c.id)
        )
        rows = self._read("read fills", lambda c: c.execute(statement).mappings().all())
        return [from_row(FillRow, r) for r in rows]

    def set_order_route(
        self, client_order_id: str, venue: str, route: Mapping[str, Any]
    ) -> OrderRow:
        """Record where an order goes and the router's figures behind it (before it is sent)."""
        orders = schema.orders
        values = {"venue": venue, "route": plain(route), "updated_at": self._now()}

        def work(connection: Connection) -> OrderRow:
            where = orders.c.client_order_id == client_order_id
            if connection.execute(update(orders).where(where), values).rowcount == 0:
                raise JournalError(f"journal {self.name}: no order {client_order_id!r} to route")
            return from_row(
                OrderRow, connection.execute(select(orders).where(where)).mappings().one()
            )

        return self._write(f"route order {client_order_id}", work)

    # -- venues ---------------------------------------------------------------------------------

    def record_venue_stats(
        self, run_id: int, stats: Mapping[str, Any], *, time: object = None
    ) -> VenueStatsRow:
        """Record a venue's execution figures now (one row per run and venue, kept current)."""
        counts = ("venue", "orders", "fills", "rejects", "errors", "health")
        figures = [name for name in VENUE_STATS if name not in counts]
        values = checked(f"venue figures of run {run_id}", stats, counts, figures)
        one_of("venue health", values["health"], VENUE_HEALTH)
        row = {name: values.get(name) for name in VENUE_STATS}
        for name in figures:
            row[name] = number(row[name])
        row |= {"run_id": run_id, "updated_at": self._now(time)}
        changing = [n for n in VENUE_STATS if n != "venue"] + ["updated_at"]
        statement = upsert(self.dialect, schema.venue_stats, ["run_id", "venue"], changing)

        def work(connection: Connection) -> VenueStatsRow:
            connection.execute(statement, row)
            table = schema.venue_stats
            found = select(table).where(table.c.run_id == run_id, table.c.venue == row["venue"])
            return from_row(VenueStatsRow, connection.execute(found).mappings().one())

        return self._write(f"record venue figures of {row['venue']}", work)

    def venue_stats(self, run_id: int | None = None) -> list[VenueStatsRow]:
        """Return the venues' execution figures (of one run), by run and venue."""
        table = schema.venue_stats
        statement = select(table).order_by(table.c.run_id, table.c.venue)
        if run_id is not None:
            statement = statement.where(table.c.run_id == run_id)
        rows = self._read("read venue figures", lambda c: c.execute(statement).mappings().all())
        return [from_row(VenueStatsRow, row) for row in rows]

    # -- positions ----------------------------------------------------------------------------

    def upsert_position(
        self,
        run_id: int,
        symbol: str,
        *,
        qty: float,
        avg_price: float | None = None,
        realised_pnl: float = 0.0,
        opened_at: object = None,
        closed_at: object = None,
        stop_client_order_id: str | None = None,
    ) -> PositionRow:
        """Create or update the open position of a run and symbol; `closed_at` closes it.

        The next call after a close opens a new row; a position's `opened_at` never changes.
        """
        now = self._now()
        values = {
            "run_id": run_id,
            "symbol": symbol,
            "qty": qty,
            "avg_price": avg_price,
            "realised_pnl": realised_pnl,
            "opened_at": now if opened_at is None else utc(opened_at),
            "closed_at": None if closed_at is None else utc(closed_at),
            "stop_client_order_id": stop_client_order_id,
            "updated_at": now,
        }
        statement = upsert(
            self.dialect,
            schema.positions,
            ["run_id", "symbol"],
            _POSITION_CHANGES,
            where=schema.positions.c.closed_at.is_(None),
        ).returning(*schema.positions.c)

        def work(connection: Connection) -> PositionRow:
            if values["closed_at"] is None:
                row = connection.execute(statement, values).mappings().one()
            else:
                row = _close_position(connection, values)
            return from_row(PositionRow, row)

        return self._write(f"upsert position {symbol}", work)

    def positions(self, run_id: int, *, open_only: bool = True) -> list[PositionRow]:
        """Return a run's positions (open ones only, unless asked), by symbol."""
        positions = schema.positions
        statement = select(positions).where(positions.c.run_id == run_id)
        if open_only:
            statement = statement.where(positions.c.closed_at.is_(None))
        statement = statement.order_by(positions.c.symbol, positions.c.opened_at, positions.c.id)
        rows = self._read("read positions", lambda c: c.execute(statement).mappings().all())
        return [from_row(PositionRow, r) for r in rows]


def _close_position(connection: Connection, values: Mapping[str, Any]) -> RowMapping:
    """Close the open row of a run and symbol (or record a closed one); a retry finds its row."""
    positions = schema.positions
    same = (positions.c.run_id == values["run_id"]) & (positions.c.symbol == values["symbol"])
    done = connection.execute(
        select(positions).where(same, positions.c.closed_at == values["closed_at"])
    ).mappings()
    row = done.first()
    if row is None:
        closing = (
            update(positions)
            .where(same, positions.c.closed_at.is_(None))
            .values({name: values[name] for name in _POSITION_CHANGES})
            .returning(*positions.c)
        )
        row = connection.execute(closing).mappings().first()
    if row is None:  # never seen open: record it closed
        row = connection.execute(insert(positions).returning(*positions.c), values).mappings().one()
    return row

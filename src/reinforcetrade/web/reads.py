"""What the API shows, read from the journal: paged tables, the account, positions, decisions.

Every view takes the run to show; the newest paper or live run is the default. The journal is
the one record (DESIGN: reports and the dashboard render its rows, never recompute decisions);
the account figures (peak, drawdown, P&L today) are read off its equity rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, func, select

from reinforcetrade.core.plain import plain
from reinforcetrade.storage import Journal, schema

Page = dict[str, Any]
MAX_LIMIT = 1_000


def page(
    journal: Journal,
    table: str,
    *,
    where: Sequence[ColumnElement[bool]] = (),
    limit: int = 100,
    offset: int = 0,
    order: str = "id",
) -> Page:
    """Return one page of a table's rows, newest first (by `order`, then id), and how many match."""
    source = schema.metadata.tables[table]
    condition = and_(*where) if where else None
    keys = [source.c[order].desc()]
    if order != "id" and "id" in source.c:  # rows of one time keep a stable order across pages
        keys.append(source.c.id.desc())
    rows = select(source).order_by(*keys).limit(limit).offset(offset)
    total = select(func.count()).select_from(source)
    if condition is not None:
        rows, total = rows.where(condition), total.where(condition)
    count = journal.fetch(total)[0]
    return {
        "items": [plain(r) for r in journal.fetch(rows)],
        "total": int(next(iter(count.values()))),
        "limit": limit,
        "offset": offset,
    }


def current_run(journal: Journal, run_id: int | None = None) -> dict[str, Any] | None:
    """Return a run by id, else the newest paper or live run (None if there is none)."""
    runs = schema.runs
    statement = select(runs).order_by(runs.c.id.desc()).limit(1)
    if run_id is not None:
        statement = statement.where(runs.c.id == run_id)
    else:
        statement = statement.where(runs.c.kind.in_(("paper", "live")))
    found = journal.fetch(statement)
    return found[0] if found else None


def run_exists(journal: Journal, run_id: int) -> bool:
    """Return whether the journal holds a run with this id."""
    runs = schema.runs
    return bool(journal.fetch(select(runs.c.id).where(runs.c.id == run_id)))


def account(journal: Journal, run_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Return equity, cash, exposure, peak, drawdown, total P&L and today's P&L of a run."""
    eq = schema.equity
    mine = eq.c.run_id == run_id
    last = journal.fetch(select(eq).where(mine).order_by(eq.c.time.desc()).limit(1))
    if not last:
        return {
            "equity": None,
            "cash": None,
            "exposure": None,
            "peak": None,
            "drawdown": None,
            "pnl_total": None,
            "pnl_today": None,
            "time": None,
        }
    first = journal.fetch(select(eq.c.equity).where(mine).order_by(eq.c.time).limit(1))
    peak = journal.fetch(select(func.max(eq.c.equity).label("peak")).where(mine))[0]["peak"]
    today = now or last[0]["time"]  # the latest bar's day: right for replays as for live
    midnight = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    before = journal.fetch(
        select(eq.c.equity).where(mine, eq.c.time < midnight).order_by(eq.c.time.desc()).limit(1)
    )
    equity = float(last[0]["equity"])
    start = float(first[0]["equity"])
    opening = float(before[0]["equity"]) if before else start
    return dict(
        plain(
            {
                "time": last[0]["time"],
                "equity": equity,
                "cash": last[0]["cash"],
                "exposure": last[0]["exposure"],
                "peak": float(peak),
                "drawdown": 1.0 - equity / float(peak) if peak else 0.0,
                "pnl_total": equity - start,
                "pnl_today": equity - opening,
            }
        )
    )


def equity_curve(journal: Journal, run_id: int, *, limit: int = 5_000) -> list[dict[str, Any]]:
    """Return the run's latest `limit` equity points, oldest first, with the drawdown."""
    eq = schema.equity
    rows = journal.fetch(
        select(eq).where(eq.c.run_id == run_id).order_by(eq.c.time.desc()).limit(limit)
    )[::-1]
    if not rows:
        return []
    peak = journal.fetch(
        select(func.max(eq.c.equity).label("peak")).where(
            eq.c.run_id == run_id, eq.c.time < rows[0]["time"]
        )
    )[0]["peak"]
    values = np.array([float(r["equity"]) for r in rows])
    running = np.maximum.accumulate(np.r_[values[:1] if peak is None else [float(peak)], values])
    drawdown = 1.0 - values / running[1:]
    return [
        {"time": r["time"], "equity": e, "cash": r["cash"], "exposure": r["exposure"],
         "drawdown": d}
        for r, e, d in zip(rows, values.tolist(), drawdown.tolist(), strict=True)
    ]  # fmt: skip


def positions(journal: Journal, run_id: int) -> list[dict[str, Any]]:
    """Return a run's open positions, marked at each symbol's last close."""
    pos, bars = schema.positions, schema.bars
    rows = journal.fetch(
        select(pos).where(pos.c.run_id == run_id, pos.c.closed_at.is_(None)).order_by(pos.c.symbol)
    )
    out = []
    for row in rows:
        last = journal.fetch(
            select(bars.c.close, bars.c.time)
            .where(bars.c.run_id == run_id, bars.c.symbol == row["symbol"])
            .order_by(bars.c.time.desc())
            .limit(1)
        )
        qty, avg = float(row["qty"]), row["avg_price"]
        price = float(last[0]["close"]) if last else None
        unrealised = qty * (price - float(avg)) if price is not None and avg is not None else None
        out.append(
            plain(
                {
                    "symbol": row["symbol"],
                    "qty": qty,
                    "avg_price": avg,
                    "last_price": price,
                    "unrealised_pnl": unrealised,
                    "realised_pnl": row["realised_pnl"],
                    "opened_at": row["opened_at"],
                    "updated_at": row["updated_at"],
                }
            )
        )
    return out


def decisions(
    journal: Journal,
    run_id: int,
    *,
    symbol: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """Return decisions (newest first) with each agent's signal, confidence and weight."""
    d = schema.decisions
    where: list[ColumnElement[bool]] = [d.c.run_id == run_id]
    if symbol:
        where.append(d.c.symbol == symbol)
    if action:
        where.append(d.c.action == action)
    if since is not None:
        where.append(d.c.time >= since)
    if until is not None:
        where.append(d.c.time <= until)
    found = page(journal, "decisions", where=where, limit=limit, offset=offset)
    return found | {"items": with_agents(journal, found["items"])}


def with_agents(journal: Journal, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return decision rows with their agents' votes and the reasons as a list."""
    if not rows:
        return rows
    a = schema.decision_agents
    votes: dict[int, list[dict[str, Any]]] = {}
    for vote in journal.fetch(
        select(a).where(a.c.decision_id.in_([r["id"] for r in rows])).order_by(a.c.agent)
    ):
        votes.setdefault(int(vote["decision_id"]), []).append(
            plain({k: vote[k] for k in ("agent", "signal", "confidence", "weight")})
        )
    return [
        r
        | {
            "agents": votes.get(int(r["id"]), []),
            "reasons": [w for w in (r["reasons"] or "").split("; ") if w],
        }
        for r in rows
    ]


def latest_signals(journal: Journal, run_id: int) -> list[dict[str, Any]]:
    """Return each symbol's latest decision (its agents' votes and the tower's) from the journal."""
    d = schema.decisions
    newest = (
        select(d.c.symbol, func.max(d.c.number).label("number"))
        .where(d.c.run_id == run_id)
        .group_by(d.c.symbol)
        .subquery()
    )
    rows = journal.fetch(
        select(d)
        .join(newest, and_(d.c.symbol == newest.c.symbol, d.c.number == newest.c.number))
        .where(d.c.run_id == run_id)
        .order_by(d.c.symbol)
    )
    return with_agents(journal, [plain(r) for r in rows])


def risk(journal: Journal, run: Mapping[str, Any]) -> dict[str, Any]:
    """Return the risk state of a run's name (its last risk event) and that event."""
    last = journal.latest_risk_state(str(run["name"]), kind=str(run["kind"]))
    if last is None:
        return {"state": "active", "reason": None, "time": None, "actor": None}
    return dict(
        plain({"state": last.state, "reason": last.reason, "time": last.time, "actor": last.actor})
    )


def utc(value: datetime | None) -> datetime | None:
    """Return a time as UTC (a naive one is taken to be UTC)."""
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)

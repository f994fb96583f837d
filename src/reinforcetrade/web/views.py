"""The API's read-only views under /api/v1: status, positions, orders, trades, venues, ….

Each reads the journal (`web.reads`), or the running engine's latest state where the journal
has none (signals, alerts); all need a bearer token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from sqlalchemy import ColumnElement, case, func, select

from reinforcetrade import __version__
from reinforcetrade.core.plain import plain
from reinforcetrade.storage import Journal, schema
from reinforcetrade.storage.orders import OPEN_STATUSES
from reinforcetrade.web import reads
from reinforcetrade.web.api import Ctx, private, public
from reinforcetrade.web.cache import cached

__all__ = ["private", "public"]  # the routers, with the views and the api's routes on them

Limit = Annotated[int, Query(ge=1, le=reads.MAX_LIMIT, description="rows per page")]
Offset = Annotated[int, Query(ge=0, le=2**40, description="rows to skip")]
RunId = Annotated[int | None, Query(ge=1, le=2**53, description="run (default: the newest)")]
Text = Annotated[str | None, Query(max_length=200)]


# -- views ------------------------------------------------------------------------------
@private.get("/status", tags=["views"])
@cached
def status(ctx: Ctx, run_id: RunId = None) -> dict[str, Any]:
    """The engine, the risk state and limits, the account and the data's freshness."""
    engine = ctx.host.status()
    run = reads.current_run(ctx.journal, run_id or engine.get("run_id"))
    out: dict[str, Any] = {
        "version": __version__,
        "engine": engine,
        "run": None,
        "risk": None,
        "account": None,
        "data": None,
    }
    if run is None:
        return out
    limits = (run.get("settings") or {}).get("risk", {})
    out["run"] = plain(
        {
            k: run[k]
            for k in (
                "id",
                "kind",
                "name",
                "status",
                "started_at",
                "ended_at",
                "symbols",
                "timeframe",
            )
        }
    )
    out["risk"] = reads.risk(ctx.journal, run) | {"limits": plain(limits)}
    out["account"] = reads.account(ctx.journal, int(run["id"]))
    last = ctx.host.last_bar if engine.get("run_id") == run["id"] else None
    out["data"] = {
        "stale": bool(last and last.get("stale")),
        "last_bar": out["account"]["time"],
    }
    return out


@private.get("/positions", tags=["views"])
@cached
def positions(ctx: Ctx, run_id: RunId = None) -> list[dict[str, Any]]:
    """Open positions with their unrealised P&L."""
    if run_id is None and ctx.host.state in ("running", "stopping"):
        return ctx.host.positions()
    return reads.positions(ctx.journal, ctx.run_id(run_id))


def run_page(
    ctx: Ctx,
    table: str,
    run_id: int | None,
    symbol: str | None,
    limit: int,
    offset: int,
    *where: ColumnElement[bool],
) -> reads.Page:
    """Return a page of a run's rows of `table` (of one symbol, if given), newest first."""
    source = schema.metadata.tables[table]
    wanted = [source.c.run_id == ctx.run_id(run_id), *where]
    if symbol:
        wanted.append(source.c.symbol == symbol)
    return reads.page(ctx.journal, table, where=wanted, limit=limit, offset=offset)


@private.get("/orders", tags=["views"])
@cached
def orders(
    ctx: Ctx,
    run_id: RunId = None,
    status: Literal["open", "all"] = "all",
    symbol: Text = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> reads.Page:
    """Orders, newest first."""
    working = [schema.orders.c.status.in_(OPEN_STATUSES)] if status == "open" else []
    return run_page(ctx, "orders", run_id, symbol, limit, offset, *working)


@private.get("/trades", tags=["views"])
@cached
def trades(
    ctx: Ctx, run_id: RunId = None, symbol: Text = None, limit: Limit = 100, offset: Offset = 0
) -> reads.Page:
    """Closed round trips, newest first."""
    return run_page(ctx, "trades", run_id, symbol, limit, offset)


@private.get("/fills", tags=["views"])
@cached
def fills(
    ctx: Ctx, run_id: RunId = None, symbol: Text = None, limit: Limit = 100, offset: Offset = 0
) -> reads.Page:
    """Executions, newest first."""
    return run_page(ctx, "fills", run_id, symbol, limit, offset)


@private.get("/venues", tags=["views"])
@cached
def venues(ctx: Ctx, run_id: RunId = None, limit: Limit = 100, offset: Offset = 0) -> reads.Page:
    """Each venue's execution figures in a run (slippage, fill ratio, rejects, latency, health)."""
    return run_page(ctx, "venue_stats", run_id, None, limit, offset)


@private.get("/equity", tags=["views"])
@cached
def equity(
    ctx: Ctx, run_id: RunId = None, limit: Annotated[int, Query(ge=1, le=100_000)] = 5_000
) -> list[dict[str, Any]]:
    """The equity curve with its drawdown, oldest first (the latest `limit` points)."""
    engine = ctx.host.engine
    if ctx.host.state == "running" and engine is not None and run_id in (None, engine.run_id):
        return ctx.host.equity_curve(limit)  # the points the engine journalled, kept in memory
    return reads.equity_curve(ctx.journal, ctx.run_id(run_id), limit=limit)


@private.get("/decisions", tags=["views"])
@cached
def decisions(
    ctx: Ctx,
    run_id: RunId = None,
    symbol: Text = None,
    action: Literal["enter_long", "enter_short", "exit", "blocked"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> reads.Page:
    """Decisions with every agent's signal, confidence and weight, and the reasons."""
    return reads.decisions(
        ctx.journal,
        ctx.run_id(run_id),
        symbol=symbol,
        action=action,
        since=reads.utc(since),
        until=reads.utc(until),
        limit=limit,
        offset=offset,
    )


@private.get("/signals", tags=["views"])
@cached
def signals(ctx: Ctx, run_id: RunId = None) -> list[dict[str, Any]]:
    """Each symbol's latest agent signals and tower vote."""
    if run_id is None and ctx.host.signals:
        return [dict(plain(s)) for s in ctx.host.signals]
    return reads.latest_signals(ctx.journal, ctx.run_id(run_id))


@private.get("/alerts", tags=["views"])
@cached
def alerts(ctx: Ctx, limit: Limit = 100) -> list[dict[str, Any]]:
    """Recent alerts of this server's engine, newest first."""
    return [dict(plain(a)) for a in list(ctx.host.alerts)[::-1][:limit]]


@private.get("/risk-events", tags=["views"])
@cached
def risk_events(
    ctx: Ctx, run_id: RunId = None, limit: Limit = 100, offset: Offset = 0
) -> reads.Page:
    """Risk events (halts, resumes, stale data …), newest first."""
    return run_page(ctx, "risk_events", run_id, None, limit, offset)


@private.get("/runs", tags=["views"])
@cached
def runs(
    ctx: Ctx,
    kind: Literal["backtest", "paper", "live"] | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> reads.Page:
    """The ctx.journal's runs, newest first."""
    where = [] if kind is None else [schema.runs.c.kind == kind]
    found = reads.page(ctx.journal, "runs", where=where, limit=limit, offset=offset)
    for item in found["items"]:
        item.pop("settings", None)
    return found


@private.get("/models", tags=["views"])
@cached
def models(ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> reads.Page:
    """Registered RL models, newest first."""
    return reads.page(ctx.journal, "model_versions", limit=limit, offset=offset)


@private.get("/backtests", tags=["views"])
@cached
def backtests(ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> reads.Page:
    """Backtests saved in the ctx.journal, with their headline figures."""
    found = reads.page(
        ctx.journal, "runs", where=[schema.runs.c.kind == "backtest"], limit=limit, offset=offset
    )
    found["items"] = [_backtest(ctx.journal, item) for item in found["items"]]
    return found


@private.get("/backtests/{run_id}", tags=["views"], responses={404: {}})
@cached
def backtest(ctx: Ctx, run_id: Annotated[int, PathParam(ge=1, le=2**53)]) -> dict[str, Any]:
    """One saved backtest with its figures."""
    run = reads.current_run(ctx.journal, run_id)
    if run is None or run["kind"] != "backtest":
        raise HTTPException(404, f"no backtest run {run_id}")
    return _backtest(ctx.journal, run)


@private.get("/reports", tags=["views"])
def reports(ctx: Ctx) -> list[dict[str, Any]]:
    """HTML reports found under web.ctx.reports_dir."""
    if ctx.reports_dir is None or not ctx.reports_dir.is_dir():
        return []
    found = sorted(ctx.reports_dir.rglob("*.html"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [
        {
            "name": str(p.relative_to(ctx.reports_dir)),
            "bytes": p.stat().st_size,
            "modified": datetime.fromtimestamp(p.stat().st_mtime).astimezone().isoformat(),
        }
        for p in found[: reads.MAX_LIMIT]
    ]


@private.get("/reports/{name:path}", tags=["views"], responses={404: {}})
def report(ctx: Ctx, name: Annotated[str, PathParam(max_length=500)]) -> FileResponse:
    """One HTML report (a path under web.ctx.reports_dir)."""
    if ctx.reports_dir is None:
        raise HTTPException(404, "no web.ctx.reports_dir is set")
    root = ctx.reports_dir.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path.suffix != ".html" or not path.is_file():
        raise HTTPException(404, f"no report {name!r}")
    return FileResponse(path, media_type="text/html")


@private.get("/audit", tags=["views"])
@cached
def audit(ctx: Ctx, limit: Limit = 100, offset: Offset = 0) -> reads.Page:
    """The audit log of control actions, newest first."""
    return reads.page(ctx.journal, "audit_log", limit=limit, offset=offset)


@private.get("/retrains", tags=["views"])
@cached
def retrains(
    ctx: Ctx,
    symbol: Annotated[str | None, Query(max_length=64)] = None,
    timeframe: Annotated[str | None, Query(max_length=16)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> reads.Page:
    """Retrains of the RL models: what was tried, each fold's figures, the verdict; newest first."""
    r = schema.retrains
    where = [] if symbol is None else [r.c.symbol == symbol]
    if timeframe is not None:
        where.append(r.c.timeframe == timeframe)
    return reads.page(
        ctx.journal, "retrains", where=where, limit=limit, offset=offset, order="time"
    )


def _backtest(journal: Journal, run: dict[str, Any]) -> dict[str, Any]:
    """Return a backtest run with its total return, max drawdown, trades, win rate and P&L."""
    run_id = int(run["id"])
    curve = reads.equity_curve(journal, run_id, limit=1_000_000)
    t = schema.trades
    figures = journal.fetch(
        select(
            func.count().label("trades"),
            func.sum(t.c.pnl).label("pnl"),
            func.sum(case((t.c.pnl > 0, 1), else_=0)).label("wins"),
        ).where(t.c.run_id == run_id, t.c.exit_time.is_not(None))
    )[0]
    count = int(figures["trades"] or 0)
    first = curve[0]["equity"] if curve else None
    last = curve[-1]["equity"] if curve else None
    out = {k: run[k] for k in ("id", "name", "started_at", "symbols", "timeframe", "version")}
    out |= {
        "bars": len(curve),
        "total_return": (last / first - 1.0) if first and last is not None else None,
        "max_drawdown": max((p["drawdown"] or 0.0 for p in curve), default=None),
        "trades": count,
        "win_rate": (int(figures["wins"] or 0) / count) if count else None,
        "pnl": figures["pnl"],
    }
    return dict(plain(out))


@private.get("/agents/performance", tags=["views"], responses={404: {}})
@cached
def agent_performance(
    ctx: Ctx,
    run_id: RunId = None,
    horizon: Annotated[
        int, Query(ge=1, le=500, description="bars after a decision its votes are scored at")
    ] = 24,
) -> dict[str, Any]:
    """Each agent's hit rate, confidence calibration and P&L attribution, by regime."""
    from reinforcetrade.ml.performance import AgentPerformance  # loads the ml stack on first use

    return AgentPerformance.from_journal(ctx.journal, ctx.run_id(run_id), horizon=horizon).to_dict()

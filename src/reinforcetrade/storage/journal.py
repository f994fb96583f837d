"""`Journal`: the SQL record of every run, decision, order, fill, position and risk event.

SQLite by default, PostgreSQL by URL; `open` upgrades the schema with Alembic. Every write is
one transaction, retried on a lost connection or a locked file (see `database`), and idempotent:
rows with natural keys use INSERT … ON CONFLICT DO NOTHING and report whether they were new; the
rest carry a key drawn once per call, so a retry never adds a second row.

>>> journal = Journal("sqlite://").open()
>>> run = journal.start_run("paper", name="demo", symbols=["BTC/USDT"], timeframe="1h")
>>> order = {"client_order_id": "o-1", "run_id": run, "symbol": "BTC/USDT", "side": "buy",
...          "type": "market", "qty": 0.5}
>>> journal.record_order(order), journal.record_order(order)
(True, False)
>>> journal.update_order("o-1", "filled", filled_qty=0.5, avg_price=42_000.0).status
'filled'
>>> journal.close()
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, insert, select

from reinforcetrade.storage import backtest, schema
from reinforcetrade.storage._base import DEFAULT_URL, one_of
from reinforcetrade.storage._order_book import OrderBook
from reinforcetrade.storage.dml import insert_ignoring
from reinforcetrade.storage.errors import JournalError
from reinforcetrade.storage.inputs import (
    MODEL_OPTIONAL,
    MODEL_REQUIRED,
    TRADE_OPTIONAL,
    TRADE_REQUIRED,
    checked,
    decision_parts,
    retrain_values,
)
from reinforcetrade.storage.locks import EngineLock
from reinforcetrade.storage.rows import RetrainRow, RiskEventRow, from_row
from reinforcetrade.storage.types import UtcDateTime, utc
from reinforcetrade.storage.vocabulary import (
    AUDIT_OUTCOMES,
    RETRAIN_TRIGGERS,
    RETRAIN_VERDICTS,
    RISK_EVENT_KINDS,
    RISK_STATES,
    TRADE_SIDES,
)

__all__ = ["DEFAULT_URL", "Journal"]


class Journal(OrderBook):
    """The trading journal on one SQL database (SQLite file or PostgreSQL)."""

    # -- market data, decisions, equity -------------------------------------------------------

    def record_bar(
        self,
        run_id: int,
        *,
        symbol: str,
        time: object,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> bool:
        """Record one bar a run saw; return whether it was new."""
        values = {"run_id": run_id, "symbol": symbol, "time": utc(time), "open": open}
        values |= {"high": high, "low": low, "close": close, "volume": volume}
        return self._insert_once(schema.bars, ["run_id", "symbol", "time"], values, "record bar")

    def record_equity(
        self,
        run_id: int,
        *,
        time: object,
        equity: float,
        cash: float | None = None,
        exposure: float | None = None,
    ) -> bool:
        """Record the account's equity at a time; return whether it was new."""
        values = {"run_id": run_id, "time": utc(time), "equity": equity, "cash": cash}
        values["exposure"] = exposure
        return self._insert_once(schema.equity, ["run_id", "time"], values, "record equity")

    def record_decision(self, run_id: int, decision: Mapping[str, Any]) -> bool:
        """Record a decision with its agents' signals; return whether it was new.

        Keys as in `BacktestResult.decisions` plus ``number`` (the run's decision id); agents as
        ``agents=[{"agent", "signal", "confidence", "weight"}, …]`` or the flat
        ``signal_<agent>``/``confidence_<agent>``/``weight_<agent>`` columns. A core `Decision`
        converts with `storage.decision_mapping`.
        """
        row, agents = decision_parts(decision)
        row = {**{c: None for c in schema.decisions.c.keys() if c != "id"}, **row}
        row |= {"run_id": run_id, "time": utc(row["time"])}
        keys = ["run_id", "number"]
        statement = insert_ignoring(self.dialect, schema.decisions, keys).returning(
            schema.decisions.c.id
        )

        def work(connection: Connection) -> bool:
            decision_id = connection.execute(statement, row).scalar_one_or_none()
            if decision_id is None:
                return False
            if agents:
                rows = [{"decision_id": decision_id, **a} for a in agents]
                for a in rows:
                    a.setdefault("confidence", None)
                    a.setdefault("weight", None)
                connection.execute(insert(schema.decision_agents), rows)
            return True

        return self._write(f"record decision {row['number']}", work)

    def record_trade(self, run_id: int, trade: Mapping[str, Any]) -> bool:
        """Record a round trip (``number`` is the run's trade id); return whether it was new."""
        values = checked(f"trade {trade.get('number')}", trade, TRADE_REQUIRED, TRADE_OPTIONAL)
        one_of("trade side", values["side"], TRADE_SIDES)
        row = {**{c: None for c in TRADE_OPTIONAL}, **values, "run_id": run_id}
        row["entry_time"] = utc(row["entry_time"])
        row["exit_time"] = None if row["exit_time"] is None else utc(row["exit_time"])
        return self._insert_once(schema.trades, ["run_id", "number"], row, "record trade")

    # -- risk and models ----------------------------------------------------------------------

    def record_risk_event(
        self,
        run_id: int | None,
        *,
        kind: str,
        state: str,
        reason: str | None = None,
        actor: str | None = None,
        time: object = None,
    ) -> int:
        """Record a risk event (and the state it leaves trading in); return its id."""
        one_of("risk event kind", kind, RISK_EVENT_KINDS)
        one_of("risk state", state, RISK_STATES)
        values = {"uid": uuid.uuid4().hex, "run_id": run_id, "time": self._now(time)}
        values |= {"kind": kind, "state": state, "reason": reason, "actor": actor}
        return self._insert_keyed(schema.risk_events, values, f"record risk event {kind}")

    def record_audit(
        self,
        *,
        actor: str,
        action: str,
        outcome: str,
        target: str | None = None,
        reason: str | None = None,
        detail: str | None = None,
        client: str | None = None,
        time: object = None,
    ) -> int:
        """Record an operator's control action and its outcome in the audit log; return its id."""
        one_of("audit outcome", outcome, AUDIT_OUTCOMES)
        values = {"uid": uuid.uuid4().hex, "time": self._now(time), "actor": actor[:100],
                  "client": None if client is None else client[:100], "action": action[:32],
                  "target": None if target is None else target[:200], "reason": reason,
                  "outcome": outcome, "detail": detail}  # fmt: skip
        return self._insert_keyed(schema.audit_log, values, f"record audit {action}")

    def latest_risk_state(self, name: str, *, kind: str | None = None) -> RiskEventRow | None:
        """Return the last risk event of any run named `name` (and of `kind`), or None.

        An engine restarting under the same name resumes in the state this reports.
        """
        runs, events = schema.runs, schema.risk_events
        statement = (
            select(events)
            .join(runs, runs.c.id == events.c.run_id)
            .where(runs.c.name == name)
            .order_by(events.c.time.desc(), events.c.id.desc())
            .limit(1)
        )
        if kind is not None:
            statement = statement.where(runs.c.kind == kind)
        row = self._read("read risk state", lambda c: c.execute(statement).mappings().first())
        return None if row is None else from_row(RiskEventRow, row)

    def record_model_version(self, model: Mapping[str, Any]) -> bool:
        """Record a trained model (model_id, algorithm, created, …); return whether it was new."""
        values = checked(f"model {model.get('model_id')!r}", model, MODEL_REQUIRED, MODEL_OPTIONAL)
        row = {**{c: None for c in MODEL_OPTIONAL}, **values}
        row["created"] = utc(row["created"])
        row["path"] = None if row["path"] is None else str(row["path"])
        return self._insert_once(schema.model_versions, ["model_id"], row, "record model")

    # -- retrains ------------------------------------------------------------------------------

    def record_retrain(
        self,
        *,
        started: object,
        symbol: str,
        timeframe: str,
        algorithm: str,
        trigger: str,
        verdict: str,
        reason: str,
        metric: str,
        margin: float,
        trials: int,
        tried: Mapping[str, Any],
        figures: Mapping[str, Any],
        data: Mapping[str, Any],
        challenger: str | None = None,
        champion: str | None = None,
        challenger_value: float | None = None,
        champion_value: float | None = None,
        deflated_sharpe: float | None = None,
        weights: Mapping[str, Any] | None = None,
        time: object = None,
    ) -> int:
        """Record one retrain (finished at `time`, default now) and its verdict; return its id.

        `trigger` is manual or schedule, `verdict` promoted, kept or failed; `champion` is None
        when there was none. Missing figures (None, NaN) are stored as NULL, NaN inside the
        JSON documents (`tried`, `figures`, `weights`, `data`) as null.
        """
        one_of("retrain trigger", trigger, RETRAIN_TRIGGERS)
        one_of("retrain verdict", verdict, RETRAIN_VERDICTS)
        values = retrain_values(
            {"uid": uuid.uuid4().hex, "time": self._now(time), "started": utc(started),
             "symbol": symbol, "timeframe": timeframe, "algorithm": algorithm,
             "trigger": trigger, "verdict": verdict, "reason": reason, "metric": metric,
             "challenger": challenger, "champion": champion, "challenger_value": challenger_value,
             "champion_value": champion_value, "margin": margin,
             "deflated_sharpe": deflated_sharpe, "trials": trials, "tried": tried,
             "figures": figures, "weights": weights, "data": data}
        )  # fmt: skip
        return self._insert_keyed(
            schema.retrains, values, f"record retrain of {symbol} {timeframe}"
        )

    def retrains(
        self, symbol: str | None = None, timeframe: str | None = None, limit: int | None = None
    ) -> list[RetrainRow]:
        """Return the retrains (of one symbol, one timeframe), newest first (the latest `limit`)."""
        table = schema.retrains
        statement = select(table).order_by(table.c.time.desc(), table.c.id.desc())
        if symbol is not None:
            statement = statement.where(table.c.symbol == symbol)
        if timeframe is not None:
            statement = statement.where(table.c.timeframe == timeframe)
        if limit is not None:
            statement = statement.limit(limit)
        rows = self._read("read retrains", lambda c: c.execute(statement).mappings().all())
        return [from_row(RetrainRow, row) for row in rows]

    # -- backtests and analysis ---------------------------------------------------------------

    def save_backtest(
        self,
        frames: Mapping[str, Any],
        *,
        name: str,
        config_hash: str | None = None,
        settings: Mapping[str, Any] | None = None,
        symbols: Sequence[str] = (),
        timeframe: str | None = None,
        version: str | None = None,
    ) -> int:
        """Store a backtest's tables in one transaction, in bulk; return the new run's id.

        `frames` holds `BacktestResult`'s DataFrames by name: decisions, orders, fills, trades
        and equity (the equity Series, or a frame with equity, cash and exposure columns).
        """
        backtest.check_frames(frames)
        run = self._run_values("backtest", name, config_hash, settings, symbols, timeframe, version)
        run |= {"status": "completed", "ended_at": run["started_at"]}
        return self._write(f"save backtest {name!r}", lambda c: self._save(c, frames, run))

    def _save(self, connection: Connection, frames: Mapping[str, Any], run: dict[str, Any]) -> int:
        """Insert a backtest run and its tables on one connection; return the run's id."""
        runs = schema.runs
        found = connection.execute(select(runs.c.id).where(runs.c.uid == run["uid"])).scalar()
        if found is not None:  # a retry after a lost commit: the save is complete
            return int(found)
        run_id = self._insert_run(connection, run)
        backtest.store_tables(connection, frames, run_id)
        return run_id

    def read_table(self, table: str, *, run_id: int | None = None) -> pd.DataFrame:
        """Return a journal table (of one run) as a DataFrame, times as UTC timestamps."""
        if table not in schema.metadata.tables:
            raise JournalError(
                f"no table {table!r} in the journal (tables: {', '.join(schema.metadata.tables)})"
            )
        source = schema.metadata.tables[table]
        statement = select(source)
        if run_id is not None and "run_id" in source.c:
            statement = statement.where(source.c.run_id == run_id)
        if "id" in source.c:
            statement = statement.order_by(source.c.id)

        def work(connection: Connection) -> pd.DataFrame:
            result = connection.execute(statement)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

        frame = self._read(f"read {table}", work)
        for column in source.c:
            if isinstance(column.type, UtcDateTime) and column.name in frame:
                frame[column.name] = pd.to_datetime(frame[column.name], utc=True)
        return frame

    # -- the engine lock ----------------------------------------------------------------------

    def acquire_engine_lock(
        self,
        name: str,
        *,
        owner: str,
        stale_after: float = 30.0,
        heartbeat_every: float | None = None,
    ) -> EngineLock:
        """Take the lock that lets one engine named `name` run on this journal (see `locks`).

        Raises `EngineLockedError` naming the holder (pid, host, since) when another engine
        has it. Use as a context manager; a thread refreshes its heartbeat meanwhile.
        """
        self._require_open()
        lock = EngineLock(
            self._db,
            name,
            owner=owner,
            clock=self.clock,
            stale_after=stale_after,
            heartbeat_every=heartbeat_every,
        )
        return lock.acquire()

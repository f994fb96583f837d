"""The SQL in ``sql/``: generated DDL, stored functions and analysis queries against pandas."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from reinforcetrade.backtesting import BacktestResult, EnhancedBacktester
from reinforcetrade.data import DataLoader
from reinforcetrade.storage import Journal, metadata
from reinforcetrade.storage.analysis import (
    INIT_SQL,
    execute_script,
    generated_section,
    install_procedures,
    load_queries,
    postgres_ddl,
    query_file,
    run_query,
)
from reinforcetrade.strategies import MultiAgentStrategy
from storage.conftest import plain_dsn, result_frames, save_kwargs
from storage.test_migrations import _expected, _shape

PROCEDURES = ("daily_pnl", "agent_performance", "drawdown_series", "exposure_snapshot")
#: bars recorded for the exposure snapshot (BTC/USDT, the first trade's holding period)
BAR_WINDOW = (
    pd.Timestamp("2020-02-05 18:00", tz="UTC"),
    pd.Timestamp("2020-02-06 06:00", tz="UTC"),
)
SNAPSHOT_TIMES = (
    pd.Timestamp("2020-02-05 15:00", tz="UTC"),  # holding, no bar yet: last fill price
    pd.Timestamp("2020-02-06 00:00", tz="UTC"),  # holding, a bar: its close
    pd.Timestamp("2020-03-01 00:00", tz="UTC"),  # flat
)


# -- the data -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    """Three thousand synthetic hourly BTC/USDT bars."""
    return DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=3000, seed=7)


@pytest.fixture(scope="module")
def result(market: pd.DataFrame) -> BacktestResult:
    """A real multi-agent backtest on the synthetic market."""
    return EnhancedBacktester(MultiAgentStrategy()).run(market)


def _bars(market: pd.DataFrame) -> pd.DataFrame:
    """Return the market bars inside `BAR_WINDOW` with UTC times."""
    frame = market.copy()
    if "timestamp" in frame.columns:
        frame = frame.set_index("timestamp")
    frame.index = pd.to_datetime(frame.index, utc=True)
    return frame[(frame.index >= BAR_WINDOW[0]) & (frame.index <= BAR_WINDOW[1])]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.network),
    ],
)
def stored(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    result: BacktestResult,
    market: pd.DataFrame,
) -> Iterator[tuple[Journal, int]]:
    """A journal holding the backtest (plus a few bars), with init.sql's functions on PostgreSQL."""
    schema_name = ""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sql') / 'journal.db'}"
    else:
        postgres_url: str = request.getfixturevalue("postgres_url")
        schema_name = f"rt_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(plain_dsn(postgres_url), autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{schema_name}"')
        url = (
            make_url(postgres_url)
            .update_query_dict({"options": f"-csearch_path={schema_name}"})
            .render_as_string(hide_password=False)
        )
    journal = Journal(url).open()
    try:
        # a first run with the same decision and trade numbers: every query must keep to its run
        journal.save_backtest(result_frames(result), **save_kwargs(result, "other"))
        run_id = journal.save_backtest(result_frames(result), **save_kwargs(result, "sql"))
        for time, bar in _bars(market).iterrows():
            journal.record_bar(
                run_id,
                symbol="BTC/USDT",
                time=time,
                open=float(bar["open"]),
                high=float(bar["high"]),
                low=float(bar["low"]),
                close=float(bar["close"]),
                volume=float(bar["volume"]),
            )
        if journal.dialect == "postgresql":
            install_procedures(journal)
        yield journal, run_id
    finally:
        journal.close()
        if schema_name:
            with psycopg.connect(plain_dsn(request.getfixturevalue("postgres_url"))) as admin:
                admin.autocommit = True
                admin.execute(f'DROP SCHEMA "{schema_name}" CASCADE')


# -- the same numbers in pandas -------------------------------------------------------------


def _agents(result: BacktestResult) -> list[str]:
    """Return the backtest's agent names."""
    return sorted(str(c)[7:] for c in result.decisions.columns if str(c).startswith("signal_"))


def _closed(result: BacktestResult) -> pd.DataFrame:
    """Return closed trades with their number, entry decision's columns and exit order."""
    trades = result.trades.reset_index(drop=True).copy()
    trades["number"] = np.arange(len(trades))
    trades = trades[trades["exit_time"].notna() & trades["pnl"].notna()]
    entry = result.decisions.loc[trades["decision"]].reset_index(drop=True)
    entry.columns = [f"d_{c}" for c in entry.columns]
    joined = pd.concat([trades.reset_index(drop=True), entry], axis=1)
    return joined.sort_values(["exit_time", "number"], kind="stable").reset_index(drop=True)


def _shares(closed: pd.DataFrame, agents: list[str]) -> pd.DataFrame:
    """Return each closed trade's agents' weight shares, one column per agent."""
    weights = closed[[f"d_weight_{a}" for a in agents]].to_numpy(dtype=float)
    total = weights.sum(axis=1, keepdims=True)
    return pd.DataFrame(weights / np.where(total > 0, total, np.nan), columns=agents)


def _hit_table(result: BacktestResult) -> pd.DataFrame:
    """Return per agent: votes, trades voted on, hits, hit rate and attributed P&L."""
    closed = _closed(result)
    agents = _agents(result)
    shares = _shares(closed, agents)
    rows = []
    for agent in agents:
        signal = closed[f"d_signal_{agent}"].to_numpy(dtype=float)
        ret = closed["return"].to_numpy(dtype=float)
        trades = int((signal != 0).sum())
        hits = int((signal * ret > 0).sum())
        rows.append(
            {
                "agent": agent,
                "votes": int((result.decisions[f"signal_{agent}"] != 0).sum()),
                "trades": trades,
                "hits": hits,
                "hit_rate": hits / trades if trades else np.nan,
                "attributed_pnl": float((closed["pnl"] * shares[agent]).sum()),
                "mean_share": float(shares[agent].mean()),
            }
        )
    return pd.DataFrame(rows)


def expect_agent_hit_rate(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """Per agent hit rate."""
    return _hit_table(result)[["agent", "trades", "hits", "hit_rate"]]


def expect_agent_pnl_attribution(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """Per agent attributed P&L."""
    return _hit_table(result)[["agent", "attributed_pnl", "mean_share"]]


def expect_agent_performance(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """The agent_performance procedure."""
    table = _hit_table(result)
    return table[["agent", "votes", "trades", "hits", "hit_rate", "attributed_pnl"]]


def expect_pnl_by_regime(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """Closed trades by entry regime."""
    closed = _closed(result)
    closed["regime"] = closed["d_regime"].astype(object).fillna("unknown")
    grouped = closed.groupby("regime", sort=True)
    return pd.DataFrame(
        {
            "trades": grouped.size(),
            "wins": grouped["pnl"].apply(lambda p: int((p > 0).sum())),
            "pnl": grouped["pnl"].sum(),
            "mean_return": grouped["return"].mean(),
        }
    ).reset_index()


def expect_pnl_by_hour(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """Closed trades by exit hour."""
    closed = _closed(result)
    closed["hour"] = closed["exit_time"].dt.tz_convert("UTC").dt.hour
    grouped = closed.groupby("hour", sort=True)
    return pd.DataFrame({"trades": grouped.size(), "pnl": grouped["pnl"].sum()}).reset_index()


def expect_slippage_stats(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """Fill slippage by symbol and side."""
    fills = result.fills.assign(
        symbol=result.fills["symbol"].astype(str), side=result.fills["side"].astype(str)
    )
    grouped = fills.groupby(["symbol", "side"], sort=True)
    return pd.DataFrame(
        {
            "fills": grouped.size(),
            "mean_bps": grouped["slippage_bps"].mean(),
            "max_bps": grouped["slippage_bps"].max(),
            "total_slippage": grouped["slippage"].sum(),
        }
    ).reset_index()


def expect_confidence_calibration(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """Closed trades by confidence decile."""
    closed = _closed(result)
    closed = closed[closed["d_confidence"].notna()].copy()
    closed["decile"] = np.minimum(np.floor(closed["d_confidence"] * 10), 9).astype(int)
    grouped = closed.groupby("decile", sort=True)
    wins = grouped["pnl"].apply(lambda p: int((p > 0).sum()))
    return pd.DataFrame(
        {
            "trades": grouped.size(),
            "wins": wins,
            "win_rate": wins / grouped.size(),
            "mean_confidence": grouped["d_confidence"].mean(),
        }
    ).reset_index()


def _streaks(result: BacktestResult, sign: int) -> pd.DataFrame:
    """Return runs of closed trades whose P&L has `sign`, in exit order."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    closed = _closed(result)
    for number, pnl in zip(closed["number"].tolist(), closed["pnl"].tolist(), strict=True):
        if np.sign(pnl) == sign:
            current.append((int(number), float(pnl)))
            continue
        if current:
            runs.append(current)
        current = []
    if current:
        runs.append(current)
    streaks = [
        {"first_trade": run[0][0], "length": len(run), "pnl": sum(p for _, p in run)}
        for run in runs
    ]
    return pd.DataFrame(streaks, columns=["first_trade", "length", "pnl"])


def expect_losing_streaks(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """Losing streaks."""
    return _streaks(result, -1)


def expect_winning_streaks(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """Winning streaks."""
    return _streaks(result, 1)


def expect_blocked_entries_by_reason(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """Blocked decisions per reason code."""
    blocked = result.decisions[result.decisions["action"].astype(str) == "blocked"]
    codes = blocked["reason_codes"].dropna().astype(str).str.split("|").explode()
    counts = codes[codes != ""].value_counts().sort_index()
    return pd.DataFrame({"code": counts.index.astype(str), "decisions": counts.to_numpy()})


def _signed(fills: pd.DataFrame) -> pd.Series:
    """Return fill quantities, sells negative."""
    return fills["qty"].where(fills["side"].astype(str) == "buy", -fills["qty"])


def expect_exposure_by_symbol(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """Per symbol fill summary."""
    rows = []
    fills = result.fills.reset_index(drop=True)
    for symbol, group in fills.groupby(fills["symbol"].astype(str), sort=True):
        last = group.sort_values("time", kind="stable")["price"].iloc[-1]
        net = float(_signed(group).sum())
        rows.append(
            {
                "symbol": symbol,
                "buys": int((group["side"].astype(str) == "buy").sum()),
                "sells": int((group["side"].astype(str) == "sell").sum()),
                "net_qty": net,
                "traded_notional": float((group["qty"] * group["price"]).sum()),
                "last_price": float(last),
                "net_value": net * float(last),
            }
        )
    return pd.DataFrame(rows)


def expect_trade_duration_stats(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """Holding times of closed trades by side."""
    trades = result.trades[result.trades["exit_time"].notna()].copy()
    trades["side"] = trades["side"].astype(str)
    trades["hours"] = (trades["exit_time"] - trades["entry_time"]).dt.total_seconds() / 3600
    grouped = trades.groupby("side", sort=True)["hours"]
    return pd.DataFrame(
        {
            "trades": grouped.size(),
            "mean_hours": grouped.mean(),
            "min_hours": grouped.min(),
            "max_hours": grouped.max(),
        }
    ).reset_index()


def _days(result: BacktestResult) -> pd.DataFrame:
    """Return per UTC day the last equity and the previous day's (first day: first equity)."""
    equity = result.equity.copy()
    equity.index = pd.to_datetime(equity.index, utc=True)
    days = equity.groupby(equity.index.date).last()
    previous = days.shift(1).fillna(float(equity.iloc[0]))
    return pd.DataFrame(
        {"day": [str(d) for d in days.index], "end_equity": days.values, "prev": previous.values}
    )


def expect_daily_returns(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """Daily returns of the equity curve."""
    days = _days(result)
    days["daily_return"] = days["end_equity"] / days["prev"] - 1
    return days[["day", "end_equity", "daily_return"]]


def expect_daily_pnl(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """The daily_pnl procedure."""
    days = _days(result)
    trades = result.trades[result.trades["exit_time"].notna()]
    exit_day = trades["exit_time"].dt.tz_convert("UTC").dt.date.astype(str)
    fill_day = result.fills["time"].dt.tz_convert("UTC").dt.date.astype(str)
    count = trades.groupby(exit_day).size()
    pnl = trades.groupby(exit_day)["pnl"].sum()
    fees = result.fills.groupby(fill_day)["commission"].sum()
    days["trades"] = days["day"].map(count).fillna(0).astype(int)
    days["realised_pnl"] = days["day"].map(pnl).fillna(0.0)
    days["fees"] = days["day"].map(fees).fillna(0.0)
    days["equity_change"] = days["end_equity"] - days["prev"]
    return days[["day", "trades", "realised_pnl", "fees", "end_equity", "equity_change"]]


def expect_drawdown_series(result: BacktestResult, **_: Any) -> pd.DataFrame:
    """The drawdown_series procedure."""
    equity = result.equity
    peak = equity.cummax()
    return pd.DataFrame(
        {
            "time": pd.to_datetime(equity.index, utc=True),
            "equity": equity.to_numpy(),
            "peak": peak.to_numpy(),
            "drawdown": (equity / peak - 1).to_numpy(),
        }
    )


def expect_exposure_snapshot(
    result: BacktestResult, *, at: pd.Timestamp, market: pd.DataFrame, **_: Any
) -> pd.DataFrame:
    """The exposure_snapshot procedure at `at`."""
    fills = result.fills.reset_index(drop=True)
    fills = fills[fills["time"] <= at]
    bars = _bars(market)
    bars = bars[bars.index <= at]
    equity = result.equity[pd.to_datetime(result.equity.index, utc=True) <= at]
    rows = []
    for symbol, group in fills.groupby(fills["symbol"].astype(str), sort=True):
        qty = float(_signed(group).sum())
        if symbol == "BTC/USDT" and len(bars):
            price = float(bars["close"].iloc[-1])
        else:
            price = float(group.sort_values("time", kind="stable")["price"].iloc[-1])
        value = qty * price
        last = float(equity.iloc[-1])
        rows.append(
            {
                "symbol": symbol,
                "qty": qty,
                "price": price,
                "value": value,
                "equity": last,
                "weight": value / last,
            }
        )
    return pd.DataFrame(rows, columns=["symbol", "qty", "price", "value", "equity", "weight"])


EXPECTED: dict[str, Callable[..., pd.DataFrame]] = {
    name.removeprefix("expect_"): function
    for name, function in globals().items()
    if name.startswith("expect_")
}


# -- comparing ------------------------------------------------------------------------------


def _normal(column: pd.Series, name: str) -> pd.Series:
    """Return a column in a comparable form: days and times as text/UTC, categories as text."""
    if name == "day":
        return column.map(lambda d: str(d)[:10])
    if name == "time":
        return pd.Series(pd.to_datetime(column, utc=True))
    return column


def assert_same(got: pd.DataFrame, expected: pd.DataFrame, what: str) -> None:
    """Assert equal columns and rows: integers and text exactly, floats to 1e-9 relative."""
    assert list(got.columns) == list(expected.columns), what
    assert len(got) == len(expected), f"{what}: {len(got)} rows, expected {len(expected)}"
    assert len(got) > 0, f"{what}: no rows, so nothing was checked"
    for name in expected.columns:
        mine = _normal(got[name].reset_index(drop=True), name)
        theirs = _normal(expected[name].reset_index(drop=True), name)
        if pd.api.types.is_float_dtype(theirs) or pd.api.types.is_float_dtype(mine):
            np.testing.assert_allclose(
                mine.to_numpy(dtype=float),
                theirs.to_numpy(dtype=float),
                rtol=1e-9,
                atol=1e-12,
                err_msg=f"{what}.{name}",
            )
        elif pd.api.types.is_integer_dtype(theirs):
            assert mine.astype("int64").tolist() == theirs.astype("int64").tolist(), name
        else:
            assert mine.astype(object).tolist() == theirs.astype(object).tolist(), name


# -- the query files ------------------------------------------------------------------------


def test_both_query_files_have_the_same_documented_queries() -> None:
    postgres = load_queries(query_file("postgresql"))
    sqlite = load_queries(query_file("sqlite"))
    assert list(postgres) == list(sqlite)
    assert len(set(postgres) - set(PROCEDURES)) >= 10
    assert set(postgres) == set(EXPECTED), "every query has a pandas twin in this test"
    for path in (query_file("postgresql"), query_file("sqlite")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if line.startswith("-- name: "):
                assert lines[number + 1].startswith("-- "), f"{path}:{number + 2} describes it"
    for queries in (postgres, sqlite):
        for name, sql in queries.items():
            assert ":run_id" in sql, name


def test_the_generated_schema_in_init_sql_is_current() -> None:
    assert generated_section() == postgres_ddl(), (
        "sql/init.sql is out of date with storage.schema: run "
        "`python -m reinforcetrade.storage.analysis ddl --write`"
    )
    assert len(metadata.tables) == generated_section().count("CREATE TABLE ")


# -- every query and procedure, both dialects -----------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_query_matches_pandas(
    name: str, stored: tuple[Journal, int], result: BacktestResult, market: pd.DataFrame
) -> None:
    journal, run_id = stored
    times = SNAPSHOT_TIMES if name == "exposure_snapshot" else (None,)
    for at in times:
        params: dict[str, Any] = {"run_id": run_id}
        if at is not None:
            params["at"] = at.to_pydatetime()
        got = run_query(journal, name, **params)
        expected = EXPECTED[name](result, at=at, market=market)
        assert_same(got, expected, f"{journal.dialect} {name} at {at}")


def test_queries_of_an_unknown_run_are_empty(stored: tuple[Journal, int]) -> None:
    journal, run_id = stored
    got = run_query(journal, "daily_returns", run_id=run_id + 1000)
    assert got.empty


# -- PostgreSQL: init.sql and the writing procedures ----------------------------------------


@pytest.mark.network
def test_init_sql_builds_the_migrations_schema(fresh_pg_url: str, postgres_url: str) -> None:
    engine = create_engine(fresh_pg_url)
    try:
        execute_script(engine, Path(INIT_SQL).read_text(encoding="utf-8"))
        with engine.connect() as connection:
            from_init = _shape(connection)
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
            functions = connection.execute(
                text(
                    "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                    " WHERE n.nspname = current_schema()"
                )
            ).scalars()
            assert set(functions) >= {"record_fill", "close_position", *PROCEDURES}
    finally:
        engine.dispose()
    assert from_init == _expected()
    name = f"rt_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain_dsn(postgres_url), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={name}"})
        migrated = Journal(url.render_as_string(hide_password=False)).open()
        try:
            with migrated.engine.connect() as connection:
                assert _shape(connection) == from_init
        finally:
            migrated.close()
    finally:
        with psycopg.connect(plain_dsn(postgres_url), autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.mark.network
def test_record_fill_is_idempotent(fresh_pg_url: str) -> None:
    journal = Journal(fresh_pg_url).open()
    try:
        install_procedures(journal)
        run_id = journal.start_run("paper", name="fills")
        call = text(
            "SELECT record_fill(:run, 'c-1', 'binance', 't-1', 'BTC/USDT', 'buy', :time,"
            " 0.5, 100.0, 0.05, 99.9, 0.05, 10.0, 12.0)"
        )
        time = pd.Timestamp("2026-01-01 12:00", tz="UTC").to_pydatetime()
        with journal.engine.begin() as connection:
            first = connection.execute(call, {"run": run_id, "time": time}).scalar_one()
            again = connection.execute(call, {"run": run_id, "time": time}).scalar_one()
        assert (first, again) == (True, False)
        fills = journal.fills_for("c-1")
        assert len(fills) == 1
        assert (fills[0].qty, fills[0].price, fills[0].fee) == (0.5, 100.0, 0.05)
        assert fills[0].reconciliation is False
        same: dict[str, Any] = {"exchange": "binance", "exchange_trade_id": "t-1"}
        same |= {"symbol": "BTC/USDT", "side": "buy", "time": time, "qty": 0.5, "price": 100.0}
        assert journal.record_fill(same) is False  # the journal honours the same key
    finally:
        journal.close()


@pytest.mark.network
def test_close_position_realises_the_pnl(fresh_pg_url: str) -> None:
    journal = Journal(fresh_pg_url).open()
    try:
        install_procedures(journal)
        run_id = journal.start_run("paper", name="positions")
        opened = pd.Timestamp("2026-01-01 10:00", tz="UTC")
        journal.upsert_position(
            run_id, "ETH/USDT", qty=-2.0, avg_price=2000.0, realised_pnl=3.5, opened_at=opened
        )
        closed = pd.Timestamp("2026-01-01 14:00", tz="UTC").to_pydatetime()
        call = text("SELECT close_position(:run, 'ETH/USDT', :time, 1950.25)")
        with journal.engine.begin() as connection:
            pnl = connection.execute(call, {"run": run_id, "time": closed}).scalar_one()
            missing = connection.execute(call, {"run": run_id, "time": closed}).scalar_one()
        assert pnl == pytest.approx(3.5 + (-2.0) * (1950.25 - 2000.0), rel=1e-12)
        assert missing is None
        assert journal.positions(run_id) == []
        (row,) = journal.positions(run_id, open_only=False)
        assert row.closed_at == closed
        assert row.realised_pnl == pytest.approx(pnl, rel=1e-12)
    finally:
        journal.close()


def test_install_procedures_needs_postgresql(tmp_path: Path) -> None:
    from reinforcetrade.storage import JournalError

    with Journal(f"sqlite:///{tmp_path / 'j.db'}") as journal:
        with pytest.raises(JournalError, match="PostgreSQL"):
            install_procedures(journal)

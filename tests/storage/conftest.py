"""Journals on a real SQLite file and on a fresh schema of the machine's real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from reinforcetrade.backtesting import BacktestResult, EnhancedBacktester
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.data import generate_market
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy

#: 2026-01-01T00:00:00Z, the journal tests' clock
T0 = 1_767_225_600_000_000_000

DIALECTS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.network),
]


def plain_dsn(url: str) -> str:
    """Return a SQLAlchemy PostgreSQL URL as a libpq URL psycopg understands."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def fresh_pg_url(postgres_url: str) -> Iterator[str]:
    """Return a URL whose search_path is a new, empty schema; drop the schema afterwards."""
    name = f"rt_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain_dsn(postgres_url), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    url = make_url(postgres_url).update_query_dict(
        {"options": f"-csearch_path={name}", "application_name": name}
    )
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(plain_dsn(postgres_url), autocommit=True) as admin:
        admin.execute("SET lock_timeout = '10s'")
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s"
            " AND pid <> pg_backend_pid()",
            (name,),
        )
        admin.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture(params=DIALECTS)
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return the URL of an empty journal database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    url: str = request.getfixturevalue("fresh_pg_url")
    return url


@pytest.fixture
def clock() -> FixedClock:
    """A clock standing at 2026-01-01T00:00:00Z."""
    return FixedClock(T0)


@pytest.fixture
def journal(journal_url: str, clock: FixedClock) -> Iterator[Journal]:
    """An open journal on a fixed clock."""
    opened = Journal(journal_url, clock=clock).open()
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def backtest_result() -> BacktestResult:
    """A real multi-agent backtest on two synthetic symbols (1,500 hourly bars)."""
    frames = generate_market(["BTC/USDT", "ETH/USDT"], bars=1_500, seed=11).frames
    return EnhancedBacktester(MultiAgentStrategy(use_rl=False)).run(frames)


def result_frames(result: BacktestResult) -> dict[str, Any]:
    """Return a backtest's tables as `Journal.save_backtest` takes them."""
    equity = result.equity.to_frame().assign(exposure=result.exposure["total"])
    return {
        "decisions": result.decisions,
        "orders": result.orders,
        "fills": result.fills,
        "trades": result.trades,
        "equity": equity,
    }


def save_kwargs(result: BacktestResult, name: str = "bt") -> dict[str, Any]:
    """Return `save_backtest`'s keyword arguments for a result."""
    return {
        "name": name,
        "config_hash": result.config_hash,
        "settings": result.public_config(),
        "symbols": list(result.symbols),
        "timeframe": result.info["timeframe"],
        "version": result.info["version"],
    }

"""Shared helper of the order tests: an `OrderManager` on a broker with a real SQLite journal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reinforcetrade.storage import Journal
from reinforcetrade.trading.broker import Broker
from reinforcetrade.trading.orders import OrderManager


@contextmanager
def order_manager(
    broker: Broker, folder: Path, symbol: str, *, kind: str = "live"
) -> Iterator[OrderManager]:
    """Yield an order manager for one run on a fresh journal, with ids 0001, 0002, …"""
    journal = Journal(f"sqlite:///{folder / 'journal.db'}").open()
    run = journal.start_run(
        kind, name="test", config_hash="c0ffee", settings={}, symbols=[symbol],
        timeframe="1m", version="test",
    )  # fmt: skip
    ids = iter(range(1, 1000))
    try:
        yield OrderManager(broker, journal, run, new_id=lambda: f"{next(ids):04d}")
    finally:
        journal.close()

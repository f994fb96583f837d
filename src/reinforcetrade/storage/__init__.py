"""The SQL journal (SQLite, PostgreSQL): runs, decisions, orders, fills, risk events, retrains.

A sketch of the live engine's use (`Journal.from_settings(settings)` reads the storage section)::

    with Journal("sqlite:///reinforcetrade.db") as journal:
        run = journal.start_run("paper", name="paper-btc", symbols=["BTC/USDT"], timeframe="1h")
        with journal.acquire_engine_lock("paper-btc", owner="cli") as lock:
            journal.record_order(order)                   # before sending it
            journal.update_order(order["client_order_id"], "submitted", exchange_order_id=ack)
            journal.record_fill(fill)                     # False when the trade id is known
"""

from reinforcetrade.storage.database import RetryPolicy
from reinforcetrade.storage.errors import EngineLockedError, IllegalTransitionError, JournalError
from reinforcetrade.storage.inputs import decision_mapping
from reinforcetrade.storage.journal import DEFAULT_URL, Journal
from reinforcetrade.storage.locks import EngineLock, LockHolder
from reinforcetrade.storage.orders import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    ORDER_STATUSES,
    TRANSITIONS,
    check_transition,
)
from reinforcetrade.storage.rows import (
    FillRow,
    OrderEventRow,
    OrderRow,
    PositionRow,
    RetrainRow,
    RiskEventRow,
    RunRow,
)
from reinforcetrade.storage.schema import metadata

__all__ = [
    "DEFAULT_URL",
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "ORDER_STATUSES",
    "TRANSITIONS",
    "EngineLock",
    "EngineLockedError",
    "FillRow",
    "IllegalTransitionError",
    "Journal",
    "JournalError",
    "LockHolder",
    "OrderEventRow",
    "OrderRow",
    "PositionRow",
    "RetrainRow",
    "RetryPolicy",
    "RiskEventRow",
    "RunRow",
    "check_transition",
    "decision_mapping",
    "metadata",
]

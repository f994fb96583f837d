"""Schema migrations: upgrade a journal database to the newest revision with Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from reinforcetrade.storage.database import Database

#: The folder of Alembic's environment and revisions (installed with the package).
MIGRATIONS: Final[Path] = Path(__file__).resolve().parent / "migrations"
#: A constant key for PostgreSQL's advisory lock that serialises concurrent upgrades.
_UPGRADE_LOCK: Final[int] = 0x5254_4A4E_4C55_5047  # "RTJNLUPG"


def alembic_config(connection: Connection | None = None) -> Config:
    """Return Alembic's configuration for the journal, bound to `connection` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Return the newest revision of the journal's schema."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its revisions
        raise RuntimeError(f"no schema revisions found in {MIGRATIONS}")
    return head


def current_revision(connection: Connection) -> str | None:
    """Return the revision a database is at (None when it has no journal schema)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(database: Database) -> str:
    """Upgrade `database` to the newest revision in one transaction; return that revision."""

    def work(connection: Connection) -> str:
        if connection.dialect.name == "postgresql":  # two engines opening at once: one migrates
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
        if current_revision(connection) != head_revision():
            command.upgrade(alembic_config(connection), "head")
        return head_revision()

    return database.write("upgrade the schema", work)

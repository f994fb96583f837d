"""Alembic's environment for the journal's schema.

`Journal.open` hands Alembic an open connection (``config.attributes["connection"]``); from the
command line give the database with ``-x url=…``::

    alembic -c src/reinforcetrade/storage/migrations/alembic.ini \
        -x url=sqlite:///reinforcetrade.db upgrade head
"""

from __future__ import annotations

import logging.config

from alembic import context
from sqlalchemy import Connection, create_engine

from reinforcetrade.storage.schema import metadata


def _loaded_by_alembic() -> bool:
    """Return whether Alembic is running this file (importing it, e.g. for doctests, is inert)."""
    return hasattr(context, "config")  # Alembic sets it only while a command runs


def _migrate(connection: Connection) -> None:
    """Run the pending migrations on `connection`."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER via table copies
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    """Migrate the connection Alembic was given, or the database named by ``-x url=…``."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if context.config.config_file_name:
        logging.config.fileConfig(context.config.config_file_name, disable_existing_loggers=False)
    if not url:
        raise SystemExit("name the journal database: alembic … -x url=sqlite:///reinforcetrade.db")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            _migrate(connection)
            connection.commit()
    finally:
        engine.dispose()


if _loaded_by_alembic():
    run()

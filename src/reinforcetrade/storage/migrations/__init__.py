"""Alembic migrations of the journal's schema; `Journal.open` upgrades to head."""

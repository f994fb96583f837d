"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from requirements import missing

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    """Return the folder of real market data (../shared/data, or $RT_SHARED_DATA)."""
    override = os.environ.get("RT_SHARED_DATA")
    return Path(override) if override else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Return the real-data folder; skip when absent, but fail under CI=true where it must exist."""
    folder = _shared_dir()
    if not (folder / "README.md").is_file():
        missing(f"real market data not found at {folder} (set RT_SHARED_DATA to its folder)")
    return folder


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run in an empty working folder with no RT_ variables set; return the folder."""
    for name in list(os.environ):
        if name.upper().startswith("RT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """Return a SQLAlchemy URL of the machine's PostgreSQL; skip if absent (fail under CI=true)."""
    url = os.environ.get(
        "RT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    try:
        import psycopg

        with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=3):
            pass
    except Exception as exc:  # any failure to reach it: skip with the reason
        missing(f"PostgreSQL not reachable at {url} ({type(exc).__name__}: {exc})")
    return url

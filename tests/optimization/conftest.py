"""A real two-process Dask cluster on 127.0.0.1, shared by the optimisation tests that need it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from distributed import Client, LocalCluster

# the scheduler's thread logs client arrivals and departures at INFO, sometimes after pytest has
# closed the stream it captured: keep only warnings and errors
logging.getLogger("distributed").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """A real two-process Dask cluster on 127.0.0.1 (only started when a Dask test runs)."""
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local


@pytest.fixture(scope="session")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster, set_as_default=False) as c:  # type: ignore[no-untyped-call]
        yield c

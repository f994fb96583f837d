"""Executors: results in item order, data unpickled once per worker, progress, errors, dispatch."""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client, LocalCluster

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.optimization.executors import (
    DaskExecutor,
    LocalExecutor,
    SerialExecutor,
    TaskError,
    TrialExecutor,
    make_executor,
)

KINDS = [
    "serial",
    "local",
    pytest.param("dask-address", marks=pytest.mark.network),
    pytest.param("dask-client", marks=pytest.mark.network),
]
POOLED = [k for k in KINDS if k != "serial"]


class CountedArray:
    """Shared test data: every unpickling appends this process's pid to a file in `log_dir`."""

    def __init__(self, values: np.ndarray[Any, np.dtype[np.float64]], log_dir: Path) -> None:
        self.values = values
        self.log_dir = log_dir
        self.pickled = 0  # how often this very object was pickled (in the test process)

    def __reduce__(self) -> tuple[Callable[..., CountedArray], tuple[Any, ...]]:
        self.pickled += 1
        return (_rebuild, (self.values, self.log_dir))


def _rebuild(values: np.ndarray[Any, np.dtype[np.float64]], log_dir: Path) -> CountedArray:
    with (log_dir / f"{os.getpid()}.log").open("a", encoding="utf-8") as log:
        log.write("unpickled\n")
    return CountedArray(values, log_dir)


def unpickled_by_pid(log_dir: Path) -> dict[int, int]:
    return {
        int(p.stem): len(p.read_text(encoding="utf-8").splitlines()) for p in log_dir.glob("*.log")
    }


def score(shared: CountedArray, i: int) -> float:
    """A deterministic function of the shared array and the item; finishes out of order."""
    time.sleep(0.002 * (i % 4))
    v = shared.values
    return float(v[i % len(v)] * (i + 1) + v[::1000].sum())


def score_and_pid(shared: CountedArray, i: int) -> tuple[float, int]:
    time.sleep(0.005)
    return score(shared, i), os.getpid()


def fail_on_seven(shared: CountedArray, i: int) -> int:
    if i == 7:
        raise ValueError("seven is unlucky")
    time.sleep(0.01)
    return i


@pytest.fixture
def shared(tmp_path: Path) -> CountedArray:
    log_dir = tmp_path / "unpickled"
    log_dir.mkdir()
    return CountedArray(np.linspace(0.0, 1.0, 100_000), log_dir)


@pytest.fixture
def open_executor(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[[str, CountedArray], TrialExecutor[CountedArray]]]:
    """Return a maker of executors of each kind; closes them all at the end of the test."""
    made: list[TrialExecutor[CountedArray]] = []

    def make(kind: str, data: CountedArray) -> TrialExecutor[CountedArray]:
        executor: TrialExecutor[CountedArray]
        if kind == "serial":
            executor = SerialExecutor(data)
        elif kind == "local":
            executor = LocalExecutor(data, workers=2)
        elif kind == "dask-address":
            cluster: LocalCluster = request.getfixturevalue("cluster")
            executor = DaskExecutor(data, address=cluster.scheduler_address)
        else:
            executor = DaskExecutor(data, client=request.getfixturevalue("client"))
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.close()


@pytest.mark.parametrize("kind", KINDS)
def test_results_come_in_item_order(
    kind: str,
    shared: CountedArray,
    open_executor: Callable[[str, CountedArray], TrialExecutor[CountedArray]],
) -> None:
    items = [*range(40), 3, 3, 3]  # equal items are separate tasks with equal results
    random.Random(7).shuffle(items)
    expected = [score(shared, i) for i in items]
    with open_executor(kind, shared) as executor:
        assert executor.map(score, items) == expected
        assert executor.map(score, items[::-1]) == expected[::-1]
        assert executor.map(score, []) == []


@pytest.mark.parametrize("kind", POOLED)
def test_shared_data_is_unpickled_once_per_worker(
    kind: str,
    shared: CountedArray,
    open_executor: Callable[[str, CountedArray], TrialExecutor[CountedArray]],
    request: pytest.FixtureRequest,
) -> None:
    executor = open_executor(kind, shared)
    task_pids: set[int] = set()
    for batch in range(4):
        results = executor.map(score_and_pid, list(range(batch, batch + 30)))
        task_pids |= {pid for _, pid in results}
        if kind.startswith("dask"):
            # the Active Memory Manager drops extra copies of scattered data between batches;
            # run it now so the test sees what a real idle gap between batches would do
            request.getfixturevalue("client").amm.run_once()
    counts = unpickled_by_pid(shared.log_dir)
    assert shared.pickled == 1  # pickled once here, for all batches and workers
    assert os.getpid() not in counts
    assert set(counts.values()) == {1}  # each worker process unpickled it exactly once
    assert task_pids <= set(counts)
    assert len(counts) <= 2
    if kind.startswith("dask"):
        dask_client: Client = request.getfixturevalue("client")
        worker_pids = set(dask_client.run(os.getpid).values())
        assert set(counts) == worker_pids  # every worker got it once, whether it ran tasks or not


@pytest.mark.parametrize("kind", KINDS)
def test_progress_counts_up_to_the_total(
    kind: str,
    shared: CountedArray,
    open_executor: Callable[[str, CountedArray], TrialExecutor[CountedArray]],
) -> None:
    seen: list[tuple[int, int]] = []
    open_executor(kind, shared).map(
        score, list(range(12)), progress=lambda k, n: seen.append((k, n))
    )
    assert seen == [(k, 12) for k in range(1, 13)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_task_names_its_item_and_the_executor_stays_usable(
    kind: str,
    shared: CountedArray,
    open_executor: Callable[[str, CountedArray], TrialExecutor[CountedArray]],
) -> None:
    executor = open_executor(kind, shared)
    with pytest.raises(TaskError, match=r"failed on item 7: ValueError: seven is unlucky") as info:
        executor.map(fail_on_seven, list(range(20)))
    assert info.value.item == 7
    assert info.value.index == 7
    assert isinstance(info.value.__cause__, ValueError)
    assert executor.map(fail_on_seven, [1, 2, 3]) == [1, 2, 3]


@pytest.mark.parametrize("kind", KINDS)
def test_workers_counts_concurrent_tasks(
    kind: str,
    shared: CountedArray,
    open_executor: Callable[[str, CountedArray], TrialExecutor[CountedArray]],
) -> None:
    assert open_executor(kind, shared).workers == (1 if kind == "serial" else 2)


def test_a_closed_executor_refuses_work(shared: CountedArray) -> None:
    executor = SerialExecutor(shared)
    executor.close()
    with pytest.raises(RuntimeError, match="closed"):
        executor.map(score, [1])


def test_local_rejects_a_function_workers_cannot_import(shared: CountedArray) -> None:
    with (
        LocalExecutor(shared, workers=2) as executor,
        pytest.raises(TypeError, match="module-level"),
    ):
        executor.map(lambda s, i: i, [1])


@pytest.mark.network
def test_dask_close_removes_the_data_and_keeps_a_given_client(
    shared: CountedArray, client: Client
) -> None:
    def plugins(dask_worker: Any) -> list[str]:
        return [name for name in dask_worker.plugins if name.startswith("reinforcetrade-")]

    with DaskExecutor(shared, client=client) as executor:
        assert executor.map(score, [5]) == [score(shared, 5)]
        assert all(client.run(plugins).values())
    assert not any(client.run(plugins).values())
    assert client.status == "running"


def test_make_executor_dispatches_on_the_settings(shared: CountedArray) -> None:
    with make_executor(shared, executor="local", workers=1) as serial:
        assert isinstance(serial, SerialExecutor)
    with make_executor(shared, executor="local", workers=2) as local:
        assert isinstance(local, LocalExecutor)
        assert local.workers == 2


@pytest.mark.network
def test_make_executor_connects_to_a_dask_address(
    shared: CountedArray, cluster: LocalCluster
) -> None:
    with make_executor(shared, executor="dask", address=cluster.scheduler_address) as executor:
        assert isinstance(executor, DaskExecutor)
        assert executor.map(score, [1, 2]) == [score(shared, 1), score(shared, 2)]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"executor": "dask"}, "optimization.dask_address is not set"),
        ({"executor": "dask", "address": ""}, "optimization.dask_address is not set"),
        ({"executor": "ray"}, "optimization.executor must be 'local' or 'dask', got 'ray'"),
        ({"executor": "local", "workers": 0}, "optimization.n_jobs must be at least 1, got 0"),
    ],
)
def test_make_executor_rejects_bad_settings(
    shared: CountedArray, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserInputError, match=message):
        make_executor(shared, **settings)


@pytest.mark.network
def test_an_unreachable_scheduler_is_a_user_error_naming_it(shared: CountedArray) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(UserInputError, match=rf"cannot reach the Dask scheduler at '{address}'"):
        make_executor(shared, executor="dask", address=address, connect_timeout=1.0)
    assert time.monotonic() - started < 10

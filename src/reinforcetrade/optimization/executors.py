"""Executors that run optimisation trials and walk-forward folds, shipping the shared data once.

An executor is made with the `shared` object (e.g. a dict of bar DataFrames) and then runs
`fn(shared, item)` for batches of items with `map`, many times, returning results in item order.
The data travels to each worker once per executor, never with a task:

- `SerialExecutor` runs in this process (debugging, tests, `optimization.n_jobs = 1`).
- `LocalExecutor` keeps a pool of worker processes alive across `map` calls; the data is pickled
  once here and unpickled once per worker by the pool's initializer.
- `DaskExecutor` runs on a Dask cluster; the data goes to every worker once inside a worker plugin.

Start method of `LocalExecutor`: "forkserver", with the heavy modules preloaded into the server.
Plain fork copies this process's threads' locks (numba's and torch's thread pools, the
`rt-kernel` pool, a Dask client's event loop) into children that may then deadlock, so it is out
however fast it is. "spawn" and "forkserver" both start from a fresh single-threaded interpreter.
Measured on the 2-CPU development machine (Python 3.11; a console-script parent that imports the
CLI, 3 × 100k-row DataFrames shared, trial module importing `reinforcetrade.backtesting`; time to
start 2 workers and run a first batch, for three executors in a row in one parent):

    fork                                0.04 s, 0.04 s, 0.04 s   (unsafe, see above)
    spawn                               2.2 s,  2.2 s,  2.1 s    (every worker re-imports it all)
    forkserver, no preload              2.1 s,  2.0 s,  2.0 s    (Python 3.11 never preloads
                                                                  __main__: the same as spawn)
    forkserver, trial modules preloaded 1.0 s,  0.05 s, 0.05 s

Later batches cost the same under every method (200 tiny tasks: 0.03-0.06 s). So the server
imports `_PRELOAD`, the shared object's module and the caller's `preload` once, and each worker is
a cheap fork of it. The server is one per process and keeps the preload list it started with.

Errors: an exception in a task cancels the tasks still queued and is re-raised in the caller as
`TaskError`, naming the item and chained to the original. The executor stays usable afterwards;
tasks that were already running finish and their results are dropped.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import multiprocessing
import pickle
import reprlib
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final, Generic, Protocol, Self, TypeVar, cast
from uuid import uuid4

import cloudpickle
import distributed
from dask.utils import funcname
from distributed.diagnostics.plugin import WorkerPlugin

from reinforcetrade.core.errors import ReinforceTradeError, UserInputError

__all__ = [
    "DaskExecutor",
    "LocalExecutor",
    "ProgressFn",
    "SerialExecutor",
    "TaskError",
    "TrialExecutor",
    "make_executor",
]

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)
T = TypeVar("T")
R = TypeVar("R")
ProgressFn = Callable[[int, int], None]

_PRELOAD: Final = ("numpy", "pandas", "reinforcetrade.backtesting", __name__)
_UNSET: Final = object()
_WORKER_SHARED: Any = _UNSET  # the shared object, in a LocalExecutor worker process only
_M_TRIM_THRESHOLD: Final = -1  # glibc mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD: Final = -3


class TaskError(ReinforceTradeError):
    """A task raised; `index` and `item` say which, and the original error is the cause."""

    def __init__(self, index: int, total: int, item: object, error: BaseException) -> None:
        self.index = index
        self.item = item
        super().__init__(
            f"task {index + 1} of {total} failed on item {reprlib.repr(item)}: "
            f"{type(error).__name__}: {error}"
        )


class TrialExecutor(Protocol[S_co]):
    """Runs `fn(shared, item)` over batches of items, with `shared` shipped to workers once."""

    @property
    def workers(self) -> int:
        """Return how many tasks run at once."""
        ...

    def map(
        self, fn: Callable[[S_co, T], R], items: Sequence[T], *, progress: ProgressFn | None = None
    ) -> list[R]:
        """Return `[fn(shared, item) for item in items]`, in item order; see the module doc."""
        ...

    def close(self) -> None:
        """Release the workers; the executor cannot be used afterwards."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class _Closable:
    """Context-manager plumbing and the closed-state check every executor shares."""

    _closed: bool = False

    def close(self) -> None:
        """Release the workers; the executor cannot be used afterwards."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SerialExecutor(_Closable, Generic[S]):
    """Run tasks one after another in this process, on the very `shared` object.

    >>> import operator
    >>> with SerialExecutor([10, 20, 30]) as ex:
    ...     ex.map(operator.getitem, [2, 0])
    [30, 10]
    """

    def __init__(self, shared: S) -> None:
        self._shared = shared

    @property
    def workers(self) -> int:
        """Return 1: one task at a time."""
        return 1

    def map(
        self, fn: Callable[[S, T], R], items: Sequence[T], *, progress: ProgressFn | None = None
    ) -> list[R]:
        """Return `[fn(shared, item) for item in items]`; stop at the first failing item."""
        self._check_open()
        results: list[R] = []
        for i, item in enumerate(items):
            try:
                results.append(fn(self._shared, item))
            except Exception as exc:
                raise TaskError(i, len(items), item, exc) from exc
            if progress is not None:
                progress(i + 1, len(items))
        return results


def reuse_freed_memory() -> bool:
    """Let this process's allocator keep freed memory for reuse (glibc only); return if it did.

    Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's mmap
    threshold: every array over 128 kB is then mapped and unmapped afresh, and a trial on 100k
    bars runs 1.5x slower (46 ms instead of 31 ms here). A 32 MB mmap threshold and a 64 MB trim
    threshold are about what glibc's own adaptive defaults reach (measured: 27 ms).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mmap_ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
        trim_ok = libc.mallopt(_M_TRIM_THRESHOLD, 64 * 2**20)
    except (OSError, AttributeError):
        return False  # not glibc: nothing to tune
    return bool(mmap_ok and trim_ok)


def _init_worker(payload: bytes) -> None:
    """Unpickle the shared object into this worker process's slot (the pool's initializer)."""
    global _WORKER_SHARED  # one slot per worker process, set once
    reuse_freed_memory()
    _WORKER_SHARED = pickle.loads(payload)  # noqa: S301 - bytes our own parent pickled


def _call_with_shared(fn: Callable[[Any, T], R], item: T) -> R:
    """Run one task in a worker process, on the shared object its initializer stored."""
    return fn(_WORKER_SHARED, item)


def _collect(
    futures: Sequence[cf.Future[R]], items: Sequence[object], progress: ProgressFn | None
) -> list[R]:
    """Wait for `futures`, reporting progress; raise TaskError for the first failure."""
    index = {future: i for i, future in enumerate(futures)}
    try:
        for done, future in enumerate(cf.as_completed(futures), start=1):
            error = future.exception()
            if error is not None:
                raise TaskError(index[future], len(items), items[index[future]], error) from error
            if progress is not None:
                progress(done, len(futures))
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return [future.result() for future in futures]


class LocalExecutor(_Closable, Generic[S]):
    """Run tasks on `workers` processes of this machine, each given `shared` once at start.

    The processes live until `close`, so `map` may be called many times at no shipping cost;
    each holds its own copy of `shared`. `fn` must be a module-level function. A worker process
    that dies (e.g. out of memory) breaks the pool: close the executor and make a new one.
    """

    def __init__(self, shared: S, workers: int = 2, *, preload: Sequence[str] = ()) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._workers = workers
        payload = cloudpickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
        context = multiprocessing.get_context("forkserver")
        modules = dict.fromkeys([*_PRELOAD, type(shared).__module__, *preload])
        context.set_forkserver_preload(list(modules))  # takes effect if the server is not up yet
        self._pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(payload,),
        )

    @property
    def workers(self) -> int:
        """Return the number of worker processes."""
        return self._workers

    def map(
        self, fn: Callable[[S, T], R], items: Sequence[T], *, progress: ProgressFn | None = None
    ) -> list[R]:
        """Return `[fn(shared, item) for item in items]` computed in the worker processes."""
        self._check_open()
        try:
            pickle.dumps(fn)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise TypeError(
                f"{fn!r} cannot be sent to worker processes; use a module-level function"
            ) from exc
        futures = [self._pool.submit(_call_with_shared, fn, item) for item in items]
        return _collect(futures, items, progress)

    def close(self) -> None:
        """Cancel queued tasks, wait for running ones and stop the worker processes."""
        if not self._closed:
            self._pool.shutdown(wait=True, cancel_futures=True)
        super().close()


class _SharedData(WorkerPlugin):
    """Carries the pickled shared object to each Dask worker, which unpickles it once in setup."""

    def __init__(self, payload: bytes) -> None:
        self._payload = payload
        self.shared: Any = _UNSET

    def setup(self, worker: distributed.Worker) -> None:
        """Unpickle the shared object on this worker and drop the bytes."""
        reuse_freed_memory()
        self.shared = pickle.loads(self._payload)  # noqa: S301 - bytes our own client pickled
        self._payload = b""

    def teardown(self, worker: distributed.Worker) -> None:
        """Let the worker free the shared object."""
        self.shared = _UNSET


class _Client(Protocol):
    """The part of `distributed.Client` this module uses, typed (distributed's is not)."""

    def register_plugin(self, plugin: WorkerPlugin, name: str) -> object: ...
    def unregister_worker_plugin(self, name: str) -> object: ...
    def nthreads(self) -> dict[str, int]: ...
    def map(
        self, func: Callable[..., R], items: Sequence[Any], /, *, key: str, pure: bool, **kw: Any
    ) -> list[distributed.Future[R]]: ...
    def cancel(self, futures: Sequence[distributed.Future[Any]]) -> None: ...
    def gather(self, futures: Sequence[distributed.Future[R]]) -> list[R]: ...
    def close(self) -> None: ...
    @property
    def loop(self) -> object: ...
    @property
    def status(self) -> str: ...


def _run_on_dask_worker(item: T, *, fn: Callable[[Any, T], R], plugin: str) -> R:
    """Run one task on a Dask worker, on the shared object its plugin holds."""
    holder = cast(_SharedData, distributed.get_worker().plugins[plugin])
    return fn(holder.shared, item)


class DaskExecutor(_Closable, Generic[S]):
    """Run tasks on a Dask cluster, reached by scheduler `address` or through a given `client`.

    `shared` is pickled once here and unpickled once on each worker, including workers that join
    later, by a worker plugin that holds it until `close`. (A `scatter(..., broadcast=True)` does
    not stay broadcast: the Active Memory Manager drops the extra replicas between batches and
    each later batch re-ships and re-unpickles the data on every worker but one.) The scheduler
    keeps the pickled bytes while the executor is open. Each `map` gives its tasks unique keys,
    so equal items are run as separate tasks, never merged or served from an earlier batch.
    `close` closes the client only if this executor opened it.
    """

    def __init__(
        self,
        shared: S,
        address: str | None = None,
        client: distributed.Client | None = None,
        *,
        connect_timeout: float = 10.0,
    ) -> None:
        if (address is None) == (client is None):
            raise ValueError("give a scheduler address or a client, not both or neither")
        self._owns_client = client is None
        made = client if client is not None else _connect(address or "", connect_timeout)
        self._client = cast(_Client, made)
        self._plugin = f"reinforcetrade-shared-{uuid4().hex}"
        payload = cloudpickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._client.register_plugin(_SharedData(payload), name=self._plugin)
        except BaseException:
            self.close()
            raise

    @property
    def workers(self) -> int:
        """Return the cluster's current total of worker threads (0 while it has no workers)."""
        return sum(self._client.nthreads().values())

    def map(
        self, fn: Callable[[S, T], R], items: Sequence[T], *, progress: ProgressFn | None = None
    ) -> list[R]:
        """Return `[fn(shared, item) for item in items]` computed on the cluster."""
        self._check_open()
        if not items:
            return []
        futures = self._client.map(
            _run_on_dask_worker, items, key=funcname(fn), pure=False, fn=fn, plugin=self._plugin
        )
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            finished = distributed.as_completed(futures, loop=self._client.loop)  # type: ignore[no-untyped-call]
            for done, future in enumerate(finished, start=1):
                if future.status != "finished":
                    i = index[future.key]
                    try:
                        future.result()  # re-raises the task's error with its remote traceback
                    except BaseException as error:  # a cancellation is a BaseException
                        raise TaskError(i, len(items), items[i], error) from error
                if progress is not None:
                    progress(done, len(futures))
        except BaseException:
            self._client.cancel(futures)
            raise
        return self._client.gather(futures)

    def close(self) -> None:
        """Remove the shared data from the workers; close the client if this executor made it."""
        if self._closed:
            return
        super().close()
        try:
            if self._client.status == "running":  # a client closed by its owner has nothing to do
                with contextlib.suppress(OSError, TimeoutError):  # nor does a vanished cluster
                    self._client.unregister_worker_plugin(self._plugin)
        finally:
            if self._owns_client:
                self._client.close()


def _connect(address: str, timeout: float) -> distributed.Client:
    """Return a client of the scheduler at `address`; UserInputError if it cannot be reached."""
    try:
        client: distributed.Client = distributed.Client(  # type: ignore[no-untyped-call]
            address, timeout=timeout, set_as_default=False
        )
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserInputError(
            f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s "
            f"(optimization.dask_address): {exc}"
        ) from exc
    return client


def make_executor(
    shared: S,
    *,
    executor: str = "local",
    workers: int = 2,
    address: str | None = None,
    connect_timeout: float = 10.0,
) -> TrialExecutor[S]:
    """Return the executor the settings name: `optimization.executor`, `.n_jobs`, `.dask_address`.

    `workers` (n_jobs) sizes a local pool; a Dask cluster has the workers it has.

    >>> import operator
    >>> with make_executor({"a": 1}, workers=1) as ex:
    ...     type(ex).__name__, ex.map(operator.getitem, ["a"])
    ('SerialExecutor', [1])
    """
    if executor == "local":
        if workers < 1:
            raise UserInputError(f"optimization.n_jobs must be at least 1, got {workers}")
        return SerialExecutor(shared) if workers == 1 else LocalExecutor(shared, workers)
    if executor == "dask":
        if not address:
            raise UserInputError(
                "optimization.executor is 'dask' but optimization.dask_address is not set; "
                "set it to the scheduler, e.g. tcp://10.0.0.5:8786, or use the 'local' executor"
            )
        return DaskExecutor(shared, address, connect_timeout=connect_timeout)
    raise UserInputError(f"optimization.executor must be 'local' or 'dask', got {executor!r}")

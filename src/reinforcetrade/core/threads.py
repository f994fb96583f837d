"""Threads for GIL-free numba kernels: how many to use, and one fork-safe pool per process.

`thread_limit(k)` caps the threads kernels use inside a block (e.g. `thread_limit(1)` in each
Dask worker so processes do not oversubscribe the cores); the `RT_NUM_THREADS` environment
variable sets a process-wide cap.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

T = TypeVar("T")
MAX_THREADS: Final[int] = 4
_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar("rt_thread_limit", default=None)
_POOLS: dict[int, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def usable_cores() -> int:
    """Return the number of CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def thread_count(items: int, per_thread: int) -> int:
    """Return how many threads to use for `items` of work: one per `per_thread`, within limits.

    >>> with thread_limit(1):
    ...     thread_count(10**9, 1000)
    1
    """
    cap = min(usable_cores(), MAX_THREADS)
    env = os.environ.get("RT_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        cap = min(cap, int(env))
    limit = _LIMIT.get()
    if limit is not None:
        cap = min(cap, limit)
    return max(1, min(cap, items // max(per_thread, 1)))


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Cap the threads kernels may use inside this block (this thread and its tasks only)."""
    if threads < 1:
        raise ValueError(f"a thread limit is at least 1, got {threads}")
    token = _LIMIT.set(threads)
    try:
        yield
    finally:
        _LIMIT.reset(token)


def _pool() -> ThreadPoolExecutor:
    """Return this process's worker threads (a forked child gets its own, never the parent's)."""
    pid = os.getpid()
    with _LOCK:
        pool = _POOLS.get(pid)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="rt-kernel")
            _POOLS.clear()  # a parent's pool is unusable after a fork
            _POOLS[pid] = pool
    return pool


def run_parallel(task: Callable[[int], T], parts: int) -> list[T]:
    """Return [task(0), …, task(parts - 1)], run on the worker threads when parts > 1."""
    if parts <= 1:
        return [task(0)] if parts == 1 else []
    return list(_pool().map(task, range(parts)))


def run_all(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Return the results of `tasks`, run on the worker threads when there is more than one."""
    return run_parallel(lambda i: tasks[i](), len(tasks))

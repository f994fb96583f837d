"""`ViewCache` and `@cached`: each read-only view computed and encoded once per journal change.

The journal changes when the engine records a bar or an operator acts, so a view's answer is
good until then: the cache keys each answer on its URL and the host's version (bumped at each
bar and each control action; with no engine running, also at each second, for writes made by
another process). Answers are stored encoded, so a hit costs no query and no JSON encoding.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from reinforcetrade.core.plain import plain

JSON = "application/json"


class ViewCache:
    """Encoded answers by URL for the current version; least recently used ones go first."""

    def __init__(self, version: Callable[[], object], size: int = 512) -> None:
        self.version = version
        self.size = size
        self.hits = 0
        self.misses = 0
        self._answers: OrderedDict[str, tuple[object, bytes]] = OrderedDict()
        self._flights: dict[str, tuple[object, asyncio.Future[bytes]]] = {}

    async def answer(self, request: Request, compute: Callable[[], Any]) -> Response:
        """Return the cached answer to this URL, or compute (in a worker thread) and keep it.

        Requests for an answer being computed wait for that one computation (runs on the event
        loop, so no lock is needed for the bookkeeping).
        """
        key = f"{request.url.path}?{request.url.query}"
        version = self.version()
        found = self._answers.get(key)
        if found is not None and found[0] == version:
            self.hits += 1
            return Response(found[1], media_type=JSON)
        flight = self._flights.get(key)
        if flight is None or flight[0] != version:
            self.misses += 1
            task = asyncio.ensure_future(run_in_threadpool(_encode, compute))
            flight = (version, task)
            self._flights[key] = flight
            task.add_done_callback(lambda _t: self._land(key, flight))
        else:
            self.hits += 1
        body = await asyncio.shield(flight[1])
        return Response(body, media_type=JSON)

    def _land(self, key: str, flight: tuple[object, asyncio.Future[bytes]]) -> None:
        """Keep a finished computation's answer (a failed one is not kept)."""
        if self._flights.get(key) is flight:
            del self._flights[key]
        task = flight[1]
        if task.cancelled() or task.exception() is not None:
            return
        self._answers[key] = (flight[0], task.result())
        self._answers.move_to_end(key)
        while len(self._answers) > self.size:
            self._answers.popitem(last=False)


def _encode(compute: Callable[[], Any]) -> bytes:
    """Return a view's answer as JSON (NaN and infinities as null, like `core.plain`)."""
    return orjson.dumps(compute(), default=_leaf, option=_OPTIONS)


_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _leaf(value: Any) -> Any:
    """Return what orjson cannot encode itself (pandas times, numpy scalars) as plain data."""
    return plain(value.item() if hasattr(value, "item") else value)


def cached(view: Callable[..., Any]) -> Callable[..., Awaitable[Response]]:
    """Serve a view (whose first parameter is `ctx: Ctx`) through the app's `ViewCache`."""
    signature = inspect.signature(view, eval_str=True)
    extra = inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)

    @functools.wraps(view)
    async def endpoint(*args: Any, request: Request, **kwargs: Any) -> Response:
        views: ViewCache = request.app.state.views
        return await views.answer(request, lambda: view(*args, **kwargs))

    endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), extra]
    )
    return endpoint

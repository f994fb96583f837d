"""The WebSocket stream: a one-time ticket as the first message, then the hub's messages.

Nothing secret travels in the URL: the client draws a ticket with its token
(`POST /api/v1/auth/ticket`) and sends ``{"ticket": "…"}`` first; a missing, used or expired
ticket closes the socket with code 4401. Then the server sends a ``hello`` with the status and
every hub message as it comes; a client that falls behind loses messages (counted), never
stalls the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from reinforcetrade.web.auth import AuthError, TicketBook
from reinforcetrade.web.hub import Hub, Subscription
from reinforcetrade.web.metrics import ServerMetrics

UNAUTHORISED = 4401
TICKET_WAIT = 10.0  # seconds a new socket has to present its ticket


def build_stream(
    hub: Hub, metrics: ServerMetrics, hello: Callable[[], dict[str, Any]]
) -> APIRouter:
    """Return the router of `/api/v1/stream`."""
    router = APIRouter()

    @router.websocket("/api/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        tickets: TicketBook = websocket.app.state.security.tickets
        try:
            first = await asyncio.wait_for(websocket.receive_text(), TICKET_WAIT)
            ticket = json.loads(first).get("ticket")
            if not isinstance(ticket, str):
                raise AuthError('send {"ticket": "…"} first')
            tickets.redeem(ticket)
        except (AuthError, ValueError, AttributeError, TimeoutError) as exc:
            reason = str(exc) if isinstance(exc, AuthError) else "send a ticket first"
            await websocket.close(code=UNAUTHORISED, reason=reason[:120])
            return
        except WebSocketDisconnect:
            return
        sub = hub.subscribe()
        metrics.ws_clients.inc()
        try:
            status = await run_in_threadpool(hello)
            await websocket.send_text(json.dumps({"type": "hello", "time": None, "data": status}))
            sender = asyncio.create_task(_send(websocket, sub))
            await _drain(websocket)  # until the client goes away
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await sender
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            hub.unsubscribe(sub)
            metrics.ws_clients.dec()
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close()

    return router


async def _send(websocket: WebSocket, sub: Subscription) -> None:
    """Send the subscriber's messages as they come, everything waiting at once in a burst."""
    queue = sub.queue
    while True:
        await websocket.send_text(await queue.get())
        while not queue.empty():
            await websocket.send_text(queue.get_nowait())


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()

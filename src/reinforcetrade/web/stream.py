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
from reinforcetrade.web.hub import Hub
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
            reader = asyncio.create_task(_drain(websocket))
            while not reader.done():
                getter = asyncio.create_task(sub.queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                await websocket.send_text(getter.result())
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            hub.unsubscribe(sub)
            metrics.ws_clients.dec()
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close()

    return router


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()

"""The REST API under /api/v1: login, tickets and the engine's controls (views: `web.views`).

Every route here but `POST /auth/login` needs a bearer token (`require_user`). Control actions
are written to the audit log with who asked, from where, why, and what came of it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.storage import Journal
from reinforcetrade.web import reads
from reinforcetrade.web.auth import (
    AuthError,
    Credentials,
    LoginLimiter,
    Principal,
    TicketBook,
    TokenSigner,
    verify_password,
)
from reinforcetrade.web.host import EngineHost
from reinforcetrade.web.metrics import ServerMetrics

_bearer = HTTPBearer(auto_error=False, description="an access token from POST /auth/login")
_AUTH_HEADERS = {"WWW-Authenticate": "Bearer"}


class Login(BaseModel):
    """A login request."""

    username: str = Field(max_length=200)
    password: str = Field(max_length=1_000)


class Token(BaseModel):
    """An access token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_in: int


class Ticket(BaseModel):
    """A one-time WebSocket ticket."""

    ticket: str
    expires_in: int


class Control(BaseModel):
    """A control request's reason (recorded in the audit log)."""

    reason: str = Field("", max_length=1_000)


class Flatten(Control):
    """Which symbol to flatten (null: all)."""

    symbol: str | None = Field(None, max_length=64)


class Lift(Control):
    """Why a halt may be lifted (required)."""

    reason: str = Field(min_length=1, max_length=1_000)


class Outcome(BaseModel):
    """What a control request came to."""

    action: str
    accepted: bool
    detail: str
    engine: dict[str, Any]


class Security:
    """The server's credentials, token signer, WebSocket tickets and login limiter."""

    def __init__(
        self,
        credentials: Credentials,
        signer: TokenSigner,
        tickets: TicketBook,
        limiter: LoginLimiter,
    ) -> None:
        self.credentials = credentials
        self.signer = signer
        self.tickets = tickets
        self.limiter = limiter

    def user(self, token: str | None) -> Principal:
        """Return who a bearer token speaks for, or raise a 401."""
        if token is None:
            raise HTTPException(
                401, "log in first: send 'Authorization: Bearer <token>'", headers=_AUTH_HEADERS
            )
        try:
            return self.signer.verify(token)
        except AuthError as exc:
            raise HTTPException(401, str(exc), headers=_AUTH_HEADERS) from None

    def scraper(self, token: str | None) -> Principal:
        """Return who may read /metrics: a user's token or the static metrics token."""
        static = self.credentials.metrics_token
        if token is not None and static is not None:
            if hmac.compare_digest(token.encode(), static.encode()):
                return Principal("prometheus", "metrics")
        return self.user(token)


def require_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Return the authenticated user of a request (401 otherwise)."""
    security: Security = request.app.state.security
    return security.user(None if credentials is None else credentials.credentials)


User = Annotated[Principal, Depends(require_user)]


@dataclass(frozen=True)
class Context:
    """What the routes serve: the engine host, the journal, the server's metrics, the reports."""

    host: EngineHost
    journal: Journal
    metrics: ServerMetrics
    reports_dir: Path | None

    def run_of(self, run_id: int | None) -> dict[str, Any]:
        """Return the run asked for, else the engine's, else the newest paper or live run."""
        wanted = run_id
        if wanted is None and self.host.engine is not None:
            wanted = self.host.engine.run_id
        run = reads.current_run(self.journal, wanted)
        if run is None:
            raise HTTPException(404, "no such run" if run_id else "no paper or live run yet")
        return run


def context(request: Request) -> Context:
    """Return the app's `Context`."""
    found: Context = request.app.state.context
    return found


Ctx = Annotated[Context, Depends(context)]
public = APIRouter(prefix="/api/v1")
private = APIRouter(prefix="/api/v1", dependencies=[Depends(require_user)])


# -- auth -------------------------------------------------------------------------------
@public.post("/auth/login", response_model=Token, tags=["auth"], responses={401: {}, 429: {}})
def login(ctx: Ctx, body: Login, request: Request) -> Token | JSONResponse:
    """Exchange the configured user's password for a short-lived access token."""
    security: Security = request.app.state.security
    client = request.client.host if request.client else "unknown"
    wait = security.limiter.retry_after(client)
    if wait:
        ctx.metrics.logins.labels(outcome="limited").inc()
        return JSONResponse(
            {"detail": f"too many failed logins: retry in {wait} s"},
            429,
            headers={"Retry-After": str(wait)},
        )
    creds = security.credentials
    name_ok = hmac.compare_digest(body.username.encode(), creds.username.encode())
    password_ok = verify_password(body.password, creds.password_hash)  # always checked
    if not (name_ok and password_ok):
        security.limiter.failed(client)
        ctx.metrics.logins.labels(outcome="failed").inc()
        raise HTTPException(401, "wrong user name or password", headers=_AUTH_HEADERS)
    security.limiter.succeeded(client)
    ctx.metrics.logins.labels(outcome="ok").inc()
    return Token(access_token=security.signer.issue(creds.username), expires_in=security.signer.ttl)


@private.post("/auth/logout", tags=["auth"])
def logout(
    ctx: Ctx,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> dict[str, bool]:
    """Revoke the token this request carries."""
    if credentials is not None:
        request.app.state.security.signer.revoke(credentials.credentials)
    return {"revoked": True}


@private.post("/auth/ticket", response_model=Ticket, tags=["auth"])
def ticket(ctx: Ctx, user: User, request: Request) -> Ticket:
    """Draw a one-time ticket to open the WebSocket stream with (sent as its first message)."""
    tickets: TicketBook = request.app.state.security.tickets
    return Ticket(ticket=tickets.issue(user.user), expires_in=int(tickets.ttl))


# -- controls ---------------------------------------------------------------------------
def act(
    ctx: Ctx,
    request: Request,
    user: Principal,
    action: str,
    target: str | None,
    reason: str,
    work: Any,
) -> Outcome:
    """Run a control action and record it in the audit log (refusals and failures too)."""
    client = request.client.host if request.client else None
    try:
        detail = str(work() or "")
    except UserInputError as exc:  # ControlRefused, EngineRefused, …
        ctx.journal.record_audit(
            actor=user.user,
            action=action,
            outcome="refused",
            target=target,
            reason=reason,
            detail=str(exc),
            client=client,
        )
        raise HTTPException(409, str(exc)) from None
    except Exception as exc:
        ctx.journal.record_audit(
            actor=user.user,
            action=action,
            outcome="failed",
            target=target,
            reason=reason,
            detail=repr(exc),
            client=client,
        )
        raise
    ctx.journal.record_audit(
        actor=user.user,
        action=action,
        outcome="done",
        target=target,
        reason=reason,
        detail=detail,
        client=client,
    )
    return Outcome(action=action, accepted=True, detail=detail, engine=ctx.host.status())


@private.post("/control/start", tags=["control"], responses={409: {}})
def start(ctx: Ctx, body: Control, user: User, request: Request) -> Outcome:
    """Start the engine (a new session)."""
    return act(
        ctx, request, user, "start", None, body.reason, lambda: f"run {ctx.host.start()['run_id']}"
    )


@private.post("/control/stop", tags=["control"], responses={409: {}})
def stop(ctx: Ctx, body: Control, user: User, request: Request) -> Outcome:
    """Stop the engine after the bar in hand (the open-order policy applies)."""
    why = f"stopped by {user.user}" + (f": {body.reason}" if body.reason else "")
    return act(ctx, request, user, "stop", None, body.reason, lambda: ctx.host.stop(why)["state"])


@private.post("/control/pause", tags=["control"], responses={409: {}})
def pause(ctx: Ctx, body: Control, user: User, request: Request) -> Outcome:
    """Withhold new entries (exits, stops and take-profits go on)."""
    return act(
        ctx,
        request,
        user,
        "pause",
        None,
        body.reason,
        lambda: ctx.host.pause(user.user, body.reason)["paused"],
    )


@private.post("/control/unpause", tags=["control"], responses={409: {}})
def unpause(ctx: Ctx, body: Control, user: User, request: Request) -> Outcome:
    """Allow new entries again."""
    return act(
        ctx,
        request,
        user,
        "unpause",
        None,
        body.reason,
        lambda: ctx.host.unpause(user.user, body.reason)["state"],
    )


@private.post("/control/flatten", tags=["control"], responses={409: {}})
def flatten(ctx: Ctx, body: Flatten, user: User, request: Request) -> Outcome:
    """Close one symbol's position, or all, at market on the next bar."""
    return act(
        ctx,
        request,
        user,
        "flatten",
        body.symbol or "all",
        body.reason,
        lambda: ", ".join(ctx.host.flatten(body.symbol, user.user, body.reason)),
    )


@private.post("/control/lift-halt", tags=["control"], responses={409: {}})
def lift_halt(ctx: Ctx, body: Lift, user: User, request: Request) -> Outcome:
    """Lift a risk halt (recorded as a resume; the drawdown peak restarts here)."""
    if not body.reason.strip():
        raise HTTPException(422, "lifting a halt needs a reason")
    return act(
        ctx,
        request,
        user,
        "lift_halt",
        None,
        body.reason,
        lambda: f"risk event {ctx.host.lift_halt(user.user, body.reason)}",
    )

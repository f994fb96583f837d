"""The REST API under /api/v1: login, tickets and the engine's controls (views: `web.views`).

Every route here but `POST /auth/login` needs a bearer token (`require_user`). Control actions
are written to the audit log with who asked, from where, why, and what came of it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from functools import partial
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


async def require_user(
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

    def run_id(self, run_id: int | None) -> int:
        """Return the id of the run asked for (the engine's needs no query)."""
        engine = self.host.engine
        if engine is not None and run_id in (None, engine.run_id):
            return engine.run_id
        if run_id is not None and reads.run_exists(self.journal, run_id):
            return run_id
        return int(self.run_of(run_id)["id"])


async def context(request: Request) -> Context:
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
class Operator:
    """A control request's author: runs the action and writes it to the audit log."""

    def __init__(self, ctx: Context, request: Request, user: Principal) -> None:
        self.ctx, self.user = ctx, user.user
        self.client = request.client.host if request.client else None

    def act(self, action: str, target: str | None, reason: str, work: Any) -> Outcome:
        """Run `work`; record it done, refused (409) or failed, with who, whence and why."""
        journal = self.ctx.journal

        def audit(outcome: str, detail: str) -> None:
            journal.record_audit(actor=self.user, action=action, outcome=outcome, target=target,
                                 reason=reason, detail=detail, client=self.client)  # fmt: skip

        try:
            detail = str(work() or "")
        except UserInputError as exc:  # ControlRefused, EngineRefused, …
            audit("refused", str(exc))
            self.ctx.host.touch()
            raise HTTPException(409, str(exc)) from None
        except Exception as exc:
            audit("failed", repr(exc))
            raise
        audit("done", detail)
        self.ctx.host.touch()
        return Outcome(action=action, accepted=True, detail=detail, engine=self.ctx.host.status())


def operator(ctx: Ctx, request: Request, user: User) -> Operator:
    """Return the request's `Operator`."""
    return Operator(ctx, request, user)


Op = Annotated[Operator, Depends(operator)]


@private.post("/control/start", tags=["control"], responses={409: {}})
def start(ctx: Ctx, body: Control, op: Op) -> Outcome:
    """Start the engine (a new session)."""
    return op.act("start", None, body.reason, lambda: f"run {ctx.host.start()['run_id']}")


@private.post("/control/stop", tags=["control"], responses={409: {}})
def stop(ctx: Ctx, body: Control, op: Op) -> Outcome:
    """Stop the engine after the bar in hand (the open-order policy applies)."""
    why = f"stopped by {op.user}" + (f": {body.reason}" if body.reason else "")
    return op.act("stop", None, body.reason, lambda: ctx.host.stop(why)["state"])


@private.post("/control/pause", tags=["control"], responses={409: {}})
def pause(ctx: Ctx, body: Control, op: Op) -> Outcome:
    """Withhold new entries (exits, stops and take-profits go on)."""
    return op.act("pause", None, body.reason,
                  lambda: ctx.host.pause(op.user, body.reason)["paused"])  # fmt: skip


@private.post("/control/unpause", tags=["control"], responses={409: {}})
def unpause(ctx: Ctx, body: Control, op: Op) -> Outcome:
    """Allow new entries again."""
    return op.act("unpause", None, body.reason,
                  lambda: ctx.host.unpause(op.user, body.reason)["state"])  # fmt: skip


@private.post("/control/flatten", tags=["control"], responses={409: {}})
def flatten(ctx: Ctx, body: Flatten, op: Op) -> Outcome:
    """Close one symbol's position, or all, at market on the next bar."""
    closed = partial(ctx.host.flatten, body.symbol, op.user, body.reason)
    return op.act("flatten", body.symbol or "all", body.reason, lambda: ", ".join(closed()))


@private.post("/control/lift-halt", tags=["control"], responses={409: {}})
def lift_halt(ctx: Ctx, body: Lift, op: Op) -> Outcome:
    """Lift a risk halt (recorded as a resume; the drawdown peak restarts here)."""
    if not body.reason.strip():
        raise HTTPException(422, "lifting a halt needs a reason")
    return op.act("lift_halt", None, body.reason,
                  lambda: f"risk event {ctx.host.lift_halt(op.user, body.reason)}")  # fmt: skip

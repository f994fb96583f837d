"""Who may use the API: password hashes, signed access tokens, one-time tickets, login limits.

Passwords are kept as scrypt hashes (`hash_password`, `verify_password`). A login yields an
access token signed with HMAC-SHA256 (`TokenSigner`): short-lived, sent in the Authorization
header, revocable. The WebSocket takes a one-time ticket (`TicketBook`) drawn with a token. Every
secret comparison is constant-time (`hmac.compare_digest`). `check_settings` refuses weak
settings before the server starts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from reinforcetrade.config.sections import WebConfig
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.secrets import register_secrets

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # ~16 MiB, a few tens of ms per check
_WEAK = {"admin", "password", "changeme", "change-me", "secret", "reinforcetrade", "123456"}
MIN_PASSWORD = 12
MIN_SECRET = 32


class WebRefused(UserInputError):
    """The server will not start with these settings (weak password, public bind …)."""


class AuthError(Exception):
    """A credential, token or ticket was not accepted."""


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Return an scrypt hash of `password`: ``scrypt$n$r$p$salt$hash`` (base64 parts)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    parts = (str(_SCRYPT["n"]), str(_SCRYPT["r"]), str(_SCRYPT["p"]), _b64(salt), _b64(digest))
    return "scrypt$" + "$".join(parts)


def verify_password(password: str, stored: str) -> bool:
    """Return whether `password` matches a `hash_password` hash (constant-time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        got = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), dklen=len(expected), n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as."""

    user: str
    token_id: str  # "metrics" for the static scrape token


class TokenSigner:
    """Issues and checks HMAC-signed access tokens (``payload.signature``, base64url)."""

    def __init__(self, secret: str, ttl_seconds: int, clock: Callable[[], float] = time.time):
        self._key = secret.encode()
        self.ttl = ttl_seconds
        self._clock = clock
        self._revoked: dict[str, float] = {}  # token id -> its expiry
        self._lock = threading.Lock()

    def issue(self, user: str) -> str:
        """Return a new token for `user`, valid for the configured time."""
        now = int(self._clock())
        claims = {"sub": user, "iat": now, "exp": now + self.ttl, "jti": secrets.token_hex(8)}
        payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str) -> Principal:
        """Return who a token speaks for; raise `AuthError` if forged, expired or revoked."""
        payload, dot, signature = token.partition(".")
        if not dot or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise AuthError("invalid token")
        try:
            claims = json.loads(_unb64(payload))
            user, expires, jti = str(claims["sub"]), float(claims["exp"]), str(claims["jti"])
        except (ValueError, KeyError, TypeError):
            raise AuthError("invalid token") from None
        if self._clock() >= expires:
            raise AuthError("token expired: log in again")
        with self._lock:
            if jti in self._revoked:
                raise AuthError("token revoked: log in again")
        return Principal(user, jti)

    def revoke(self, token: str) -> None:
        """Refuse a (valid) token from now on."""
        payload = token.partition(".")[0]
        claims = json.loads(_unb64(payload))
        now = self._clock()
        with self._lock:
            self._revoked = {j: e for j, e in self._revoked.items() if e > now}
            self._revoked[str(claims["jti"])] = float(claims["exp"])

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


class TicketBook:
    """One-time WebSocket tickets: drawn with a token, good once, for a few seconds."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self._clock = clock
        self._tickets: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issue(self, user: str) -> str:
        """Return a fresh ticket for `user`."""
        ticket = secrets.token_urlsafe(24)
        now = self._clock()
        with self._lock:
            self._tickets = {t: v for t, v in self._tickets.items() if v[1] > now}
            self._tickets[ticket] = (user, now + self.ttl)
        return ticket

    def redeem(self, ticket: str) -> str:
        """Use a ticket up; return its user, or raise `AuthError`."""
        now = self._clock()
        with self._lock:
            found = None
            for known in list(self._tickets):  # compare every one: no early exit on a match
                if hmac.compare_digest(known.encode(), ticket.encode()):
                    found = known
            entry = self._tickets.pop(found, None) if found is not None else None
        if entry is None or entry[1] <= now:
            raise AuthError("unknown, used or expired ticket")
        return entry[0]


class LoginLimiter:
    """Failed logins per client address in a sliding window; refuses beyond the limit."""

    def __init__(
        self, attempts: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Return seconds until `client` may try again (0: now)."""
        now = self._clock()
        with self._lock:
            failures = self._failures.get(client)
            if failures is None:
                return 0
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) < self.attempts:
                return 0
            return max(1, int(failures[0] + self.window - now + 0.999))

    def failed(self, client: str) -> None:
        """Count a failed login of `client`."""
        with self._lock:
            self._failures.setdefault(client, deque()).append(self._clock())

    def succeeded(self, client: str) -> None:
        """Forget `client`'s failures."""
        with self._lock:
            self._failures.pop(client, None)


@dataclass(frozen=True)
class Credentials:
    """What the server checks logins and tokens against (from `check_settings`)."""

    username: str
    password_hash: str
    token_secret: str
    metrics_token: str | None


def check_settings(cfg: WebConfig, *, host: str | None = None) -> Credentials:
    """Return the credentials to serve with, or raise `WebRefused` naming each weak setting."""
    problems = []
    bind = host or cfg.host
    if not _loopback(bind) and not cfg.allow_public_bind:
        problems.append(
            f"web.host {bind!r} is not a loopback address: set web.allow_public_bind: true (or "
            "--allow-public-bind) to serve beyond this machine, behind TLS"
        )
    if not cfg.username.strip():
        problems.append("web.username is empty")
    stored = cfg.password_hash.get_secret_value() if cfg.password_hash else ""
    plain = cfg.password.get_secret_value() if cfg.password else ""
    if stored:
        if not stored.startswith("scrypt$") or stored.count("$") != 5:
            problems.append(
                "web.password_hash is not a hash from `reinforcetrade serve hash-password`"
            )
    elif not plain:
        problems.append(
            "no password: set web.password_hash (`reinforcetrade serve hash-password`) or "
            "RT_WEB__PASSWORD"
        )
    elif plain.lower() in _WEAK or plain.lower() == cfg.username.lower():
        problems.append("web.password is a default or guessable password")
    elif len(plain) < MIN_PASSWORD:
        problems.append(f"web.password is shorter than {MIN_PASSWORD} characters")
    secret = cfg.token_secret.get_secret_value() if cfg.token_secret else ""
    if len(secret) < MIN_SECRET:
        problems.append(
            f"web.token_secret must be at least {MIN_SECRET} characters (e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
        )
    metrics = cfg.metrics_token.get_secret_value() if cfg.metrics_token else None
    if metrics is not None and len(metrics) < MIN_SECRET:
        problems.append(f"web.metrics_token must be at least {MIN_SECRET} characters")
    if problems:
        raise WebRefused("the server will not start: " + "; ".join(problems))
    register_secrets(*(s for s in (plain, stored, secret, metrics) if s))
    return Credentials(cfg.username, stored or hash_password(plain), secret, metrics)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

"""What an alert is and how each channel delivers one: log, webhook, Slack, Telegram, e-mail.

A `Notice` is a frozen record; a channel turns it into its own wire format and raises
`AlertDeliveryError` when the far end does not take it. No channel ever puts a secret (a bot
token, a webhook URL, an SMTP password) into a message, a log line or an exception text: every
channel registers its secrets with the module's redactor, which scrubs our texts and the log
records of the HTTP libraries (httpx logs every request URL, and a Telegram URL holds the token).

`AlertRouter` (in `alerts.py`) filters, de-duplicates, rate-limits and retries; the channels here
only send.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from reinforcetrade.core.errors import ReinforceTradeError, UserInputError
from reinforcetrade.core.secrets import redact_loggers, register_secrets, scrub

log = logging.getLogger(__name__)
alert_log = logging.getLogger("reinforcetrade.alerts")  # where `LogChannel` writes the alerts

_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_TELEGRAM_LIMIT = 4_096  # characters per Telegram message
_SLACK_HEADER_LIMIT = 150
_SLACK_SECTION_LIMIT = 3_000


class Severity(IntEnum):
    """How urgent a notice is; the values are the matching `logging` levels.

    >>> Severity.parse("warning") > Severity.INFO
    True
    >>> Severity.CRITICAL.word
    'critical'
    """

    INFO = logging.INFO
    WARNING = logging.WARNING
    CRITICAL = logging.CRITICAL

    @property
    def word(self) -> str:
        """Return the lower-case name used in settings and payloads."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: Severity | str) -> Severity:
        """Return the severity named `value` ('info', 'warning', 'critical') or `value` itself."""
        if isinstance(value, Severity):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            words = ", ".join(s.word for s in cls)
            raise UserInputError(f"unknown alert level {value!r}; use one of {words}") from None


@dataclass(frozen=True)
class Notice:
    """One thing a person should know: what happened, how urgent, and the figures.

    `key` groups identical notices for de-duplication (default: kind and title); `count` is how
    many identical notices one message stands for (the router sets it).

    >>> Notice("halted", Severity.CRITICAL, "engine: halted", "daily loss limit", 0).key
    'halted:engine: halted'
    """

    kind: str
    severity: Severity
    title: str
    message: str
    time: int  # epoch nanoseconds (UTC)
    fields: Mapping[str, object] = field(default_factory=dict, hash=False)
    key: str = ""
    count: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))
        if not self.key:
            object.__setattr__(self, "key", f"{self.kind}:{self.title}")

    def repeated(self, count: int, window_seconds: float) -> Notice:
        """Return this notice standing for `count` identical ones seen within the window."""
        if count <= 1:
            return self
        suffix = f" (×{count} in the last {window_seconds:g} s)"
        return replace(self, message=f"{self.message}{suffix}", count=count)

    @property
    def when(self) -> str:
        """Return the time as ISO 8601 UTC text, e.g. '2024-03-01T12:00:00Z'."""
        moment = datetime.fromtimestamp(self.time / 1e9, tz=UTC)
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class AlertDeliveryError(ReinforceTradeError):
    """A channel could not deliver a notice; the text names the channel and never a secret.

    `retry_after` is the far end's own hint in seconds (Telegram's flood control), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class AlertChannel(Protocol):
    """Anything that can deliver a notice somewhere a person will see it."""

    @property
    def name(self) -> str:
        """Return the channel's name (used in settings, logs and test reports)."""
        ...

    def send(self, notice: Notice) -> None:
        """Deliver one notice now; raise `AlertDeliveryError` when it could not be delivered."""
        ...


# -- secrets ------------------------------------------------------------------------------------
redact_loggers(*_HTTP_LOGGERS, __name__, "reinforcetrade.trading.alerts", alert_log.name)


def _url_secrets(url: str) -> tuple[str, ...]:
    """Return a secret URL and its path (the path of a Slack webhook is the credential).

    A path too short to be a credential (``/hook``) is not registered on its own: masking it
    would mask ordinary words ("webhook") everywhere.
    """
    parts = urlsplit(url)
    path = parts.path.strip("/")
    whole = (url, url.rstrip("/"), f"{parts.netloc}{parts.path}")
    return (*whole, path) if len(path) >= MIN_SECRET_PATH else whole


MIN_SECRET_PATH = 16  # characters: Slack's /services/T…/B…/… paths are far longer


# -- rendering ----------------------------------------------------------------------------------
def render_text(notice: Notice) -> str:
    """Return the notice as plain text: severity and title, message, fields, time (scrubbed)."""
    lines = [f"[{notice.severity.name}] {notice.title}", notice.message]
    if notice.fields:
        lines.append(" · ".join(f"{k}: {_show(v)}" for k, v in notice.fields.items()))
    lines.append(f"{notice.when} ({notice.kind})")
    return scrub("\n".join(lines))


def notice_payload(notice: Notice) -> dict[str, Any]:
    """Return the notice as a JSON-ready mapping (the generic webhook's body)."""
    fields = {str(k): _plain(v) for k, v in notice.fields.items()}
    return {
        "source": "reinforcetrade",
        "kind": notice.kind,
        "severity": notice.severity.word,
        "title": scrub(notice.title),
        "message": scrub(notice.message),
        "time": notice.when,
        "time_ns": notice.time,
        "key": scrub(notice.key),
        "count": notice.count,
        "fields": json.loads(scrub(json.dumps(fields, default=str))),
    }


def _show(value: object) -> str:
    return f"{value:,.6g}" if isinstance(value, float) else str(value)


def _plain(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- channels -----------------------------------------------------------------------------------
class LogChannel:
    """Writes notices to Python logging ('reinforcetrade.alerts'), at the notice's level."""

    def __init__(self, *, name: str = "log", logger: logging.Logger | None = None) -> None:
        self._name = name
        self._logger = logger or alert_log

    @property
    def name(self) -> str:
        """Return the channel's name."""
        return self._name

    def send(self, notice: Notice) -> None:
        """Log the notice as one line."""
        extra = " ".join(f"{k}={_show(v)}" for k, v in notice.fields.items())
        line = f"ALERT [{notice.severity.word}] {notice.title}: {notice.message}"
        self._logger.log(int(notice.severity), "%s", scrub(f"{line} {extra}".rstrip()))

    def close(self) -> None:
        """Nothing to release."""


class _HttpChannel:
    """Shared part of the HTTP channels: one httpx client, errors turned into scrubbed texts."""

    def __init__(self, name: str, timeout: float) -> None:
        self._name = name
        self.timeout = timeout
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": "reinforcetrade-alerts"},
        )

    @property
    def name(self) -> str:
        """Return the channel's name."""
        return self._name

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def _post(self, url: str, payload: Mapping[str, Any]) -> httpx.Response:
        try:
            return self._client.post(url, json=payload)
        except httpx.TimeoutException:
            problem = f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        raise AlertDeliveryError(scrub(f"{self.name}: {problem}"))

    def _refused(self, response: httpx.Response) -> AlertDeliveryError:
        body = " ".join(response.text.split())[:200]
        text = f"{self.name}: HTTP {response.status_code}" + (f": {body}" if body else "")
        return AlertDeliveryError(scrub(text))


class WebhookChannel(_HttpChannel):
    """POSTs the notice as JSON (`notice_payload`) to a URL; any 2xx answer is a delivery."""

    def __init__(self, url: str, *, name: str = "webhook", timeout: float = 10.0) -> None:
        super().__init__(name, timeout)
        register_secrets(*_url_secrets(url))
        self._url = url

    def send(self, notice: Notice) -> None:
        """POST the notice."""
        response = self._post(self._url, notice_payload(notice))
        if not response.is_success:
            raise self._refused(response)


class SlackChannel(_HttpChannel):
    """Posts to a Slack incoming webhook (or anything that speaks its `text` + `blocks`)."""

    def __init__(self, webhook_url: str, *, name: str = "slack", timeout: float = 10.0) -> None:
        super().__init__(name, timeout)
        register_secrets(*_url_secrets(webhook_url))
        self._url = webhook_url

    @staticmethod
    def payload(notice: Notice) -> dict[str, Any]:
        """Return the Slack message: a fallback `text` and header / section / context blocks."""
        title = scrub(f"[{notice.severity.name}] {notice.title}")
        context = [f"*{k}*: {_show(v)}" for k, v in notice.fields.items()]
        context.append(f"{notice.when} · {notice.kind}")
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _clip(title, _SLACK_HEADER_LIMIT)},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _clip(scrub(notice.message), _SLACK_SECTION_LIMIT),
                },
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": scrub(" · ".join(context))[:_SLACK_SECTION_LIMIT]}
                ],
            },
        ]
        return {"text": scrub(f"{title}: {notice.message}"), "blocks": blocks}

    def send(self, notice: Notice) -> None:
        """Post the notice; Slack answers 200 'ok' or an error word."""
        response = self._post(self._url, self.payload(notice))
        if not response.is_success:
            raise self._refused(response)


class TelegramChannel(_HttpChannel):
    """Sends the notice as a Telegram message with the Bot API's `sendMessage`."""

    def __init__(
        self,
        bot_token: str,
        chat_id: str,
        *,
        api_url: str = "https://api.telegram.org",
        name: str = "telegram",
        timeout: float = 10.0,
    ) -> None:
        super().__init__(name, timeout)
        register_secrets(bot_token)
        self._url = f"{api_url.rstrip('/')}/bot{bot_token}/sendMessage"
        self.chat_id = chat_id

    def send(self, notice: Notice) -> None:
        """Send the message; an answer of `{"ok": false}` is a failure, whatever its status."""
        text = _clip(render_text(notice), _TELEGRAM_LIMIT)
        payload = {"chat_id": self.chat_id, "text": text, "disable_web_page_preview": True}
        response = self._post(self._url, payload)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            if not response.is_success:
                raise self._refused(response)
            raise AlertDeliveryError(f"{self.name}: HTTP {response.status_code}, not a JSON object")
        if answer.get("ok") is True and response.is_success:
            return
        description = str(answer.get("description") or "no description")
        code = answer.get("error_code", response.status_code)
        parameters = answer.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        raise AlertDeliveryError(
            scrub(f"{self.name}: {description} (error {code})"),
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
        )


class EmailChannel:
    """Sends the notice as a plain-text e-mail over SMTP, upgraded with STARTTLS before login."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str | None,
        password: str | None,
        sender: str,
        recipients: Iterable[str],
        *,
        starttls: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        name: str = "email",
    ) -> None:
        self.recipients = tuple(recipients)
        if not self.recipients:
            raise UserInputError("the e-mail channel needs at least one recipient")
        if user and not starttls:
            raise UserInputError(
                "refusing to send the SMTP password without STARTTLS; enable starttls"
            )
        register_secrets(password)
        self._name = name
        self.host, self.port, self.user, self._password = host, port, user, password
        self.sender = sender
        self.starttls = starttls
        self._ssl_context = ssl_context
        self.timeout = timeout

    @property
    def name(self) -> str:
        """Return the channel's name."""
        return self._name

    def message(self, notice: Notice) -> EmailMessage:
        """Return the e-mail for a notice."""
        mail = EmailMessage()
        mail["Subject"] = scrub(f"[{notice.severity.name}] {notice.title}").replace("\n", " ")
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail.set_content(render_text(notice) + "\n\n-- \nReinforceTrade alerts\n")
        return mail

    def send(self, notice: Notice) -> None:
        """Connect, STARTTLS, log in when a user is set, send, quit."""
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                    smtp.ehlo()
                if self.user:
                    smtp.login(self.user, self._password or "")
                smtp.send_message(self.message(notice))
        except smtplib.SMTPAuthenticationError as exc:
            problem = f"login as {self.user!r} refused ({exc.smtp_code})"
        except smtplib.SMTPResponseException as exc:
            problem = f"the server answered {exc.smtp_code} {_decode(exc.smtp_error)}"
        except smtplib.SMTPRecipientsRefused as exc:
            problem = f"every recipient was refused: {', '.join(exc.recipients)}"
        except (smtplib.SMTPException, OSError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            return
        where = f"{self.host}:{self.port}"
        raise AlertDeliveryError(scrub(f"{self.name}: {where}: {problem}"))

    def close(self) -> None:
        """Nothing to release (one connection per message)."""


def _decode(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

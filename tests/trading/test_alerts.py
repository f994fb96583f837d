"""Alerts delivered for real: webhook, Slack and Telegram fakes over HTTP, e-mail over aiosmtpd.

Every channel talks to a server on 127.0.0.1 that the test starts. Windows run on a `FixedClock`
that the tests move, so nothing sleeps for a window; retries use backoffs of a fraction of a
second. Canary secrets are planted in every channel and searched for in everything observable.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from fakes import FakeServer, Reply, ServerError, Stall
from fakes.telegram import FakeTelegram, NotOk
from reinforcetrade.config import AlertsConfig
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.trading.alerts import (
    AlertChannel,
    AlertDeliveryError,
    AlertRouter,
    EmailChannel,
    LogChannel,
    Notice,
    Severity,
    SlackChannel,
    TelegramChannel,
    WebhookChannel,
    send_test_alert,
)

pytestmark = pytest.mark.network

TOKEN = "987654321:CANARY-telegram-token-Zq9x"  # noqa: S105 (a canary)
PASSWORD = "canary-smtp-password-Xw7k"  # noqa: S105 (a canary)
WEBHOOK_PATH = "/hooks/T0CANARY/B0CANARY/canary-webhook-path-Kp3m"
SLACK_PATH = "/services/T0CANARY/B0CANARY/canary-slack-path-Jm5v"
CANARIES = (TOKEN, PASSWORD, WEBHOOK_PATH.strip("/"), SLACK_PATH.strip("/"), "canary-")
CHAT = "4242"
USER = "alerts@example.test"
T0 = 1_700_000_000 * 10**9
MINUTE = 60 * 10**9


# -- helpers --------------------------------------------------------------------------------------
def notice(
    kind: str = "stale_data",
    severity: Severity = Severity.WARNING,
    title: str = "engine: stale data",
    message: str = "no closed bar for 3 h",
    **fields: object,
) -> Notice:
    return Notice(kind, severity, title, message, T0, fields)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def bodies(server: FakeServer) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in server.requests]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver(FakeServer):
    """A webhook endpoint at one path that notes when each request arrived."""

    def __init__(self, path: str, reply: Reply) -> None:
        super().__init__()
        self.times: list[float] = []
        self.path = path
        self.route("POST", path, lambda request: reply)

    def handle(self, handler: Any, method: str) -> None:
        self.times.append(time.monotonic())
        super().handle(handler, method)


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    with Receiver(WEBHOOK_PATH, Reply.json({"accepted": True})) as server:
        yield server
    assert not server.errors


@pytest.fixture
def slack() -> Iterator[Receiver]:
    with Receiver(SLACK_PATH, Reply.text(200, "ok", "text/plain")) as server:
        yield server
    assert not server.errors


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN, chats={CHAT}) as api:
        yield api
    assert not api.errors


@dataclass
class Mailbox:
    """What the fake SMTP server accepted, and the client's TLS context trusting its CA."""

    port: int
    client_tls: ssl.SSLContext
    mechanism: str
    mails: list[tuple[str, list[str], Message]] = field(default_factory=list)
    logins: list[tuple[str, str, bool]] = field(default_factory=list)  # user, mechanism, ok

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert session.authenticated, "mail accepted without login"
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        self.mails.append(
            (str(envelope.mail_from), list(envelope.rcpt_tos), message_from_bytes(raw))
        )
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        user = data.login.decode() if isinstance(data, LoginPassword) else "?"
        self.logins.append((user, mechanism, ok))
        return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _smtp(ca: trustme.CA, exclude: str) -> Iterator[Mailbox]:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    box = Mailbox(free_port(), client_tls, mechanism="PLAIN" if exclude == "LOGIN" else "LOGIN")
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        auth_exclude_mechanism=[exclude],
        authenticator=box.authenticate,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(params=["LOGIN", "PLAIN"])
def smtp(request: pytest.FixtureRequest, ca: trustme.CA) -> Iterator[Mailbox]:
    """An SMTP server demanding STARTTLS and a login by `request.param` only."""
    other = "PLAIN" if request.param == "LOGIN" else "LOGIN"
    yield from _smtp(ca, other)


@pytest.fixture
def mailbox(ca: trustme.CA) -> Iterator[Mailbox]:
    yield from _smtp(ca, "LOGIN")


def email_channel(box: Mailbox, password: str = PASSWORD) -> EmailChannel:
    return EmailChannel(
        "127.0.0.1",
        box.port,
        USER,
        password,
        "bot@example.test",
        ["ops@example.test", "risk@example.test"],
        ssl_context=box.client_tls,
        timeout=5.0,
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def make_router(
    clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> Iterator[Callable[..., AlertRouter]]:
    """Make routers, closed before the log capture ends (their threads log as they stop)."""
    made: list[AlertRouter] = []

    def make(channels: list[AlertChannel], **options: Any) -> AlertRouter:
        options = {
            "clock": clock,
            "retry_backoff": 0.02,
            "max_backoff": 0.1,
            "max_attempts": 3,
            "poll_seconds": 0.01,
            **options,
        }
        router = AlertRouter(channels, **options)
        made.append(router)
        return router

    yield make
    for router in made:
        router.close(timeout=5.0)


# -- records --------------------------------------------------------------------------------------
def test_notice_defaults_its_key_and_freezes_its_fields() -> None:
    n = notice(symbol="BTC/USDT")
    assert n.key == "stale_data:engine: stale data"
    assert Notice("x", Severity.INFO, "t", "m", 0, key="mine").key == "mine"
    with pytest.raises(TypeError):
        n.fields["symbol"] = "ETH/USDT"  # type: ignore[index]
    assert n.when == "2023-11-14T22:13:20Z"


def test_severity_orders_and_parses() -> None:
    assert Severity.INFO < Severity.WARNING < Severity.CRITICAL
    assert Severity.parse("Critical") is Severity.CRITICAL
    with pytest.raises(UserInputError, match="use one of info, warning, critical"):
        Severity.parse("loud")


# -- channels, one by one -------------------------------------------------------------------------
def test_webhook_posts_the_notice_as_json(
    make_router: Callable[..., AlertRouter], webhook: Receiver
) -> None:
    router = make_router([WebhookChannel(webhook.url + WEBHOOK_PATH)])
    router.publish(notice(symbol="BTC/USDT", equity=1234.5, run="r-7"))
    assert router.flush(5.0)
    [request] = webhook.requests
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.body)
    assert body == {
        "source": "reinforcetrade",
        "kind": "stale_data",
        "severity": "warning",
        "title": "engine: stale data",
        "message": "no closed bar for 3 h",
        "time": "2023-11-14T22:13:20Z",
        "time_ns": T0,
        "key": "stale_data:engine: stale data",
        "count": 1,
        "fields": {"symbol": "BTC/USDT", "equity": 1234.5, "run": "r-7"},
    }


def test_slack_gets_text_and_blocks(
    make_router: Callable[..., AlertRouter], slack: Receiver
) -> None:
    router = make_router([SlackChannel(slack.url + SLACK_PATH)])
    router.publish(
        notice("halted", Severity.CRITICAL, "engine: halted", "daily loss limit", symbol="ETH/USDT")
    )
    assert router.flush(5.0)
    [body] = bodies(slack)
    assert body["text"] == "[CRITICAL] engine: halted: daily loss limit"
    header, section, context = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[CRITICAL] engine: halted"},
    }
    assert section["text"] == {"type": "mrkdwn", "text": "daily loss limit"}
    assert "*symbol*: ETH/USDT" in context["elements"][0]["text"]


def test_telegram_sends_the_message_to_the_chat(
    make_router: Callable[..., AlertRouter], telegram: FakeTelegram
) -> None:
    router = make_router([TelegramChannel(TOKEN, CHAT, api_url=telegram.url)])
    router.publish(notice(symbol="BTC/USDT"))
    assert router.flush(5.0)
    [sent] = telegram.sent
    assert sent["chat_id"] == CHAT
    assert sent["text"].splitlines() == [
        "[WARNING] engine: stale data",
        "no closed bar for 3 h",
        "symbol: BTC/USDT",
        "2023-11-14T22:13:20Z (stale_data)",
    ]


def test_telegram_answer_ok_false_is_a_failure(telegram: FakeTelegram) -> None:
    channel = TelegramChannel(TOKEN, CHAT, api_url=telegram.url, timeout=2.0)
    telegram.fail_next(NotOk(400, "Bad Request: chat not found", status=200))
    with pytest.raises(
        AlertDeliveryError, match=r"telegram: Bad Request: chat not found \(error 400\)"
    ):
        channel.send(notice())
    telegram.fail_next(NotOk(429, "Too Many Requests: retry after 3", retry_after=3))
    with pytest.raises(AlertDeliveryError) as caught:
        channel.send(notice())
    assert caught.value.retry_after == 3.0
    with pytest.raises(AlertDeliveryError, match="Unauthorized") as caught:
        TelegramChannel(TOKEN + "x", CHAT, api_url=telegram.url).send(notice())
    assert TOKEN not in str(caught.value)
    with pytest.raises(AlertDeliveryError, match="chat not found"):
        TelegramChannel(TOKEN, "999", api_url=telegram.url).send(notice())
    channel.send(notice())
    assert len(telegram.sent) == 1
    channel.close()


def test_email_goes_over_starttls_with_a_checked_login(
    make_router: Callable[..., AlertRouter], smtp: Mailbox
) -> None:
    router = make_router([email_channel(smtp)])
    router.publish(
        notice("halted", Severity.CRITICAL, "engine: halted", "daily loss limit hit", run="r-1")
    )
    assert router.flush(10.0)
    [(sender, recipients, mail)] = smtp.mails
    assert sender == "bot@example.test"
    assert recipients == ["ops@example.test", "risk@example.test"]
    assert mail["Subject"] == "[CRITICAL] engine: halted"
    assert mail["To"] == "ops@example.test, risk@example.test"
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    assert "daily loss limit hit" in text
    assert "run: r-1" in text
    [login] = smtp.logins
    assert login == (USER, smtp.mechanism, True)


def test_email_wrong_password_fails_without_showing_it(mailbox: Mailbox) -> None:
    wrong = "canary-wrong-password-Qr2"
    with pytest.raises(
        AlertDeliveryError, match=r"login as 'alerts@example.test' refused \(535\)"
    ) as caught:
        email_channel(mailbox, password=wrong).send(notice())
    assert wrong not in str(caught.value)
    assert not mailbox.mails


def test_email_refuses_to_log_in_without_starttls() -> None:
    with pytest.raises(UserInputError, match="without STARTTLS"):
        EmailChannel("127.0.0.1", 25, USER, PASSWORD, "a@b", ["c@d"], starttls=False)


def test_log_channel_logs_at_the_notice_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    channel = LogChannel()
    channel.send(notice(symbol="BTC/USDT"))
    channel.send(notice("halted", Severity.CRITICAL, "engine: halted", "loss limit"))
    records = [r for r in caplog.records if r.name == "reinforcetrade.alerts"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.CRITICAL]
    assert (
        records[0].getMessage()
        == "ALERT [warning] engine: stale data: no closed bar for 3 h symbol=BTC/USDT"
    )


# -- the router -----------------------------------------------------------------------------------
def test_a_storm_of_identical_notices_becomes_one_counted_message(
    make_router: Callable[..., AlertRouter], webhook: Receiver
) -> None:
    router = make_router([WebhookChannel(webhook.url + WEBHOOK_PATH)])
    for _ in range(50):
        router.publish(notice())
    router.publish(notice("halted", Severity.CRITICAL, "engine: halted", "loss limit"))
    assert router.flush(5.0)
    sent = bodies(webhook)
    assert [(b["title"], b["count"]) for b in sent] == [
        ("engine: stale data", 1),  # the first goes out at once
        ("engine: halted", 1),
        ("engine: stale data", 50),  # the storm: one message with the count
    ]
    assert sent[2]["message"] == "no closed bar for 3 h (×50 in the last 60 s)"


def test_the_window_closing_sends_the_count_without_a_flush(
    make_router: Callable[..., AlertRouter], webhook: Receiver, clock: FixedClock
) -> None:
    router = make_router([WebhookChannel(webhook.url + WEBHOOK_PATH)], window_seconds=60)
    for _ in range(3):
        router.publish(notice())
    wait_for(lambda: len(webhook.requests) == 1)
    time.sleep(0.05)
    assert len(webhook.requests) == 1  # the repeats wait for the window
    clock.advance(MINUTE)
    wait_for(lambda: len(webhook.requests) == 2)
    assert bodies(webhook)[1]["message"].endswith("(×3 in the last 60 s)")
    clock.advance(2 * MINUTE)  # a quiet window: the next one is news again
    router.publish(notice(message="no closed bar for 6 h"))
    wait_for(lambda: len(webhook.requests) == 3)
    assert bodies(webhook)[2]["message"] == "no closed bar for 6 h"
    assert router.flush(5.0)
    assert len(webhook.requests) == 3


def test_severity_filters_at_the_router_and_per_channel(
    make_router: Callable[..., AlertRouter],
    webhook: Receiver,
    slack: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    router = make_router(
        [
            WebhookChannel(webhook.url + WEBHOOK_PATH),
            SlackChannel(slack.url + SLACK_PATH),
            LogChannel(),
        ],
        min_severity="warning",
        per_channel_min_severity={"slack": "critical", "log": "info"},
    )
    for severity in Severity:
        router.publish(notice(severity.word, severity, f"a {severity.word} notice"))
    assert router.flush(5.0)
    assert [b["severity"] for b in bodies(webhook)] == ["warning", "critical"]
    assert [b["text"] for b in bodies(slack)] == [
        "[CRITICAL] a critical notice: no closed bar for 3 h"
    ]
    logged = [r.levelno for r in caplog.records if r.name == "reinforcetrade.alerts"]
    assert logged == [logging.WARNING, logging.CRITICAL]  # "info" cannot undercut the router


def test_unknown_channel_in_the_per_channel_levels_is_refused() -> None:
    with pytest.raises(UserInputError, match="no alert channel named email"):
        AlertRouter([LogChannel()], per_channel_min_severity={"email": "critical"})


def test_the_rate_limit_holds_the_excess_for_one_digest(
    make_router: Callable[..., AlertRouter], webhook: Receiver, clock: FixedClock
) -> None:
    router = make_router([WebhookChannel(webhook.url + WEBHOOK_PATH)], max_per_window=3)
    for i in range(6):
        severity = Severity.CRITICAL if i == 4 else Severity.WARNING
        router.publish(notice(f"k{i}", severity, f"notice {i}", f"message {i}"))
    wait_for(lambda: len(webhook.requests) == 3)
    time.sleep(0.05)
    assert len(webhook.requests) == 3
    clock.advance(MINUTE)
    wait_for(lambda: len(webhook.requests) == 4)
    digest = bodies(webhook)[3]
    assert (digest["kind"], digest["severity"]) == ("digest", "critical")
    assert digest["title"] == "3 alerts held back by the rate limit"
    assert digest["message"].splitlines() == [
        "- [warning] notice 3: message 3",
        "- [critical] notice 4: message 4",
        "- [warning] notice 5: message 5",
    ]
    assert router.flush(5.0)
    assert len(webhook.requests) == 4


def test_a_failing_channel_is_retried_with_capped_backoff_and_holds_up_no_other(
    make_router: Callable[..., AlertRouter], webhook: Receiver, slack: Receiver
) -> None:
    webhook.script(WEBHOOK_PATH, ServerError(500), ServerError(500))
    router = make_router(
        [WebhookChannel(webhook.url + WEBHOOK_PATH), SlackChannel(slack.url + SLACK_PATH)],
        retry_backoff=0.2,
        max_backoff=0.25,
        max_attempts=5,
    )
    router.publish(notice())  # only queues: the webhook's retries happen on its own thread
    wait_for(lambda: len(slack.requests) == 1, timeout=5.0)
    assert router.flush(5.0)
    assert len(webhook.requests) == 3
    assert slack.times[0] < webhook.times[1]  # Slack did not wait for the webhook's retries
    first, second = (b - a for a, b in zip(webhook.times, webhook.times[1:], strict=False))
    assert first >= 0.18  # the first backoff (0.2 s)
    assert second >= 0.23  # doubled to 0.4, capped at 0.25
    assert router.stats() == {
        "webhook": {"sent": 1, "failed": 0, "dropped": 0},
        "slack": {"sent": 1, "failed": 0, "dropped": 0},
    }


def test_a_hanging_channel_never_blocks_publish(
    make_router: Callable[..., AlertRouter], webhook: Receiver, slack: Receiver
) -> None:
    webhook.script(WEBHOOK_PATH, Stall(1.0))
    router = make_router(
        [
            WebhookChannel(webhook.url + WEBHOOK_PATH, timeout=0.3),
            SlackChannel(slack.url + SLACK_PATH),
        ],
        max_per_window=100,
    )
    started = time.monotonic()
    for i in range(20):
        router.publish(notice(f"k{i}", title=f"notice {i}"))
    assert time.monotonic() - started < 0.9  # under the 1 s stall: no publish waited on it
    wait_for(lambda: len(slack.requests) == 20, timeout=3.0)
    assert router.flush(10.0)
    assert len(bodies(webhook)) == 21  # the stalled first try, its retry, and the other 19


def test_a_channel_that_never_recovers_gives_up_with_one_scrubbed_line(
    make_router: Callable[..., AlertRouter], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with Receiver(WEBHOOK_PATH, Reply.text(500, "upstream broke")) as broken:
        router = make_router([WebhookChannel(broken.url + WEBHOOK_PATH)], max_attempts=3)
        router.publish(notice())
        assert router.flush(5.0)
        assert len(broken.requests) == 3
        router.publish(notice("other", title="another"))
        assert router.flush(5.0)
        assert len(broken.requests) == 6  # the next message is tried again
    loud = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("reinforcetrade")
    ]
    assert [r.getMessage() for r in loud] == [
        "alert channel webhook gave up on 'engine: stale data' after 3 attempt(s): "
        "webhook: HTTP 500: upstream broke",
        "alert channel webhook gave up on 'another' after 3 attempt(s): webhook: HTTP 500: upstream broke",
    ]
    assert router.stats()["webhook"]["failed"] == 2


def test_publish_after_close_is_a_quiet_no_op(
    make_router: Callable[..., AlertRouter], webhook: Receiver
) -> None:
    router = make_router([WebhookChannel(webhook.url + WEBHOOK_PATH)])
    router.close()
    router.publish(notice())
    assert router.flush(1.0)
    assert not webhook.requests


def test_no_secret_shows_in_messages_logs_or_errors(
    make_router: Callable[..., AlertRouter],
    webhook: Receiver,
    slack: Receiver,
    telegram: FakeTelegram,
    mailbox: Mailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    webhook.script(WEBHOOK_PATH, *[ServerError(500)] * 4)  # three tries by the router, one test
    dead = f"http://127.0.0.1:{free_port()}{WEBHOOK_PATH}"
    channels: list[AlertChannel] = [
        WebhookChannel(webhook.url + WEBHOOK_PATH),
        SlackChannel(slack.url + SLACK_PATH),
        TelegramChannel(TOKEN, CHAT, api_url=telegram.url),
        TelegramChannel(TOKEN, "999", api_url=telegram.url, name="telegram-wrong-chat"),
        email_channel(mailbox),
        EmailChannel(
            "127.0.0.1",
            mailbox.port,
            USER,
            "canary-wrong-password",
            "bot@example.test",
            ["ops@example.test"],
            ssl_context=mailbox.client_tls,
            name="email-wrong-password",
        ),
        WebhookChannel(dead, name="webhook-dead", timeout=1.0),
        LogChannel(),
    ]
    router = make_router(channels, min_severity="info")
    router.publish(
        notice("halted", Severity.CRITICAL, "engine: halted", "loss limit", symbol="BTC/USDT")
    )
    assert router.flush(10.0)
    results = send_test_alert(router)
    errors = []
    for channel in channels:
        try:
            channel.send(notice())
        except AlertDeliveryError as exc:
            errors.append(str(exc))
    assert {k for k, v in results.items() if v != "ok"} == {
        "webhook", "telegram-wrong-chat", "email-wrong-password", "webhook-dead",
    }  # fmt: skip
    assert len(errors) == 3
    seen = [r.body.decode() for s in (webhook, slack, telegram) for r in s.requests]
    seen += [m.as_string() for _, _, m in mailbox.mails]
    seen += [r.getMessage() for r in caplog.records] + [caplog.text]
    seen += [r.exc_text or "" for r in caplog.records]
    seen += list(results.values()) + errors
    leaks = [(canary, text) for text in seen for canary in CANARIES if canary in text]
    assert not leaks
    assert (len(telegram.sent), len(mailbox.mails)) == (3, 3)  # publish, test alert, direct
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert httpx_lines
    assert all("***" in line for line in httpx_lines)  # their URLs were scrubbed


# -- settings and the test command ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"channels": ("telegram",), "telegram_bot_token": TOKEN},
            "alerts.channels has telegram but alerts.telegram_chat_id is not set",
        ),
        (
            {"channels": ("telegram",), "telegram_chat_id": CHAT},
            "alerts.channels has telegram but alerts.telegram_bot_token is not set",
        ),
        (
            {"channels": ("slack",)},
            "alerts.channels has slack but alerts.slack_webhook_url is not set",
        ),
        (
            {"channels": ("webhook",)},
            "alerts.channels has webhook but alerts.webhook_url is not set",
        ),
        (
            {"channels": ("email",), "email_to": ("a@b.test",), "smtp_user": USER},
            "alerts.channels has email but alerts.smtp_host is not set; "
            "alerts.smtp_user is set but alerts.smtp_password is not set",
        ),
        (
            {"channels": ("email",), "smtp_host": "127.0.0.1", "email_to": ("a@b.test",)},
            "alerts.channels has email but alerts.smtp_sender is not set (nor alerts.smtp_user)",
        ),
        (
            {"channels": ("log",), "channel_min_levels": {"email": "critical"}},
            "alerts.channel_min_levels names email, not in alerts.channels",
        ),
    ],
)
def test_from_settings_names_the_missing_setting(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(UserInputError) as caught:
        AlertRouter.from_settings(AlertsConfig(enabled=True, **options))
    assert str(caught.value) == expected
    assert TOKEN not in str(caught.value)


def test_from_settings_builds_working_channels(
    webhook: Receiver, slack: Receiver, telegram: FakeTelegram, mailbox: Mailbox, clock: FixedClock
) -> None:
    config = AlertsConfig(
        enabled=True,
        channels=("log", "webhook", "slack", "telegram", "email"),
        min_level="info",
        channel_min_levels={"email": "critical"},
        webhook_url=webhook.url + WEBHOOK_PATH,
        slack_webhook_url=slack.url + SLACK_PATH,
        telegram_bot_token=TOKEN,
        telegram_chat_id=CHAT,
        telegram_api_url=telegram.url,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        smtp_user=USER,
        smtp_password=PASSWORD,
        email_to=("ops@example.test",),
        rate_limit_window_seconds=5,
        retry_backoff_seconds=0.02,
    )
    router = AlertRouter.from_settings(config, clock=clock, ssl_context=mailbox.client_tls)
    try:
        assert [c.name for c in router.channels] == ["log", "webhook", "slack", "telegram", "email"]
        router.publish(
            notice("entry", Severity.INFO, "entry BTC/USDT", "buy 0.1 BTC/USDT at 42,000")
        )
        router.publish(notice("halted", Severity.CRITICAL, "engine: halted", "loss limit"))
        assert router.flush(10.0)
    finally:
        router.close()
    assert len(webhook.requests) == len(slack.requests) == len(telegram.sent) == 2
    assert [m["Subject"] for _, _, m in mailbox.mails] == ["[CRITICAL] engine: halted"]
    assert [login[2] for login in mailbox.logins] == [True]


def test_disabled_alerts_build_a_router_that_sends_nothing(webhook: Receiver) -> None:
    config = AlertsConfig(
        enabled=False, channels=("webhook",), webhook_url=webhook.url + WEBHOOK_PATH
    )
    with AlertRouter.from_settings(config) as router:
        assert router.channels == ()
        router.publish(notice(severity=Severity.CRITICAL))
        assert router.flush(1.0)
    assert not webhook.requests


def test_send_test_alert_reports_each_channel(
    make_router: Callable[..., AlertRouter],
    webhook: Receiver,
    telegram: FakeTelegram,
    mailbox: Mailbox,
) -> None:
    router = make_router(
        [
            WebhookChannel(webhook.url + WEBHOOK_PATH),
            TelegramChannel(TOKEN + "-revoked", CHAT, api_url=telegram.url),
            email_channel(mailbox),
            LogChannel(),
        ],
        min_severity="critical",  # the test alert skips the filters
    )
    assert send_test_alert(router) == {
        "webhook": "ok",
        "telegram": "telegram: Unauthorized (error 401)",
        "email": "ok",
        "log": "ok",
    }
    assert bodies(webhook)[0]["kind"] == "test"
    assert "test alert" in mailbox.mails[0][2]["Subject"]

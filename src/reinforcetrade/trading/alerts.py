"""Alerts: notices routed to log, webhook, Slack, Telegram and e-mail without holding up trading.

    router = AlertRouter.from_settings(settings.alerts)      # or AlertRouter([channels], ...)
    router.publish(Notice("halted", Severity.CRITICAL, "engine: halted", why, clock.now_ns()))
    router.flush(10.0)                                         # at shutdown (and in tests)
    router.close()

`publish` only puts the notice on a queue and never raises. A background thread filters it by
severity, folds identical notices (same `key`) within a window into one message with a count,
holds messages past the rate limit for one digest, and hands each message to one worker thread
per channel. A worker retries a failing channel with capped exponential backoff; the other
channels do not wait for it. After `max_attempts` it logs one scrubbed line and drops the message.

The records and the channels live in `alert_channels.py`; this module re-exports them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.secrets import register_secrets, scrub
from reinforcetrade.trading.alert_channels import (
    AlertChannel,
    AlertDeliveryError,
    EmailChannel,
    LogChannel,
    Notice,
    Severity,
    SlackChannel,
    TelegramChannel,
    WebhookChannel,
    render_text,
)

if TYPE_CHECKING:
    import ssl

    from reinforcetrade.config.sections import AlertsConfig

__all__ = [
    "AlertChannel",
    "AlertDeliveryError",
    "AlertRouter",
    "EmailChannel",
    "LogChannel",
    "Notice",
    "Severity",
    "SlackChannel",
    "TelegramChannel",
    "WebhookChannel",
    "channels_from_settings",
    "register_secrets",
    "render_text",
    "scrub",
    "send_test_alert",
]

log = logging.getLogger(__name__)
_DIGEST_LINES = 20
_HELD_LIMIT = 1_000
_OUTBOX_LIMIT = 1_000


@dataclass
class _Window:
    """Identical notices seen since `start`: `count` in all, `pending` not yet reported."""

    start: int
    latest: Notice
    count: int
    pending: int


@dataclass
class _FlushMark:
    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()


class _Outbox:
    """One channel's queue and worker thread: sends in order, retrying with backoff."""

    def __init__(
        self,
        channel: AlertChannel,
        min_severity: Severity,
        *,
        backoff: float,
        max_backoff: float,
        max_attempts: int,
    ) -> None:
        self.channel = channel
        self.name = channel.name
        self.min_severity = min_severity
        self.backoff, self.max_backoff, self.max_attempts = backoff, max_backoff, max_attempts
        self.sent = self.failed = self.dropped = 0
        self._queue: deque[Notice] = deque()
        self._cond = threading.Condition()
        self._busy = self._stopping = False
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"alerts:{self.name}", daemon=True)
        self._thread.start()

    def put(self, notice: Notice) -> None:
        with self._cond:
            if len(self._queue) >= _OUTBOX_LIMIT:
                lost = self._queue.popleft()
                self.dropped += 1
                log.warning("alert channel %s is backed up; dropped %r", self.name, lost.title)
            self._queue.append(notice)
            self._cond.notify_all()

    def wait_idle(self, deadline: float) -> bool:
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def stop(self, timeout: float) -> None:
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._cond.notify_all()
        self._abort.set()
        self._thread.join(timeout)
        closer = getattr(self.channel, "close", None)
        if callable(closer):
            closer()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                notice = self._queue.popleft()
                self._busy = True
            try:
                self._deliver(notice)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, notice: Notice) -> None:
        delay, attempt, problem = self.backoff, 0, ""
        while attempt < self.max_attempts:
            attempt += 1
            retry_after: float | None = None
            try:
                self.channel.send(notice)
            except AlertDeliveryError as exc:
                problem, retry_after = str(exc), exc.retry_after
            except Exception as exc:  # a broken channel must not kill its worker
                problem = f"{self.name}: {type(exc).__name__}: {exc}"
            else:
                self.sent += 1
                return
            if attempt >= self.max_attempts:
                break
            wait = min(max(delay, retry_after or 0.0), self.max_backoff)
            log.debug(
                "alert channel %s: attempt %d failed (%s); retrying in %.3g s",
                self.name, attempt, scrub(problem), wait,
            )  # fmt: skip
            if self._abort.wait(wait):
                break
            delay = min(delay * 2, self.max_backoff)
        self.failed += 1
        log.error(
            "alert channel %s gave up on %r after %d attempt(s): %s",
            self.name, scrub(notice.title), attempt, scrub(problem),
        )  # fmt: skip


class AlertRouter:
    """Filters, de-duplicates, rate-limits and delivers notices on background threads.

    Args:
        channels: where notices go; names must be unique.
        min_severity: notices below it are dropped at `publish`.
        per_channel_min_severity: a stricter minimum for some channels, by channel name.
        window_seconds: the de-duplication and rate-limit window.
        max_per_window: messages delivered per window (all channels together); more are held
            and sent as one digest when the window lets another message through.
        clock: time for the windows (tests pass a `FixedClock`); wall clock by default.
        retry_backoff: seconds before the first retry of a failed delivery; doubles each time.
        max_backoff: the cap on one wait between retries.
        max_attempts: deliveries tried per message and channel before giving it up.
        poll_seconds: how often the worker looks at the clock while a window holds messages.
    """

    def __init__(
        self,
        channels: Iterable[AlertChannel],
        *,
        min_severity: Severity | str = Severity.WARNING,
        per_channel_min_severity: Mapping[str, Severity | str] | None = None,
        window_seconds: float = 60.0,
        max_per_window: int = 20,
        clock: Clock | None = None,
        retry_backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_attempts: int = 5,
        poll_seconds: float = 0.25,
        queue_size: int = 10_000,
    ) -> None:
        self.channels = tuple(channels)
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise UserInputError(f"alert channel names must be unique, got {names}")
        per_channel = dict(per_channel_min_severity or {})
        unknown = sorted(set(per_channel) - set(names))
        if unknown:
            raise UserInputError(f"no alert channel named {', '.join(unknown)}; have {names}")
        if window_seconds <= 0 or max_per_window < 1 or max_attempts < 1 or retry_backoff < 0:
            raise UserInputError(
                "alert windows and retries need window_seconds > 0, max_per_window >= 1, "
                "max_attempts >= 1 and retry_backoff >= 0"
            )
        self.min_severity = Severity.parse(min_severity)
        self.window_seconds = float(window_seconds)
        self.max_per_window = int(max_per_window)
        self.clock: Clock = clock or WallClock()
        self.poll_seconds = poll_seconds
        self._window_ns = int(window_seconds * 1e9)
        self._outboxes = tuple(
            _Outbox(
                c,
                max(self.min_severity, Severity.parse(per_channel.get(c.name, self.min_severity))),
                backoff=retry_backoff,
                max_backoff=max_backoff,
                max_attempts=max_attempts,
            )
            for c in self.channels
        )
        self._floor = min((o.min_severity for o in self._outboxes), default=Severity.CRITICAL)
        self._inbox: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._windows: dict[str, _Window] = {}
        self._sent: deque[int] = deque()  # when each recent message went out
        self._held: list[Notice] = []
        self._held_extra = 0
        self._lost = 0
        self._closed = False
        self._thread = threading.Thread(target=self._dispatch, name="alerts:router", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(
        cls,
        config: AlertsConfig,
        *,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> AlertRouter:
        """Return the router the `alerts` settings describe (no channels when not enabled).

        Raises:
            UserInputError: a configured channel lacks a setting; the text names each one.
        """
        channels = channels_from_settings(config, ssl_context=ssl_context)
        levels: dict[str, Severity | str] = {}
        if channels:
            levels.update(config.channel_min_levels.items())
        return cls(
            channels,
            min_severity=config.min_level,
            per_channel_min_severity=levels,
            window_seconds=config.rate_limit_window_seconds,
            max_per_window=config.rate_limit_max,
            clock=clock,
            retry_backoff=config.retry_backoff_seconds,
            max_backoff=config.retry_max_backoff_seconds,
            max_attempts=config.retry_max_attempts,
        )

    # -- the caller's side ------------------------------------------------------------------------
    def publish(self, notice: Notice) -> None:
        """Queue a notice for delivery; returns at once and never raises."""
        try:
            if self._closed or not self._outboxes or notice.severity < self._floor:
                return
            self._inbox.put_nowait(notice)
        except queue.Full:
            self._lost += 1
            if self._lost == 1 or self._lost % 1_000 == 0:
                log.error("the alert queue is full; %d notice(s) dropped so far", self._lost)
        except Exception as exc:  # publishing must never disturb trading
            log.error("could not queue an alert: %s", scrub(f"{type(exc).__name__}: {exc}"))

    def __call__(self, notice: Notice) -> None:
        """Publish (so the router itself can be a monitor's `publish` callback)."""
        self.publish(notice)

    def flush(self, timeout: float = 30.0) -> bool:
        """Send what windows and the rate limit hold, then wait for every channel to finish.

        Returns True when everything was delivered or given up within `timeout` seconds.
        """
        if self._closed:
            return True
        deadline = time.monotonic() + timeout
        mark = _FlushMark()
        try:
            self._inbox.put(mark, timeout=max(timeout, 0.0))
        except queue.Full:
            return False
        if not mark.done.wait(max(deadline - time.monotonic(), 0.0)):
            return False
        return all(outbox.wait_idle(deadline) for outbox in self._outboxes)

    def close(self, timeout: float = 10.0) -> None:
        """Flush (up to `timeout` seconds), then stop the threads and close the channels."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        self._inbox.put(_STOP)
        self._thread.join(timeout)
        for outbox in self._outboxes:
            outbox.stop(timeout)

    def __enter__(self) -> AlertRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, dict[str, int]]:
        """Return, per channel, messages sent, given up and dropped (backed-up queue)."""
        return {
            o.name: {"sent": o.sent, "failed": o.failed, "dropped": o.dropped}
            for o in self._outboxes
        }

    # -- the worker's side ------------------------------------------------------------------------
    def _dispatch(self) -> None:
        while True:
            try:
                item = self._inbox.get(timeout=self._wake_after())
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            try:
                now = self.clock.now_ns()
                if isinstance(item, Notice):
                    self._admit(item, now)
                self._expire(now)
                if isinstance(item, _FlushMark):
                    self._release(now)
            except Exception as exc:  # keep the worker alive whatever happens
                log.error("the alert router failed: %s", scrub(f"{type(exc).__name__}: {exc}"))
            finally:
                if isinstance(item, _FlushMark):
                    item.done.set()

    def _wake_after(self) -> float | None:
        """Sleep until a notice comes, or briefly while anything waits on the clock."""
        if not self._held and not any(w.pending for w in self._windows.values()):
            return None
        return max(self.poll_seconds, 0.001)

    def _admit(self, notice: Notice, now: int) -> None:
        window = self._windows.get(notice.key)
        if window is not None and now - window.start < self._window_ns:
            window.count += 1
            window.pending += 1
            window.latest = notice
            return
        if window is not None and window.pending:
            self._emit(window.latest.repeated(window.count, self.window_seconds), now)
        self._windows[notice.key] = _Window(start=now, latest=notice, count=1, pending=0)
        self._emit(notice, now)

    def _expire(self, now: int) -> None:
        for key, window in list(self._windows.items()):
            if now - window.start < self._window_ns:
                continue
            if window.pending:  # the repeats become one message; a new window starts
                self._emit(window.latest.repeated(window.count, self.window_seconds), now)
                self._windows[key] = _Window(start=now, latest=window.latest, count=0, pending=0)
            else:
                del self._windows[key]
        if self._held and self._room(now):
            self._emit_held(now)

    def _release(self, now: int) -> None:
        """On flush: report every window's repeats and the held messages now."""
        for window in self._windows.values():
            if window.pending:
                self._emit(window.latest.repeated(window.count, self.window_seconds), now)
                window.count = window.pending = 0
        if self._held:
            self._emit_held(now)

    def _room(self, now: int) -> bool:
        while self._sent and now - self._sent[0] >= self._window_ns:
            self._sent.popleft()
        return len(self._sent) < self.max_per_window

    def _emit(self, notice: Notice, now: int) -> None:
        if not self._room(now):
            if len(self._held) < _HELD_LIMIT:
                self._held.append(notice)
            else:
                self._held_extra += 1
            return
        self._deliver(notice, now)

    def _emit_held(self, now: int) -> None:
        held, extra = self._held, self._held_extra
        self._held, self._held_extra = [], 0
        self._deliver(held[0] if len(held) == 1 and not extra else _digest(held, extra), now)

    def _deliver(self, notice: Notice, now: int) -> None:
        self._sent.append(now)
        for outbox in self._outboxes:
            if notice.severity >= outbox.min_severity:
                outbox.put(notice)


def _digest(held: list[Notice], extra: int) -> Notice:
    """Return one notice standing for the messages the rate limit held back."""
    total = sum(n.count for n in held) + extra
    lines = [f"- [{n.severity.word}] {n.title}: {n.message}" for n in held[:_DIGEST_LINES]]
    more = len(held) - _DIGEST_LINES + extra
    if more > 0:
        lines.append(f"- … and {more} more")
    return Notice(
        kind="digest",
        severity=max(n.severity for n in held),
        title=f"{total} alerts held back by the rate limit",
        message="\n".join(lines),
        time=held[-1].time,
        fields={"kinds": ", ".join(sorted({n.kind for n in held}))},
        key="digest",
        count=total,
    )


def channels_from_settings(
    config: AlertsConfig, *, ssl_context: ssl.SSLContext | None = None
) -> list[AlertChannel]:
    """Return the channels `config.channels` names, or none when alerts are not enabled.

    Raises:
        UserInputError: one message listing every missing setting, by its full name.
    """
    if not config.enabled:
        return []
    problems = _missing(config)
    if problems:
        raise UserInputError("; ".join(problems))
    timeout = config.timeout_seconds
    channels: list[AlertChannel] = []
    for name in dict.fromkeys(config.channels):
        if name == "log":
            channels.append(LogChannel())
        elif name == "webhook" and config.webhook_url is not None:
            channels.append(WebhookChannel(config.webhook_url.get_secret_value(), timeout=timeout))
        elif name == "slack" and config.slack_webhook_url is not None:
            url = config.slack_webhook_url.get_secret_value()
            channels.append(SlackChannel(url, timeout=timeout))
        elif name == "telegram" and config.telegram_bot_token and config.telegram_chat_id:
            channels.append(
                TelegramChannel(
                    config.telegram_bot_token.get_secret_value(),
                    config.telegram_chat_id,
                    api_url=config.telegram_api_url,
                    timeout=timeout,
                )
            )
        elif name == "email" and config.smtp_host:
            password = config.smtp_password
            channels.append(
                EmailChannel(
                    config.smtp_host,
                    config.smtp_port,
                    config.smtp_user,
                    password.get_secret_value() if password is not None else None,
                    config.smtp_sender or config.smtp_user or "",
                    config.email_to,
                    starttls=config.smtp_starttls,
                    ssl_context=ssl_context,
                    timeout=timeout,
                )
            )
    return channels


def _missing(config: AlertsConfig) -> list[str]:
    """Return one sentence per setting a configured channel lacks."""
    needs = {
        "telegram": ("telegram_bot_token", "telegram_chat_id"),
        "slack": ("slack_webhook_url",),
        "webhook": ("webhook_url",),
        "email": ("smtp_host", "email_to"),
    }
    problems = [
        f"alerts.channels has {channel} but alerts.{setting} is not set"
        for channel in dict.fromkeys(config.channels)
        for setting in needs.get(channel, ())
        if not getattr(config, setting)
    ]
    if "email" in config.channels:
        if not (config.smtp_sender or config.smtp_user):
            problems.append(
                "alerts.channels has email but alerts.smtp_sender is not set (nor alerts.smtp_user)"
            )
        if config.smtp_user and config.smtp_password is None:
            problems.append("alerts.smtp_user is set but alerts.smtp_password is not set")
        if config.smtp_user and not config.smtp_starttls:
            problems.append(
                "alerts.smtp_user is set but alerts.smtp_starttls is false: "
                "the password would travel in clear"
            )
    unused = sorted(set(config.channel_min_levels) - set(config.channels))
    if unused:
        problems.append(
            f"alerts.channel_min_levels names {', '.join(unused)}, not in alerts.channels"
        )
    return problems


def send_test_alert(router: AlertRouter) -> dict[str, str]:
    """Send one test notice through every channel now; return channel name → 'ok' or the error.

    The test notice skips the severity filters, the windows and the retries: each channel is
    tried once, in turn, so the answer says exactly which channels work.
    """
    now = router.clock.now_ns()
    notice = Notice(
        kind="test",
        severity=Severity.INFO,
        title="ReinforceTrade test alert",
        message="This is a test alert: if you can read it, this channel works.",
        time=now,
        key=f"test:{now}",
    )
    results: dict[str, str] = {}
    for channel in router.channels:
        try:
            channel.send(notice)
        except AlertDeliveryError as exc:
            results[channel.name] = scrub(str(exc))
        except Exception as exc:  # report, never raise: this is a diagnostic
            results[channel.name] = scrub(f"{channel.name}: {type(exc).__name__}: {exc}")
        else:
            results[channel.name] = "ok"
    return results

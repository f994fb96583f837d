"""A fake Telegram Bot API: `sendMessage` on 127.0.0.1, recording what it was sent.

    with FakeTelegram(token="123:ABC", chats={"42"}) as api:
        channel = TelegramChannel("123:ABC", "42", api_url=api.url)
        api.fail_next(NotOk(429, "Too Many Requests: retry after 1", retry_after=1), None)
        ...
        assert api.texts() == [...]

A wrong token gets Telegram's 401 `{"ok": false, "description": "Unauthorized"}`, an unknown
chat its 400 "Bad Request: chat not found". `fail_next` scripts faults (any `FakeServer` fault,
or `NotOk`) for the next sendMessage calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fakes import Answer, FakeServer, Fault, Reply, Request


def not_ok(error_code: int, description: str, *, status: int | None = None, **extra: Any) -> Reply:
    """Return Telegram's error answer (HTTP status = error code unless `status` is given)."""
    body: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
    if extra:
        body["parameters"] = extra
    return Reply.json(body, status=error_code if status is None else status)


@dataclass(frozen=True)
class NotOk:
    """Answer one request with `{"ok": false, ...}`; `status=200` plays a lying gateway."""

    error_code: int = 400
    description: str = "Bad Request: message text is empty"
    status: int | None = None
    retry_after: int | None = None

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Return the error without delivering the message."""
        extra = {} if self.retry_after is None else {"retry_after": self.retry_after}
        return not_ok(self.error_code, self.description, status=self.status, **extra)


class FakeTelegram(FakeServer):
    """The Bot API's `sendMessage` for one bot token and a set of known chats."""

    def __init__(self, token: str, chats: Iterable[str] = ("42",)) -> None:
        super().__init__()
        self.token = token
        self.chats = {str(c) for c in chats}
        self.sent: list[dict[str, Any]] = []  # sendMessage payloads accepted, in order
        self._next_id = 1

    @property
    def send_path(self) -> str:
        """Return the sendMessage path for the right token (the one `script` keys on)."""
        return f"/bot{self.token}/sendMessage"

    def fail_next(self, *steps: Fault | None) -> None:
        """Queue faults for the next sendMessage calls (None lets one through)."""
        self.script(self.send_path, *steps)

    def texts(self) -> list[str]:
        """Return the text of every message delivered."""
        return [str(m["text"]) for m in self.sent]

    def answer(self, request: Request) -> Reply:
        """Route `/bot<token>/<method>` the way Telegram does."""
        head, _, method = request.path.lstrip("/").partition("/")
        if not head.startswith("bot") or not method:
            return not_ok(404, "Not Found")
        if head[3:] != self.token:
            return not_ok(401, "Unauthorized")
        if request.method != "POST" or method != "sendMessage":
            return not_ok(404, "Not Found: method not found")
        return self._send_message(request)

    def _send_message(self, request: Request) -> Reply:
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            return not_ok(400, "Bad Request: can't parse JSON")
        chat = str(payload.get("chat_id", ""))
        if chat not in self.chats:
            return not_ok(400, "Bad Request: chat not found")
        text = payload.get("text")
        if not text:
            return not_ok(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return not_ok(400, "Bad Request: message is too long")
        with self._lock:
            self.sent.append(payload)
            message_id, self._next_id = self._next_id, self._next_id + 1
        result = {"message_id": message_id, "chat": {"id": chat}, "text": text}
        return Reply.json({"ok": True, "result": result})

"""Secrets kept out of every text we write: errors, alerts, and the log lines of libraries.

Adapters register the credentials they hold (`register_secrets`); `scrub` masks them in any
text; `redact_loggers` installs the same masking on named loggers (a logger's filters see only
its own records, so each library logger that may print a credential is named: ccxt's debug log
prints request headers, httpx logs request URLs).
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote

REDACTED = "***"


class _Redactor(logging.Filter):
    """Replaces every registered secret with '***' in texts and in log records."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()  # longest first: a URL before the token inside it
        self._lock = threading.Lock()

    def add(self, *secrets: str | None) -> None:
        """Register secrets (and their URL-quoted forms); shorter than 4 characters are ignored."""
        found = {s for s in secrets if s and len(s) >= 4}
        found |= {quote(s, safe="") for s in found} | {quote(s) for s in found}
        with self._lock:
            self._secrets = tuple(sorted(found.union(self._secrets), key=len, reverse=True))

    def scrub(self, text: str) -> str:
        """Return `text` with every registered secret replaced."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub a record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


_REDACTOR = _Redactor()


def register_secrets(*secrets: str | None) -> None:
    """Keep these strings out of every scrubbed text and every redacted logger's lines."""
    _REDACTOR.add(*secrets)


def scrub(text: str) -> str:
    """Return `text` with every registered secret replaced by '***'."""
    return _REDACTOR.scrub(text)


def redact_loggers(*names: str) -> None:
    """Mask registered secrets in the records of these loggers (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)

"""The error hierarchy, organised by what the caller must do about an error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class ReinforceTradeError(Exception):
    """Base of every error this package raises on purpose."""


class UserInputError(ReinforceTradeError):
    """Bad input that the user must fix: a file, an argument or a setting (CLI exit code 2)."""


class ConfigError(UserInputError):
    """The settings tree is invalid; the message lists every bad field."""


class TimeframeError(UserInputError, ValueError):
    """A timeframe string is not understood."""


@dataclass(frozen=True, slots=True)
class DataIssue:
    """One thing wrong with a market-data input, located as precisely as the source allows."""

    rule: str
    message: str
    row: int | None = None
    column: str | None = None
    value: object = None

    def render(self, source: str | None = None, row_label: str = "row") -> str:
        """Return the issue as one line naming file, row, column and value."""
        where = [source] if source else []
        if self.row is not None:
            where.append(f"{row_label} {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        prefix = ", ".join(where)
        value = "" if self.value is None else f" (value: {self.value!r})"
        return f"{prefix}: {self.message}{value}" if prefix else f"{self.message}{value}"


class DataError(UserInputError):
    """Market data cannot be used as given; the message names file, row, column and value."""

    def __init__(
        self,
        message: str,
        *,
        source: str | Path | None = None,
        issues: Sequence[DataIssue] = (),
        hint: str | None = None,
        row_label: str = "row",
    ) -> None:
        self.source = None if source is None else str(source)
        self.issues = tuple(issues)
        self.row_label = row_label
        self.hint = hint
        text = (
            message
            if self.source is None or self.source in message
            else f"{self.source}: {message}"
        )
        if hint:
            text = f"{text} — {hint}"
        super().__init__(text)


class DataValidationError(DataError):
    """Bars break the OHLCV contract; `issues` holds every problem found."""


class GapError(DataError):
    """Bars are missing and the gap policy is `raise`."""


class ExchangeDataError(ReinforceTradeError):
    """An exchange did not deliver within the retry bound; retry later or check the venue."""

"""The journal's errors: what went wrong, on which database (password masked), what to do."""

from __future__ import annotations

from reinforcetrade.core.errors import ReinforceTradeError


class JournalError(ReinforceTradeError):
    """The journal could not read or write; the message names the database and the next step."""


class IllegalTransitionError(JournalError, ValueError):
    """An order update asks for a status change the order state machine does not allow."""


class EngineLockedError(JournalError):
    """Another engine holds the journal's engine lock under the same name."""

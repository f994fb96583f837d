"""The order state machine: statuses, their allowed transitions, and the check the journal runs.

The live engine imports `TRANSITIONS` from here, so the journal and the engine agree on one table.

>>> check_transition("o-1", "pending", "submitted")
>>> check_transition("o-1", "filled", "cancelled")
Traceback (most recent call last):
...
reinforcetrade.storage.errors.IllegalTransitionError: order 'o-1' cannot go from 'filled' to ...
"""

from __future__ import annotations

from typing import Final

from reinforcetrade.storage.errors import IllegalTransitionError

#: Every status an order can have, in lifecycle order.
ORDER_STATUSES: Final[tuple[str, ...]] = (
    "pending",  # written to the journal, not yet acknowledged by the broker
    "submitted",  # acknowledged by the broker, nothing filled yet
    "partially_filled",
    "filled",
    "cancelled",
    "rejected",
    "expired",
)

#: status -> the statuses it may move to; an empty set marks a final status.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    # a broker may answer the submit call with a fill (market orders) or a rejection
    "pending": frozenset({"submitted", "partially_filled", "filled", "rejected", "cancelled"}),
    "submitted": frozenset({"partially_filled", "filled", "cancelled", "rejected", "expired"}),
    # partially_filled -> partially_filled records a further partial fill
    "partially_filled": frozenset({"partially_filled", "filled", "cancelled", "expired"}),
    "filled": frozenset(),
    "cancelled": frozenset(),
    "rejected": frozenset(),
    "expired": frozenset(),
}

#: Statuses of orders that may still fill (what `Journal.open_orders` returns).
OPEN_STATUSES: Final[tuple[str, ...]] = tuple(s for s in ORDER_STATUSES if TRANSITIONS[s])

#: Statuses after which nothing more happens to an order.
FINAL_STATUSES: Final[tuple[str, ...]] = tuple(s for s in ORDER_STATUSES if not TRANSITIONS[s])

ORDER_TYPES: Final[tuple[str, ...]] = ("market", "limit", "stop", "stop_limit")
SIDES: Final[tuple[str, ...]] = ("buy", "sell")


def check_transition(client_order_id: str, current: str, new: str) -> None:
    """Raise `IllegalTransitionError` unless an order may move from `current` to `new`."""
    if new not in TRANSITIONS:
        raise IllegalTransitionError(
            f"order {client_order_id!r}: unknown status {new!r} "
            f"(one of {', '.join(ORDER_STATUSES)})"
        )
    allowed = TRANSITIONS.get(current, frozenset())
    if new in allowed:
        return
    if not allowed:
        why = f"{current!r} is final"
    else:
        why = f"from {current!r} it may go to {', '.join(sorted(allowed))}"
    raise IllegalTransitionError(
        f"order {client_order_id!r} cannot go from {current!r} to {new!r}: {why}"
    )

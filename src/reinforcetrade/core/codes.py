"""Numeric codes kept in compiled loops and records, and the words they become when read.

Kernels write small integers (a regime, an action, a bitmask of reasons); reports, the journal and
the dashboard turn them into words with the functions here, never by recomputing anything.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import Final


class VolRegime(IntEnum):
    """Volatility regime of a bar, against the market's own recent history."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    EXTREME = 3


class TrendRegime(IntEnum):
    """Trend regime of a bar."""

    RANGE = 0
    UP = 1
    DOWN = 2


class Regime(IntEnum):
    """The regime the Decision Tower weighs agents by (a row of the weight table)."""

    TRENDING = 0
    RANGING = 1
    HIGH_VOLATILITY = 2


#: Config keys of the tower's weight table, in `Regime` order.
REGIME_KEYS: Final[tuple[str, ...]] = ("trending", "ranging", "high_volatility")


class Action(IntEnum):
    """What a Decision did."""

    ENTER_LONG = 1
    ENTER_SHORT = 2
    EXIT = 3
    BLOCKED = 4


class Side(IntEnum):
    """Order and fill side."""

    BUY = 1
    SELL = -1


class TradingState(IntEnum):
    """Risk state: ACTIVE trades normally, REDUCING trades smaller, HALTED opens nothing."""

    ACTIVE = 0
    REDUCING = 1
    HALTED = 2


class ExitReason(IntEnum):
    """Why a position was closed."""

    SIGNAL = 1  # the strategy's target changed (simple backtester)
    REVERSAL = 2  # an opposite tower signal confident enough
    STOP_LOSS = 3
    TAKE_PROFIT = 4
    HALT = 5  # drawdown halt with flatten
    END = 6  # still open when the data ended (marked at the last close)
    MANUAL = 7  # an operator flattened the position (live engine's controls)


class Reason(IntFlag):
    """Every rule that allowed or blocked a decision; a Decision holds a bitmask of them."""

    NONE = 0
    CONFIDENCE_OK = 1 << 0
    CONFIDENCE_LOW = 1 << 1
    CONSENSUS_OK = 1 << 2
    CONSENSUS_LOW = 1 << 3
    REVERSAL = 1 << 4
    STOP_LOSS = 1 << 5
    TAKE_PROFIT = 1 << 6
    HALTED_DRAWDOWN = 1 << 7
    CIRCUIT_BREAKER = 1 << 8
    LOSS_STREAK_CUT = 1 << 9
    CAP_TRADE = 1 << 10
    CAP_SYMBOL = 1 << 11
    CAP_TOTAL = 1 << 12
    NO_CASH = 1 << 13
    SIZE_ZERO = 1 << 14
    SHORT_DISABLED = 1 << 15
    KELLY_PRIOR = 1 << 16
    HIGH_VOL_STOP = 1 << 17
    COST_PENALTY = 1 << 18
    FLATTEN_ON_HALT = 1 << 19
    PARTIAL_FILL = 1 << 20
    NO_LIQUIDITY = 1 << 21
    WARMUP = 1 << 22
    MANUAL = 1 << 23


REASON_WORDS: Final[dict[Reason, str]] = {
    Reason.CONFIDENCE_OK: "tower confidence at or above the entry threshold",
    Reason.CONFIDENCE_LOW: "tower confidence below the entry threshold",
    Reason.CONSENSUS_OK: "enough agents agree on the direction",
    Reason.CONSENSUS_LOW: "too few agents agree on the direction",
    Reason.REVERSAL: "opposite signal confident enough to exit",
    Reason.STOP_LOSS: "stop loss hit",
    Reason.TAKE_PROFIT: "take profit hit",
    Reason.HALTED_DRAWDOWN: "trading halted: drawdown limit reached",
    Reason.CIRCUIT_BREAKER: "circuit breaker: extreme move or volatility, entries paused",
    Reason.LOSS_STREAK_CUT: "size cut after consecutive losses",
    Reason.CAP_TRADE: "size capped at the per-trade limit",
    Reason.CAP_SYMBOL: "size capped at the per-symbol limit",
    Reason.CAP_TOTAL: "size capped at the total exposure limit",
    Reason.NO_CASH: "not enough cash",
    Reason.SIZE_ZERO: "position size came out as zero",
    Reason.SHORT_DISABLED: "short selling is disabled",
    Reason.KELLY_PRIOR: "Kelly size from the prior (too few closed trades yet)",
    Reason.HIGH_VOL_STOP: "wider stop for the high-volatility regime",
    Reason.COST_PENALTY: "entry threshold raised: execution costs above assumptions",
    Reason.FLATTEN_ON_HALT: "position closed because trading halted",
    Reason.PARTIAL_FILL: "order only partly filled (volume cap)",
    Reason.NO_LIQUIDITY: "no volume to fill against",
    Reason.WARMUP: "indicators still warming up",
    Reason.MANUAL: "closed on an operator's request",
}


def reason_words(mask: int) -> tuple[str, ...]:
    """Return the words of every reason set in a bitmask, in code order.

    >>> reason_words(int(Reason.CONFIDENCE_LOW | Reason.CONSENSUS_OK))
    ('tower confidence below the entry threshold', 'enough agents agree on the direction')
    """
    return tuple(REASON_WORDS[r] for r in Reason if r and mask & r)


def reason_names(mask: int) -> tuple[str, ...]:
    """Return the names of every reason set in a bitmask, e.g. ('CONFIDENCE_LOW',)."""
    return tuple(str(r.name) for r in Reason if r and mask & r)

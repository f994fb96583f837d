"""What every signal agent returns, and the protocol it follows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.jit import njit
from reinforcetrade.core.records import AgentSignal
from reinforcetrade.data.bars import Bars

F8 = npt.NDArray[np.float64]
I1 = npt.NDArray[np.int8]


@dataclass(frozen=True)
class AgentSignals:
    """An agent's signal on every bar: direction (int8 in {-1, 0, 1}), confidence, features."""

    agent: str
    direction: I1
    confidence: F8
    features: Mapping[str, F8] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.direction.size)

    def at(self, t: int) -> AgentSignal:
        """Return bar `t`'s signal as a record (NaN features stay NaN)."""
        return AgentSignal(
            agent=self.agent,
            direction=int(self.direction[t]),
            confidence=float(self.confidence[t]),
            features={name: float(values[t]) for name, values in self.features.items()},
        )

    def since(self, first: int) -> AgentSignals:
        """Return the signals from bar `first` on."""
        return AgentSignals(
            self.agent,
            self.direction[first:],
            self.confidence[first:],
            {name: values[first:] for name, values in self.features.items()},
        )

    def last(self) -> AgentSignal:
        """Return the last bar's signal."""
        return self.at(len(self) - 1)


@runtime_checkable
class SignalAgent(Protocol):
    """An agent that reads bars and says, per bar, which way and how sure."""

    name: str

    def signals(self, bars: Bars) -> AgentSignals:
        """Return the agent's signal for every bar, using bars up to each bar only."""
        ...


class Follower(Protocol):
    """An agent followed bar by bar, carrying what its signal depends on from bar to bar."""

    def update(self, bars: Bars, seen: int) -> tuple[int, float, bool]:
        """Return the newest bar's (direction, confidence, warm) from a window of recent bars.

        `seen` counts every bar of the symbol so far (the window holds the latest of them).
        """
        ...


def finish(
    agent: str, score: F8, threshold: float, scale: float, features: Mapping[str, F8]
) -> AgentSignals:
    """Turn a score in [-1, 1] into direction and confidence; NaN scores give (0, 0).

    Direction is the score's sign when |score| ≥ threshold, else 0; confidence is |score| / scale
    clipped to [0, 1] (0 when the direction is 0).
    """
    direction = np.empty(score.size, dtype=np.int8)
    confidence = np.empty(score.size, dtype=np.float64)
    _finish_kernel(score, threshold, scale, direction, confidence)
    return AgentSignals(agent, direction, confidence, dict(features))


@njit
def _finish_kernel(
    score: F8, threshold: float, scale: float, direction: I1, confidence: F8
) -> None:
    """Fill direction and confidence from scores in one pass (NaN scores give 0, 0)."""
    for t in range(score.size):
        x = score[t]
        strength = abs(x)
        if x == x and strength >= threshold:
            direction[t] = 1 if x > 0.0 else -1
            confidence[t] = min(strength / scale, 1.0)
        else:
            direction[t] = 0
            confidence[t] = 0.0

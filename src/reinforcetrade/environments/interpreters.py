"""Interpreters: what a policy sees (observations) and what its actions mean (target positions).

Observation of bar t (float32, ``window × k + 3`` values): the feature rows t - window + 1 .. t
of a `FeatureSpec` array, flattened row by row (oldest first), then a one-hot of the side of the
position held at bar t's close: ``[short, flat, long]``. Every action space uses the same
layout, so one batch can hold a bar's observation for all three sides (`batch`).

Actions are target positions as a fraction of equity, filled at the next bar's open:

================================  =========================================================
``Discrete(3)`` (shorting on)     0 → -1.0 (short), 1 → 0.0 (flat), 2 → +1.0 (long);
                                  `LONG_SHORT_TARGETS`, indices equal to the side slots
``Discrete(2)`` (shorting off)    0 → 0.0 (flat), 1 → +1.0 (long); `LONG_ONLY_TARGETS`
``Box((1,))``                     the target itself, clipped to [-1, 1] (or [0, 1] without
                                  shorting)
================================  =========================================================

The training environment and inference use these same objects (Qlib's interpreter split), so a
model always sees observations encoded exactly as in training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.jit import njit

__all__ = [
    "FLAT",
    "LONG",
    "LONG_ONLY_TARGETS",
    "LONG_SHORT_TARGETS",
    "SHORT",
    "SIDES",
    "ActionInterpreter",
    "ObservationInterpreter",
    "side_of",
    "write_observation",
]

F4 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int64]

#: slots of the side one-hot at the end of every observation
SHORT: Final[int] = 0
FLAT: Final[int] = 1
LONG: Final[int] = 2
SIDES: Final[int] = 3
#: Discrete(3) action → target position (action index == side slot)
LONG_SHORT_TARGETS: Final[tuple[float, ...]] = (-1.0, 0.0, 1.0)
#: Discrete(2) action → target position, when shorting is off
LONG_ONLY_TARGETS: Final[tuple[float, ...]] = (0.0, 1.0)
_BATCH_BLOCK: Final[int] = 8192  # bars gathered at a time by `batch`


@njit
def side_of(units: float) -> int:
    """Return the side slot of a holding: SHORT (units < 0), FLAT or LONG (units > 0).

    >>> side_of(-2.5), side_of(0.0), side_of(3.0)
    (0, 1, 2)
    """
    if units > 0.0:
        return LONG
    if units < 0.0:
        return SHORT
    return FLAT


@njit
def write_observation(features: F4, t: int, side: int, out: F4) -> None:
    """Write bar t's observation into `out` (its size sets the window): rows, then the one-hot.

    `features` is the (bars, k) float32 array; rows t - window + 1 .. t must exist.
    """
    k = features.shape[1]
    window = (out.size - SIDES) // k
    j = 0
    for r in range(t - window + 1, t + 1):
        for c in range(k):
            out[j] = features[r, c]
            j += 1
    out[j] = 0.0
    out[j + 1] = 0.0
    out[j + 2] = 0.0
    out[j + side] = 1.0


@dataclass(frozen=True, slots=True)
class ObservationInterpreter:
    """Encodes bars as observations: `window` feature rows and the held side's one-hot.

    >>> enc = ObservationInterpreter(window=2, n_features=3, clip=5.0)
    >>> features = np.arange(12, dtype=np.float32).reshape(4, 3)
    >>> enc.observe(features, t=3, side=LONG)
    array([ 6.,  7.,  8.,  9., 10., 11.,  0.,  0.,  1.], dtype=float32)
    >>> enc.batch(features, np.array([2, 3]), side=SHORT)[:, -3:]
    array([[1., 0., 0.],
           [1., 0., 0.]], dtype=float32)
    """

    window: int
    n_features: int
    clip: float

    def __post_init__(self) -> None:
        for name in ("window", "n_features"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise UserInputError(f"{name} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise UserInputError(f"clip must be a positive number, got {self.clip!r}")

    @property
    def size(self) -> int:
        """Return the number of values in one observation: window × features + 3."""
        return int(self.window * self.n_features + SIDES)

    def space(self) -> spaces.Box:
        """Return the observation space: features in ±clip, the one-hot in [0, 1]."""
        low = np.full(self.size, -self.clip, dtype=np.float32)
        high = np.full(self.size, self.clip, dtype=np.float32)
        low[-SIDES:] = 0.0
        high[-SIDES:] = 1.0
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def first_bar(self, warmup: int) -> int:
        """Return the first bar whose window holds no warm-up row (features NaN before warmup)."""
        return int(warmup + self.window - 1)

    def observe(self, features: F4, t: int, side: int) -> F4:
        """Return bar t's observation for a position on `side` (SHORT, FLAT or LONG)."""
        features = self._checked(features)
        self._check_bars(features, np.array([t]), np.asarray(side))
        out = np.empty(self.size, dtype=np.float32)
        write_observation(features, int(t), int(side), out)
        return out

    def batch(self, features: F4, bars: npt.ArrayLike, side: int | npt.ArrayLike) -> F4:
        """Return the observations of many bars at once, (len(bars), size) float32.

        `side` is one side for every bar or one per bar; the rows equal `observe` exactly.
        Vectorised: rows are gathered from a strided (sliding-window) view of the contiguous
        feature array, a block of bars at a time to bound the temporary memory.
        """
        features = self._checked(features)
        where = np.asarray(bars, dtype=np.int64).reshape(-1)
        sides = np.asarray(side, dtype=np.int64)
        self._check_bars(features, where, sides)
        w, k = self.window, self.n_features
        windows = np.lib.stride_tricks.sliding_window_view(features, (w, k))[:, 0]
        out = np.empty((where.size, self.size), dtype=np.float32)
        starts = where - (w - 1)
        for i in range(0, where.size, _BATCH_BLOCK):
            block = starts[i : i + _BATCH_BLOCK]
            out[i : i + block.size, : w * k] = windows[block].reshape(block.size, w * k)
        out[:, w * k :] = np.eye(SIDES, dtype=np.float32)[sides]
        return out

    def _checked(self, features: Any) -> F4:
        if not (
            isinstance(features, np.ndarray)
            and features.dtype == np.float32
            and features.ndim == 2
            and features.shape[1] == self.n_features
        ):
            raise UserInputError(
                f"features must be a (bars, {self.n_features}) float32 array "
                "(FeatureSpec.compute gives one)"
            )
        return np.ascontiguousarray(features)

    def _check_bars(self, features: F4, bars: I8, sides: I8) -> None:
        lo, hi = self.window - 1, features.shape[0] - 1
        if bars.size and (bars.min() < lo or bars.max() > hi):
            raise UserInputError(
                f"bars must lie in [{lo}, {hi}] (a full window of {self.window} rows), "
                f"got {bars.min()} to {bars.max()}"
            )
        if sides.size and (sides.min() < 0 or sides.max() >= SIDES):
            raise UserInputError(f"side must be SHORT (0), FLAT (1) or LONG (2), got {sides}")


@dataclass(frozen=True, slots=True)
class ActionInterpreter:
    """Turns actions into target positions (fraction of equity); see the module's table.

    >>> ActionInterpreter(discrete=True, allow_short=True).target(0)
    -1.0
    >>> ActionInterpreter(discrete=False, allow_short=False).target(np.array([1.7]))
    1.0
    """

    discrete: bool = True
    allow_short: bool = False

    @property
    def targets(self) -> tuple[float, ...]:
        """Return the target of each discrete action (index = action)."""
        return LONG_SHORT_TARGETS if self.allow_short else LONG_ONLY_TARGETS

    @property
    def bounds(self) -> tuple[float, float]:
        """Return the lowest and highest target."""
        return (-1.0 if self.allow_short else 0.0), 1.0

    def space(self) -> spaces.Discrete | spaces.Box:
        """Return the action space: Discrete(3), Discrete(2) or Box((1,)) over the bounds."""
        if self.discrete:
            return spaces.Discrete(len(self.targets))
        low, high = self.bounds
        return spaces.Box(low=low, high=high, shape=(1,), dtype=np.float32)

    def table(self) -> dict[int, float]:
        """Return {action: target} for discrete actions (the environment's fast lookup)."""
        return dict(enumerate(self.targets)) if self.discrete else {}

    def target(self, action: Any) -> float:
        """Return the target position an action asks for (raises on an invalid action)."""
        if self.discrete:
            value = np.asarray(action)
            if value.size == 1 and value.dtype.kind in "iu":
                index = int(value.reshape(-1)[0])
                if 0 <= index < len(self.targets):
                    return self.targets[index]
            raise UserInputError(
                f"action must be an integer in [0, {len(self.targets)}), got {action!r}"
            )
        value = np.asarray(action, dtype=np.float64).reshape(-1)
        if value.size != 1 or not math.isfinite(value[0]):
            raise UserInputError(f"action must be one finite target position, got {action!r}")
        low, high = self.bounds
        return float(min(max(float(value[0]), low), high))

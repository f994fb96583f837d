"""Training targets: the sign of the return over the next k bars.

This is the one module of the package that looks ahead, on purpose: a label at bar t reads the
close of bar t + k. Labels are targets to fit and score against, never inputs of a factor or a
prediction. The last k bars have no label yet (their future has not happened), and
`ForwardLabels.known` says so explicitly; cross-validation purges at least k bars before every
test span (`ml.cv`) so that no training label reads a price inside it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.errors import UserInputError

__all__ = ["ForwardLabels", "check_horizon", "forward_return", "forward_return_sign"]

F8 = npt.NDArray[np.float64]
I1 = npt.NDArray[np.int8]
B1 = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ForwardLabels:
    """Per bar: the k-bar forward return, its sign in {-1, 0, 1} and whether it is known."""

    sign: I1  # +1 up, -1 down, 0 flat (|return| <= flat) or unknown
    ret: F8  # close[t + k] / close[t] - 1, NaN where unknown
    known: B1  # the forward return exists: t + k is a bar and both closes are finite
    horizon: int

    def up(self) -> B1:
        """Return True where the forward return is positive (the classifiers' target)."""
        return np.asarray(self.sign > 0)

    def usable(self) -> B1:
        """Return True where a label exists and is not flat: the rows a model may fit or score."""
        return np.asarray(self.known & (self.sign != 0))


def check_horizon(k: int) -> int:
    """Return k if it is a positive whole number of bars, else raise UserInputError."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise UserInputError(f"the label horizon k must be a positive number of bars, got {k!r}")
    return int(k)


def forward_return(close: npt.ArrayLike, k: int) -> F8:
    """Return close[t + k] / close[t] - 1 per bar: NaN for the last k bars (LOOKS AHEAD).

    >>> forward_return([100.0, 110.0, 99.0, 99.0], 1).round(12)
    array([ 0.1, -0.1,  0. ,  nan])
    """
    c = np.asarray(close, dtype=np.float64)
    h = check_horizon(k)
    out = np.full(c.size, math.nan)
    if c.size > h:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:-h] = c[h:] / c[:-h] - 1.0
    out[~np.isfinite(out)] = math.nan
    return out


def forward_return_sign(close: npt.ArrayLike, k: int, flat: float = 0.0) -> ForwardLabels:
    """Return the k-bar forward return, its sign (0 when |return| <= flat) and the known mask.

    >>> labels = forward_return_sign([100.0, 110.0, 99.0, 99.0, 100.0], 1)
    >>> labels.sign, labels.known
    (array([ 1, -1,  0,  1,  0], dtype=int8), array([ True,  True,  True,  True, False]))
    """
    if not (math.isfinite(flat) and flat >= 0):
        raise UserInputError(f"flat must be a return of 0 or more, e.g. 0.001, got {flat!r}")
    ret = forward_return(close, k)
    known = np.isfinite(ret)
    sign = np.zeros(ret.size, dtype=np.int8)
    sign[known & (ret > flat)] = 1
    sign[known & (ret < -flat)] = -1
    return ForwardLabels(sign, ret, known, check_horizon(k))

"""Decision rows as the compiled loop writes them: ints dec_i[k, …] and floats dec_f[k, …]."""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.jit import njit
from reinforcetrade.simulation.account import N_DEC

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]

D_T: Final = 0
D_SYMBOL: Final = 1
D_ACTION: Final = 2
D_DIRECTION: Final = 3
D_REGIME: Final = 4
D_VOL: Final = 5
D_TREND: Final = 6
D_AGREEING: Final = 7
D_REASONS: Final = 8
D_EXIT: Final = 9
D_ALGO: Final = 10  # how its order is worked (`simulation.slicing.Algo`), set when it is planned
DEC_I: Final = 11
D_CONFIDENCE: Final = 0
D_SIZE: Final = 1
D_QTY: Final = 2
D_STOP: Final = 3
D_TAKE: Final = 4
D_COST: Final = 5
D_THRESHOLD: Final = 6
DEC_F: Final = 7


class Vote(NamedTuple):
    """What the tower saw on a bar: its direction, confidence, regimes and agreeing agents."""

    direction: int
    confidence: float
    regime: int
    vol_regime: int
    trend_regime: int
    agreeing: int


class Sized(NamedTuple):
    """What the risk manager chose: fraction of equity, quantity, stop and take-profit prices."""

    size: float
    qty: float
    stop: float
    take: float


NO_VOTE = Vote(0, 0.0, 0, 1, 0, 0)
NOT_SIZED = Sized(0.0, 0.0, np.nan, np.nan)


@njit
def write_decision(
    dec_i: I8,
    dec_f: F8,
    cnt: I8,
    t: int,
    s: int,
    action: int,
    vote: Vote,
    sized: Sized,
    reasons: int,
    cost: float,
    threshold: float,
    exit_reason: int,
) -> int:
    """Write one Decision row and return its index."""
    k = cnt[N_DEC]
    dec_i[k, D_T] = t
    dec_i[k, D_SYMBOL] = s
    dec_i[k, D_ACTION] = action
    dec_i[k, D_DIRECTION] = vote.direction
    dec_i[k, D_REGIME] = vote.regime
    dec_i[k, D_VOL] = vote.vol_regime
    dec_i[k, D_TREND] = vote.trend_regime
    dec_i[k, D_AGREEING] = vote.agreeing
    dec_i[k, D_REASONS] = reasons
    dec_i[k, D_EXIT] = exit_reason
    dec_i[k, D_ALGO] = 0
    dec_f[k, D_CONFIDENCE] = vote.confidence
    dec_f[k, D_SIZE] = sized.size
    dec_f[k, D_QTY] = sized.qty
    dec_f[k, D_STOP] = sized.stop
    dec_f[k, D_TAKE] = sized.take
    dec_f[k, D_COST] = cost
    dec_f[k, D_THRESHOLD] = threshold
    cnt[N_DEC] = k + 1
    return int(k)

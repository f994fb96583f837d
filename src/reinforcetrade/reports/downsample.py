"""Downsampling long series for charts without losing their extremes.

`minmax_indices` splits a series into buckets and keeps, per bucket, its first and last points
and its lowest and highest ones, in time order: a drawn line of a million bars then shows every
crash and every spike that the full series shows, from a few thousand points.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.jit import njit

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]


@njit
def _minmax(values: F8, buckets: int) -> I8:
    n = values.shape[0]
    keep = np.empty(4 * buckets, dtype=np.int64)
    k = 0
    for b in range(buckets):
        start = b * n // buckets
        stop = (b + 1) * n // buckets
        if stop <= start:
            continue
        lo = -1
        hi = -1
        for i in range(start, stop):
            v = values[i]
            if v != v:
                continue
            if lo < 0 or v < values[lo]:
                lo = i
            if hi < 0 or v > values[hi]:
                hi = i
        first, last = start, stop - 1
        # time order, each index once: first, min/max in the order they occur, last
        a, z = (lo, hi) if lo <= hi else (hi, lo)
        for i in (first, a, z, last):
            if i >= 0 and (k == 0 or keep[k - 1] != i) and (k < 2 or keep[k - 2] != i):
                keep[k] = i
                k += 1
    return keep[:k]


def minmax_indices(values: npt.ArrayLike, max_points: int = 4_000) -> I8:
    """Return the sorted indices of the points to draw, at most `max_points` of them.

    All of them if few, else per bucket its first, lowest, highest and last points.

    >>> minmax_indices([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0], max_points=4).tolist()
    [0, 1, 5, 7]
    >>> big = np.zeros(1_000); big[500] = 7.0; big[501] = -7.0
    >>> idx = minmax_indices(big, max_points=40); bool(500 in idx and 501 in idx), len(idx) <= 40
    (True, True)
    """
    x = np.ascontiguousarray(values, dtype=np.float64)
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, got {max_points}")
    if x.size <= max_points:
        return np.arange(x.size, dtype=np.int64)
    keep = _minmax(x, max_points // 4)
    return np.unique(keep)

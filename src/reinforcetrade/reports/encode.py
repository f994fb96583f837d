"""Packing arrays for the report page: typed binary, gzip, base64 — decoded by the page itself.

A packed array is `{"dtype": "f4", "shape": [n], "data": "<base64 of gzip of the bytes>"}`
(little-endian; dtypes i1 u1 i2 u2 i4 u4 f4 f8). The page unpacks it with the browser's own
`DecompressionStream`, so a report stays one offline file while long columns stay small.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

DTYPES: Final[frozenset[str]] = frozenset({"i1", "u1", "i2", "u2", "i4", "u4", "f4", "f8"})
LEVEL: Final[int] = 3


def gzip_bytes(raw: bytes, level: int = LEVEL) -> bytes:
    """Return `raw` as a gzip stream (deterministic: no file name, no time stamp)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip container
    return compressor.compress(raw) + compressor.flush()


def pack(values: npt.ArrayLike, dtype: str, *, delta: bool = False) -> dict[str, Any]:
    """Return an array packed for the page (gzip + base64), optionally as differences.

    `delta` stores differences (integers only, wrapping around like the page's typed arrays, so
    the running sum restores every value exactly).

    >>> packed = pack([1.5, 2.5], "f4")
    >>> packed["dtype"], packed["shape"], unpack(packed).tolist()
    ('f4', [2], [1.5, 2.5])
    >>> unpack(pack([7, 65535, 3], "u2", delta=True)).tolist()
    [7, 65535, 3]
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {sorted(DTYPES)}")
    array = np.ascontiguousarray(np.asarray(values).astype("<" + dtype, copy=False))
    if delta:
        if dtype.startswith("f"):
            raise ValueError("delta packing is for integer arrays")
        array = np.diff(array, prepend=array.dtype.type(0)) if array.size else array
    data = base64.b64encode(gzip_bytes(array.tobytes())).decode("ascii")
    packed: dict[str, Any] = {"dtype": dtype, "shape": list(array.shape), "data": data}
    if delta:
        packed["delta"] = True
    return packed


def unpack(packed: dict[str, Any]) -> npt.NDArray[Any]:
    """Return the array a `pack` holds (what the page decodes; tests use it)."""
    raw = zlib.decompress(base64.b64decode(packed["data"]), 31)
    array = np.frombuffer(raw, dtype="<" + packed["dtype"]).reshape(packed["shape"])
    if packed.get("delta"):
        array = np.cumsum(array, dtype=array.dtype)
    return array


#: a price path is stored as a float64 keyframe every KEYFRAME bars and, in between, the log
#: distance from the keyframe rounded to PRICE_STEP (0.1 bp), as differences: every price is
#: within 0.05 bp of the true one (far below a pixel) in a third of the bytes of float32
KEYFRAME = 256
PRICE_STEP = 1e-5


def pack_prices(values: npt.ArrayLike) -> dict[str, Any]:
    """Return a positive price series packed as keyframes and rounded log steps.

    The page rebuilds each price from its block's keyframe and the running sum of the steps,
    which are integers: the sum is exact, so the rounding error never builds up.

    >>> p = 100.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 1000)))
    >>> bool(np.max(np.abs(unpack_prices(pack_prices(p)) / p - 1)) < 0.51 * PRICE_STEP)
    True
    """
    x = np.asarray(values, dtype=np.float64)
    logs = np.log(np.where(x > 0, x, np.nan))
    # fill gaps with the last price, so a block's keyframe and steps stay defined
    logs = pd.Series(logs).ffill().bfill().fillna(0.0).to_numpy()
    keys = np.exp(logs[::KEYFRAME])
    base = np.repeat(logs[::KEYFRAME], KEYFRAME)[: x.size]
    level = np.rint((logs - base) / PRICE_STEP).astype(np.int64)
    steps = np.diff(level, prepend=np.int64(0))
    steps[::KEYFRAME] = level[::KEYFRAME]  # 0: each block starts again from its keyframe
    return {
        "kind": "prices",
        "keyframe": KEYFRAME,
        "step": PRICE_STEP,
        "keys": pack(keys, "f8"),
        "steps": pack(steps.astype(np.int32), "i4"),
        "missing": pack(np.flatnonzero(~(x > 0)), "i4"),
    }


def unpack_prices(packed: dict[str, Any]) -> npt.NDArray[np.float64]:
    """Return the prices `pack_prices` stored (as the page rebuilds them)."""
    keys = unpack(packed["keys"])
    steps = unpack(packed["steps"]).astype(np.float64) * packed["step"]
    k = packed["keyframe"]
    out = np.empty(steps.size)
    for b, key in enumerate(keys):
        block = steps[b * k : (b + 1) * k]
        out[b * k : (b + 1) * k] = key * np.exp(np.cumsum(block))
    out[unpack(packed["missing"])] = np.nan
    return out


def quantize_unit(values: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """Return values in [0, 1] as round(x × 10,000) (NaN → 65,535): exact to 4 decimals.

    >>> quantize_unit([0.61234, 1.0, float("nan")]).tolist()
    [6123, 10000, 65535]
    """
    x = np.asarray(values, dtype=np.float64)
    out = np.full(x.shape, 65_535, dtype=np.uint16)
    finite = np.isfinite(x)
    out[finite] = np.rint(np.clip(x[finite], 0.0, 1.0) * 10_000).astype(np.uint16)
    return out


def time_deltas(ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Return epoch-ns times as seconds: the first absolute, then differences (compress well).

    >>> time_deltas(np.array([60, 120, 180], dtype=np.int64) * 10**9).tolist()
    [60, 60, 60]
    """
    seconds = np.asarray(ns, dtype=np.int64) // 1_000_000_000
    if seconds.size == 0:
        return seconds
    return np.diff(seconds, prepend=np.int64(0))

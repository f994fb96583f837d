"""Aggregate OHLCV bars to a coarser timeframe (1m → 5m, 1h, 4h, 1d, 1w, 1M, …); gaps stay gaps."""

from __future__ import annotations

import itertools
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.core.errors import TimeframeError, UserInputError
from reinforcetrade.core.jit import njit
from reinforcetrade.core.threads import run_parallel, thread_count
from reinforcetrade.core.timeframes import Timeframe, parse_timeframe, timeframe_from_nanos
from reinforcetrade.data.schema import (
    COLUMNS,
    F8,
    I8,
    column,
    frame_from_block,
    index_ns,
    make_ohlcv,
    symbol_of,
    timeframe_of,
)

__all__ = ["resample"]

_DAY_NS: Final[int] = 86_400 * 1_000_000_000
_MIN_MONTH_NS: Final[int] = 28 * _DAY_NS
_BARS_PER_WORKER: Final[int] = 2_000_000


def resample(
    frame: pd.DataFrame,
    timeframe: str | Timeframe,
    *,
    partial: Literal["drop", "keep"] = "drop",
) -> pd.DataFrame:
    """Aggregate bars to a coarser timeframe: open first, high max, low min, close last, volume sum.

    Buckets are left-closed and labelled by their open time, like the input and like exchanges:
    the 1h bar labelled 18:00 holds the source bars opening in [18:00, 19:00). Intraday and daily
    buckets lie on a grid anchored at the Unix epoch (so 4h bars open at 00:00, 04:00, … UTC),
    weekly buckets open on Monday 00:00 UTC, and monthly buckets on the 1st at 00:00 UTC (an
    n-month bucket starts in a month whose index since 1970-01 is a multiple of n, so '3M' gives
    calendar quarters). A bucket with no source bars gives no row: gaps stay gaps.

    The source timeframe is `frame.attrs["timeframe"]` or, when absent, the smallest step between
    timestamps; the target must be a whole multiple of it (equal is allowed) on a grid that lines
    up with it, else `UserInputError`. A bucket "needs" target / source bars (for months: the
    month's length / source length).

    Incomplete buckets, `partial`:
        Only the first and the last bucket of the result are ever dropped. With "drop" (the
        default), the first bucket is dropped when it holds fewer source bars than it needs (the
        data starts inside it, so its open is not the bucket's open), and so is the last (the data
        ends inside it, e.g. the forming bar of a live feed). With "keep", both are kept as they
        are. Interior buckets are always kept, even when short of bars because of missing source
        bars: that is the bar the market printed. The rule counts bars, so an edge bucket that is
        short because of a gap inside it is dropped too; so are a week of five daily equity bars
        (a week needs 7) and a 1d bucket of FX hours at either end of the data.

    Volumes are summed in the order numpy's `add.reduceat` uses, which pandas (>= 3) uses for
    sorted groups, so results equal pandas' `resample(...).agg(...)` bit for bit. Frames of 4M
    bars or more are cut at bucket boundaries and aggregated on a few threads (at most 4);
    every bucket is computed by the same code, so the result does not depend on the cut.

    Args:
        frame: an OHLCV contract frame (sorted, unique UTC open times; NaN-free values).
        timeframe: the target timeframe, e.g. '5m', '1h', '4h', '1d', '1w' or '1M'.
        partial: "drop" or "keep" incomplete buckets at either edge of the data.

    Returns:
        A new contract frame with attrs `symbol` (copied) and `timeframe` (the target).

    Raises:
        UserInputError: the target is not a whole multiple of the source timeframe, the frame
            is not sorted, or the source timeframe cannot be determined.

    >>> ts = pd.date_range("2024-01-01 18:00", periods=90, freq="1min", tz="UTC")
    >>> x = np.arange(90.0)
    >>> bars = make_ohlcv(ts, x, x + 1, x - 1, x + 0.5, np.ones(90), timeframe="1m")
    >>> resample(bars, "1h")[["open", "close", "volume"]]
                               open  close  volume
    timestamp
    2024-01-01 18:00:00+00:00   0.0   59.5    60.0
    >>> len(resample(bars, "1h", partial="keep"))
    2
    """
    if partial not in ("drop", "keep"):
        raise UserInputError(f"partial must be 'drop' or 'keep', got {partial!r}")
    target = parse_timeframe(timeframe)
    _check_frame(frame)
    ts = index_ns(frame)
    source = _source_timeframe(frame, ts)
    _check_compatible(source, target)
    symbol = symbol_of(frame)
    if ts.size == 0:
        empty = np.empty(0, dtype=np.float64)
        return make_ohlcv(ts, empty, empty, empty, empty, empty, symbol=symbol, timeframe=target)
    columns = tuple(column(frame, name) for name in COLUMNS)
    buckets = _bucketize(ts, columns, target, workers=thread_count(ts.size, _BARS_PER_WORKER))
    if buckets is None:
        raise _unsorted_error(frame, ts)
    starts, block = buckets
    if partial == "drop":
        edge_starts = starts[[0, -1]]
        edge_ends = _bucket_ends(edge_starts, target)
        counts = (
            int(np.searchsorted(ts, edge_ends[0], side="left")),
            ts.size - int(np.searchsorted(ts, edge_starts[1], side="left")),
        )
        need = _needed(edge_starts, edge_ends, source, target)
        keep = slice(int(counts[0] < need[0]), starts.size - int(counts[1] < need[1]))
        starts, block = starts[keep], block[:, keep]
    return frame_from_block(starts, block, symbol=symbol, timeframe=target)


def _check_frame(frame: pd.DataFrame) -> None:
    """Raise UserInputError unless the frame has a DatetimeIndex and the five OHLCV columns."""
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise UserInputError(
            f"resample needs a DatetimeIndex of bar open times, got {type(frame.index).__name__}; "
            "build the frame with reinforcetrade.data.make_ohlcv or a reinforcetrade loader"
        )
    missing = [name for name in COLUMNS if name not in frame.columns]
    if missing:
        raise UserInputError(f"resample needs the columns {list(COLUMNS)}; missing {missing}")


def _source_timeframe(frame: pd.DataFrame, ts: I8) -> Timeframe:
    """Return the declared timeframe, or infer it from the smallest step between bars."""
    declared = timeframe_of(frame)
    if declared is not None:
        return declared
    hint = "set frame.attrs['timeframe'] to the bar length, e.g. '1m'"
    if ts.size < 2:
        raise UserInputError(f"cannot infer the bar length from {ts.size} bar(s); {hint}")
    steps = np.diff(ts)
    step = int(steps.min())
    if step <= 0:
        raise _unsorted_error(frame, ts)
    if step >= _MIN_MONTH_NS and _all_month_starts(ts):
        return parse_timeframe("1M")
    try:
        return timeframe_from_nanos(step)
    except TimeframeError as exc:
        raise UserInputError(f"cannot infer the bar length from a {step} ns step; {hint}") from exc


def _all_month_starts(ts: I8) -> bool:
    """Return True when every timestamp is the first instant of a calendar month."""
    stamps = ts.astype("datetime64[ns]")
    return bool(np.all(stamps.astype("datetime64[M]").astype("datetime64[ns]") == stamps))


def _check_compatible(source: Timeframe, target: Timeframe) -> None:
    """Raise UserInputError unless each target bucket is a whole number of aligned source bars."""
    prefix = f"cannot resample {source} bars to {target}"
    if target.is_monthly:
        if source.is_monthly:
            if target.count % source.count:
                raise UserInputError(
                    f"{prefix}: {target} is not a whole multiple of {source}; "
                    f"pick a multiple of {source.count} months"
                )
        elif _DAY_NS % source.nanos:
            raise UserInputError(
                f"{prefix}: calendar months hold a whole number of days, and {source} bars do not "
                "fit a day exactly; resample to 1d first or use a bar length that divides a day"
            )
        return
    if source.is_monthly:
        raise UserInputError(
            f"{prefix}: calendar months do not fit fixed-length buckets; use a target such as "
            f"'{2 * source.count}M' or '12M'"
        )
    if target.nanos < source.nanos:
        raise UserInputError(
            f"{prefix}: resampling only aggregates to a coarser timeframe; "
            f"load {target} (or finer) data instead"
        )
    if target.nanos % source.nanos:
        raise UserInputError(
            f"{prefix}: {target} is not a whole multiple of {source}; "
            f"pick a multiple of {source}, e.g. {_multiples(source)}"
        )
    if (target.origin_ns - source.origin_ns) % source.nanos:
        raise UserInputError(
            f"{prefix}: {target} buckets open on a grid ({_grid(target)}) that {source} bars "
            "do not line up with; resample to 1d first"
        )


def _multiples(source: Timeframe) -> str:
    """Return a few valid targets for a source timeframe, for error messages."""
    texts = [timeframe_from_nanos(source.nanos * k).text for k in (2, 4, 12)]
    return ", ".join(texts)


def _grid(target: Timeframe) -> str:
    """Describe where a target's buckets open."""
    return "Mondays 00:00 UTC" if target.unit == "w" else "the Unix epoch"


def _month_edges(ts: I8, count: int) -> I8:
    """Return the n-month bucket boundaries (epoch ns) covering the first to the last bar."""
    months = ts[[0, -1]].astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    first = (int(months[0]) // count) * count
    last = (int(months[1]) // count) * count + count
    edges = np.arange(first, max(last, first + count) + 1, count, dtype=np.int64)
    return edges.astype("datetime64[M]").astype("datetime64[ns]").astype(np.int64)


def _bucket_ends(starts: I8, target: Timeframe) -> I8:
    """Return where buckets opening at `starts` end (the next bucket's open)."""
    if target.is_monthly:
        months = starts.astype("datetime64[ns]").astype("datetime64[M]") + target.count
        return np.asarray(months.astype("datetime64[ns]").astype(np.int64), dtype=np.int64)
    return starts + target.nanos


def _needed(starts: I8, ends: I8, source: Timeframe, target: Timeframe) -> I8:
    """Return how many source bars each bucket holds when complete."""
    if source.is_monthly:
        return np.full(starts.size, target.count // source.count, dtype=np.int64)
    return (ends - starts) // source.nanos


def _unsorted_error(frame: pd.DataFrame, ts: I8) -> UserInputError:
    """Build the error for timestamps that do not increase strictly, naming the first bad row."""
    bad = int(np.flatnonzero(np.diff(ts) <= 0)[0]) + 1
    return UserInputError(
        f"bar open times must increase strictly, but row {bad} ({frame.index[bad]}) is not after "
        f"row {bad - 1} ({frame.index[bad - 1]}); sort and de-duplicate first "
        "(frame.sort_index() and frame[~frame.index.duplicated()])"
    )


_Buckets = tuple[I8, npt.NDArray[np.float64]]


def _slots(ts: I8, a: int, b: int, target: Timeframe, edges: I8) -> int:
    """Return an upper bound on the buckets bars a..b-1 fall into (grid slots they span)."""
    first, last = int(ts[a]), int(ts[b - 1])
    if edges.size:
        span = int(
            np.searchsorted(edges, last, side="right") - np.searchsorted(edges, first, "right")
        )
    else:
        origin, step = target.origin_ns, target.nanos
        span = (last - origin) // step - (first - origin) // step
    return min(span + 1, b - a)


def _bucketize(
    ts: I8, columns: tuple[F8, ...], target: Timeframe, *, workers: int = 1
) -> _Buckets | None:
    """Run the kernel, on `workers` threads over chunks cut at bucket boundaries; None if unsorted.

    Each chunk writes its buckets straight into its own stretch of the output arrays. Each bucket
    is computed by the same code whatever the chunking, so the result is identical for any number
    of workers.
    """
    edges = _month_edges(ts, target.count) if target.is_monthly else np.empty(0, dtype=np.int64)
    cuts = _chunk_cuts(ts, target, edges, workers)
    if np.any(ts[cuts[1:-1]] <= ts[cuts[1:-1] - 1]):
        return None
    pairs = list(itertools.pairwise(cuts.tolist()))
    bounds = np.array([_slots(ts, a, b, target, edges) for a, b in pairs], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(bounds)))
    total = int(offsets[-1])
    starts = np.empty(total, dtype=np.int64)
    block = np.empty((5, total), dtype=np.float64)  # one row per column: the frame's own layout
    values = tuple(block[row] for row in range(5))
    op, hi, lo, cl, vo = columns

    def run(chunk: int) -> int:
        (a, b), o, e = pairs[chunk], int(offsets[chunk]), int(offsets[chunk + 1])
        out = (starts[o:e], *(v[o:e] for v in values))
        sl = slice(a, b)
        step, origin = target.nanos, target.origin_ns
        return _aggregate(ts[sl], op[sl], hi[sl], lo[sl], cl[sl], vo[sl], step, origin, edges, *out)

    filled = run_parallel(run, len(pairs))  # the kernel releases the GIL
    if any(k < 0 for k in filled):
        return None
    if any(k != bound for k, bound in zip(filled, bounds.tolist(), strict=True)):
        keep = np.concatenate(
            [np.arange(o, o + k, dtype=np.int64) for o, k in zip(offsets[:-1], filled, strict=True)]
        )
        starts, block = starts[keep], block[:, keep]
    return starts, block


def _chunk_cuts(ts: I8, target: Timeframe, edges: I8, workers: int) -> I8:
    """Return chunk boundaries (positions, first 0, last n), each at the first bar of a bucket."""
    n = ts.size
    cuts = [0]
    for q in range(1, workers):
        t = int(ts[n * q // workers])
        if edges.size:
            start = int(edges[max(int(np.searchsorted(edges, t, side="right")) - 1, 0)])
        else:
            start = target.origin_ns + (t - target.origin_ns) // target.nanos * target.nanos
        cut = int(np.searchsorted(ts, start, side="left"))
        if cuts[-1] < cut < n:
            cuts.append(cut)
    cuts.append(n)
    return np.asarray(cuts, dtype=np.int64)


@njit
def _aggregate(
    ts: I8,
    op: F8,
    hi: F8,
    lo: F8,
    cl: F8,
    vo: F8,
    step: int,
    origin: int,
    edges: I8,
    starts: I8,
    o: F8,
    h: F8,
    lw: F8,
    c: F8,
    v: F8,
) -> int:
    """Aggregate bars into buckets written to the output arrays; return their count, -1 if unsorted.

    Buckets are `[edges[j], edges[j + 1])` when `edges` is given (they must cover the bars),
    else `[origin + k * step, origin + (k + 1) * step)`. Writes, per bucket: its open time
    (epoch ns), open, high, low, close and volume. The outputs must hold every bucket (`_slots`).
    """
    n = ts.size
    if not _increasing(ts):
        return -1
    k = i = 0
    size = 1
    while i < n:
        s, t = i, ts[i]
        if edges.size:
            j = np.searchsorted(edges, t, side="right") - 1
            start, end = edges[j], edges[j + 1]
        else:
            start = origin + (t - origin) // step * step
            end = start + step
        i = _bucket_stop(ts, s, end, size)
        size = i - s
        high, low = hi[s], lo[s]
        for j in range(s + 1, i):
            if hi[j] > high:  # as pandas' max/min reductions for NaN-free data
                high = hi[j]
            if lo[j] < low:
                low = lo[j]
        starts[k] = start
        o[k], h[k], lw[k], c[k] = op[s], high, low, cl[i - 1]
        # np.add.reduceat's order (pandas >= 3 sums sorted groups with it): bit-identical volumes.
        v[k] = vo[s] + _pairwise_sum(vo, s + 1, size - 1)
        k += 1
    return k


@njit
def _increasing(ts: I8) -> bool:
    """Return True when the timestamps increase strictly (a branch-free, vectorised pass)."""
    bad = False
    for i in range(1, ts.size):
        bad |= ts[i] <= ts[i - 1]
    return not bad


@njit
def _bucket_stop(ts: I8, s: int, end: int, guess: int) -> int:
    """Return the first position after s whose time is >= end; tries s + guess first."""
    n = ts.size
    g = s + guess
    if g <= n and ts[g - 1] < end and (g == n or ts[g] >= end):
        return g
    return s + 1 + int(np.searchsorted(ts[s + 1 :], end))


@njit
def _pairwise_sum(a: F8, s: int, n: int) -> float:
    """Sum a[s:s + n] in numpy's pairwise order (8 accumulators, blocks of 128), bit for bit."""
    if n < 8:
        total = 0.0
        for i in range(s, s + n):
            total += a[i]
        return total
    if n <= 128:
        r0, r1, r2, r3 = a[s], a[s + 1], a[s + 2], a[s + 3]
        r4, r5, r6, r7 = a[s + 4], a[s + 5], a[s + 6], a[s + 7]
        i = s + 8
        stop = s + n - n % 8
        while i < stop:
            r0, r1, r2, r3 = r0 + a[i], r1 + a[i + 1], r2 + a[i + 2], r3 + a[i + 3]
            r4, r5, r6, r7 = r4 + a[i + 4], r5 + a[i + 5], r6 + a[i + 6], r7 + a[i + 7]
            i += 8
        block: float = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for j in range(i, s + n):
            block += a[j]
        return block
    half = n // 2
    half -= half % 8
    return _pairwise_sum(a, s, half) + _pairwise_sum(a, s + half, n - half)

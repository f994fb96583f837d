"""Check a frame against the OHLCV contract; locate every problem by file, row, column, value."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.core.errors import DataIssue, DataValidationError
from reinforcetrade.core.timeframes import Timeframe, parse_timeframe, timeframe_from_nanos
from reinforcetrade.data.gaps import GapReport, apply_gap_policy, find_gaps
from reinforcetrade.data.schema import (
    ATTR_FIRST_ROW,
    ATTR_ROW_LABEL,
    ATTR_SOURCE,
    ATTR_SOURCE_ROWS,
    ATTR_TIMEFRAME,
    COLUMNS,
    I8,
    PRICE_COLUMNS,
    timeframe_of,
)

#: Issues listed per rule before the rest are only counted.
ISSUES_PER_RULE = 20
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class RowLocator:
    """Maps frame positions to rows of the source, so messages point into the user's file."""

    source: str | None = None
    first_row: int = 0
    label: str = "row"
    rows: I8 | None = None

    @classmethod
    def of(cls, frame: pd.DataFrame, source: str | None = None) -> RowLocator:
        """Return the locator recorded on a frame by its loader (positions when none)."""
        rows = frame.attrs.get(ATTR_SOURCE_ROWS)
        return cls(
            source=source or frame.attrs.get(ATTR_SOURCE),
            first_row=int(frame.attrs.get(ATTR_FIRST_ROW, 0)),
            label=str(frame.attrs.get(ATTR_ROW_LABEL, "row")),
            rows=None if rows is None else np.asarray(rows, dtype=np.int64),
        )

    def row(self, position: int) -> int:
        """Return the source row number of a frame position."""
        if self.rows is not None:
            return int(self.rows[position])
        return self.first_row + int(position)


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of checking a frame: every issue found, and its gaps."""

    source: str | None
    rows: int
    timeframe: Timeframe | None
    issues: tuple[DataIssue, ...]
    gaps: GapReport | None
    row_label: str = "row"
    omitted: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Return True when the frame breaks no rule (gaps are reported, not failures)."""
        return not self.issues

    def lines(self, limit: int | None = None) -> list[str]:
        """Return one line per issue, each naming file, row, column and value."""
        chosen = self.issues if limit is None else self.issues[:limit]
        out = [issue.render(self.source, self.row_label) for issue in chosen]
        hidden = len(self.issues) - len(chosen) + sum(self.omitted.values())
        if hidden:
            out.append(f"… and {hidden} more problems")
        return out

    def error(self) -> DataValidationError:
        """Return the error that describes every issue (raise it when not `ok`)."""
        count = len(self.issues) + sum(self.omitted.values())
        head = f"{count} problem{'s' if count != 1 else ''} in the data"
        body = "\n  ".join(self.lines(limit=30))
        return DataValidationError(
            f"{head}:\n  {body}", source=self.source, issues=self.issues, row_label=self.row_label
        )


class _Collector:
    """Gathers issues per rule, keeping the first few of each and counting the rest."""

    def __init__(self, locator: RowLocator, index: pd.Index) -> None:
        self.locator = locator
        self.index = index
        self.issues: list[DataIssue] = []
        self.omitted: dict[str, int] = {}
        self.flagged: set[tuple[int, str | None]] = set()

    def add(self, issue: DataIssue) -> None:
        """Record one issue that concerns the whole frame or one located cell."""
        self.issues.append(issue)

    def rows(
        self,
        rule: str,
        mask: Mask,
        column: str | None,
        values: npt.NDArray[np.generic] | pd.Index,
        message: Callable[[int], str],
    ) -> None:
        """Record an issue for every row where `mask` holds, skipping cells already flagged."""
        positions = np.flatnonzero(mask)
        if self.flagged:
            positions = np.array(
                [
                    p
                    for p in positions.tolist()
                    if (self.locator.row(p), column) not in self.flagged
                    and (self.locator.row(p), None) not in self.flagged
                ],
                dtype=np.int64,
            )
        for count, pos in enumerate(positions.tolist()):
            if count == ISSUES_PER_RULE:
                self.omitted[rule] = self.omitted.get(rule, 0) + positions.size - count
                break
            value = values[pos]
            if isinstance(value, pd.Timestamp):
                value = value.isoformat()
            self.issues.append(
                DataIssue(
                    rule=rule,
                    message=message(int(pos)),
                    row=self.locator.row(int(pos)),
                    column=column,
                    value=value.item() if isinstance(value, np.generic) else value,
                )
            )


def _timestamps_ns(index: pd.DatetimeIndex) -> I8:
    """Return index values as epoch nanoseconds (NaT as int64 min)."""
    return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)


def infer_timeframe(ts_ns: I8) -> Timeframe | None:
    """Return the most common positive step between bars, or None with fewer than two bars."""
    steps = np.diff(ts_ns)
    steps = steps[steps > 0]
    if steps.size == 0:
        return None
    values, counts = np.unique(steps, return_counts=True)
    return timeframe_from_nanos(int(values[np.argmax(counts)]))


def _check_index(frame: pd.DataFrame, out: _Collector) -> tuple[I8, I8] | None:
    """Check the index is a UTC DatetimeIndex; return nanoseconds and positions of non-NaT rows."""
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        out.add(
            DataIssue(
                "index",
                f"the index must be a DatetimeIndex of bar open times, not {type(index).__name__}",
            )
        )
        return None
    if index.tz is None:
        out.add(
            DataIssue(
                "timezone",
                "timestamps have no time zone; the contract is UTC "
                "(if they are UTC: frame.tz_localize('UTC'), or --tz UTC on the command line)",
                column="timestamp",
            )
        )
        return None
    ts = _timestamps_ns(index)
    nat = ts == np.iinfo(np.int64).min
    out.rows("timestamp", nat, "timestamp", index, lambda _: "missing timestamp")
    positions = np.flatnonzero(~nat)
    return ts[positions], positions


def _spread(mask: Mask, positions: I8, size: int) -> Mask:
    """Return a frame-length mask that is `mask` at `positions` and False elsewhere."""
    full = np.zeros(size, dtype=np.bool_)
    full[positions[mask]] = True
    return full


def _check_order(ts: I8, positions: I8, index: pd.DatetimeIndex, out: _Collector) -> bool:
    """Flag duplicate and out-of-order timestamps; return True when the order is clean."""
    step = np.diff(ts)
    before: dict[int, int] = {}  # the previous valid position, where NaT rows sit in between
    if positions.size != len(index):
        before = {int(b): int(a) for a, b in itertools.pairwise(positions.tolist()) if b != a + 1}
    dup = _spread(np.concatenate(([False], step == 0)), positions, len(index))
    back = _spread(np.concatenate(([False], step < 0)), positions, len(index))

    def previous(pos: int) -> str:
        return f"{out.locator.label} {out.locator.row(before.get(pos, pos - 1))}"

    out.rows("duplicate", dup, "timestamp", index, lambda p: f"duplicate of {previous(p)}")
    out.rows(
        "order",
        back,
        "timestamp",
        index,
        lambda p: (
            f"earlier than {previous(p)} ({index[before.get(p, p - 1)]}); timestamps must increase"
        ),
    )
    return not (dup.any() or back.any())


def _check_grid(
    ts: I8, positions: I8, tf: Timeframe, index: pd.DatetimeIndex, out: _Collector
) -> None:
    """Flag timestamps that are not bar open times on the timeframe's grid."""
    if tf.is_monthly:
        months = ts.astype("datetime64[ns]").astype("datetime64[M]").astype("datetime64[ns]")
        off = months.astype(np.int64) != ts
    else:
        off = (ts - tf.origin_ns) % tf.nanos != 0
    out.rows(
        "grid",
        _spread(off, positions, len(index)),
        "timestamp",
        index,
        lambda _: (
            f"not on the {tf} bar grid (bars open at multiples of {tf} from "
            + ("Monday 00:00 UTC)" if tf.unit == "w" else "00:00 UTC)")
        ),
    )


def _check_values(frame: pd.DataFrame, out: _Collector) -> dict[str, npt.NDArray[np.float64]]:
    """Flag non-numeric columns, NaN/inf and non-positive prices; return usable float arrays."""
    arrays: dict[str, npt.NDArray[np.float64]] = {}
    for name in COLUMNS:
        series = frame[name]
        if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series):
            numbers = pd.to_numeric(series, errors="coerce")
            bad = (numbers.isna() & series.notna()).to_numpy()
            out.rows("number", bad, name, series.to_numpy(), lambda _: "not a number")
            values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        raw = series.to_numpy()
        out.rows("finite", ~np.isfinite(values), name, raw, lambda _: "missing or not finite")
        if name == "volume":
            out.rows("volume", values < 0, name, raw, lambda _: "volume is negative")
        else:
            out.rows("price", values <= 0, name, raw, lambda _: "price must be positive")
        arrays[name] = values
    return arrays


def _check_bar_shape(arrays: dict[str, npt.NDArray[np.float64]], out: _Collector) -> None:
    """Flag bars whose high is below the body or whose low is above it."""
    o, h, lo, c = (arrays[name] for name in PRICE_COLUMNS)
    with np.errstate(invalid="ignore"):
        body_top, body_bottom = np.fmax(o, c), np.fmin(o, c)
        high_bad = h < body_top
        low_bad = lo > body_bottom
    out.rows(
        "high",
        high_bad,
        "high",
        h,
        lambda p: f"high is below max(open, close) = {float(body_top[p])!r}",
    )
    out.rows(
        "low",
        low_bad,
        "low",
        lo,
        lambda p: f"low is above min(open, close) = {float(body_bottom[p])!r}",
    )


def check(
    frame: pd.DataFrame,
    *,
    timeframe: str | Timeframe | None = None,
    calendar: str = "auto",
    source: str | None = None,
    prior: Iterable[DataIssue] = (),
) -> ValidationReport:
    """Return every way `frame` breaks the OHLCV contract, and its gaps; never raises on bad data.

    `prior` holds issues a reader already found (e.g. unparsable cells); those cells are not
    reported twice.
    """
    locator = RowLocator.of(frame, source)
    out = _Collector(locator, frame.index)
    for issue in prior:  # cells (or whole rows, column None) a reader already reported
        out.add(issue)
        if issue.row is not None:
            out.flagged.add((issue.row, issue.column))
    missing = [name for name in COLUMNS if name not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        out.add(
            DataIssue(
                "columns",
                f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"(found: {found}); the contract is timestamp, {', '.join(COLUMNS)}",
            )
        )
    tf = parse_timeframe(timeframe) if timeframe is not None else timeframe_of(frame)
    stamps = _check_index(frame, out)
    if frame.empty:
        out.add(DataIssue("empty", "no bars"))
    if not missing:
        _check_bar_shape(_check_values(frame, out), out)
    gaps: GapReport | None = None
    if stamps is not None and isinstance(frame.index, pd.DatetimeIndex):
        ts, positions = stamps
        ordered = _check_order(ts, positions, frame.index, out)
        tf = tf or infer_timeframe(ts)
        if tf is not None:
            _check_grid(ts, positions, tf, frame.index, out)
            if ordered and positions.size == len(frame):
                gaps = find_gaps(frame, tf, calendar)
    issues = sorted(out.issues, key=lambda i: (i.row is not None, i.row or 0))
    return ValidationReport(
        source=locator.source,
        rows=len(frame),
        timeframe=tf,
        issues=tuple(issues),
        gaps=gaps,
        row_label=locator.label,
        omitted=out.omitted,
    )


def validate(
    frame: pd.DataFrame,
    *,
    timeframe: str | Timeframe | None = None,
    gaps: str = "keep",
    calendar: str = "auto",
    source: str | None = None,
    prior: Sequence[DataIssue] = (),
) -> pd.DataFrame:
    """Return the frame in contract form, or raise `DataValidationError` naming every problem.

    Gaps are handled by the explicit policy `gaps`: 'raise' (GapError), 'keep' (logged) or 'fill'
    (flat bars at the previous close with zero volume). The returned frame holds exactly the
    contract columns as float64 with a nanosecond UTC index and its timeframe in attrs.

    >>> from reinforcetrade.data.schema import make_ohlcv
    >>> bars = make_ohlcv([0, 60_000_000_000], [1, 2], [2, 3], [1, 2], [2, 3], [5, 6])
    >>> validate(bars).attrs["timeframe"]
    '1m'
    """
    report = check(frame, timeframe=timeframe, calendar=calendar, source=source, prior=prior)
    return conform(frame, report, gaps=gaps)


def conform(frame: pd.DataFrame, report: ValidationReport, *, gaps: str = "keep") -> pd.DataFrame:
    """Return `frame` in contract form given its `check` report; raise if the report has issues."""
    if not report.ok:
        raise report.error()
    index = cast(pd.DatetimeIndex, frame.index)  # check() has made sure of it
    out = frame.loc[:, list(COLUMNS)].astype(np.float64)
    out.index = index.tz_convert("UTC").as_unit("ns").rename("timestamp")
    out.attrs = {k: v for k, v in frame.attrs.items() if k != ATTR_SOURCE_ROWS}
    if report.timeframe is not None:
        out.attrs[ATTR_TIMEFRAME] = report.timeframe.text
    if report.gaps is not None:
        out = apply_gap_policy(out, report.gaps, gaps, source=report.source)
    return out

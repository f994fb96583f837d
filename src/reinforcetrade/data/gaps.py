"""Missing bars: find them by trading calendar, report them, and apply an explicit gap policy.

Calendars decide which absences are expected closures and which are real gaps:

- ``24/7`` (crypto): every missing grid slot is a gap.
- ``fx``: a gap from a Friday bar to a Sunday bar, in New York time (the FX week runs from Sunday
  17:00 to Friday 17:00 New York), is the weekly closure, reported apart as ``weekend``; any other
  gap, holidays included, counts every missing slot.
- ``weekdays`` (equities): only slots that fall on Monday–Friday count as missing; a gap whose
  missing slots all fall on the weekend is no gap at all.
- ``auto``: 24/7 if any bar falls on a Saturday or the data never spans one; otherwise ``fx`` for
  intraday bars that trade on Sundays, else ``weekdays``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.core.errors import GapError, UserInputError
from reinforcetrade.core.timeframes import Timeframe
from reinforcetrade.data.schema import ATTR_SOURCE, I8, index_ns

log = logging.getLogger(__name__)

GapPolicy = Literal["raise", "keep", "fill"]
Calendar = Literal["auto", "24/7", "fx", "weekdays"]
GAP_POLICIES: Final[tuple[str, ...]] = ("raise", "keep", "fill")
CALENDARS: Final[tuple[str, ...]] = ("auto", "24/7", "fx", "weekdays")

DAY_NS: Final[int] = 86_400 * 1_000_000_000
_FRIDAY, _SATURDAY, _SUNDAY = 4, 5, 6


def weekday(ts_ns: I8) -> I8:
    """Return the UTC weekday (Monday = 0) of epoch-nanosecond timestamps."""
    return np.asarray((ts_ns // DAY_NS + 3) % 7, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Gap:
    """Bars missing between two consecutive bars `after` and `before`."""

    after: pd.Timestamp
    before: pd.Timestamp
    missing: int
    kind: Literal["missing", "weekend"]

    @property
    def duration(self) -> pd.Timedelta:
        """Return the time between the bars either side of the gap."""
        return self.before - self.after

    def render(self) -> str:
        """Return the gap as one line: the bars either side and how many are missing."""
        return (
            f"{self.after:%Y-%m-%d %H:%M} → {self.before:%Y-%m-%d %H:%M} UTC: "
            f"{self.missing} bar{'s' if self.missing != 1 else ''} missing ({self.kind})"
        )


@dataclass(frozen=True, slots=True)
class GapReport:
    """Every gap in a series, by the calendar that judged it."""

    timeframe: Timeframe
    calendar: str
    gaps: tuple[Gap, ...]

    @property
    def missing(self) -> tuple[Gap, ...]:
        """Return the gaps that are real holes (not weekend closures)."""
        return tuple(g for g in self.gaps if g.kind == "missing")

    @property
    def weekend_closures(self) -> int:
        """Return the number of weekly market closures seen."""
        return sum(1 for g in self.gaps if g.kind == "weekend")

    @property
    def missing_bars(self) -> int:
        """Return the total number of bars missing in real holes."""
        return sum(g.missing for g in self.missing)

    @property
    def has_gaps(self) -> bool:
        """Return True when at least one real hole exists."""
        return any(g.kind == "missing" for g in self.gaps)

    def summary(self) -> str:
        """Return a one-line count of gaps and missing bars."""
        text = (
            f"{len(self.missing)} gap{'s' if len(self.missing) != 1 else ''}, "
            f"{self.missing_bars} bar{'s' if self.missing_bars != 1 else ''} missing "
            f"({self.timeframe} bars, calendar {self.calendar})"
        )
        if self.weekend_closures:
            text += f"; {self.weekend_closures} weekend closures"
        return text

    def largest(self, n: int = 5) -> tuple[Gap, ...]:
        """Return the `n` largest real holes, largest first."""
        return tuple(sorted(self.missing, key=lambda g: (-g.missing, g.after))[:n])


def resolve_calendar(ts_ns: I8, timeframe: Timeframe, calendar: str = "auto") -> str:
    """Return the concrete calendar for a series: `calendar` itself unless it is 'auto'."""
    if calendar not in CALENDARS:
        raise UserInputError(f"calendar {calendar!r} is not one of {', '.join(CALENDARS)}")
    if calendar != "auto":
        return calendar
    if ts_ns.size == 0:
        return "24/7"
    days = weekday(ts_ns)
    first_day, last_day = int(ts_ns[0] // DAY_NS), int(ts_ns[-1] // DAY_NS)
    spans_saturday = last_day - first_day >= 6 or bool(
        np.any(weekday(np.arange(first_day, last_day + 1, dtype=np.int64) * DAY_NS) == _SATURDAY)
    )
    if bool(np.any(days == _SATURDAY)) or not spans_saturday:
        return "24/7"
    if timeframe.nanos < DAY_NS and bool(np.any(days == _SUNDAY)):
        return "fx"
    return "weekdays"


def _missing_slots(after: int, before: int, step: int) -> I8:
    """Return the grid slots strictly between two bars."""
    return np.arange(after + step, before, step, dtype=np.int64)


def _fx_weekends(after: I8, before: I8) -> npt.NDArray[np.bool_]:
    """Return which gaps run from a Friday to a Sunday in New York, the FX market's clock."""
    if after.size == 0:
        return np.zeros(0, dtype=np.bool_)
    new_york = "America/New_York"
    start = pd.DatetimeIndex(after.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(new_york)
    end = pd.DatetimeIndex(before.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(new_york)
    weekly = (start.day_of_week == _FRIDAY) & (end.day_of_week == _SUNDAY)
    return np.asarray(weekly & (before - after <= 3 * DAY_NS), dtype=np.bool_)


def find_gaps(frame: pd.DataFrame, timeframe: Timeframe, calendar: str = "auto") -> GapReport:
    """Return every gap in a sorted, duplicate-free frame, judged by the calendar."""
    ts = index_ns(frame)
    cal = resolve_calendar(ts, timeframe, calendar)
    if ts.size < 2 or timeframe.is_monthly:
        return GapReport(timeframe, cal, ())
    step = timeframe.nanos
    where = np.flatnonzero(np.diff(ts) > step)
    after, before = ts[where], ts[where + 1]
    counts = (before - after) // step - 1
    kinds = np.zeros(where.size, dtype=np.int8)  # 0 missing, 1 weekend, 2 not a gap
    if cal == "fx":
        kinds[_fx_weekends(after, before)] = 1
    elif cal == "weekdays":
        for i in range(where.size):
            slots = _missing_slots(int(after[i]), int(before[i]), step)
            counts[i] = int(np.count_nonzero(weekday(slots) < _SATURDAY))
        kinds[counts == 0] = 2
    gaps = tuple(
        Gap(
            after=pd.Timestamp(int(a), tz="UTC"),
            before=pd.Timestamp(int(b), tz="UTC"),
            missing=int(c),
            kind="weekend" if k == 1 else "missing",
        )
        for a, b, c, k in zip(after, before, counts, kinds, strict=True)
        if k != 2
    )
    return GapReport(timeframe, cal, gaps)


def fill_gaps(frame: pd.DataFrame, report: GapReport) -> pd.DataFrame:
    """Return the frame with flat, zero-volume bars at the previous close in every real hole."""
    holes: list[I8] = []
    step = report.timeframe.nanos
    for gap in report.missing:
        slots = _missing_slots(gap.after.value, gap.before.value, step)
        if report.calendar == "weekdays":
            slots = slots[weekday(slots) < _SATURDAY]
        holes.append(slots)
    if not holes:
        return frame
    new_ts = np.concatenate(holes)
    ts = index_ns(frame)
    prev = np.searchsorted(ts, new_ts, side="right") - 1
    close = frame["close"].to_numpy(dtype=np.float64)[prev]
    zeros = np.zeros(new_ts.size, dtype=np.float64)
    filled = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": zeros},
        index=pd.DatetimeIndex(new_ts.astype("datetime64[ns]"), name=frame.index.name).tz_localize(
            "UTC"
        ),
    )
    out = pd.concat([frame, filled]).sort_index(kind="stable")
    out.attrs = dict(frame.attrs)
    return out


def apply_gap_policy(
    frame: pd.DataFrame, report: GapReport, policy: str, *, source: str | None = None
) -> pd.DataFrame:
    """Raise, keep (with a logged warning) or fill the real holes, as the policy says."""
    if policy not in GAP_POLICIES:
        raise UserInputError(f"gap policy {policy!r} is not one of {', '.join(GAP_POLICIES)}")
    if not report.has_gaps:
        return frame
    where = source or frame.attrs.get(ATTR_SOURCE) or "data"
    if policy == "raise":
        raise GapError(
            f"{report.summary()}; largest: " + "; ".join(g.render() for g in report.largest(3)),
            source=where,
            hint="choose a gap policy: keep them (gaps='keep') or fill flat bars (gaps='fill')",
        )
    if policy == "fill":
        log.warning("%s: filling %s with flat zero-volume bars", where, report.summary())
        return fill_gaps(frame, report)
    log.warning("%s: keeping %s", where, report.summary())
    return frame


def render_gaps(gaps: Sequence[Gap], limit: int = 10) -> list[str]:
    """Return up to `limit` gap lines plus a line counting the rest."""
    lines = [g.render() for g in gaps[:limit]]
    if len(gaps) > limit:
        lines.append(f"… and {len(gaps) - limit} more")
    return lines

"""Execution algorithms: working a large parent order over several bars as child orders.

One implementation, two drivers (DESIGN.md invariant 2): the backtester's compiled loop and a
paper venue both call the same compiled per-bar step, `child_quantity`, one bar at a time.

- **IMMEDIATE** sends the whole remainder at once (on every bar of its horizon, until filled).
- **TWAP** sends the remainder ÷ the bars left: equal slices over the horizon.
- **VWAP** sends the remainder × this bar's expected share of the volume still to come in the
  horizon, from a `VolumeProfile` computed from *earlier* bars only (`volume_profile`).

Every child is capped at `participation` × the volume of the bar it fills in, with
`fillable_qty`'s rule (costs.py; a bar without volume fills nothing). That is the project's fill
model: an order decided on bar t-1's close fills during bar t and bar t's volume limits it, as in
`orders.fill_entry`. It is causal because the volume only bounds the *outcome*: what to ask for
(`child_target`) is decided before the bar from the remainder, the bars left and the profile,
and the next bar's remainder — the only thing bar t's volume feeds — is known once bar t closes.

A child below `min_child` is not sent: it stays in the remainder and so joins the next child
(unless it is the whole remainder already). The horizon's last bar sends the whole remainder,
capped; what the cap leaves after it is unfilled and reported (`Schedule.unfilled`), never
dropped. `child_id` names each child after its parent, so fills trace back to the parent.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.jit import njit
from reinforcetrade.simulation.costs import CostParams, fillable_qty

if TYPE_CHECKING:
    from reinforcetrade.config.sections import ExecutionConfig

__all__ = [
    "ALGO_WORDS",
    "AUTO",
    "NO_SLICING",
    "Algo",
    "Schedule",
    "SliceParams",
    "Slicing",
    "VolumeProfile",
    "child_id",
    "child_quantity",
    "child_target",
    "choose_algo",
    "expected_share",
    "live_child",
    "next_child",
    "pick_algo",
    "recent_volume",
    "schedule",
    "volume_profile",
]

F8 = npt.NDArray[np.float64]


class Algo(IntEnum):
    """How a parent order is worked over its horizon (a code kept in compiled loops)."""

    IMMEDIATE = 0
    TWAP = 1
    VWAP = 2

    @property
    def word(self) -> str:
        """Return what the algorithm does, in words (for reports and the journal)."""
        return ALGO_WORDS[self]

    @classmethod
    def parse(cls, value: Algo | str | int) -> Algo:
        """Return the algorithm named `value` ('immediate', 'twap', 'vwap') or with that code.

        >>> Algo.parse("twap"), Algo.parse(2).word
        (<Algo.TWAP: 1>, 'slices following the expected volume of each bar')
        """
        try:
            if isinstance(value, int | np.integer) and not isinstance(value, bool):
                return cls(int(value))
            return cls[str(value).strip().upper()]
        except (KeyError, ValueError):
            names = ", ".join(a.name.lower() for a in cls)
            raise UserInputError(
                f"unknown execution algorithm {value!r}; use one of {names}"
            ) from None


#: What each algorithm does, in words.
ALGO_WORDS: Final[dict[Algo, str]] = {
    Algo.IMMEDIATE: "sent at once",
    Algo.TWAP: "equal slices over the horizon",
    Algo.VWAP: "slices following the expected volume of each bar",
}

_IMMEDIATE: Final = int(Algo.IMMEDIATE)
_TWAP: Final = int(Algo.TWAP)
_VWAP: Final = int(Algo.VWAP)


def _is_whole(value: object, low: int) -> bool:
    """Return whether `value` is an integer (not a bool) of at least `low`."""
    return bool(
        isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= low
    )


@dataclass(frozen=True, slots=True)
class SliceParams:
    """How to work one parent order: algorithm, horizon in bars, participation cap, min child.

    >>> SliceParams(Algo.TWAP, horizon_bars=4, participation=0.05).algo.word
    'equal slices over the horizon'
    """

    algo: Algo
    horizon_bars: int
    participation: float = 0.1
    min_child: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "algo", Algo.parse(self.algo))
        h = self.horizon_bars
        if not _is_whole(h, 1):
            raise UserInputError(
                f"horizon_bars is the number of bars to work the order over, a whole number "
                f">= 1 (1 sends it in one bar), got {h!r}"
            )
        object.__setattr__(self, "horizon_bars", int(h))
        p = self.participation
        if not (isinstance(p, int | float) and 0.0 < p <= 1.0):
            raise UserInputError(
                f"participation is the largest share of a bar's traded volume one child may "
                f"take, in (0, 1] (0.1 = 10 %), got {p!r}"
            )
        m = self.min_child
        if not (isinstance(m, int | float) and 0.0 <= m < math.inf):
            raise UserInputError(
                f"min_child is the smallest child quantity worth sending (e.g. the venue's "
                f"minimum order size), a finite number >= 0 (0: no minimum), got {m!r}"
            )
        object.__setattr__(self, "participation", float(p))
        object.__setattr__(self, "min_child", float(m))


def choose_algo(
    quantity: float, recent_volume: float, *, immediate_below: float, twap_below: float
) -> Algo:
    """Return the algorithm for an order from its size against the recent average bar volume.

    The order's share is |quantity| / recent_volume. Below `immediate_below` it is sent at once,
    below `twap_below` in TWAP slices, otherwise along the volume profile (VWAP). Without a
    usable recent volume (0, negative or NaN) the share is unknown and VWAP, the most careful,
    is chosen.

    >>> [choose_algo(q, 1_000.0, immediate_below=0.01, twap_below=0.1).name for q in (5, 50, 500)]
    ['IMMEDIATE', 'TWAP', 'VWAP']
    """
    if not (0.0 <= immediate_below <= twap_below):
        raise UserInputError(
            f"choose_algo needs 0 <= immediate_below <= twap_below (shares of the recent bar "
            f"volume, e.g. 0.01 and 0.1), got {immediate_below!r} and {twap_below!r}"
        )
    if not math.isfinite(quantity):
        raise UserInputError(f"the order quantity must be a finite number, got {quantity!r}")
    return Algo(_choose(abs(quantity), recent_volume, immediate_below, twap_below))


@njit
def _choose(size: float, recent_volume: float, immediate_below: float, twap_below: float) -> int:
    """Return `choose_algo`'s code for an order of `size` (>= 0); the compiled loops call it."""
    share = size / recent_volume if recent_volume > 0.0 else (0.0 if size == 0.0 else math.inf)
    if share < immediate_below:
        return _IMMEDIATE
    if share < twap_below:
        return _TWAP
    return _VWAP


# ---- the compiled per-bar step


@njit
def child_target(
    algo: int, remaining: float, bars_left: int, expected_volume_share: float, min_child: float
) -> float:
    """Return the child to send this bar, decided before the bar (no volume of it is read).

    `bars_left` counts this bar (1 on the horizon's last bar). `expected_volume_share` is this
    bar's expected share of the volume of the bars left (VWAP only; see `expected_share`; NaN
    falls back to equal slices). The last bar asks for the whole remainder. A child below
    `min_child` is 0 — it stays in the remainder and joins the next child — unless it is the
    whole remainder (waiting could not make it bigger).

    >>> child_target(1, 90.0, 3, 0.5, 0.0), child_target(2, 90.0, 3, 0.5, 0.0)  # TWAP, VWAP
    (30.0, 45.0)
    """
    if not remaining > 0.0:
        return 0.0
    if bars_left <= 1 or algo == _IMMEDIATE:
        want = remaining
    elif algo == _TWAP:
        want = remaining / bars_left
    else:
        share = expected_volume_share
        if not share == share:
            share = 1.0 / bars_left
        want = remaining * min(max(share, 0.0), 1.0)
    if want < min_child and want < remaining:
        return 0.0  # too small: it waits and joins the next child
    return want


@njit
def child_quantity(
    algo: int,
    remaining: float,
    bars_left: int,
    bar_volume: float,
    expected_volume_share: float,
    participation: float,
    min_child: float,
) -> float:
    """Return the quantity a child fills this bar: `child_target` capped by the bar's volume.

    The cap is `participation` × `bar_volume`, the volume of the bar the child fills in
    (`fillable_qty`'s rule; no volume, no fill). Call it when that bar is filled, then pass the
    remainder less what actually filled as `remaining` on the next bar.

    >>> child_quantity(1, 90.0, 3, 1_000.0, math.nan, 0.1, 0.0)  # TWAP: 30, capped at 100
    30.0
    >>> child_quantity(1, 90.0, 3, 200.0, math.nan, 0.1, 0.0)  # capped at 10 % of 200
    20.0
    """
    want = child_target(algo, remaining, bars_left, expected_volume_share, min_child)
    cap = CostParams(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, participation, 0.0, 0.0)
    return fillable_qty(want, bar_volume, cap)


# ---- the volume profile VWAP follows


class VolumeProfile(NamedTuple):
    """Expected volume of each bar, known `period` bars ahead (`volume_profile`'s answer).

    `expected[s]` is the mean volume of bar s's phase over earlier cycles, read from bars
    <= s - period only; it has `period` more values than the volumes it came from.
    """

    expected: F8
    period: int


@njit
def _forecast(volumes: F8, s: int, window: int, period: int) -> float:
    """Return bar s's expected volume: the mean finite volume of bars s - k × period, k ≤ window."""
    total = 0.0
    count = 0
    for k in range(1, window + 1):
        j = s - k * period
        if j < 0:
            break
        v = volumes[j]
        if v >= 0.0 and v < math.inf:
            total += v
            count += 1
    return total / count if count > 0 else math.nan


@njit
def _profile_kernel(volumes: F8, window: int, period: int) -> F8:
    n = volumes.size
    out = np.empty(n + period)
    for s in range(n + period):
        out[s] = _forecast(volumes, s, window, period)
    return out


def volume_profile(volumes: npt.ArrayLike, window: int, period: int = 1) -> VolumeProfile:
    """Return each bar's expected volume from the same phase of the previous `window` cycles.

    A cycle is `period` bars (24 for hourly bars with a daily pattern; 1 for none, which makes
    VWAP equal TWAP). Bar s's forecast is the mean of the finite volumes among bars s - period,
    s - 2 × period, …, s - window × period (NaN when none is known), so it uses no bar after
    s - period: it is known `period` bars ahead, and the answer has `period` forecasts beyond
    the last bar given. Cutting the volumes never changes an earlier forecast.

    >>> volume_profile([10.0, 30.0, 20.0, 40.0], window=2, period=2).expected
    array([nan, nan, 10., 30., 15., 35.])
    """
    v = np.ascontiguousarray(volumes, dtype=np.float64)
    if v.ndim != 1:
        raise UserInputError(f"volumes must be one series (1-D), got shape {v.shape}")
    for name, value in (("window", window), ("period", period)):
        if not _is_whole(value, 1):
            raise UserInputError(
                f"volume_profile's {name} is a whole number >= 1 (window: cycles to average, "
                f"e.g. 20; period: bars per cycle, e.g. 24 for hourly bars), got {value!r}"
            )
    return VolumeProfile(_profile_kernel(v, int(window), int(period)), int(period))


@njit
def expected_share(profile: VolumeProfile, t: int, bars_left: int) -> float:
    """Return bar t's expected share of the volume of bars t … t + bars_left - 1.

    Reads `profile.expected[t : t + min(bars_left, period)]` only — forecasts already known
    before bar t — and takes each later bar's forecast from the same phase inside that span.
    Falls back to 1 / bars_left (equal slices) when a forecast is missing or all are zero.

    >>> p = volume_profile([10.0, 30.0, 20.0, 40.0], window=2, period=2)
    >>> expected_share(p, 4, 2), expected_share(p, 4, 3)  # 15 / (15 + 35), 15 / (15 + 35 + 15)
    (0.3, 0.230769...)
    """
    if bars_left <= 1:
        return 1.0
    expected, period = profile
    if t < 0 or t + min(bars_left, period) > expected.size:
        return 1.0 / bars_left
    return _share(expected[t : t + min(bars_left, period)], bars_left, period)


@njit
def _share(ahead: F8, bars_left: int, period: int) -> float:
    """Return the first bar's share of the volume of `bars_left` bars, from the next forecasts.

    `ahead` holds the forecasts of the next min(bars_left, period) bars; a later bar takes its
    phase's forecast from it. Equal slices when one is missing or all are zero.
    """
    total = 0.0
    for j in range(bars_left):
        e = ahead[j % period]
        if not (e >= 0.0 and e < math.inf):
            return 1.0 / bars_left
        total += e
    if not total > 0.0:
        return 1.0 / bars_left
    share: float = ahead[0] / total
    return share


# ---- the run's settings, and the steps the compiled bar loop takes with them

#: `Slicing.algo` for "choose per order" (`choose_algo`'s rule, in the compiled loop)
AUTO: Final = -1


class Slicing(NamedTuple):
    """How a compiled bar loop works its orders: one algorithm or AUTO, and the thresholds.

    Plain numbers, so numba passes it by value (`Execution.slicing`). `algo` IMMEDIATE keeps
    the loop's one-shot fills exactly as they were; see `docs/execution.md`.

    >>> from reinforcetrade.config.sections import ExecutionConfig
    >>> Slicing.from_config(ExecutionConfig(algo="twap")).algo == int(Algo.TWAP)
    True
    """

    algo: int  # AUTO (-1) or an `Algo` code
    horizon_bars: int
    participation: float
    min_child: float
    immediate_below: float
    twap_below: float
    volume_window: int
    volume_period: int

    @classmethod
    def from_config(cls, cfg: ExecutionConfig) -> Slicing:
        """Return the settings of the `execution` section."""
        return cls(
            AUTO if cfg.algo == "auto" else int(Algo.parse(cfg.algo)),
            cfg.horizon_bars,
            cfg.participation,
            cfg.min_child,
            cfg.immediate_below,
            cfg.twap_below,
            cfg.volume_window,
            cfg.volume_period,
        )


#: every order sent at once (the loop as it was before execution algorithms)
NO_SLICING: Final = Slicing(_IMMEDIATE, 1, 1.0, 0.0, 0.0, 0.0, 1, 1)


@njit
def recent_volume(volumes: F8, t: int, window: int) -> float:
    """Return the mean finite volume of bars t - window + 1 … t (NaN when none is known).

    Called on bar t's close, when bar t is complete: it reads no later bar.

    >>> recent_volume(np.array([10.0, np.nan, 30.0, 99.0]), 2, 3)
    20.0
    """
    return _forecast(volumes, t + 1, window, 1)  # bar t+1's forecast without a cycle


@njit
def pick_algo(p: Slicing, quantity: float, volumes: F8, t: int) -> int:
    """Return the algorithm code for an order of `quantity` decided on bar t's close.

    `p.algo` itself, or with AUTO `choose_algo`'s rule on the mean volume of the last
    `volume_window` completed bars (bars <= t).
    """
    if p.algo != AUTO:
        return p.algo
    recent = recent_volume(volumes, t, p.volume_window)
    return _choose(abs(quantity), recent, p.immediate_below, p.twap_below)


@njit
def next_child(
    p: Slicing, algo: int, remaining: float, bars_left: int, volumes: F8, t: int
) -> float:
    """Return what a worked order fills on bar t: `child_quantity` with the run's settings.

    `bars_left` counts bar t (<= 1: the horizon's last bar, or past it: the whole remainder).
    VWAP's share comes from the forecasts of bars t, t + 1, … made from bars before t (the
    profile of `volume_window` cycles of `volume_period` bars, as `volume_profile` makes it).
    """
    left = max(bars_left, 1)
    share = _vwap_share(p, algo, left, volumes, t)
    return child_quantity(algo, remaining, left, volumes[t], share, p.participation, p.min_child)


@njit
def live_child(
    p: Slicing, algo: int, remaining: float, bars_left: int, volumes: F8, t: int
) -> float:
    """Return the child to send a live venue for bar t, before bar t trades.

    `next_child` with the bar's *expected* volume (its forecast from earlier bars) in place of
    its volume, which a live venue reports only after the bar: the cap is `participation` × the
    forecast. No forecast yet (no history): the target uncapped. `volumes[t]` is never read.

    >>> p = Slicing(int(Algo.TWAP), 4, 0.1, 0.0, 0.0, 0.0, 3, 1)
    >>> float(live_child(p, int(Algo.TWAP), 40.0, 4, np.array([100.0, 60.0, 20.0, np.nan]), 3))
    6.0
    """
    left = max(bars_left, 1)
    share = _vwap_share(p, algo, left, volumes, t)
    expected = _forecast(volumes, t, p.volume_window, p.volume_period)
    if not expected >= 0.0:
        return child_target(algo, remaining, left, share, p.min_child)
    return child_quantity(algo, remaining, left, expected, share, p.participation, p.min_child)


@njit
def _vwap_share(p: Slicing, algo: int, left: int, volumes: F8, t: int) -> float:
    """Return VWAP's share of the volume still to come for bar t (NaN for other algorithms)."""
    if algo != _VWAP or left <= 1:
        return math.nan
    ahead = np.empty(min(left, p.volume_period))
    for j in range(ahead.size):
        ahead[j] = _forecast(volumes, t + j, p.volume_window, p.volume_period)
    return _share(ahead, left, p.volume_period)


# ---- the whole schedule, for tests and reports


class Schedule(NamedTuple):
    """What each bar of the horizon filled, and what was left unfilled at its end."""

    children: F8
    unfilled: float


@njit
def _schedule_kernel(
    algo: int, quantity: float, volumes: F8, profile: VolumeProfile, participation: float,
    min_child: float, horizon: int, start: int,
) -> tuple[F8, float]:  # fmt: skip
    bars = max(min(horizon, volumes.size - start), 0)
    children = np.zeros(bars)
    remaining = quantity
    for k in range(bars):
        t = start + k
        bars_left = horizon - k
        share = expected_share(profile, t, bars_left) if algo == _VWAP else math.nan
        q = child_quantity(algo, remaining, bars_left, volumes[t], share, participation, min_child)
        children[k] = q
        remaining -= q
    return children, remaining


def schedule(
    params: SliceParams,
    quantity: float,
    volumes: npt.ArrayLike,
    profile: VolumeProfile | None = None,
    *,
    start: int = 0,
) -> Schedule:
    """Return the children of a parent order worked from bar `start`, one `child_quantity` a bar.

    `volumes` (and `profile`, VWAP only: `volume_profile` of the same volumes) cover the whole
    series; the horizon's bars are `start` … `start + horizon_bars - 1`. If the data ends first,
    the children stop there and the rest is unfilled.

    >>> twap = SliceParams(Algo.TWAP, horizon_bars=4, participation=0.1)
    >>> s = schedule(twap, 100.0, [500.0, 90.0, 500.0, 500.0])
    >>> s.children.tolist(), s.unfilled  # bar 1 takes 9 (10 % of 90); the others catch up
    ([25.0, 9.0, 33.0, 33.0], 0.0)
    """
    v = np.ascontiguousarray(volumes, dtype=np.float64)
    if v.ndim != 1:
        raise UserInputError(f"volumes must be one series (1-D), got shape {v.shape}")
    if not (math.isfinite(quantity) and quantity >= 0.0):
        raise UserInputError(
            f"quantity is the parent order's size, a finite number >= 0 (the side is carried "
            f"apart), got {quantity!r}"
        )
    if not _is_whole(start, 0):
        raise UserInputError(f"start is the index of the parent's first bar, >= 0, got {start!r}")
    if profile is None:
        if params.algo == Algo.VWAP:
            raise UserInputError(
                "VWAP needs a volume profile: pass profile=volume_profile(volumes, window, period)"
            )
        profile = VolumeProfile(np.empty(0), 1)
    elif profile.expected.size < v.size:
        raise UserInputError(
            f"the profile has {profile.expected.size} forecasts for {v.size} bars: pass "
            f"volume_profile of the same volumes"
        )
    children, unfilled = _schedule_kernel(
        int(params.algo), float(quantity), v, profile, params.participation, params.min_child,
        params.horizon_bars, int(start),
    )  # fmt: skip
    return Schedule(children, float(unfilled))


# ---- child order ids

_ID_CHARS = re.compile(r"[A-Za-z0-9._:/-]*")
_ID_MAX = 36
_HASH_CHARS = 12


def child_id(parent_client_id: str, n: int) -> str:
    """Return the client order id of the parent's child number `n` (deterministic).

    `parent.n` when that fits the venues' id rule (1-36 of A-Z a-z 0-9 . _ : / -); otherwise
    the parent's leading valid characters, '-', 12 hex digits of the parent's SHA-256 and `.n`
    — always 36 characters or fewer. Children of one parent differ by `n`, written in full;
    parents that fit are kept whole, longer ones differ by their hash (48 bits).

    >>> child_id("ord-7", 3)
    'ord-7.3'
    >>> child_id("rt-20240101T000000-BTCUSDT-entry-000042", 12)
    'rt-20240101T000000-B-a0397fec7b26.12'
    """
    if not isinstance(parent_client_id, str) or not parent_client_id:
        raise UserInputError(
            f"a parent order needs a client id to name its children, got {parent_client_id!r}"
        )
    if not (_is_whole(n, 0) and n < 10**20):
        raise UserInputError(f"a child's number is a whole number from 0, got {n!r}")
    suffix = f".{int(n)}"
    whole = parent_client_id + suffix
    if len(whole) <= _ID_MAX and _ID_CHARS.fullmatch(parent_client_id):
        return whole
    digest = hashlib.sha256(parent_client_id.encode("utf-8", "surrogatepass")).hexdigest()
    readable = "".join(_ID_CHARS.findall(parent_client_id))
    keep = _ID_MAX - len(suffix) - _HASH_CHARS - 1
    return f"{readable[:keep]}-{digest[:_HASH_CHARS]}{suffix}"

"""Per-venue execution quality: slippage against arrival, fill ratio, rejects, latency, health.

Every order outcome updates its venue's figures: a fill its slippage in bps of the arrival price
(positive: worse than arrival; an EWMA), its latency (p50 and p99 over the last `window`), the
filled share of what was asked; a rejection or a failed call (the venue unavailable, an unknown
outcome) its reject rate and error streak. From them a venue's health:

- **down** after `down_after_errors` failed calls in a row: skipped for `cooldown_s`, then
  degraded (tried again, at a penalty) until a call succeeds;
- **degraded** while its recent reject rate is above `max_reject_rate` or its slippage EWMA
  above `max_slippage_bps` — ok again only below 80 % of those (hysteresis, so it does not flap);
- **ok** otherwise.

Each change of health is returned as a `HealthChange` for the engine to alert on. Times are
passed in (epoch ns), so the figures are a pure function of the outcomes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from reinforcetrade.agents.routing import Health, VenueQuote
from reinforcetrade.config.sections import RoutingConfig
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.features.stats import ewma_step

Outcome = Literal["fill", "reject", "error"]
RECOVER = 0.8  # a degraded venue is ok again below this share of the limit


@dataclass(frozen=True, slots=True)
class QualityParams:
    """Thresholds of venue health (from `routing` settings)."""

    window: int = 200
    alpha: float = 0.1
    max_reject_rate: float = 0.2
    max_slippage_bps: float = 25.0
    down_after_errors: int = 3
    cooldown_s: float = 60.0
    min_orders: int = 5  # fewer orders: too few to call a venue degraded

    @classmethod
    def from_config(cls, config: RoutingConfig) -> QualityParams:
        """Return the health thresholds from the `routing` settings."""
        return cls(config.window, config.alpha, config.max_reject_rate, config.max_slippage_bps,
                   config.down_after_errors, config.cooldown_s, config.min_orders)  # fmt: skip

    def __post_init__(self) -> None:
        if self.window < 1 or not 0.0 < self.alpha <= 1.0 or self.down_after_errors < 1:
            raise UserInputError("venue quality: window ≥ 1, 0 < alpha ≤ 1, down_after_errors ≥ 1")


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A venue's health moved: from, to, and why."""

    venue: str
    old: Health
    new: Health
    why: str
    time: int


@dataclass
class _Venue:
    outcomes: deque[bool] = field(default_factory=deque)  # True: rejected or failed
    latencies: deque[float] = field(default_factory=deque)
    slippage_bps: float = math.nan
    asked: float = 0.0
    filled: float = 0.0
    orders: int = 0
    fills: int = 0
    rejects: int = 0
    errors: int = 0
    streak: int = 0  # failed calls in a row
    health: Health = "ok"
    down_until: int = 0
    figures: VenueStats | None = None  # `stats` as of the last change (None: to compute)


@dataclass(frozen=True, slots=True)
class VenueStats:
    """One venue's execution figures now."""

    venue: str
    orders: int
    fills: int
    rejects: int
    errors: int
    fill_ratio: float  # filled / asked quantity (NaN before any order)
    reject_rate: float  # of the last `window` orders
    slippage_bps: float  # EWMA against arrival (NaN before any fill)
    latency_p50_ms: float
    latency_p99_ms: float
    health: Health


class VenueQuality:
    """Execution-quality figures and health of every venue the router uses."""

    def __init__(self, params: QualityParams | None = None) -> None:
        self.params = params or QualityParams()
        self._venues: dict[str, _Venue] = {}

    def fill(
        self,
        venue: str,
        *,
        side: str,
        price: float,
        arrival: float,
        filled: float,
        asked: float,
        latency_ms: float,
        time: int,
    ) -> HealthChange | None:
        """Record an order's execution (filled of asked at `price`; arrival: the price then)."""
        if not (price > 0 and arrival > 0 and asked > 0 and 0 <= filled <= asked * (1 + 1e-9)):
            raise UserInputError(
                f"{venue}: a fill needs positive prices and 0 ≤ filled ≤ asked, got price "
                f"{price}, arrival {arrival}, filled {filled} of {asked}"
            )
        v = self._changing(venue)
        sign = 1.0 if side == "buy" else -1.0
        if filled > 0:
            bps = sign * (price - arrival) / arrival * 1e4
            v.slippage_bps = ewma_step(v.slippage_bps, bps, self.params.alpha)
            v.fills += 1
        v.asked += asked
        v.filled += filled
        v.streak = 0
        _push(v.latencies, float(latency_ms), self.params.window)
        return self._order(venue, v, failed=False, time=time)

    def reject(self, venue: str, *, time: int) -> HealthChange | None:
        """Record an order the venue refused (its reject rate rises; the venue answered)."""
        v = self._changing(venue)
        v.rejects += 1
        v.streak = 0
        return self._order(venue, v, failed=True, time=time)

    def error(self, venue: str, *, time: int) -> HealthChange | None:
        """Record a call that failed (unavailable, unknown outcome): the error streak grows."""
        v = self._changing(venue)
        v.errors += 1
        v.streak += 1
        if v.streak >= self.params.down_after_errors:
            v.down_until = time + int(self.params.cooldown_s * 1e9)
            return self._set(venue, v, "down", f"{v.streak} failed calls in a row", time)
        return self._order(venue, v, failed=True, time=time)

    def health(self, venue: str, *, time: int) -> tuple[Health, HealthChange | None]:
        """Return a venue's health now (a down venue past its cool-down turns degraded)."""
        v = self._venue(venue)
        if v.health == "down" and time >= v.down_until:
            return "degraded", self._set(venue, v, "degraded", "cool-down over: trying again", time)
        return v.health, None

    def restore(
        self,
        figures: VenueStats,
        *,
        latencies: Sequence[float] = (),
        filled_quantity: float = math.nan,
    ) -> None:
        """Take back a venue's figures as last recorded (an engine's restart).

        The counts, the slippage EWMA and the fill ratio (with `filled_quantity`, what those fills
        were) are as recorded; the reject-rate window is rebuilt from the counts, the latency
        window from `latencies` (its last orders', oldest first). A venue that was down comes
        back degraded: tried again, at a penalty, since its cool-down was not recorded.
        """
        p = self.params
        v = self._changing(figures.venue)
        v.orders, v.fills, v.rejects, v.errors = (figures.orders, figures.fills, figures.rejects,
                                                  figures.errors)  # fmt: skip
        v.slippage_bps = figures.slippage_bps
        ratio = figures.fill_ratio
        if math.isfinite(ratio) and ratio > 0 and filled_quantity > 0:
            v.filled, v.asked = filled_quantity, filled_quantity / ratio
        failed = min(figures.rejects + figures.errors, figures.orders, p.window)
        answered = min(figures.orders - failed, p.window - failed)
        v.outcomes = deque([False] * answered + [True] * failed)
        v.latencies = deque(float(x) for x in list(latencies)[-p.window :])
        v.health = "degraded" if figures.health == "down" else figures.health

    def stats(self, venue: str) -> VenueStats:
        """Return a venue's figures (computed once per change: routing reads them per order)."""
        v = self._venue(venue)
        if v.figures is not None:
            return v.figures
        lat = np.fromiter(v.latencies, dtype=np.float64, count=len(v.latencies))
        p50, p99 = np.percentile(lat, [50, 99]) if lat.size else (math.nan, math.nan)
        v.figures = VenueStats(
            venue, v.orders, v.fills, v.rejects, v.errors,
            v.filled / v.asked if v.asked else math.nan, _rate(v.outcomes), v.slippage_bps,
            float(p50), float(p99), v.health,
        )  # fmt: skip
        return v.figures

    def annotate(self, quote: VenueQuote, *, time: int) -> tuple[VenueQuote, HealthChange | None]:
        """Return the quote with the venue's recent slippage, latency and health filled in."""
        health, change = self.health(quote.venue, time=time)
        s = self.stats(quote.venue)
        slip = s.slippage_bps if math.isfinite(s.slippage_bps) else quote.slippage_bps
        lat = s.latency_p50_ms if math.isfinite(s.latency_p50_ms) else quote.latency_ms
        return replace(quote, slippage_bps=slip, latency_ms=lat, health=health), change

    # -- internals ----------------------------------------------------------------------------
    def _venue(self, venue: str) -> _Venue:
        return self._venues.setdefault(venue, _Venue())

    def _changing(self, venue: str) -> _Venue:
        """Return a venue's record about to change (its cached figures dropped)."""
        v = self._venue(venue)
        v.figures = None
        return v

    def _order(self, venue: str, v: _Venue, *, failed: bool, time: int) -> HealthChange | None:
        """Count an order outcome and move the venue's health if its figures say so."""
        p = self.params
        v.orders += 1
        _push(v.outcomes, failed, p.window)
        rate = _rate(v.outcomes)
        slip = v.slippage_bps
        enough = len(v.outcomes) >= p.min_orders
        bad_rate = enough and rate > p.max_reject_rate
        bad_slip = math.isfinite(slip) and slip > p.max_slippage_bps
        if v.health == "down" and not failed:
            return self._set(venue, v, "ok", "answered again", time)
        if v.health == "ok" and (bad_rate or bad_slip):
            why = (f"reject rate {rate:.0%} > {p.max_reject_rate:.0%}" if bad_rate
                   else f"slippage {slip:.1f} bps > {p.max_slippage_bps:g}")  # fmt: skip
            return self._set(venue, v, "degraded", why, time)
        if v.health == "degraded":
            good_rate = not enough or rate <= RECOVER * p.max_reject_rate
            good_slip = not math.isfinite(slip) or slip <= RECOVER * p.max_slippage_bps
            if good_rate and good_slip and not failed:
                why = f"reject rate {rate:.0%}, slippage {_bps(slip)}: within limits again"
                return self._set(venue, v, "ok", why, time)
        return None

    @staticmethod
    def _set(venue: str, v: _Venue, new: Health, why: str, time: int) -> HealthChange | None:
        old, v.health, v.figures = v.health, new, None
        return None if old == new else HealthChange(venue, old, new, why, time)


def _push(queue: deque[bool] | deque[float], value: bool | float, window: int) -> None:
    queue.append(value)  # type: ignore[arg-type]
    while len(queue) > window:
        queue.popleft()


def _rate(outcomes: deque[bool]) -> float:
    return sum(outcomes) / len(outcomes) if outcomes else math.nan


def _bps(value: float) -> str:
    return f"{value:.1f} bps" if math.isfinite(value) else "n/a"

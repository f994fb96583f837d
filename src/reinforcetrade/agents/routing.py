"""The Execution Agent's router: which venue (or venues) an order goes to, by expected all-in cost.

For each venue quoting the instrument the expected cost of the order, in basis points of the
best mid price across venues, is the sum of

- **price**: how far the side's quote (ask to buy, bid to sell; the last trade when there is no
  book) lies from that reference — a venue quoting worse pays it;
- **fee**: its taker fee;
- **slippage**: its recent realised slippage against the arrival price (`VenueQuality`);
- **latency**: its recent median latency × `latency_bps_per_ms`, what the price is expected to
  move while the order travels;

and a degraded venue pays `degraded_penalty_bps` on top (or is skipped when it is down). The
cheapest venue that can take the order gets it; with `split`, what one venue cannot take
(its available balance, a minimum size) goes to the next cheapest, up to `max_legs` venues.
Every venue's figures and why it won, shared, or was passed over are in the `Route`, which is
recorded on the order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reinforcetrade.config.sections import RoutingConfig
from reinforcetrade.core.errors import UserInputError

Side = Literal["buy", "sell"]
Health = Literal["ok", "degraded", "down"]


@dataclass(frozen=True, slots=True)
class VenueQuote:
    """What a venue offers for one instrument now, and how it has been executing lately."""

    venue: str
    bid: float  # best bid (NaN: no book; the last trade then stands for both sides)
    ask: float  # best ask
    last: float  # last trade price
    fee_bps: float  # taker fee
    min_qty: float  # the venue's minimum order size
    available: float  # the most it can take now (balance, position, or its own limit)
    slippage_bps: float = 0.0  # recent realised slippage against the arrival price
    latency_ms: float = 0.0  # recent median order latency
    health: Health = "ok"
    time_ns: int = 0  # when the venue's book was as quoted (0: the venue does not say)

    def price(self, side: Side) -> float:
        """Return the price the order would meet: the ask to buy, the bid to sell, else the last."""
        quote = self.ask if side == "buy" else self.bid
        return quote if quote > 0.0 and math.isfinite(quote) else self.last

    def mid(self) -> float:
        """Return the mid price (the last trade when the book is one-sided or missing)."""
        if self.bid > 0.0 and self.ask > 0.0 and math.isfinite(self.bid + self.ask):
            return (self.bid + self.ask) / 2.0
        return self.last


@dataclass(frozen=True, slots=True)
class RouterParams:
    """How the router weighs venues (from `routing` settings)."""

    latency_bps_per_ms: float = 0.01
    degraded_penalty_bps: float = 10.0
    split: bool = True
    max_legs: int = 3

    @classmethod
    def from_config(cls, config: RoutingConfig) -> RouterParams:
        """Return the router's weights from the `routing` settings."""
        return cls(config.latency_bps_per_ms, config.degraded_penalty_bps, config.split,
                   config.max_legs)  # fmt: skip

    def __post_init__(self) -> None:
        if self.latency_bps_per_ms < 0 or self.degraded_penalty_bps < 0:
            raise UserInputError("routing costs (latency_bps_per_ms, degraded_penalty) must be ≥ 0")
        if self.max_legs < 1:
            raise UserInputError(f"routing max_legs must be at least 1, got {self.max_legs}")


@dataclass(frozen=True, slots=True)
class VenueCost:
    """One venue's expected all-in cost of the order and what came of it."""

    venue: str
    price: float
    price_bps: float
    fee_bps: float
    slippage_bps: float
    latency_bps: float
    penalty_bps: float
    all_in_bps: float  # inf for a venue that cannot be used
    quantity: float  # what it was given (0: none)
    why: str

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as plain data (inf as None)."""
        return {
            name: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for name, v in (
                ("venue", self.venue), ("price", self.price), ("price_bps", self.price_bps),
                ("fee_bps", self.fee_bps), ("slippage_bps", self.slippage_bps),
                ("latency_bps", self.latency_bps), ("penalty_bps", self.penalty_bps),
                ("all_in_bps", self.all_in_bps), ("quantity", self.quantity), ("why", self.why),
            )
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Route:
    """Where an order goes: its legs (venue, quantity), what stays unrouted, every venue's cost."""

    side: Side
    quantity: float
    reference: float  # the best mid across venues: what costs are measured from
    legs: tuple[tuple[str, float], ...]
    unrouted: float
    venues: tuple[VenueCost, ...]  # cheapest first

    @property
    def expected_bps(self) -> float:
        """Return the quantity-weighted all-in cost of the legs (NaN with none)."""
        cost = {v.venue: v.all_in_bps for v in self.venues}
        routed = sum(q for _, q in self.legs)
        return sum(cost[v] * q for v, q in self.legs) / routed if routed else math.nan

    def to_dict(self) -> dict[str, Any]:
        """Return the route as plain data (recorded on the order)."""
        return {"side": self.side, "quantity": self.quantity, "reference": self.reference,
                "legs": [list(leg) for leg in self.legs], "unrouted": self.unrouted,
                "expected_bps": None if math.isnan(self.expected_bps) else self.expected_bps,
                "venues": [v.to_dict() for v in self.venues]}  # fmt: skip


def route(
    side: Side, quantity: float, quotes: Sequence[VenueQuote], params: RouterParams | None = None
) -> Route:
    """Return where an order of `quantity` goes among the venues quoting the instrument.

    >>> a = VenueQuote("alpha", bid=99.9, ask=100.1, last=100.0, fee_bps=10, min_qty=0.001,
    ...                available=5.0)
    >>> b = VenueQuote("beta", bid=99.95, ask=100.05, last=100.0, fee_bps=2, min_qty=0.001,
    ...                available=1.0)
    >>> r = route("buy", 3.0, [a, b])
    >>> r.legs, [round(v.all_in_bps, 2) for v in r.venues]
    ((('beta', 1.0), ('alpha', 2.0)), [7.0, 20.0])
    """
    if side not in ("buy", "sell"):
        raise UserInputError(f"side must be buy or sell, got {side!r}")
    if not quantity > 0.0:
        raise UserInputError(f"an order to route needs a positive quantity, got {quantity}")
    if not quotes:
        raise UserInputError("no venue quotes the instrument: nothing to route to")
    params = params or RouterParams()
    mids = [q.mid() for q in quotes if q.health != "down" and q.mid() > 0.0]
    if not mids:
        raise UserInputError("no venue that is up has a price for the instrument")
    reference = max(mids) if side == "sell" else min(mids)  # the best mid for this side
    sign = 1.0 if side == "buy" else -1.0
    costs: list[tuple[float, int]] = []
    figures: list[dict[str, Any]] = []
    for i, q in enumerate(quotes):
        price = q.price(side)
        price_bps = sign * (price - reference) / reference * 1e4 if price > 0 else math.inf
        latency_bps = q.latency_ms * params.latency_bps_per_ms
        penalty = params.degraded_penalty_bps if q.health == "degraded" else 0.0
        total = price_bps + q.fee_bps + q.slippage_bps + latency_bps + penalty
        why = ""
        if q.health == "down":
            total, why = math.inf, "down: skipped until it recovers"
        elif not price > 0 or not math.isfinite(total):
            total, why = math.inf, "no price"
        elif q.available < q.min_qty or q.available <= 0.0:
            total, why = math.inf, f"can take {q.available:g}, below its minimum {q.min_qty:g}"
        costs.append((total, i))
        figures.append({"venue": q.venue, "price": price, "price_bps": price_bps,
                        "fee_bps": q.fee_bps, "slippage_bps": q.slippage_bps,
                        "latency_bps": latency_bps, "penalty_bps": penalty,
                        "all_in_bps": total, "why": why})  # fmt: skip
    costs.sort()
    given = _allocate(quantity, costs, quotes, params, figures)
    legs = tuple((quotes[i].venue, given[i]) for _, i in costs if given[i] > 0.0)
    routed = sum(q for _, q in legs)
    venues = tuple(VenueCost(**figures[i], quantity=given[i]) for _, i in costs)
    return Route(side, quantity, reference, legs, max(quantity - routed, 0.0), venues)


def _allocate(
    quantity: float,
    costs: list[tuple[float, int]],
    quotes: Sequence[VenueQuote],
    params: RouterParams,
    figures: list[dict[str, Any]],
) -> list[float]:
    """Give the order to the cheapest usable venues in turn; say why each got what it got."""
    given = [0.0] * len(quotes)
    usable = [i for cost, i in costs if math.isfinite(cost)]
    if not params.split:
        whole = next((i for i in usable if quotes[i].available >= quantity), None)
        for i in usable:
            if i == whole:
                given[i], figures[i]["why"] = quantity, "cheapest that can take it all"
            elif whole is None:
                figures[i]["why"] = f"can take {quotes[i].available:g} of {quantity:g}; no split"
            else:
                figures[i]["why"] = "dearer"
        return given
    left = quantity
    for i in usable:
        if left <= 0.0 or sum(g > 0 for g in given) >= params.max_legs:
            figures[i]["why"] = "dearer" if left <= 0.0 else f"beyond max_legs {params.max_legs}"
            continue
        take = min(left, quotes[i].available)
        if take < quotes[i].min_qty:
            figures[i]["why"] = f"{take:g} left is below its minimum {quotes[i].min_qty:g}"
            continue
        given[i], left = take, left - take
        whole = take >= quantity
        figures[i]["why"] = "cheapest, takes it all" if whole else f"takes {take:g} it can hold"
    return given

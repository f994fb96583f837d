"""The router and venue quality: the cheaper all-in venue wins; flow moves when a venue degrades."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reinforcetrade.agents.routing import RouterParams, VenueQuote, route
from reinforcetrade.agents.venue_quality import QualityParams, VenueQuality, VenueStats
from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError

SECOND = 1_000_000_000


def quote(venue: str, ask: float, fee: float, **kw: object) -> VenueQuote:
    fields: dict[str, object] = {"bid": ask - 0.1, "ask": ask, "last": ask - 0.05,
                                 "fee_bps": fee, "min_qty": 0.01, "available": 10.0}  # fmt: skip
    return VenueQuote(venue, **(fields | kw))  # type: ignore[arg-type]


# -- the all-in cost ---------------------------------------------------------------------------


def test_the_cheaper_all_in_venue_gets_the_order_with_hand_computed_figures() -> None:
    a = quote("alpha", ask=100.10, fee=2.0)  # mid 100.05
    b = quote("beta", ask=100.05, fee=10.0, slippage_bps=1.5, latency_ms=50.0)  # mid 100.00
    r = route("buy", 1.0, [a, b], RouterParams(latency_bps_per_ms=0.02))
    assert r.reference == 100.0  # the best (lowest) mid to buy at
    by = {v.venue: v for v in r.venues}
    assert by["alpha"].price_bps == pytest.approx(10.0)
    assert by["alpha"].all_in_bps == pytest.approx(12.0)
    assert by["beta"].price_bps == pytest.approx(5.0)
    assert by["beta"].latency_bps == pytest.approx(1.0)
    assert by["beta"].all_in_bps == pytest.approx(5.0 + 10.0 + 1.5 + 1.0)
    assert r.legs == (("alpha", 1.0),)
    assert r.venues[0].venue == "alpha"
    assert by["alpha"].why == "cheapest, takes it all"
    assert by["beta"].why == "dearer"
    assert r.expected_bps == pytest.approx(12.0)
    assert r.to_dict()["venues"][0]["all_in_bps"] == pytest.approx(12.0)


def test_selling_meets_the_bid_and_the_highest_mid_is_the_reference() -> None:
    a = quote("alpha", ask=100.2, fee=5.0)  # bid 100.1, mid 100.15
    b = quote("beta", ask=100.0, fee=1.0)  # bid 99.9, mid 99.95
    r = route("sell", 2.0, [a, b])
    assert r.reference == pytest.approx(100.15)
    by = {v.venue: v for v in r.venues}
    assert by["alpha"].price_bps == pytest.approx(-(100.1 - 100.15) / 100.15 * 1e4)
    assert r.legs == (("alpha", 2.0),)


def test_what_the_cheapest_cannot_hold_goes_to_the_next() -> None:
    a = quote("alpha", ask=100.0, fee=1.0, available=0.4)
    b = quote("beta", ask=100.1, fee=1.0, available=5.0)
    c = quote("gamma", ask=100.2, fee=1.0)
    r = route("buy", 1.0, [c, b, a])
    assert r.legs == (("alpha", 0.4), ("beta", 0.6))
    assert r.unrouted == 0.0
    assert [v.venue for v in r.venues] == ["alpha", "beta", "gamma"]
    one = route("buy", 1.0, [c, b, a], RouterParams(split=False))
    assert one.legs == (("beta", 1.0),)  # the cheapest that can take it all
    assert {v.venue: v.why for v in one.venues}["alpha"] == "dearer"
    capped = route("buy", 20.0, [c, b, a], RouterParams(max_legs=2))
    assert capped.legs == (("alpha", 0.4), ("beta", 5.0))
    assert capped.unrouted == pytest.approx(14.6)
    assert "beyond max_legs 2" in {v.venue: v.why for v in capped.venues}["gamma"]


def test_minimum_sizes_and_empty_balances_are_respected() -> None:
    a = quote("alpha", ask=100.0, fee=1.0, available=0.995, min_qty=0.01)
    b = quote("beta", ask=100.1, fee=1.0, min_qty=0.01)
    r = route("buy", 1.0, [a, b])
    assert r.legs == (("alpha", 0.995),)  # 0.005 left is below beta's minimum
    assert r.unrouted == pytest.approx(0.005)
    assert "below its minimum" in {v.venue: v.why for v in r.venues}["beta"]
    empty = route("buy", 1.0, [quote("alpha", ask=100.0, fee=1.0, available=0.0), b])
    assert empty.legs == (("beta", 1.0),)
    assert math.isinf({v.venue: v for v in empty.venues}["alpha"].all_in_bps)


def test_a_down_venue_is_skipped_and_a_degraded_one_pays_a_penalty() -> None:
    a = quote("alpha", ask=100.0, fee=1.0)
    b = quote("beta", ask=100.05, fee=1.0)
    assert route("buy", 1.0, [a, b]).legs == (("alpha", 1.0),)
    degraded = route("buy", 1.0, [quote("alpha", ask=100.0, fee=1.0, health="degraded"), b])
    assert degraded.legs == (("beta", 1.0),)  # 5 bps dearer, but alpha pays 10 bps of penalty
    down = route("buy", 1.0, [quote("alpha", ask=100.0, fee=1.0, health="down"), b])
    assert down.legs == (("beta", 1.0),)
    assert {v.venue: v.why for v in down.venues}["alpha"] == "down: skipped until it recovers"
    with pytest.raises(UserInputError, match="no venue that is up"):
        route("buy", 1.0, [quote("alpha", ask=100.0, fee=1.0, health="down")])


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("hold", 1.0), "buy or sell"),
        (("buy", 0.0), "positive quantity"),
        (("buy", 1.0), "no venue"),
    ],
)
def test_bad_orders_are_refused(args: tuple[str, float], why: str) -> None:
    quotes = [] if why == "no venue" else [quote("alpha", ask=100.0, fee=1.0)]
    with pytest.raises(UserInputError, match=why):
        route(args[0], args[1], quotes)  # type: ignore[arg-type]


venues = st.builds(
    lambda i, ask, fee, avail, lo, health: quote(
        f"v{i}", ask=ask, fee=fee, available=avail, min_qty=lo, health=health
    ),
    st.integers(0, 10**6),
    st.floats(50.0, 150.0),
    st.floats(0.0, 20.0),
    st.floats(0.0, 10.0),
    st.floats(0.0, 0.5),
    st.sampled_from(["ok", "ok", "degraded", "down"]),
)


@settings(max_examples=200, deadline=None)
@given(
    books=st.lists(venues, min_size=1, max_size=6, unique_by=lambda q: q.venue),
    qty=st.floats(0.001, 30.0), side=st.sampled_from(["buy", "sell"]), legs=st.integers(1, 4),
)  # fmt: skip
def test_a_route_never_overfills_or_uses_what_it_may_not(
    books: list[VenueQuote], qty: float, side: str, legs: int
) -> None:
    if all(q.health == "down" for q in books):
        return
    r = route(side, qty, books, RouterParams(max_legs=legs))  # type: ignore[arg-type]
    by = {q.venue: q for q in books}
    routed = sum(q for _, q in r.legs)
    assert routed <= qty * (1 + 1e-12)
    assert r.unrouted == pytest.approx(max(qty - routed, 0.0), abs=1e-9)
    assert len(r.legs) <= legs
    cost = {v.venue: v.all_in_bps for v in r.venues}
    for venue, q in r.legs:
        assert by[venue].health != "down"
        assert by[venue].min_qty <= q <= by[venue].available
        assert math.isfinite(cost[venue])
    assert [cost[v] for v, _ in r.legs] == sorted(cost[v] for v, _ in r.legs)


@settings(max_examples=100, deadline=None)
@given(
    avail=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=5), qty=st.floats(0.001, 30.0),
    side=st.sampled_from(["buy", "sell"]),
)  # fmt: skip
def test_with_no_minimums_a_route_fills_all_that_the_venues_can_hold(
    avail: list[float], qty: float, side: str
) -> None:
    books = [quote(f"v{i}", ask=100.0 + i, fee=1.0, available=a, min_qty=0.0)
             for i, a in enumerate(avail)]  # fmt: skip
    r = route(side, qty, books, RouterParams(max_legs=len(books)))  # type: ignore[arg-type]
    routed = sum(q for _, q in r.legs)
    assert routed == pytest.approx(min(qty, sum(avail)))


# -- venue quality -----------------------------------------------------------------------------


def test_venue_figures_match_hand_computed_ones() -> None:
    quality = VenueQuality(QualityParams(alpha=0.5, window=4))
    quality.fill("alpha", side="buy", price=100.1, arrival=100.0, filled=1.0, asked=1.0,
                 latency_ms=10.0, time=0)  # fmt: skip
    quality.fill("alpha", side="sell", price=99.8, arrival=100.0, filled=0.5, asked=1.0,
                 latency_ms=30.0, time=1)  # fmt: skip
    quality.reject("alpha", time=2)
    s = quality.stats("alpha")
    assert s.slippage_bps == pytest.approx(0.5 * 10.0 + 0.5 * 20.0)  # 10 bps, then 20 bps
    assert s.fill_ratio == pytest.approx(1.5 / 2.0)
    assert s.reject_rate == pytest.approx(1 / 3)
    assert (s.orders, s.fills, s.rejects, s.errors) == (3, 2, 1, 0)
    assert s.latency_p50_ms == pytest.approx(20.0)
    assert s.latency_p99_ms == pytest.approx(10.0 + 0.99 * 20.0)
    for k, lat in enumerate([40.0, 50.0, 60.0]):  # the window keeps the last 4 latencies
        quality.fill("alpha", side="buy", price=100.0, arrival=100.0, filled=1.0, asked=1.0,
                     latency_ms=lat, time=3 + k)  # fmt: skip
    assert quality.stats("alpha").latency_p50_ms == pytest.approx(45.0)


def test_a_slipping_venue_is_degraded_and_flow_moves_until_it_recovers() -> None:
    quality = VenueQuality(QualityParams(alpha=0.5, max_slippage_bps=20.0))
    a, b = quote("alpha", ask=100.0, fee=1.0), quote("beta", ask=100.05, fee=1.0)

    def routed_to(t: int) -> str:
        books = [quality.annotate(q, time=t)[0] for q in (a, b)]
        return route("buy", 1.0, books).legs[0][0]

    assert routed_to(0) == "alpha"
    change = None
    for t in range(1, 4):  # 40 bps of slippage each time: the EWMA passes 20
        change = quality.fill("alpha", side="buy", price=100.4, arrival=100.0, filled=1.0,
                              asked=1.0, latency_ms=5.0, time=t) or change  # fmt: skip
    assert change is not None
    assert (change.old, change.new) == ("ok", "degraded")
    assert "slippage" in change.why
    assert routed_to(4) == "beta"
    back = None
    for t in range(5, 12):  # clean fills: the EWMA falls below 80 % of the limit
        back = quality.fill("alpha", side="buy", price=100.0, arrival=100.0, filled=1.0,
                            asked=1.0, latency_ms=5.0, time=t) or back  # fmt: skip
    assert back is not None
    assert (back.old, back.new) == ("degraded", "ok")
    assert quality.stats("alpha").slippage_bps <= 16.0


def test_a_failing_venue_goes_down_cools_off_and_comes_back() -> None:
    quality = VenueQuality(QualityParams(down_after_errors=3, cooldown_s=60.0))
    assert quality.error("alpha", time=0) is None
    assert quality.error("alpha", time=1) is None
    down = quality.error("alpha", time=2)
    assert down is not None
    assert (down.new, down.why) == ("down", "3 failed calls in a row")
    assert quality.health("alpha", time=59 * SECOND) == ("down", None)
    health, change = quality.health("alpha", time=2 + 60 * SECOND)
    assert health == "degraded"
    assert change is not None
    assert change.why == "cool-down over: trying again"
    ok = quality.fill("alpha", side="buy", price=100.0, arrival=100.0, filled=1.0, asked=1.0,
                      latency_ms=5.0, time=3 + 60 * SECOND)  # fmt: skip
    assert ok is not None
    assert (ok.old, ok.new) == ("degraded", "ok")


def test_a_rejecting_venue_is_degraded_once_there_are_enough_orders() -> None:
    quality = VenueQuality(QualityParams(max_reject_rate=0.2, min_orders=5))
    changes = [quality.reject("alpha", time=t) for t in range(4)]
    assert changes == [None] * 4  # four orders: too few to judge
    change = quality.reject("alpha", time=4)
    assert change is not None
    assert change.new == "degraded"
    assert "reject rate 100%" in change.why
    with pytest.raises(UserInputError, match="0 ≤ filled ≤ asked"):
        quality.fill("alpha", side="buy", price=100.0, arrival=100.0, filled=2.0, asked=1.0,
                     latency_ms=1.0, time=5)  # fmt: skip


def test_the_routing_settings_build_the_same_defaults_and_carry_changes() -> None:
    config = Settings().routing
    assert RouterParams.from_config(config) == RouterParams()
    assert QualityParams.from_config(config) == QualityParams()
    tuned = Settings().with_params({"routing.max_legs": 1, "routing.cooldown_s": 5.0}).routing
    assert RouterParams.from_config(tuned).max_legs == 1
    assert QualityParams.from_config(tuned).cooldown_s == 5.0


def test_the_execution_agent_routes_feeds_back_and_moves_flow_off_a_slipping_venue() -> None:
    from reinforcetrade.agents.environment import EnvironmentAgent
    from reinforcetrade.agents.execution import ExecutionAgent
    from reinforcetrade.core.codes import Side
    from reinforcetrade.core.records import Fill

    environment = EnvironmentAgent()
    config = Settings().with_params({"routing.max_slippage_bps": 20.0, "routing.alpha": 0.5})
    agent = ExecutionAgent(environment, config.routing)
    books = [quote("alpha", ask=100.0, fee=1.0), quote("beta", ask=100.05, fee=1.0)]
    assert agent.route(Side.BUY, 1.0, books, time=0).legs == (("alpha", 1.0),)
    for t in range(1, 4):  # alpha fills 40 bps above the arrival price, three times
        fill = Fill(ts=t, symbol="X", side=Side.BUY, quantity=1.0, price=100.4, commission=0.0,
                    slippage=0.4, latency_ms=20.0, decision=0)  # fmt: skip
        assert agent.record(fill, 100.0, 100.0, venue="alpha") == pytest.approx(40.0)
    assert environment.cost_estimate_bps > 0.0  # the same fills fed the environment's estimate
    (change,) = agent.changes
    assert (change.venue, change.old, change.new) == ("alpha", "ok", "degraded")
    moved = agent.route(Side.BUY, 1.0, books, time=4)
    assert moved.legs == (("beta", 1.0),)
    by = {v.venue: v for v in moved.venues}
    assert by["alpha"].slippage_bps == pytest.approx(agent.venues.stats("alpha").slippage_bps)
    assert by["alpha"].penalty_bps == config.routing.degraded_penalty_bps
    agent.failed("beta", time=5)
    agent.rejected("beta", time=6)
    assert agent.venues.stats("beta").errors == 1
    assert agent.venues.stats("beta").rejects == 1


def test_a_restored_venue_keeps_its_figures_and_comes_back_degraded_from_down() -> None:
    quality = VenueQuality(QualityParams(window=10, cooldown_s=60.0))
    recorded = VenueStats("beta", orders=30, fills=20, rejects=4, errors=6, fill_ratio=0.8,
                          reject_rate=1.0, slippage_bps=12.5, latency_p50_ms=40.0,
                          latency_p99_ms=90.0, health="down")  # fmt: skip
    quality.restore(recorded, latencies=[float(x) for x in range(1, 21)], filled_quantity=4.0)
    now = quality.stats("beta")
    assert (now.orders, now.fills, now.rejects, now.errors) == (30, 20, 4, 6)
    assert now.slippage_bps == 12.5
    assert now.fill_ratio == pytest.approx(0.8)
    assert now.reject_rate == 1.0  # the last 10 orders: the 10 that failed
    assert now.latency_p50_ms == pytest.approx(np.percentile(np.arange(11.0, 21.0), 50))
    assert now.health == "degraded"  # its cool-down was not recorded: tried again, at a penalty
    quality.fill("beta", side="buy", price=100.0, arrival=100.0, filled=1.0, asked=1.0,
                 latency_ms=5.0, time=0)  # fmt: skip
    assert quality.stats("beta").fill_ratio == pytest.approx(5.0 / 6.0)  # 4 of 5, then 1 of 1

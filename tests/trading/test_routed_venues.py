"""Routing across two fake venues on 127.0.0.1 that the real ccxt client trades on.

Venue "alpha" quotes 50,000 with a 10 bps taker fee; "beta" quotes 49,990 with 2 bps: beta is
the cheaper all-in venue for a buy. Orders go there; when beta starts failing or slipping, flow
moves to alpha; the per-venue figures in the journal match figures computed by hand from the
venues' own fills.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import numpy as np
import pytest

import live_support as ls
from fakes.binance import AcceptThenStall, DropBefore, Maintenance, Reject
from fakes.binance_trading import FakeBinanceExchange
from reinforcetrade.agents.execution import Router
from reinforcetrade.config import Settings
from reinforcetrade.config.sections import RoutingConfig
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.simulation.account import COST_BPS, LATENCY
from reinforcetrade.storage import Journal
from reinforcetrade.storage.rows import OrderRow
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.broker import OrderRequest
from reinforcetrade.trading.ccxt_broker import CcxtBroker
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.events import Alert
from reinforcetrade.trading.feeds import ReplayFeed
from reinforcetrade.trading.live import ReconciliationError
from reinforcetrade.trading.orders import OrderManager
from reinforcetrade.trading.venues import RoutedBroker

pytestmark = pytest.mark.network

SYMBOL = "BTC/USDT"
ORDER = "POST /api/v3/order"
START_NS = 1_767_225_600 * 10**9  # 2026-01-01


class Desk:
    """Two venues, a routed broker over them, an order manager journalling its orders."""

    def __init__(
        self,
        alpha: FakeBinanceExchange,
        beta: FakeBinanceExchange,
        journal: Journal,
        latency_bps_per_ms: float = 0.0,  # none: the costs by hand do not wait on the machine
    ):
        self.alpha, self.beta, self.journal = alpha, beta, journal
        config = RoutingConfig(cooldown_s=3_600, latency_bps_per_ms=latency_bps_per_ms)
        self.router = Router(config)
        self.broker = RoutedBroker(
            [venue_broker(alpha, "alpha", 10.0), venue_broker(beta, "beta", 2.0)],
            self.router,
            clock=alpha.clock,
        )
        run = journal.start_run("live", name="routing")
        self.orders = OrderManager(self.broker, journal, run, prefix="l")
        self.broker.journal_to(journal, run)
        self.changes: list[str] = []
        self.broker.on_change = lambda c: self.changes.append(f"{c.venue}:{c.old}->{c.new}")
        self.run = run

    def buy(self, qty: float) -> str:
        request = OrderRequest(self.orders.client_id("e"), SYMBOL, "buy", "market", qty)
        result = self.orders.submit(request)
        self.orders.sync_fills(SYMBOL)
        return result.order.client_order_id


def venue_broker(venue: FakeBinanceExchange, name: str, fee_bps: float) -> CcxtBroker:
    keys = {"apiKey": ls.CANARY_KEY, "secret": ls.CANARY_SECRET}
    exchange = ccxt.binance(venue.ccxt_config(**keys, timeout=1_500, enableRateLimit=False))
    return CcxtBroker(exchange, name=name, fee_bps=fee_bps, sleep=lambda _s: None)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    clock = FixedClock(START_NS)
    with (
        FakeBinanceExchange(clock, prices={SYMBOL: 50_000}, commission="0.001",
                            balances={"USDT": 100_000}) as alpha,
        FakeBinanceExchange(clock, prices={SYMBOL: 49_990}, commission="0.0002",
                            balances={"USDT": 100_000}) as beta,
        Journal(f"sqlite:///{tmp_path / 'routing.db'}", clock=clock) as journal,
    ):  # fmt: skip
        yield Desk(alpha, beta, journal)


def route_of(row: OrderRow) -> dict[str, Any]:
    assert row.route is not None, f"order {row.client_order_id} has no route"
    return row.route


def order_row(desk: Desk, cid: str) -> OrderRow:
    return desk.journal.orders_by_client_id([cid])[cid]


def test_an_order_goes_to_the_cheaper_all_in_venue_and_the_route_is_recorded(desk: Desk) -> None:
    cid = desk.buy(0.1)
    (sent,) = desk.beta.orders_sent()
    assert sent["newClientOrderId"] == f"{cid}.1"  # the child carries the parent's id
    assert desk.alpha.orders_sent() == []
    row = order_row(desk, cid)
    assert row.status == "filled"
    assert row.venue == "beta"
    route = route_of(row)
    costs = {v["venue"]: v for v in route["venues"]}
    # best mid: beta's 49,990 (its book is last ± 0.01); beta's ask is 0.01 above it
    assert costs["beta"]["fee_bps"] == 2.0
    assert costs["alpha"]["fee_bps"] == 10.0
    assert costs["beta"]["price_bps"] == pytest.approx(0.01 / 49_990 * 1e4)
    assert costs["alpha"]["price_bps"] == pytest.approx(10.01 / 49_990 * 1e4)
    assert costs["beta"]["why"] == "cheapest, takes it all"
    assert route["children"] == [["beta", f"{cid}.1", 0.1, 49_990.01]]
    fills = desk.journal.read_table("fills", run_id=desk.run)
    assert list(fills["exchange"]) == ["beta"]
    assert list(fills["client_order_id"]) == [cid]  # booked under the parent
    assert desk.orders.positions.position(SYMBOL).quantity == pytest.approx(0.1)
    assert float(desk.beta.balance("BTC")[0]) == pytest.approx(0.1 * (1 - 0.0002))  # fee in BTC


def test_an_order_too_big_for_one_venue_is_split_and_positions_count_both(desk: Desk) -> None:
    desk.beta.engine.deposit("USDT", Decimal(-99_000))  # beta holds 1,000 USDT: ~0.02 BTC
    cid = desk.buy(0.1)
    row = order_row(desk, cid)
    legs = {venue: qty for venue, _, qty, _ in route_of(row)["children"]}
    assert set(legs) == {"beta", "alpha"}
    assert legs["beta"] == pytest.approx(1_000 / (49_990.01 * (1 + 2e-4)))
    assert legs["beta"] + legs["alpha"] == pytest.approx(0.1)
    assert row.venue == "beta,alpha"
    assert row.status == "filled"
    fills = desk.journal.read_table("fills", run_id=desk.run)
    assert sorted(fills["exchange"]) == ["alpha", "beta"]
    bought = sum(float(f.qty) for v in (desk.alpha, desk.beta) for f in v.fills())
    assert desk.orders.positions.position(SYMBOL).quantity == pytest.approx(bought, rel=1e-9)
    held = sum(float(v.balance("BTC")[0]) for v in (desk.alpha, desk.beta))
    assert desk.broker.positions()["BTC"] == pytest.approx(held, rel=1e-9)  # both venues


def test_a_venue_that_fails_loses_the_flow_and_is_skipped_once_down(desk: Desk) -> None:
    desk.beta.script(ORDER, Maintenance(), Maintenance(), Maintenance())
    first = desk.buy(0.05)
    # beta did not take it (503): re-routed to alpha within the same order
    assert order_row(desk, first).venue == "beta,alpha"
    assert order_row(desk, first).status == "filled"
    desk.buy(0.05)
    desk.buy(0.05)  # beta's third failure in a row: down
    assert desk.changes == ["beta:ok->down"]
    fourth = desk.buy(0.05)
    row = order_row(desk, fourth)
    assert row.venue == "alpha"
    why = {v["venue"]: v["why"] for v in route_of(row)["venues"]}
    assert why["beta"] == "down: skipped until it recovers"
    assert len(desk.beta.orders_sent()) == 3  # never asked again while down
    (beta,) = [s for s in desk.journal.venue_stats(desk.run) if s.venue == "beta"]
    assert (beta.errors, beta.fills, beta.health) == (3, 0, "down")


def test_a_lost_answer_is_looked_up_never_sent_twice(desk: Desk) -> None:
    desk = Desk(desk.alpha, desk.beta, desk.journal, latency_bps_per_ms=0.01)
    desk.beta.script(ORDER, DropBefore())  # the connection drops before beta hears of it
    dropped = desk.buy(0.05)
    row = order_row(desk, dropped)
    assert row.venue == "beta,alpha"  # absent at beta: alpha
    assert row.status == "filled"
    assert (len(desk.beta.fills()), len(desk.alpha.fills())) == (0, 1)
    desk.beta.script(ORDER, AcceptThenStall(2.0))  # beta fills it, the answer times out
    cid = desk.buy(0.05)
    row = order_row(desk, cid)
    assert row.status == "filled"
    assert row.venue == "beta"  # found at beta: not re-routed
    assert (len(desk.beta.fills()), len(desk.alpha.fills())) == (1, 1)
    (beta,) = [s for s in desk.journal.venue_stats(desk.run) if s.venue == "beta"]
    assert (beta.errors, beta.fills) == (2, 1)  # both lost answers count against beta
    assert (beta.latency_p50_ms or 0.0) > 1_000  # the timeout and the look-up: beta is now slow
    third = order_row(desk, desk.buy(0.05))
    assert third.venue == "alpha"  # 15 bps of latency: dearer


def test_a_venue_that_starts_slipping_loses_the_flow(desk: Desk) -> None:
    desk.buy(0.05)
    desk.beta.engine.market_slippage = Decimal("0.003")  # beta now fills 30 bps worse
    venues = [order_row(desk, desk.buy(0.05)).venue for _ in range(8)]
    # by hand: beta costs 2 bps + its slippage EWMA, alpha 12 bps (2 bps dearer, 10 bps fee)
    arrival = 49_990.01
    ewma = (float(desk.beta.fills()[0].price) - arrival) / arrival * 1e4
    slipped = (round(49_990 * 1.003, 2) - arrival) / arrival * 1e4
    expected = []
    for _ in range(8):
        beta = 0.01 / 49_990 * 1e4 + 2.0 + ewma
        alpha = 10.01 / 49_990 * 1e4 + 10.0
        expected.append("beta" if beta < alpha else "alpha")
        if beta < alpha:
            ewma = 0.9 * ewma + 0.1 * slipped
    assert venues == expected
    assert expected[:4] == ["beta"] * 4  # flow moved
    assert set(expected[4:]) == {"alpha"}
    last = order_row(desk, desk.journal.read_table("orders")["client_order_id"].iloc[-1])
    costs = {v["venue"]: v for v in route_of(last)["venues"]}
    assert costs["beta"]["slippage_bps"] == pytest.approx(ewma)


def test_rejections_degrade_a_venue_and_the_figures_match_the_venues_fills(desk: Desk) -> None:
    insufficient = Reject(-2010, "Account has insufficient balance for requested action.")
    desk.beta.script(ORDER, None, insufficient, None, insufficient, None)
    for _ in range(5):
        desk.buy(0.02)
    (beta,) = [s for s in desk.journal.venue_stats(desk.run) if s.venue == "beta"]
    fills = desk.beta.fills()
    assert (beta.orders, beta.fills, beta.rejects, beta.errors) == (5, 3, 2, 0)
    assert beta.reject_rate == pytest.approx(2 / 5)
    assert beta.fill_ratio == pytest.approx(1.0)  # what it took, it filled
    # slippage against the arrival price (beta's ask when routed), an EWMA with alpha 0.1
    journal_fills = desk.journal.read_table("fills", run_id=desk.run)
    mine = journal_fills[journal_fills["exchange"] == "beta"].sort_values("time")
    expected = math.nan
    for f in fills:
        bps = (float(f.price) - 49_990.01) / 49_990.01 * 1e4
        expected = bps if math.isnan(expected) else 0.9 * expected + 0.1 * bps
    assert beta.slippage_bps == pytest.approx(expected)
    latencies = mine["latency_ms"].to_numpy(dtype=float)
    assert beta.latency_p50_ms == pytest.approx(np.percentile(latencies, 50))
    assert beta.latency_p99_ms == pytest.approx(np.percentile(latencies, 99))
    assert beta.health == "degraded"  # 40 % rejected > 20 %, after 5 orders
    assert desk.changes == ["beta:ok->degraded"]
    orders = desk.journal.read_table("orders", run_id=desk.run).sort_values("created_at")
    assert list(orders["status"]) == ["filled"] * 5  # what beta refused, alpha took
    assert list(orders["venue"]) == ["beta", "beta,alpha", "beta", "beta,alpha", "beta"]


def test_a_restart_keeps_each_venues_record(desk: Desk) -> None:
    insufficient = Reject(-2010, "Account has insufficient balance for requested action.")
    desk.beta.script(ORDER, None, insufficient, None, insufficient, None)
    for _ in range(5):
        desk.buy(0.02)
    before = desk.router.stats("beta")
    again = Desk(desk.alpha, desk.beta, desk.journal)  # a fresh router, the same journal run
    again.broker.journal_to(desk.journal, desk.run)
    after = again.router.stats("beta")
    for name in ("orders", "fills", "rejects", "errors", "health"):
        assert getattr(after, name) == getattr(before, name), name
    for name in ("fill_ratio", "reject_rate", "slippage_bps", "latency_p50_ms", "latency_p99_ms"):
        assert getattr(after, name) == pytest.approx(getattr(before, name)), name
    route = again.broker.router.route("buy", 0.02, [
        again.broker.venues["beta"].quote(SYMBOL, "buy")], time=START_NS)  # fmt: skip
    assert route.venues[0].penalty_bps == 10.0  # still degraded: still paying for it


# -- the live engine on both venues ------------------------------------------------------------


class BothVenues:
    """What `live_support.drive` needs of a venue: both trade each bar, beta 10 below alpha."""

    def __init__(self, alpha: FakeBinanceExchange, beta: FakeBinanceExchange) -> None:
        self.alpha, self.beta, self.clock = alpha, beta, alpha.clock

    def set_price(self, symbol: str, price: float) -> None:
        self.alpha.set_price(symbol, round(price, 2))
        self.beta.set_price(symbol, round(price - 10, 2))


def live_engine(
    desk: Desk, name: str = "routed", alerts: list[Alert] | None = None, **routing: Any
) -> LiveEngine:
    settings = Settings(
        trading={"api_key": ls.CANARY_KEY, "api_secret": ls.CANARY_SECRET},
        # the choice must not wait on the machine's load
        routing={"latency_bps_per_ms": 0.0, **routing},
    )
    broker = RoutedBroker(
        [venue_broker(desk.alpha, "alpha", 10.0), venue_broker(desk.beta, "beta", 2.0)],
        Router(settings.routing),
        clock=desk.alpha.clock,
    )
    data = ls.market()
    live = LiveEngine(MultiAgentStrategy(settings=settings), ReplayFeed({SYMBOL: data}), broker,
                      desk.journal, desk.alpha.clock, mode="live", name=name,
                      alert=None if alerts is None else alerts.append)  # fmt: skip
    live.start()
    return live


@pytest.fixture
def engine_desk(tmp_path: Path) -> Iterator[Desk]:
    data = ls.market()
    clock = FixedClock(int(data.index[0].value))
    opening = round(float(data["open"].iloc[0]), 2)
    with (
        FakeBinanceExchange(clock, prices={SYMBOL: opening}, commission="0.001") as alpha,
        FakeBinanceExchange(clock, prices={SYMBOL: opening - 10}, commission="0.0002") as beta,
        Journal(f"sqlite:///{tmp_path / 'live.db'}", clock=clock) as journal,
    ):  # fmt: skip
        yield Desk(alpha, beta, journal)


def btc(venue: FakeBinanceExchange) -> float:
    free, locked = venue.balance("BTC")
    return float(free + locked)


def test_the_live_engine_splits_an_entry_protects_each_venue_and_counts_one_position(
    engine_desk: Desk,
) -> None:
    desk = engine_desk
    desk.beta.engine.deposit("USDT", Decimal(-9_800))  # beta can take 200 USDT of it
    live = live_engine(desk)
    assert live.stepper.run.pf[0] == pytest.approx(10_200.0)  # cash: both venues' USDT
    ls.drive(live, BothVenues(desk.alpha, desk.beta), ls.market(), 0, ls.entry_bar() + 1)
    held = float(live.stepper.run.book.pos_f[0, 0])
    assert held == pytest.approx(btc(desk.alpha) + btc(desk.beta), rel=1e-9)  # one position
    assert btc(desk.alpha) > 0
    assert btc(desk.beta) > 0
    entries = desk.journal.read_table("orders", run_id=live.run_id)
    (entry,) = entries[entries["type"] == "market"].itertuples()
    assert entry.venue == "beta,alpha"
    assert entry.status == "filled"
    # the stop: one child per venue, each for what that venue holds
    stops = {v: [o for o in venue.orders() if o.type == "STOP_LOSS_LIMIT"]
             for v, venue in (("alpha", desk.alpha), ("beta", desk.beta))}  # fmt: skip
    for name, venue in (("alpha", desk.alpha), ("beta", desk.beta)):
        (stop,) = stops[name]
        assert float(stop.qty) == pytest.approx(btc(venue), abs=1e-5)
    # the 20 % cap counted the whole position: its value is at most 20 % of the equity
    equity = float(live.stepper.run.track.equity[ls.entry_bar()])
    assert held * float(ls.market()["close"].iloc[ls.entry_bar()]) <= 0.2 * equity * 1.01
    figures = {s.venue: s for s in desk.journal.venue_stats(live.run_id)}
    assert set(figures) == {"alpha", "beta"}
    assert figures["beta"].fills == figures["alpha"].fills == 1
    # the Environment Agent's cost estimate (what raises the tower's threshold) is fed by these
    # real fills: slippage from the decision's close and each child's measured latency
    fills = desk.journal.read_table("fills", run_id=live.run_id).sort_values("id")
    close = float(ls.market()["close"].iloc[ls.entry_bar()])
    alpha = live.strategy.settings.agents.environment.cost_feedback_alpha
    cost, latency = math.nan, math.nan
    for price, ms in zip(fills["price"], fills["latency_ms"], strict=True):
        bps = abs(float(price) - close) / close * 1e4
        cost = bps if math.isnan(cost) else (1 - alpha) * cost + alpha * bps
        latency = float(ms) if math.isnan(latency) else (1 - alpha) * latency + alpha * float(ms)
    pf = live.stepper.run.pf
    assert pf[COST_BPS] == pytest.approx(cost, rel=1e-9)
    assert pf[LATENCY] == pytest.approx(latency, rel=1e-9)
    live.shutdown("stopped")


def test_a_restart_reconciles_every_venue_apart(engine_desk: Desk) -> None:
    desk = engine_desk
    desk.beta.engine.deposit("USDT", Decimal(-9_800))
    first = live_engine(desk)
    ls.drive(first, BothVenues(desk.alpha, desk.beta), ls.market(), 0, ls.entry_bar() + 1)
    first.shutdown("stopped")
    position = float(first.stepper.run.book.pos_f[0, 0])
    again = live_engine(desk)  # nothing changed: the position and both stops stay
    assert float(again.stepper.run.book.pos_f[0, 0]) == pytest.approx(position)
    for venue in (desk.alpha, desk.beta):
        (stop,) = [o for o in venue.orders() if o.type == "STOP_LOSS_LIMIT"]
        assert stop.status == "NEW"
    again.shutdown("stopped")
    # beta's BTC moved to alpha by hand: the sum agrees, beta does not
    moved = Decimal(str(round(btc(desk.beta) / 2, 5)))
    for o in desk.beta.orders(open_only=True):
        desk.beta.engine.cancel(o.symbol, o.order_id, None)
    desk.beta.engine.deposit("BTC", -moved)
    desk.alpha.engine.deposit("BTC", moved)
    with pytest.raises(ReconciliationError, match="but beta holds"):
        live_engine(desk)


def test_a_venue_whose_book_cannot_be_read_goes_down_with_an_alert(engine_desk: Desk) -> None:
    desk = engine_desk
    alerts: list[Alert] = []
    live = live_engine(desk, alerts=alerts, down_after_errors=1)
    desk.beta.script("GET /api/v3/depth", *[Maintenance()] * 4)  # one quote's retried reads
    ls.drive(live, BothVenues(desk.alpha, desk.beta), ls.market(), 0, ls.entry_bar() + 1)
    (health,) = [a for a in alerts if a.kind == "venue_health"]
    assert health.message.startswith("beta is down (was ok): 1 failed calls in a row")
    entries = desk.journal.read_table("orders", run_id=live.run_id)
    assert list(entries.loc[entries["type"] == "market", "venue"]) == ["alpha"]  # beta sat out
    (beta,) = [s for s in desk.journal.venue_stats(live.run_id) if s.venue == "beta"]
    assert (beta.errors, beta.health) == (1, "down")
    live.shutdown("stopped")

"""Benchmark the router: one order's routing decision across 5 venues; prints one JSON line.

The decision is the Execution Agent's `route`: each venue's quote annotated with its recorded
execution quality (slippage EWMA, latency p50 over the last 200 orders, health — each venue has
a history of 200 fills), then the all-in cost of every venue, the ranking and the allocation
(split up to 3 legs), with every venue's figures and reason, as recorded on an order. Quotes
(prices, fees, balances) are drawn beforehand, so only the decision is timed, each call on its
own (`perf_counter_ns`).

Target: p99 ≤ 1 ms per decision (`meets_target`).

`broker_*`: the live path's own cost around that decision — `RoutedBroker.create_order` over 5
in-memory venues that quote and fill at once (quotes gathered, routed, the plan handed to the
journal hook, children sent, the parent's state summed, each venue's record updated): what the
engine adds to the venues' own round trips.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from common import machine
from reinforcetrade.agents.environment import EnvironmentAgent
from reinforcetrade.agents.execution import ExecutionAgent, Router
from reinforcetrade.agents.routing import VenueQuote
from reinforcetrade.core.codes import Side
from reinforcetrade.trading.broker import (
    BrokerFill,
    OrderRequest,
    OrderSide,
    OrderState,
)
from reinforcetrade.trading.venues import RoutedBroker, RoutedOrder


class InstantVenue:
    """A venue in memory: its quote is at hand and a market order fills whole at its ask/bid."""

    def __init__(self, quote: VenueQuote) -> None:
        self.name, self.book = quote.venue, quote
        self.orders: dict[str, OrderState] = {}

    def quote(self, symbol: str, side: OrderSide) -> VenueQuote:
        return self.book

    def create_order(self, request: OrderRequest) -> OrderState:
        price = self.book.price(request.side)
        state = OrderState(request.client_order_id, request.client_order_id, request.symbol,
                           "filled", request.quantity, price)  # fmt: skip
        self.orders[request.client_order_id] = state
        return state

    def fetch_order(self, symbol: str, client_order_id: str) -> OrderState:
        return self.orders[client_order_id]

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderState:
        return self.orders[client_order_id]

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        return []

    def fills(self, symbol: str, since_ns: int | None = None) -> list[BrokerFill]:
        return []

    def positions(self) -> dict[str, float]:
        return {}


def broker_times(rng: np.random.Generator, venues: int, orders: int) -> np.ndarray:
    """Return each `RoutedBroker.create_order`'s time (ns) over in-memory venues."""
    books = quotes(rng, venues)
    broker = RoutedBroker([InstantVenue(q) for q in books], Router())
    planned: list[RoutedOrder] = []
    broker.on_plan = lambda _cid, order: planned.append(order)  # a journal stands here
    sizes = rng.uniform(0.01, 8.0, orders)
    times = np.empty(orders)
    for k in range(orders):
        request = OrderRequest(f"o{k}", "BTC/USDT", "buy" if k % 2 else "sell", "market",
                               float(sizes[k]))  # fmt: skip
        start = time.perf_counter_ns()
        broker.create_order(request)
        times[k] = time.perf_counter_ns() - start
    return times


def quotes(rng: np.random.Generator, venues: int) -> list[VenueQuote]:
    """Return one decision's quotes: a book around 100, fees, balances, quality figures."""
    mid = 100.0 * (1.0 + rng.normal(0.0, 1e-3, venues))
    half = mid * rng.uniform(1e-5, 5e-4, venues)
    return [
        VenueQuote(
            f"venue{i}",
            bid=float(mid[i] - half[i]),
            ask=float(mid[i] + half[i]),
            last=float(mid[i]),
            fee_bps=float(rng.choice([1.0, 2.0, 5.0, 7.5, 10.0])),
            min_qty=0.001,
            available=float(rng.uniform(0.1, 5.0)),
        )
        for i in range(venues)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--venues", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    books = [quotes(rng, args.venues) for _ in range(args.orders)]
    sizes = rng.uniform(0.01, 8.0, args.orders)
    sides = [Side.BUY if b else Side.SELL for b in rng.random(args.orders) < 0.5]
    agent = ExecutionAgent(EnvironmentAgent())
    for venue in range(args.venues):  # each venue's record: 200 fills with its own quality
        slip, lag = rng.exponential(3.0), rng.uniform(5.0, 200.0)
        for t in range(200):
            agent.venues.fill(f"venue{venue}", side="buy", price=100.0 * (1 + slip * 1e-4),
                              arrival=100.0, filled=1.0, asked=1.0,
                              latency_ms=float(rng.exponential(lag)), time=t)  # fmt: skip
    for book in books[:500]:  # warm-up
        agent.route(Side.BUY, 1.0, book, time=0)
    times = np.empty(args.orders)
    split = 0
    for k in range(args.orders):
        start = time.perf_counter_ns()
        decision = agent.route(sides[k], float(sizes[k]), books[k], time=k)
        times[k] = time.perf_counter_ns() - start
        split += len(decision.legs) > 1
    us = times / 1e3
    p50, p99, worst = np.percentile(us, [50, 99, 100])
    b50, b99 = np.percentile(broker_times(rng, args.venues, args.orders // 4) / 1e3, [50, 99])
    print(json.dumps({
        "bench": "routing", "orders": args.orders, "venues": args.venues,
        "p50_us": round(float(p50), 1), "p99_us": round(float(p99), 1),
        "max_us": round(float(worst), 1), "split_share": round(split / args.orders, 3),
        "broker_p50_us": round(float(b50), 1), "broker_p99_us": round(float(b99), 1),
        "meets_target": bool(p99 <= 1_000.0), "machine": machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()

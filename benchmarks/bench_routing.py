"""Benchmark the router: one order's routing decision across 5 venues; prints one JSON line.

Each decision gets fresh quotes (prices, fees, balances, recent slippage and latency, one venue
degraded now and then) drawn beforehand, so only `route` itself is timed: the all-in cost of
every venue, the ranking and the allocation (split up to 3 legs), with every venue's figures
and reason, as recorded on an order. Each call is timed on its own (`perf_counter_ns`).

Target: p99 ≤ 1 ms per decision (`meets_target`).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from common import machine
from reinforcetrade.agents.routing import RouterParams, VenueQuote, route


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
            slippage_bps=float(rng.exponential(2.0)),
            latency_ms=float(rng.uniform(5, 200)),
            health="degraded" if rng.random() < 0.1 else "ok",
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
    sides = rng.choice(["buy", "sell"], args.orders)
    params = RouterParams()
    for book in books[:500]:  # warm-up
        route("buy", 1.0, book, params)
    times = np.empty(args.orders)
    split = 0
    for k in range(args.orders):
        start = time.perf_counter_ns()
        decision = route(str(sides[k]), float(sizes[k]), books[k], params)  # type: ignore[arg-type]
        times[k] = time.perf_counter_ns() - start
        split += len(decision.legs) > 1
    us = times / 1e3
    p50, p99, worst = np.percentile(us, [50, 99, 100])
    print(json.dumps({
        "bench": "routing", "orders": args.orders, "venues": args.venues,
        "p50_us": round(float(p50), 1), "p99_us": round(float(p99), 1),
        "max_us": round(float(worst), 1), "split_share": round(split / args.orders, 3),
        "meets_target": bool(p99 <= 1_000.0), "machine": machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()

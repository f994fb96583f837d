"""The fake Binance spot exchange speaks Binance to the real ccxt client, faults included."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.pro
import pandas as pd
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from fakes import ServerError
from fakes.binance import (
    AcceptThenStall,
    BackendTimeout,
    DropBefore,
    Maintenance,
    RateLimited,
    Reject,
)
from fakes.binance_stream import Disconnect, Duplicate, Hold, Lose
from fakes.binance_trading import FakeBinanceExchange, FillDuringCancel, PartialFill
from reinforcetrade.core.clock import FixedClock

pytestmark = pytest.mark.network

NOW = pd.Timestamp("2024-03-01T10:30Z")
NOW_MS = NOW.value // 1_000_000
API_KEY = "canary-api-key-4f1c"
SECRET = "canary-secret-9d2e"  # noqa: S105 - a canary, checked never to leave the client
TIMEOUT_MS = 500
SYMBOL = "BTC/USDT"
ORDER = "/api/v3/order"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW.value)


@pytest.fixture
def venue(clock: FixedClock) -> Iterator[FakeBinanceExchange]:
    with FakeBinanceExchange(
        clock,
        balances={"USDT": 10_000, "BTC": 1},
        prices={"BTC/USDT": 50_000, "ETH/USDT": 2_500},
        secret=SECRET,
    ) as fake:
        yield fake
    assert not fake.errors, fake.errors
    assert not fake.stream.errors, fake.stream.errors


def settings(venue: FakeBinanceExchange) -> dict[str, Any]:
    return venue.ccxt_config(
        apiKey=API_KEY, secret=SECRET, timeout=TIMEOUT_MS, enableRateLimit=False
    )


@pytest.fixture
def exchange(venue: FakeBinanceExchange) -> Iterator[Any]:
    client = ccxt.binance(settings(venue))
    try:
        client.load_markets()
        yield client
    finally:
        client.close()


@asynccontextmanager
async def pro(venue: FakeBinanceExchange) -> AsyncIterator[Any]:
    client = ccxt.pro.binance(settings(venue))
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


def d(text: str) -> Decimal:
    return Decimal(text)


# -- markets, orders, balances -----------------------------------------------------------------
def test_markets_carry_binance_precision_and_limits(exchange: Any) -> None:
    market = exchange.market(SYMBOL)
    assert market["spot"]
    assert market["id"] == "BTCUSDT"
    assert market["precision"]["amount"] == 1e-05
    assert market["precision"]["price"] == 0.01
    assert market["limits"]["amount"]["min"] == 1e-05
    assert market["limits"]["cost"]["min"] == 5.0
    assert exchange.amount_to_precision(SYMBOL, 0.1234567) == "0.12345"
    assert exchange.price_to_precision(SYMBOL, 50_000.129) == "50000.13"  # rounds prices


def test_requests_are_signed_with_the_key_and_never_carry_the_secret(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    exchange.fetch_balance()
    exchange.create_order(SYMBOL, "market", "buy", 0.01)
    assert venue.signed
    assert all(c.api_key == API_KEY and c.signature for c in venue.signed)
    assert any(c.path == "/api/v3/account" for c in venue.signed)
    for request in venue.requests:
        seen = json.dumps(request.query) + request.body.decode() + json.dumps(request.headers)
        assert SECRET not in seen


def test_a_bad_signature_is_refused(venue: FakeBinanceExchange) -> None:
    client = ccxt.binance({**settings(venue), "secret": "not-the-secret"})
    try:
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            client.fetch_balance()
    finally:
        client.close()


def test_a_market_order_fills_at_the_price_and_moves_the_balances(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    order = exchange.create_order(SYMBOL, "market", "buy", 0.1, params={"clientOrderId": "m1"})
    assert (order["status"], order["filled"], order["average"]) == ("closed", 0.1, 50_000.0)
    assert order["clientOrderId"] == "m1"
    assert order["fee"] == {"currency": "BTC", "cost": 0.0001}  # 0.1% of what was bought
    balance = exchange.fetch_balance()
    assert balance["USDT"]["free"] == 5_000.0
    assert balance["BTC"]["free"] == 1.0999
    fetched = exchange.fetch_order(None, SYMBOL, {"origClientOrderId": "m1"})
    assert fetched["id"] == order["id"]
    assert fetched["status"] == "closed"
    [trade] = exchange.fetch_my_trades(SYMBOL)
    assert (trade["order"], trade["price"], trade["takerOrMaker"]) == (
        order["id"],
        50_000.0,
        "taker",
    )
    assert venue.balance("USDT") == (d("5000"), d("0"))


def test_a_limit_order_rests_until_the_price_reaches_it(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    order = exchange.create_order(SYMBOL, "limit", "buy", 0.1, 49_000, {"clientOrderId": "l1"})
    assert order["status"] == "open"
    assert order["filled"] == 0.0
    assert venue.balance("USDT") == (d("5100"), d("4900"))
    assert [o["clientOrderId"] for o in exchange.fetch_open_orders(SYMBOL)] == ["l1"]
    assert venue.set_price(SYMBOL, 49_500) == []
    [fill] = venue.set_price(SYMBOL, 48_900)
    assert fill.price == 49_000
    assert fill.is_maker
    fetched = exchange.fetch_order(order["id"], SYMBOL)
    assert (fetched["status"], fetched["average"]) == ("closed", 49_000.0)
    assert exchange.fetch_open_orders(SYMBOL) == []
    assert venue.balance("USDT") == (d("5100"), d("0"))


def test_a_stop_fills_while_the_client_is_away(venue: FakeBinanceExchange) -> None:
    client = ccxt.binance(settings(venue))
    try:
        stop = client.create_order(
            SYMBOL, "limit", "sell", 0.5, 47_900, {"stopLossPrice": 48_000, "clientOrderId": "sl"}
        )
        take = client.create_order(
            SYMBOL, "limit", "sell", 0.5, 52_000, {"takeProfitPrice": 52_000, "clientOrderId": "tp"}
        )
    finally:
        client.close()
    assert stop["status"] == take["status"] == "open"
    assert venue.order("sl").type == "STOP_LOSS_LIMIT"
    assert venue.order("tp").type == "TAKE_PROFIT_LIMIT"
    assert venue.balance("BTC") == (d("0"), d("1"))

    fills = venue.play(SYMBOL, [49_000, 48_100, 47_950, 47_000], every_ms=60_000)

    assert [(f.price, f.is_maker) for f in fills] == [(d("47950"), False)]  # taker at trigger
    back = ccxt.binance(settings(venue))
    try:
        order = back.fetch_order(None, SYMBOL, {"origClientOrderId": "sl"})
        assert (order["status"], order["filled"], order["average"]) == ("closed", 0.5, 47_950.0)
        assert [o["clientOrderId"] for o in back.fetch_open_orders(SYMBOL)] == ["tp"]
        assert [t["price"] for t in back.fetch_my_trades(SYMBOL)] == [47_950.0]
    finally:
        back.close()


def test_cancel_by_client_id_and_a_second_cancel_finds_nothing(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    exchange.create_order(SYMBOL, "limit", "buy", 0.1, 40_000, {"clientOrderId": "c1"})
    cancelled = exchange.cancel_order(None, SYMBOL, {"clientOrderId": "c1"})
    assert cancelled["status"] == "canceled"
    assert cancelled["info"]["origClientOrderId"] == "c1"  # ccxt's clientOrderId: the cancel's
    assert venue.balance("USDT") == (d("10000"), d("0"))
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        exchange.cancel_order(None, SYMBOL, {"clientOrderId": "c1"})
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        exchange.fetch_order(None, SYMBOL, {"origClientOrderId": "never-sent"})


def test_a_client_id_is_refused_while_its_order_is_open_then_free_again(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    exchange.create_order(SYMBOL, "limit", "buy", 0.01, 45_000, {"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        exchange.create_order(SYMBOL, "limit", "buy", 0.01, 45_000, {"clientOrderId": "dup"})
    venue.fill("dup")
    again = exchange.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "dup"})
    assert again["status"] == "closed"  # Binance: unique among open orders only
    assert len([o for o in venue.orders() if o.client_id == "dup"]) == 2


def test_client_ids_can_be_unique_for_ever(clock: FixedClock) -> None:
    with FakeBinanceExchange(clock, prices={SYMBOL: 50_000}, client_id_scope="all") as venue:
        client = ccxt.binance(settings(venue))
        try:
            client.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "once"})
            with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
                client.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "once"})
        finally:
            client.close()


@pytest.mark.parametrize(
    ("kind", "side", "amount", "price", "params", "error", "message"),
    [
        ("market", "buy", 1.0, None, {}, ccxt.InsufficientFunds, "insufficient balance"),
        ("limit", "sell", 2.0, 60_000, {}, ccxt.InsufficientFunds, "insufficient balance"),
        ("market", "buy", 0.00005, None, {}, ccxt.BadRequest, "Filter failure: NOTIONAL"),
        ("limit", "sell", 0.01, 47_000, {"stopLossPrice": 51_000}, ccxt.OrderImmediatelyFillable,
         "Stop price would trigger immediately"),
        ("limit", "buy", 0.01, 51_000, {"postOnly": True}, ccxt.OrderImmediatelyFillable,
         "immediately match and take"),
    ],
)  # fmt: skip
def test_the_venue_rejects_what_binance_rejects(
    exchange: Any,
    venue: FakeBinanceExchange,
    kind: str,
    side: str,
    amount: float,
    price: float | None,
    params: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        exchange.create_order(SYMBOL, kind, side, amount, price, params)
    assert venue.orders() == []
    assert venue.balance("USDT") == (d("10000"), d("0"))


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Reject(-1013, "Filter failure: LOT_SIZE"), ccxt.InvalidOrder),
        (Reject(-1013, "Filter failure: PRICE_FILTER"), ccxt.InvalidOrder),
        (Reject(-2010, "Account has insufficient balance for requested action."), ccxt.InsufficientFunds),
        (Reject(-1015, "Too many new orders; current limit is 50 orders per 10 SECOND.", 429),
         ccxt.DDoSProtection),
        (RateLimited(retry_after=7), ccxt.DDoSProtection),
        (RateLimited(retry_after=60, status=418), ccxt.DDoSProtection),
        (Maintenance(), ccxt.OnMaintenance),
        (ServerError(503), ccxt.ExchangeNotAvailable),
        (DropBefore(), ccxt.NetworkError),
    ],
)  # fmt: skip
def test_a_refused_or_dropped_order_is_not_recorded(
    exchange: Any, venue: FakeBinanceExchange, fault: Any, error: type[Exception]
) -> None:
    venue.script(f"POST {ORDER}", fault)
    with pytest.raises(error) as caught:
        exchange.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "f1"})
    assert not isinstance(caught.value, ccxt.RequestTimeout)
    assert venue.orders() == []
    assert len(venue.orders_sent("f1")) == 1  # it reached the server, not the matching engine
    again = exchange.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "f1"})
    assert again["status"] == "closed"
    assert len(venue.orders()) == 1


def test_a_rate_limit_is_ddos_protection_not_rate_limit_exceeded_and_says_when_to_retry(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    venue.script("/api/v3/account", RateLimited(retry_after=7))
    with pytest.raises(ccxt.DDoSProtection) as caught:
        exchange.fetch_balance()
    assert not isinstance(caught.value, ccxt.RateLimitExceeded)  # ccxt checks 429 first
    assert exchange.last_response_headers["Retry-After"] == "7"


def test_accepted_then_stalled_times_out_yet_exactly_one_order_exists(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    venue.script(f"POST {ORDER}", AcceptThenStall(5.0))
    with pytest.raises(ccxt.RequestTimeout):
        exchange.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "t1"})
    assert [(o.client_id, o.status) for o in venue.orders()] == [("t1", "FILLED")]
    found = exchange.fetch_order(None, SYMBOL, {"origClientOrderId": "t1"})
    assert (found["status"], found["filled"]) == ("closed", 0.01)
    assert len(venue.orders_sent("t1")) == 1


def test_a_blind_retry_after_a_timeout_fills_twice_but_a_resting_one_is_refused(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    venue.script(f"POST {ORDER}", AcceptThenStall(5.0), None, AcceptThenStall(5.0))
    with pytest.raises(ccxt.RequestTimeout):
        exchange.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "r1"})
    exchange.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "r1"})
    assert [o.status for o in venue.orders() if o.client_id == "r1"] == ["FILLED", "FILLED"]
    with pytest.raises(ccxt.RequestTimeout):
        exchange.create_order(SYMBOL, "limit", "buy", 0.01, 40_000, {"clientOrderId": "r2"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        exchange.create_order(SYMBOL, "limit", "buy", 0.01, 40_000, {"clientOrderId": "r2"})


def test_a_backend_timeout_hides_an_order_that_was_placed(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    venue.script(f"POST {ORDER}", BackendTimeout())
    with pytest.raises(ccxt.RequestTimeout, match="-1007"):
        exchange.create_order(SYMBOL, "limit", "buy", 0.01, 45_000, {"clientOrderId": "b1"})
    assert exchange.fetch_order(None, SYMBOL, {"origClientOrderId": "b1"})["status"] == "open"


def test_a_cancel_that_loses_the_race_with_a_fill(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    exchange.create_order(SYMBOL, "limit", "buy", 0.01, 49_000, {"clientOrderId": "x1"})
    exchange.create_order(SYMBOL, "limit", "buy", 0.01, 48_000, {"clientOrderId": "x2"})
    venue.script(f"DELETE {ORDER}", FillDuringCancel(), FillDuringCancel(stall=5.0))
    with pytest.raises(ccxt.OrderNotFound, match="Unknown order sent"):
        exchange.cancel_order(None, SYMBOL, {"clientOrderId": "x1"})
    with pytest.raises(ccxt.RequestTimeout):
        exchange.cancel_order(None, SYMBOL, {"clientOrderId": "x2"})
    for cid, price in (("x1", 49_000.0), ("x2", 48_000.0)):
        order = exchange.fetch_order(None, SYMBOL, {"origClientOrderId": cid})
        assert (order["status"], order["filled"], order["average"]) == ("closed", 0.01, price)


def test_a_partial_fill_then_the_rest_cancelled(exchange: Any, venue: FakeBinanceExchange) -> None:
    venue.script(f"POST {ORDER}", PartialFill(0.4), PartialFill(0.25))
    limit = exchange.create_order(SYMBOL, "limit", "buy", 0.1, 50_100, {"clientOrderId": "p1"})
    assert (limit["status"], limit["filled"], limit["remaining"]) == ("open", 0.04, 0.06)
    assert limit["average"] == 50_000.0  # a taker on arrival pays the price, not its limit
    cancelled = exchange.cancel_order(limit["id"], SYMBOL)
    assert (cancelled["status"], cancelled["filled"]) == ("canceled", 0.04)
    assert venue.balance("USDT") == (d("8000"), d("0"))
    market = exchange.create_order(SYMBOL, "market", "sell", 0.2, params={"clientOrderId": "p2"})
    assert (market["status"], market["filled"]) == ("expired", 0.05)


def test_thin_liquidity_fills_a_resting_order_in_parts_each_with_its_own_trade_id(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    exchange.create_order(SYMBOL, "limit", "sell", 0.1, 51_000, {"clientOrderId": "s1"})
    venue.set_price(SYMBOL, 51_000, liquidity=0.03)
    order = exchange.fetch_order(None, SYMBOL, {"origClientOrderId": "s1"})
    assert (order["status"], order["filled"]) == ("open", 0.03)
    venue.set_price(SYMBOL, 51_200)
    trades = exchange.fetch_my_trades(SYMBOL)
    assert [t["amount"] for t in trades] == [0.03, 0.07]
    assert len({t["id"] for t in trades}) == 2
    assert exchange.fetch_order(order["id"], SYMBOL)["status"] == "closed"


def test_market_data_follows_the_prices_set(exchange: Any, venue: FakeBinanceExchange) -> None:
    venue.play(SYMBOL, [50_100, 50_300, 49_900], every_ms=60_000)
    bars = exchange.fetch_ohlcv(SYMBOL, "1m", since=NOW_MS, limit=4)
    assert [b[0] - NOW_MS for b in bars] == [0, 60_000, 120_000, 180_000]
    assert [b[4] for b in bars] == [50_000.0, 50_100.0, 50_300.0, 49_900.0]
    assert exchange.fetch_ticker(SYMBOL)["last"] == 49_900.0
    book = exchange.fetch_order_book(SYMBOL, 5)
    assert book["bids"][0][0] < 49_900.0 < book["asks"][0][0]


# -- streams -----------------------------------------------------------------------------------
async def next_update(watch: Any, timeout: float = 5.0) -> Any:
    return await asyncio.wait_for(watch, timeout)


async def settle() -> None:
    """Let watches started with ensure_future reach the point where they listen."""
    await asyncio.sleep(0.05)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `check()` holds: for what lands in ccxt's caches between two watches."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def test_watch_ohlcv_receives_forming_and_closed_bars(venue: FakeBinanceExchange) -> None:
    async def scenario() -> tuple[list[list[float]], list[list[float]]]:
        async with pro(venue) as client:
            first = asyncio.ensure_future(client.watch_ohlcv(SYMBOL, "1m"))
            await asyncio.to_thread(venue.stream.wait_subscribed, "btcusdt@kline_1m")
            venue.set_price(SYMBOL, 50_100)
            await next_update(first)
            closing = asyncio.ensure_future(client.watch_ohlcv(SYMBOL, "1m"))
            await settle()
            venue.advance(60_000, prices={SYMBOL: 50_200})
            closed: list[list[float]] = await next_update(closing)
            cache = client.ohlcvs[SYMBOL]["1m"]
            await eventually(lambda: cache[-1][4] == 50_200.0)
            return closed, [list(bar) for bar in cache]

    closed, cache = asyncio.run(scenario())
    assert closed == [[NOW_MS, 50_000.0, 50_100.0, 50_000.0, 50_100.0, 0.0]]
    assert [(b[0] - NOW_MS, b[4]) for b in cache] == [(0, 50_100.0), (60_000, 50_200.0)]
    flags = [(e["k"]["t"] - NOW_MS, e["k"]["x"]) for e in venue.stream.sent("market")]
    assert flags == [(0, False), (0, True), (60_000, False)]


def test_market_data_goes_silent_then_catches_up(venue: FakeBinanceExchange) -> None:
    async def scenario() -> list[list[float]]:
        async with pro(venue) as client:
            first = asyncio.ensure_future(client.watch_ohlcv(SYMBOL, "1m"))
            await asyncio.to_thread(venue.stream.wait_subscribed, "btcusdt@kline_1m")
            venue.set_price(SYMBOL, 50_100)
            await next_update(first)
            venue.stream.pause("market")
            venue.advance(60_000, prices={SYMBOL: 50_500})
            with pytest.raises(TimeoutError):
                await next_update(client.watch_ohlcv(SYMBOL, "1m"), timeout=0.3)
            resumed = asyncio.ensure_future(client.watch_ohlcv(SYMBOL, "1m"))
            await settle()
            assert len(venue.stream.resume("market")) == 2  # the close and the next bar
            await next_update(resumed)
            cache = client.ohlcvs[SYMBOL]["1m"]
            await eventually(lambda: cache[-1][4] == 50_500.0)
            return [list(bar) for bar in cache]

    assert [(b[0] - NOW_MS, b[4]) for b in asyncio.run(scenario())] == [
        (0, 50_100.0),
        (60_000, 50_500.0),
    ]


def test_watch_orders_and_my_trades_follow_execution_reports(venue: FakeBinanceExchange) -> None:
    async def scenario() -> tuple[list[tuple[str, float]], list[Any]]:
        async with pro(venue) as client:
            watching = asyncio.ensure_future(client.watch_orders(SYMBOL))
            await asyncio.to_thread(venue.stream.wait_user_subscribed)
            await settle()
            await client.create_order(SYMBOL, "limit", "buy", 0.1, 49_000, {"clientOrderId": "w1"})
            seen = [(o["status"], o["filled"]) for o in await next_update(watching)]
            orders_watch = asyncio.ensure_future(client.watch_orders(SYMBOL))
            trades_watch = asyncio.ensure_future(client.watch_my_trades(SYMBOL))
            await settle()
            venue.set_price(SYMBOL, 48_000)
            seen += [(o["status"], o["filled"]) for o in await next_update(orders_watch)]
            return seen, await next_update(trades_watch)

    seen, trades = asyncio.run(scenario())
    assert seen[0] == ("open", 0.0)
    assert seen[-1] == ("closed", 0.1)
    [fill] = venue.fills()
    assert [(t["id"], t["price"], t["amount"]) for t in trades] == [
        (str(fill.trade_id), 49_000.0, 0.1)
    ]
    request = venue.stream.api_requests[0]
    assert request["method"] == "userDataStream.subscribe.signature"
    assert request["params"]["apiKey"] == API_KEY
    assert SECRET not in json.dumps(request)


def test_duplicate_and_out_of_order_fill_events_reach_ccxt(venue: FakeBinanceExchange) -> None:
    # one resting order filled in two parts: NEW, account, TRADE 1, account, TRADE 2, account;
    # TRADE 1 is held back until 3 more events have gone, and TRADE 2 is sent twice
    venue.stream.script("user", None, None, Hold(after=3), None, Duplicate())

    async def scenario() -> tuple[set[str], Any]:
        async with pro(venue) as client:
            first = asyncio.ensure_future(client.watch_my_trades(SYMBOL))
            await asyncio.to_thread(venue.stream.wait_user_subscribed)
            await settle()
            await client.create_order(SYMBOL, "limit", "sell", 0.1, 51_000, {"clientOrderId": "o1"})
            venue.set_price(SYMBOL, 51_000, liquidity=0.04)
            venue.set_price(SYMBOL, 51_500)
            await next_update(first)
            # the held first fill comes last: once ccxt has both trades it has every report
            await eventually(lambda: len(client.myTrades) == 2)
            ids = {t["id"] for t in client.myTrades}
            return ids, client.orders.hashmap[SYMBOL][str(venue.order("o1").order_id)]

    ids, cached = asyncio.run(scenario())
    reports = [e for e in venue.stream.sent("user") if e["e"] == "executionReport"]
    assert [(e["x"], e["z"]) for e in reports] == [
        ("NEW", "0.00000000"),
        ("TRADE", "0.10000000"),  # the second fill overtook the first
        ("TRADE", "0.10000000"),  # and came twice
        ("TRADE", "0.04000000"),
    ]
    assert ids == {str(f.trade_id) for f in venue.fills()}
    assert (cached["status"], cached["filled"]) == ("open", 0.04)  # ccxt keeps the stale last word
    assert venue.order("o1").status == "FILLED"


def test_a_dropped_user_stream_errors_the_watcher_and_a_new_watch_resubscribes(
    venue: FakeBinanceExchange,
) -> None:
    async def scenario() -> list[Any]:
        async with pro(venue) as client:
            watching = asyncio.ensure_future(client.watch_orders(SYMBOL))
            await asyncio.to_thread(venue.stream.wait_user_subscribed)
            venue.stream.disconnect("user")
            with pytest.raises(ccxt.NetworkError):
                await next_update(watching)
            again = asyncio.ensure_future(client.watch_orders(SYMBOL))
            await eventually(lambda: len(venue.stream.api_requests) == 2)  # a new subscription
            await settle()
            await client.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "a1"})
            orders: list[Any] = await next_update(again)
            return orders

    orders = asyncio.run(scenario())
    assert orders[-1]["clientOrderId"] == "a1"
    methods = [r["method"] for r in venue.stream.api_requests]
    assert methods == ["userDataStream.subscribe.signature"] * 2


def test_a_listen_key_stream_delivers_raw_execution_reports(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    key = exchange.publicPostUserDataStream()["listenKey"]
    with connect(f"{venue.stream.url}/ws/{key}", open_timeout=5) as ws:
        venue.stream.wait_user_subscribed()
        exchange.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "k1"})
        events = [json.loads(ws.recv(timeout=5)) for _ in range(3)]
    assert [(e["e"], e.get("x")) for e in events] == [
        ("executionReport", "NEW"),
        ("executionReport", "TRADE"),
        ("outboundAccountPosition", None),
    ]
    assert events[0]["c"] == "k1"
    assert exchange.publicPutUserDataStream({"listenKey": key}) == {}
    exchange.publicDeleteUserDataStream({"listenKey": key})
    with pytest.raises(ccxt.ExchangeError, match="-1125"):
        exchange.publicPutUserDataStream({"listenKey": key})


def test_user_events_can_be_lost_and_the_connection_cut(
    exchange: Any, venue: FakeBinanceExchange
) -> None:
    key = exchange.publicPostUserDataStream()["listenKey"]
    venue.stream.script("user", Lose(), None, Disconnect())
    with connect(f"{venue.stream.url}/ws/{key}", open_timeout=5) as ws:
        venue.stream.wait_user_subscribed()
        exchange.create_order(SYMBOL, "market", "buy", 0.01)
        assert json.loads(ws.recv(timeout=5))["x"] == "TRADE"  # NEW was lost
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    lost = [i.payload.get("x", i.payload["e"]) for i in venue.stream.channels["user"].lost]
    assert lost == ["NEW", "outboundAccountPosition"]


def test_the_venue_shuts_down_cleanly_with_stalled_requests_and_open_streams(
    clock: FixedClock,
) -> None:
    before = set(threading.enumerate())
    with ExitStack() as clients:
        with FakeBinanceExchange(clock, prices={SYMBOL: 50_000}) as venue:
            venue.script(f"POST {ORDER}", AcceptThenStall(30.0))
            client = ccxt.binance(settings(venue))
            try:
                with pytest.raises(ccxt.RequestTimeout):
                    client.create_order(SYMBOL, "market", "buy", 0.01)
            finally:
                client.close()
            for path in ("/ws/0", "/ws-api/v3"):  # left open while the venue closes
                clients.enter_context(connect(venue.stream.url + path, open_timeout=5))
    assert set(threading.enumerate()) == before

"""Feeds hand the engine closed bars only, every symbol of one time together."""

from __future__ import annotations

import math
import time
from pathlib import Path

import ccxt
import ccxt.pro
import pytest

from fakes.binance_trading import FakeBinanceExchange
from reinforcetrade.config import DataConfig
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data import generate_market, resample
from reinforcetrade.data.history import CcxtHistory
from reinforcetrade.trading.feeds import CcxtPollingFeed, CcxtStreamFeed, ReplayFeed, parse_speed


def test_replay_plays_every_bar_in_time_order_at_speed() -> None:
    frames = dict(generate_market(["BTC/USDT", "ETH/USDT"], bars=50, seed=1).frames)
    frames["ETH/USDT"] = frames["ETH/USDT"].iloc[10:]  # listed later
    waits: list[float] = []
    feed = ReplayFeed(frames, speed=100.0, sleep=waits.append)
    assert feed.symbols == ("BTC/USDT", "ETH/USDT")
    assert feed.timeframe.text == "1h"
    steps = []
    while (bars := feed.next_bars(timeout=1.0)) is not None:
        steps.append(bars)
    assert len(steps) == 50
    assert [b.symbol for b in steps[0]] == ["BTC/USDT"]
    assert [b.symbol for b in steps[20]] == ["BTC/USDT", "ETH/USDT"]
    assert all(len({b.ts for b in s}) == 1 for s in steps)
    assert [s[0].ts for s in steps] == sorted(s[0].ts for s in steps)
    first = steps[12][1]
    row = frames["ETH/USDT"].iloc[2]
    assert (first.open, first.high, first.low, first.close, first.volume) == tuple(
        row[["open", "high", "low", "close", "volume"]]
    )
    assert waits == [pytest.approx(36.0)] * 49  # 1 h / 100, between bars
    feed.close()
    assert feed.next_bars(1.0) is None


def test_speeds_and_bad_input() -> None:
    assert parse_speed("100x") == 100.0
    assert parse_speed("2.5") == 2.5
    assert math.isinf(parse_speed("max"))
    with pytest.raises(UserInputError, match="not a factor"):
        parse_speed("fast")
    with pytest.raises(UserInputError, match="positive"):
        parse_speed("0x")
    frames = dict(generate_market(["A/B", "C/D"], bars=48, seed=1).frames)
    frames["C/D"] = resample(frames["C/D"], "4h")
    with pytest.raises(UserInputError, match="one known timeframe"):
        ReplayFeed(frames)
    with pytest.raises(UserInputError, match="nothing to replay"):
        ReplayFeed({})


@pytest.mark.network
def test_polling_hands_over_closed_bars_of_every_symbol(tmp_path: Path) -> None:
    clock = FixedClock(1_767_225_600_000_000_000)  # 2026-01-01 00:00 UTC
    with FakeBinanceExchange(clock, prices={"BTC/USDT": 50_000, "ETH/USDT": 3_000}) as venue:
        exchange = ccxt.binance(venue.ccxt_config(timeout=1_000, enableRateLimit=False))
        history = CcxtHistory(DataConfig(cache_dir=tmp_path / "cache"), clock=clock)
        waits: list[float] = []
        feed = CcxtPollingFeed(
            history, exchange, ["BTC/USDT", "ETH/USDT"], "1m", clock=clock,
            poll_seconds=0.5, sleep=waits.append,
        )  # fmt: skip
        assert feed.next_bars(timeout=1.0) is None  # the current minute is still forming
        assert waits == [0.5, 0.5]
        venue.advance(30_000, prices={"BTC/USDT": 50_100, "ETH/USDT": 3_010})
        assert feed.next_bars(timeout=0.0) is None  # half a minute: not closed yet
        venue.advance(30_000, prices={"BTC/USDT": 50_200})
        bars = feed.next_bars(timeout=0.0)
        assert bars is not None
        assert [b.symbol for b in bars] == ["BTC/USDT", "ETH/USDT"]
        assert {b.ts for b in bars} == {1_767_225_600_000_000_000}
        assert bars[0].close == 50_100.0
        assert bars[0].high >= 50_100.0
        assert feed.next_bars(timeout=0.0) is None  # each bar handed over once
        venue.advance(120_000)
        later = [feed.next_bars(0.0), feed.next_bars(0.0)]
        assert [b[0].ts if b else None for b in later] == [
            1_767_225_660_000_000_000, 1_767_225_720_000_000_000,
        ]  # fmt: skip
        exchange.close()


@pytest.mark.network
def test_the_stream_hands_over_closed_bars_and_survives_a_drop() -> None:
    clock = FixedClock(1_767_225_600_000_000_000)
    with FakeBinanceExchange(clock, prices={"BTC/USDT": 50_000, "ETH/USDT": 3_000}) as venue:
        client = ccxt.pro.binance(venue.ccxt_config(timeout=1_000, enableRateLimit=False))
        feed = CcxtStreamFeed(client, ["BTC/USDT", "ETH/USDT"], "1m", clock=clock, backoff=0.05)
        try:
            for name in ("btcusdt@kline_1m", "ethusdt@kline_1m"):
                venue.stream.wait_subscribed(name)
            venue.set_price("BTC/USDT", 50_100)
            assert feed.next_bars(timeout=0.3) is None  # forming bars only
            venue.advance(60_000, prices={"BTC/USDT": 50_200, "ETH/USDT": 3_020})
            bars = feed.next_bars(timeout=5.0)
            assert bars is not None
            assert [(b.symbol, b.ts) for b in bars] == [
                ("BTC/USDT", 1_767_225_600_000_000_000), ("ETH/USDT", 1_767_225_600_000_000_000),
            ]  # fmt: skip
            assert bars[0].close == 50_100.0
            venue.stream.disconnect("market")
            deadline = time.monotonic() + 5
            while feed.reconnects == 0 and time.monotonic() < deadline:
                time.sleep(0.01)  # the watchers notice the drop and watch again
            assert feed.reconnects >= 1
            for name in ("btcusdt@kline_1m", "ethusdt@kline_1m"):
                venue.stream.wait_subscribed(name)
            venue.advance(60_000, prices={"BTC/USDT": 50_300, "ETH/USDT": 3_030})
            venue.advance(60_000, prices={"BTC/USDT": 50_400, "ETH/USDT": 3_040})
            later = feed.next_bars(timeout=5.0)
            assert later is not None
            assert later[0].ts == 1_767_225_660_000_000_000
        finally:
            feed.close()


def test_a_chain_feed_plays_history_then_goes_on() -> None:
    from reinforcetrade.trading.feeds import ChainFeed

    frame = generate_market(["BTC/USDT"], bars=10, seed=1).frames["BTC/USDT"]
    chain = ChainFeed(
        ReplayFeed({"BTC/USDT": frame.iloc[:6]}), ReplayFeed({"BTC/USDT": frame.iloc[6:]})
    )
    times = []
    while (bars := chain.next_bars(0.0)) is not None:
        times.append(bars[0].ts)
    assert times == [int(t.value) for t in frame.index]
    assert chain.finished
    assert not chain.realtime  # as real time as its second feed
    with pytest.raises(UserInputError, match="same symbols"):
        ChainFeed(ReplayFeed({"BTC/USDT": frame}), ReplayFeed({"ETH/USDT": frame}))

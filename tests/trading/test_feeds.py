"""Feeds hand the engine closed bars only, every symbol of one time together."""

from __future__ import annotations

import math

import pytest

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data import generate_market, resample
from reinforcetrade.trading.feeds import ReplayFeed, parse_speed


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

"""`BarStepper`: the compiled loop one closed bar at a time decides exactly as the backtester."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reinforcetrade.backtesting import EnhancedBacktester
from reinforcetrade.backtesting.records import D_T
from reinforcetrade.backtesting.stepper import BarStepper
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.timeframes import parse_timeframe
from reinforcetrade.data import generate_market
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.feeds import ReplayFeed


def replay(frames: dict[str, pd.DataFrame], capacity: int) -> BarStepper:
    """Play the frames bar by bar through a stepper."""
    stepper = BarStepper(
        MultiAgentStrategy(), list(frames), parse_timeframe("1h"), capacity=capacity
    )
    feed = ReplayFeed(frames)
    while (bars := feed.next_bars(1.0)) is not None:
        step = stepper.step(
            [(b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume) for b in bars]
        )
        assert step.t == stepper.t - 1
    return stepper


@pytest.mark.parametrize("capacity", [8, 4096])
def test_a_replayed_session_decides_exactly_as_the_backtest(capacity: int) -> None:
    frames = dict(generate_market(["BTC/USDT", "ETH/USDT"], bars=1_200, seed=4).frames)
    frames["ETH/USDT"] = frames["ETH/USDT"].iloc[150:]  # listed later: NaN bars before
    backtest = EnhancedBacktester(MultiAgentStrategy()).run(frames).context.output
    stepper = replay(frames, capacity)
    n = len(backtest.dec_i)
    assert n > 50
    dec_i, dec_f = stepper.decision_rows(range(n))
    np.testing.assert_array_equal(dec_i, backtest.dec_i)  # bit for bit
    np.testing.assert_array_equal(dec_f, backtest.dec_f)
    extra = stepper.decision_rows(range(n, int(stepper.run.book.cnt[0])))[0]
    assert (extra[:, D_T] == 1_199).all()  # only the backtest's final bar decides nothing
    np.testing.assert_array_equal(stepper.run.track.equity[:1_200], backtest.equity)
    np.testing.assert_array_equal(stepper.run.track.state[:1_200], backtest.state)


def test_steps_must_move_forward_together() -> None:
    stepper = BarStepper(MultiAgentStrategy(), ["A/B", "C/D"], parse_timeframe("1h"))
    stepper.step([("A/B", 3_600, 1.0, 1.0, 1.0, 1.0, 1.0)])
    with pytest.raises(UserInputError, match="not after the last one"):
        stepper.step([("A/B", 3_600, 1.0, 1.0, 1.0, 1.0, 1.0)])
    with pytest.raises(UserInputError, match="share one time"):
        stepper.step([("A/B", 7_200, 1, 1, 1, 1, 1), ("C/D", 10_800, 1, 1, 1, 1, 1)])
    with pytest.raises(UserInputError, match="at least one"):
        stepper.step([])

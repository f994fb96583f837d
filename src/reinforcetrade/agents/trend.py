"""Trend Tracking agent: long-horizon direction from moving averages, slope and breakouts."""

from __future__ import annotations

import math

import numpy as np

from reinforcetrade.agents.base import F8, AgentSignals, finish
from reinforcetrade.config.sections import TrendAgentConfig
from reinforcetrade.core.jit import njit
from reinforcetrade.data.bars import Bars
from reinforcetrade.features.indicators import atr, donchian_position, rolling_slope, sma

WEIGHTS = (0.5, 0.3, 0.2)  # moving-average spread, slow-average slope, breakout
THRESHOLD = 0.1
SCALE = 0.7
SLOPE_WINDOW = 20


class TrendAgent:
    """Follows the long trend.

    Score in [-1, 1]: 0.5·tanh((fast MA − slow MA) / (2·ATR)) + 0.3·tanh(slope of the slow MA
    over 20 bars × 20 / ATR) + 0.2·breakout, where breakout is +1 above the previous
    `breakout_window`-bar high, −1 below its low, and the position inside the channel mapped to
    [−1, 1] otherwise. Direction is the sign when |score| ≥ 0.1; confidence is |score| / 0.7,
    capped at 1.
    """

    name = "trend"

    def __init__(self, config: TrendAgentConfig | None = None) -> None:
        self.config = config or TrendAgentConfig()

    def signals(self, bars: Bars) -> AgentSignals:
        """Return direction and confidence per bar, and the indicators behind them."""
        cfg = self.config
        close = bars.close
        fast, slow = sma(close, cfg.fast_ma), sma(close, cfg.slow_ma)
        scale = atr(bars.high, bars.low, close, cfg.fast_ma)
        slope = rolling_slope(slow, SLOPE_WINDOW)
        channel = donchian_position(bars.high, bars.low, close, cfg.breakout_window)
        score = np.empty(close.size, dtype=np.float64)
        _trend_score(fast, slow, scale, slope, channel, score)
        features = {"fast_ma": fast, "slow_ma": slow, "slope": slope, "channel": channel}
        return finish(self.name, score, THRESHOLD, SCALE, features)


@njit
def _trend_score(fast: F8, slow: F8, scale: F8, slope: F8, channel: F8, out: F8) -> None:
    """Write the trend score of every bar (NaN while any input is warming up)."""
    w_spread, w_slope, w_breakout = 0.5, 0.3, 0.2
    for t in range(out.size):
        spread = math.tanh((fast[t] - slow[t]) / (2.0 * scale[t]))
        drift = math.tanh(slope[t] * SLOPE_WINDOW / scale[t])
        breakout = min(max(2.0 * channel[t] - 1.0, -1.0), 1.0)
        if channel[t] != channel[t]:
            breakout = math.nan
        out[t] = w_spread * spread + w_slope * drift + w_breakout * breakout

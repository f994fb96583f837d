"""Short-Term Wave agent: momentum buy and sell signals from RSI, ROC, MACD and Bollinger %B."""

from __future__ import annotations

import math

import numpy as np

from reinforcetrade.agents.base import F8, AgentSignals, finish
from reinforcetrade.config.sections import ShortTermAgentConfig
from reinforcetrade.core.jit import njit
from reinforcetrade.data.bars import Bars
from reinforcetrade.features.indicators import atr, bollinger, macd, roc, rsi
from reinforcetrade.features.stats import realized_volatility

#: weights of MACD histogram, rate of change, RSI and %B in the momentum score
WEIGHTS = (0.35, 0.35, 0.15, 0.15)
THRESHOLD = 0.15  # |score| below this is no signal
SCALE = 0.8  # |score| at which confidence reaches 1


class ShortTermAgent:
    """Rides short momentum waves and backs off when they look exhausted.

    Score in [-1, 1]: 0.35·tanh(2·MACD histogram / ATR) + 0.35·tanh(ROC / (σ·√n)) +
    0.15·(RSI − 50)/50 + 0.15·clip(2·%B − 1, −1, 1), where σ is the recent per-bar volatility.
    A long score is halved when RSI is overbought and price is above the upper band (and a
    short one when oversold below the lower band): a stretched wave is more likely to break.
    Direction is the score's sign when |score| ≥ 0.15; confidence is |score| / 0.8, capped at 1.
    """

    name = "short_term"

    def __init__(self, config: ShortTermAgentConfig | None = None) -> None:
        self.config = config or ShortTermAgentConfig()

    def signals(self, bars: Bars) -> AgentSignals:
        """Return direction and confidence per bar, and the indicators behind them."""
        cfg = self.config
        close = bars.close
        strength = rsi(close, cfg.rsi_period)
        change = roc(close, cfg.roc_period)
        _, _, hist = macd(close, cfg.macd_fast, cfg.macd_slow, cfg.macd_signal)
        _, _, _, percent_b, _ = bollinger(close, cfg.bollinger_period, cfg.bollinger_std)
        scale = atr(bars.high, bars.low, close, cfg.macd_slow)
        sigma = realized_volatility(close, cfg.bollinger_period)
        score = np.empty(close.size, dtype=np.float64)
        _wave_score(
            hist,
            scale,
            change,
            sigma * math.sqrt(cfg.roc_period),
            strength,
            percent_b,
            cfg.rsi_overbought,
            cfg.rsi_oversold,
            score,
        )
        features = {"rsi": strength, "roc": change, "macd_hist": hist, "percent_b": percent_b}
        return finish(self.name, score, THRESHOLD, SCALE, features)


@njit
def _wave_score(
    hist: F8,
    scale: F8,
    change: F8,
    change_scale: F8,
    strength: F8,
    percent_b: F8,
    overbought: float,
    oversold: float,
    out: F8,
) -> None:
    """Write the momentum score of every bar (NaN while any input is warming up)."""
    w_hist, w_roc, w_rsi, w_band = 0.35, 0.35, 0.15, 0.15
    for t in range(out.size):
        band = min(max(2.0 * percent_b[t] - 1.0, -1.0), 1.0)
        x = (
            w_hist * math.tanh(2.0 * hist[t] / scale[t])
            + w_roc * math.tanh(change[t] / change_scale[t])
            + w_rsi * (strength[t] - 50.0) / 50.0
            + w_band * band
        )
        if percent_b[t] != percent_b[t]:
            x = math.nan
        stretched_up = strength[t] > overbought and percent_b[t] > 1.0 and x > 0.0
        stretched_down = strength[t] < oversold and percent_b[t] < 0.0 and x < 0.0
        out[t] = 0.5 * x if stretched_up or stretched_down else x

"""Environment Perception agent: volatility and trend regimes, circuit-breaker trips, costs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from reinforcetrade.agents.base import F8, I1, AgentSignals, finish
from reinforcetrade.config.sections import EnvironmentAgentConfig, RiskConfig
from reinforcetrade.core.codes import Regime, TrendRegime, VolRegime
from reinforcetrade.core.jit import njit
from reinforcetrade.data.bars import Bars
from reinforcetrade.features.indicators import adx, rolling_slope
from reinforcetrade.features.stats import ewma_step, realized_volatility, rolling_mean
from reinforcetrade.features.stats import rolling_zscore as zscore

B1 = npt.NDArray[np.bool_]
_LOW, _NORMAL, _HIGH, _EXTREME = (int(r) for r in VolRegime)
_RANGE, _UP, _DOWN = (int(r) for r in TrendRegime)
_TRENDING, _RANGING, _HIGH_VOL = (int(r) for r in Regime)


@dataclass(frozen=True)
class Perception:
    """The environment agent's reading of every bar."""

    signals: AgentSignals
    vol_regime: I1  # VolRegime codes
    trend_regime: I1  # TrendRegime codes
    regime: I1  # Regime codes: the tower's weight-table row
    breaker: B1  # a move or volatility spike trips the circuit breaker on this bar
    volatility: F8  # realised volatility per bar (std of log returns over the window)
    ready: B1  # every indicator has warmed up

    def since(self, first: int) -> Perception:
        """Return the reading from bar `first` on."""
        return Perception(
            self.signals.since(first),
            self.vol_regime[first:],
            self.trend_regime[first:],
            self.regime[first:],
            self.breaker[first:],
            self.volatility[first:],
            self.ready[first:],
        )


class EnvironmentAgent:
    """Reads the market's state: how volatile against its own history, and whether it trends.

    Volatility regime: realised volatility (std of log returns over `volatility_window` bars)
    is compared with its own history as a rolling z-score of its logarithm over
    `volatility_history` bars; the configured quantiles become z thresholds through the normal
    distribution (log volatility is close to normal), which keeps the rule O(n).
    Trend regime: ADX at or above `trend_adx_threshold`, the leading directional index and the
    sign of the log-price slope over `slope_window` bars. Tower regime: high volatility first
    (HIGH or EXTREME), then trending (UP or DOWN), else ranging. Its own signal follows the
    trend regime, with confidence ADX / 50 (capped at 1), damped to 0.7 in high and 0.4 in
    extreme volatility.
    Circuit breaker: a bar whose log return exceeds `circuit_breaker_move_sigmas` times the
    previous bar's volatility, or volatility above `circuit_breaker_volatility_multiple` times
    its rolling mean, trips the breaker on that bar (the risk manager then pauses entries).
    Execution feedback: `observe_fill` keeps an exponentially weighted estimate of realised
    slippage in bps, which the tower uses to raise its entry threshold when execution is worse
    than the cost model assumed.
    """

    name = "environment"

    def __init__(
        self, config: EnvironmentAgentConfig | None = None, risk: RiskConfig | None = None
    ) -> None:
        self.config = config or EnvironmentAgentConfig()
        self.risk = risk or RiskConfig()
        self.cost_estimate_bps = float("nan")  # realised slippage, bps of the reference price
        self.cost_excess_bps = float("nan")  # realised minus the cost model's prediction
        self.latency_estimate_ms = float("nan")

    def signals(self, bars: Bars) -> AgentSignals:
        """Return the agent's own direction and confidence per bar."""
        return self.perceive(bars).signals

    def perceive(self, bars: Bars) -> Perception:
        """Return regimes, breaker triggers and the agent's signal for every bar (causal)."""
        cfg, risk = self.config, self.risk
        close = bars.close
        vol = realized_volatility(close, cfg.volatility_window)
        vol_z = zscore(np.log(np.maximum(vol, 1e-12)), cfg.volatility_history)
        strength, plus_di, minus_di = adx(bars.high, bars.low, close, cfg.adx_period)
        slope = rolling_slope(np.log(close), cfg.slope_window)
        vol_mean = rolling_mean(vol, cfg.volatility_history)
        normal = NormalDist()
        n = close.size
        vol_regime = np.empty(n, dtype=np.int8)
        trend = np.empty(n, dtype=np.int8)
        regime = np.empty(n, dtype=np.int8)
        score = np.empty(n, dtype=np.float64)
        breaker = np.empty(n, dtype=np.bool_)
        ready = np.empty(n, dtype=np.bool_)
        _perceive(
            close,
            vol,
            vol_z,
            vol_mean,
            strength,
            plus_di,
            minus_di,
            slope,
            normal.inv_cdf(cfg.low_volatility_quantile),
            normal.inv_cdf(cfg.high_volatility_quantile),
            normal.inv_cdf(cfg.extreme_volatility_quantile),
            cfg.trend_adx_threshold,
            risk.circuit_breaker_move_sigmas,
            risk.circuit_breaker_volatility_multiple,
            risk.circuit_breaker,
            vol_regime,
            trend,
            regime,
            score,
            breaker,
            ready,
        )
        features = {
            "volatility": vol,
            "volatility_z": vol_z,
            "adx": strength,
            "plus_di": plus_di,
            "minus_di": minus_di,
            "slope": slope,
        }
        return Perception(
            signals=finish(self.name, score, 1e-9, 1.0, features),
            vol_regime=vol_regime,
            trend_regime=trend,
            regime=regime,
            breaker=breaker,
            volatility=vol,
            ready=ready,
        )

    def observe_fill(
        self, slippage_bps: float, latency_ms: float, predicted_bps: float = 0.0
    ) -> None:
        """Fold one fill's slippage, its excess over the prediction, and latency into the estimates.

        The same rule (`ewma_step`) as the compiled loop's.
        """
        alpha = self.config.cost_feedback_alpha
        self.cost_estimate_bps = ewma_step(self.cost_estimate_bps, slippage_bps, alpha)
        self.cost_excess_bps = ewma_step(self.cost_excess_bps, slippage_bps - predicted_bps, alpha)
        self.latency_estimate_ms = ewma_step(self.latency_estimate_ms, latency_ms, alpha)


@njit
def _perceive(
    close: F8,
    vol: F8,
    vol_z: F8,
    vol_mean: F8,
    strength: F8,
    plus_di: F8,
    minus_di: F8,
    slope: F8,
    z_low: float,
    z_high: float,
    z_extreme: float,
    adx_threshold: float,
    move_sigmas: float,
    vol_multiple: float,
    breaker_on: bool,
    vol_regime: I1,
    trend: I1,
    regime: I1,
    score: F8,
    breaker: B1,
    ready: B1,
) -> None:
    """Classify every bar in one pass: regimes, the agent's score, breaker trips, readiness."""
    for t in range(close.size):
        z = vol_z[t]
        v = _NORMAL
        if z <= z_low:
            v = _LOW
        if z >= z_high:
            v = _HIGH
        if z >= z_extreme:
            v = _EXTREME
        vol_regime[t] = v
        a = strength[t]
        d = _RANGE
        if a >= adx_threshold:
            if plus_di[t] > minus_di[t] and slope[t] > 0.0:
                d = _UP
            elif minus_di[t] > plus_di[t] and slope[t] < 0.0:
                d = _DOWN
        trend[t] = d
        if v >= _HIGH:
            regime[t] = _HIGH_VOL
        elif d == _RANGE:
            regime[t] = _RANGING
        else:
            regime[t] = _TRENDING
        ok = z == z and a == a and slope[t] == slope[t]
        ready[t] = ok
        damp = 0.4 if v == _EXTREME else (0.7 if v == _HIGH else 1.0)
        sign = 1.0 if d == _UP else (-1.0 if d == _DOWN else 0.0)
        score[t] = sign * min(max(a / 50.0, 0.0), 1.0) * damp if ok else math.nan
        tripped = False
        if breaker_on and t > 0:
            move = abs(math.log(close[t] / close[t - 1]))
            tripped = move > move_sigmas * vol[t - 1] or vol[t] > vol_multiple * vol_mean[t]
        breaker[t] = tripped

"""Signal agents: causal to the bit, well-formed signals, regimes that mean what they say."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reinforcetrade.agents import EnvironmentAgent, ShortTermAgent, TrendAgent
from reinforcetrade.agents.base import AgentSignals
from reinforcetrade.core.codes import Regime, TrendRegime, VolRegime
from reinforcetrade.data import generate_ohlcv, make_ohlcv
from reinforcetrade.data.bars import Bars
from reinforcetrade.strategies import MultiAgentStrategy

AGENTS = [EnvironmentAgent(), ShortTermAgent(), TrendAgent()]
SERIES = {
    seed: Bars.from_frame(generate_ohlcv("BTC/USDT", timeframe="1h", bars=1_500, seed=seed))
    for seed in (1, 2)
}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


@settings(max_examples=30, deadline=None)
@given(t=st.integers(min_value=0, max_value=1_499), seed=st.sampled_from([1, 2]))
@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_signal_at_t_uses_bars_up_to_t_only(agent, t: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    bars = SERIES[seed]
    full = agent.signals(bars)
    head = agent.signals(bars.head(t + 1))
    assert head.direction[t] == full.direction[t]
    assert head.confidence[t] == full.confidence[t]  # bit for bit
    for name, values in full.features.items():
        assert _same(head.features[name][t : t + 1], values[t : t + 1]), name


@settings(max_examples=20, deadline=None)
@given(t=st.integers(min_value=0, max_value=1_499))
def test_environment_regimes_and_breaker_are_causal(t: int) -> None:
    bars = SERIES[1]
    agent = EnvironmentAgent()
    full, head = agent.perceive(bars), agent.perceive(bars.head(t + 1))
    for name in ("vol_regime", "trend_regime", "regime", "breaker", "ready"):
        assert getattr(head, name)[t] == getattr(full, name)[t], name


def test_strategy_prepare_is_causal() -> None:
    bars = SERIES[2]
    strategy = MultiAgentStrategy()
    full = strategy.prepare(bars)
    for t in (250, 777, 1_499):
        head = strategy.prepare(bars.head(t + 1))
        assert np.array_equal(head.directions[:, t], full.directions[:, t])
        assert np.array_equal(head.confidences[:, t], full.confidences[:, t])
        assert head.ready[t] == full.ready[t]


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_signals_are_well_formed(agent) -> None:  # type: ignore[no-untyped-def]
    signals: AgentSignals = agent.signals(SERIES[1])
    assert signals.direction.dtype == np.int8
    assert set(np.unique(signals.direction)) <= {-1, 0, 1}
    assert ((signals.confidence >= 0) & (signals.confidence <= 1)).all()
    assert (signals.confidence[signals.direction == 0] == 0).all()
    assert (signals.direction[-500:] != 0).any()  # warmed up, the agent does speak
    record = signals.at(1_000)
    assert record.agent == agent.name
    assert set(record.features) == set(signals.features)


def _trend_bars(drift: float, noise: float, n: int = 1_200, seed: int = 0) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(drift + rng.normal(0, noise, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, noise / 2, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, noise / 2, n)))
    frame = make_ohlcv(
        np.arange(n) * 3_600_000_000_000, open_, high, low, close, np.ones(n), timeframe="1h"
    )
    return Bars.from_frame(frame)


def test_regimes_follow_the_market() -> None:
    agent = EnvironmentAgent()
    up = agent.perceive(_trend_bars(0.003, 0.002))
    assert (up.trend_regime[-300:] == TrendRegime.UP).mean() > 0.8
    assert (up.regime[-300:] == Regime.TRENDING).mean() > 0.5
    down = agent.perceive(_trend_bars(-0.003, 0.002))
    assert (down.trend_regime[-300:] == TrendRegime.DOWN).mean() > 0.8
    assert (TrendAgent().signals(_trend_bars(0.003, 0.002)).direction[-300:] == 1).mean() > 0.9
    assert (TrendAgent().signals(_trend_bars(-0.003, 0.002)).direction[-300:] == -1).mean() > 0.9


def test_volatility_regime_rises_with_a_volatility_shock() -> None:
    calm = _trend_bars(0.0, 0.002, n=2_000)
    close = calm.close.copy()
    rng = np.random.default_rng(1)
    shock = np.exp(np.cumsum(rng.normal(0, 0.03, 200)))
    close[1_800:] = close[1_799] * shock
    high = np.maximum(np.concatenate(([close[0]], close[:-1])), close) * 1.001
    low = np.minimum(np.concatenate(([close[0]], close[:-1])), close) * 0.999
    frame = make_ohlcv(
        calm.ts,
        np.concatenate(([close[0]], close[:-1])),
        high,
        low,
        close,
        np.ones(close.size),
        timeframe="1h",
    )
    seen = EnvironmentAgent().perceive(Bars.from_frame(frame))
    assert (seen.vol_regime[1_830:1_900] >= VolRegime.HIGH).mean() > 0.8
    assert seen.breaker[1_800:1_900].any()
    assert not seen.breaker[800:1_700].any()


def test_execution_feedback_updates_the_cost_estimate() -> None:
    from reinforcetrade.agents import ExecutionAgent
    from reinforcetrade.core.codes import Side
    from reinforcetrade.core.records import Fill

    environment = EnvironmentAgent()
    execution = ExecutionAgent(environment)
    fill = Fill(
        ts=0,
        symbol="X",
        side=Side.BUY,
        quantity=1.0,
        price=100.10,
        commission=0.1,
        slippage=0.1,
        latency_ms=300.0,
        decision=0,
    )
    bps = execution.record(fill, reference_price=100.0, predicted_price=100.02)
    assert bps == pytest.approx(10.0)
    assert environment.cost_estimate_bps == pytest.approx(10.0)
    assert environment.cost_excess_bps == pytest.approx(8.0)
    assert environment.latency_estimate_ms == 300.0
    execution.record(fill, reference_price=100.0, predicted_price=100.10)
    assert environment.cost_excess_bps == pytest.approx(0.9 * 8.0)

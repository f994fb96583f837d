"""`FactorAgent`: a fitted factor pipeline voting in the tower, in backtests and paper sessions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.markets import planted_bars
from reinforcetrade.backtesting import EnhancedBacktester
from reinforcetrade.config import Settings
from reinforcetrade.core.errors import ConfigError
from reinforcetrade.data import generate_market
from reinforcetrade.data.bars import Bars
from reinforcetrade.ml import FactorPipeline
from reinforcetrade.ml.agent import FactorAgent
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.feeds import ReplayFeed
from reinforcetrade.trading.paper import PaperBroker

SYMBOL = "BTC/USDT"


def market(bars: int = 1_500) -> dict[str, pd.DataFrame]:
    return {SYMBOL: generate_market([SYMBOL], bars=bars, seed=4).frames[SYMBOL]}


def fitted(frame: pd.DataFrame, **config: object) -> FactorPipeline:
    """A pipeline fitted on the first two thirds of a market (the rest it never saw)."""
    bars = Bars.from_frame(frame.iloc[: 2 * len(frame) // 3], symbol=SYMBOL)
    return FactorPipeline(horizon=3, model="logistic", **config).fit(bars)  # type: ignore[arg-type]


def test_the_agent_votes_the_sign_of_p_up_with_its_strength() -> None:
    bars = planted_bars(seed=2, n=2_000)
    pipeline = FactorPipeline(horizon=3, model="logistic").fit(bars)
    agent = FactorAgent(pipeline, Settings(agents={"factor": {"threshold": 0.1, "scale": 0.4}})
                        .agents.factor)  # fmt: skip
    signals = agent.signals(bars)
    p_up = pipeline.predict_proba(bars)
    score = 2 * p_up - 1
    np.testing.assert_array_equal(signals.features["p_up"], p_up)
    warm = np.isfinite(p_up)
    assert not warm[: agent.warmup].any()
    assert warm[agent.warmup :].all()
    assert (signals.direction[~warm] == 0).all()
    assert (signals.confidence[~warm] == 0).all()
    votes = warm & (np.abs(score) >= 0.1)
    np.testing.assert_array_equal(signals.direction[votes], np.sign(score[votes]))
    np.testing.assert_allclose(signals.confidence[votes], np.minimum(np.abs(score[votes]) / 0.4, 1))
    quiet = warm & ~votes
    assert quiet.any()
    assert (signals.direction[quiet] == 0).all()
    assert (signals.confidence[quiet] == 0).all()


def test_off_by_default_and_on_by_settings(tmp_path: Path) -> None:
    assert "factor" not in MultiAgentStrategy().agent_names
    with pytest.raises(ConfigError, match=r"agents\.factor\.model"):
        MultiAgentStrategy(settings=Settings(agents={"factor": {"enabled": True}}))
    path = fitted(market()[SYMBOL]).save(tmp_path / "factor.pkl")
    settings = Settings(agents={"factor": {"enabled": True, "model": str(path)}})
    strategy = MultiAgentStrategy(settings=settings)
    assert strategy.agent_names == ("environment", "short_term", "trend", "factor")
    assert strategy.factor is not None
    assert strategy.lookback() >= strategy.factor.warmup + 1
    weights = strategy.tower().weights
    assert weights[0, 3] == pytest.approx(np.mean([0.2, 0.3, 0.5]))  # unweighted: the row mean


def test_a_backtest_records_the_factor_agents_vote() -> None:
    frames = market()
    pipeline = fitted(frames[SYMBOL])
    result = EnhancedBacktester(MultiAgentStrategy(factor=pipeline)).run(frames)
    decisions = result.decisions
    assert {"signal_factor", "confidence_factor", "weight_factor"} <= set(decisions.columns)
    agent = FactorAgent(pipeline)
    signals = agent.signals(Bars.from_frame(frames[SYMBOL], symbol=SYMBOL))
    at = frames[SYMBOL].index.get_indexer(pd.Index(decisions["time"]))
    voted = decisions["action"] != "exit"  # exits the venue made carry no votes
    np.testing.assert_array_equal(decisions["signal_factor"][voted], signals.direction[at][voted])
    np.testing.assert_allclose(
        decisions["confidence_factor"][voted], signals.confidence[at][voted], rtol=1e-12
    )
    without = EnhancedBacktester(MultiAgentStrategy()).run(frames).decisions
    same = decisions.merge(without, on=["time", "symbol"], suffixes=("", "_without"))
    assert len(same) > 0
    assert (same["confidence"] != same["confidence_without"]).any()  # a fourth voice counts


def test_a_paper_session_with_the_factor_agent_decides_as_the_backtest(tmp_path: Path) -> None:
    frames = market()
    pipeline = fitted(frames[SYMBOL])
    expected = EnhancedBacktester(MultiAgentStrategy(factor=pipeline)).run(frames).decisions
    with Journal(f"sqlite:///{tmp_path / 'paper.db'}") as journal:
        engine = LiveEngine(MultiAgentStrategy(factor=pipeline), ReplayFeed(frames),
                            PaperBroker(), journal, history=None)  # fmt: skip
        summary = engine.run()
        got = journal.read_table("decisions", run_id=summary.run_id).sort_values("number")
        agents = journal.read_table("decision_agents")
    got = got[got["time"] <= expected["time"].max()].reset_index(drop=True)
    assert len(got) == len(expected) > 0
    assert (got["action"].to_numpy() == expected["action"].astype(str).to_numpy()).all()
    np.testing.assert_allclose(got["confidence"].to_numpy(float),
                               expected["confidence"].to_numpy(float), rtol=1e-12)  # fmt: skip
    factor_votes = agents[agents["agent"] == "factor"]
    assert len(factor_votes) == len(got)  # every decision keeps the factor agent's vote

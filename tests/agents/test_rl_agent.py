"""RL agents in the system: batched inference equals stepping, mismatches refused, the tower."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from reinforcetrade.agents import rl as rl_module
from reinforcetrade.agents.registry import ModelMismatchError, ModelRecord, ModelRegistry
from reinforcetrade.agents.rl import RLAgent
from reinforcetrade.backtesting import EnhancedBacktester
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data import resample
from reinforcetrade.data.bars import Bars
from reinforcetrade.environments import FeatureSpec, TradingEnv
from reinforcetrade.strategies import MultiAgentStrategy
from rl_support import fast_settings, market, train

CASES = [("ppo", False), ("ppo", True), ("a2c", True), ("dqn", True), ("dqn", False), ("sac", True)]
FULL_FILLS = {"max_participation": 1.0}  # the env's held side then always equals the target's


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def trained(models: Path) -> dict[tuple[str, bool], ModelRecord]:
    return {
        (algo, short): train(models, algo, steps=400, allow_short=short, seed=3)
        for algo, short in CASES
    }


def step_by_step(
    model: Any, record: ModelRecord, frame: pd.DataFrame, models: Path
) -> tuple[list[int], list[float], list[torch.Tensor]]:
    """Run the env over the whole series with `model.predict` per bar; return bars, targets, obs."""
    settings = fast_settings(models, allow_short=record.env_config["allow_short"])
    settings = settings.with_updates("costs", **FULL_FILLS)
    env = TradingEnv(
        frame, window=record.env_config["window"], discrete=record.env_config["discrete"],
        settings=settings,
    )  # fmt: skip
    obs, _ = env.reset(seed=0)
    bars, targets, seen = [], [], []
    done = False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        bars.append(env.bar)
        targets.append(env.action_interpreter.target(action))
        seen.append(torch.as_tensor(obs)[None])
        obs, _, terminated, truncated, info = env.step(action)
        assert info["position"] == targets[-1]
        done = terminated or truncated
    return bars, targets, seen


@pytest.mark.parametrize(
    ("algo", "short"), CASES, ids=[f"{a}-{'short' if s else 'long'}" for a, s in CASES]
)
def test_batched_decisions_equal_step_by_step_predict(
    trained: dict[tuple[str, bool], ModelRecord], models: Path, algo: str, short: bool
) -> None:
    registry = ModelRegistry(models)
    record = trained[(algo, short)]
    model = registry.load(record)
    frame = market(bars=1_500, seed=11)  # data the model never saw
    signals = RLAgent(model, record).signals(Bars.from_frame(frame, "BTC/USDT"))
    bars, targets, _ = step_by_step(model, record, frame, models)
    chosen = signals.features["target"][bars]
    if algo == "sac":
        np.testing.assert_allclose(chosen, targets, rtol=0, atol=1e-5)
    else:
        np.testing.assert_array_equal(chosen, targets)  # exactly the same decisions
        assert len(set(targets)) > 1  # the policy really changes its mind
    assert np.isnan(signals.features["target"][: bars[0]]).all()  # nothing before warm-up
    np.testing.assert_array_equal(signals.direction[bars], np.sign(chosen).astype(np.int8))


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_confidence_is_the_policy_certainty(
    trained: dict[tuple[str, bool], ModelRecord], models: Path, algo: str
) -> None:
    registry = ModelRegistry(models)
    record = trained[(algo, True)]
    model: Any = registry.load(record)
    frame = market(bars=900, seed=12)
    signals = RLAgent(model, record).signals(Bars.from_frame(frame, "BTC/USDT"))
    bars, targets, seen = step_by_step(model, record, frame, models)
    obs = torch.cat(seen)
    with torch.no_grad():
        if algo == "ppo":
            probs = model.policy.get_distribution(obs).distribution.probs.double()
        else:
            probs = torch.softmax(model.q_net(obs).double(), dim=1)
    chosen = probs.max(dim=1).values.numpy()
    expected = np.clip((chosen - 1 / 3) / (1 - 1 / 3), 0.0, 1.0)
    expected = np.where(np.asarray(targets) != 0, expected, 0.0)  # flat carries no confidence
    np.testing.assert_allclose(signals.confidence[bars], expected, rtol=0, atol=1e-6)
    assert ((signals.confidence >= 0) & (signals.confidence <= 1)).all()


def test_batches_split_anywhere_give_the_same_signals(
    trained: dict[tuple[str, bool], ModelRecord], models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = trained[("ppo", True)]
    agent = RLAgent.load(record, ModelRegistry(models))
    bars = Bars.from_frame(market(bars=1_000, seed=13), "BTC/USDT")
    whole = agent.signals(bars)
    monkeypatch.setattr(rl_module, "BLOCK", 97)
    pieces = agent.signals(bars)
    np.testing.assert_array_equal(whole.features["target"], pieces.features["target"])
    np.testing.assert_array_equal(whole.confidence, pieces.confidence)


def test_signals_are_causal(trained: dict[tuple[str, bool], ModelRecord], models: Path) -> None:
    agent = RLAgent.load(trained[("ppo", True)], ModelRegistry(models))
    frame = market(bars=700, seed=14)
    whole = agent.signals(Bars.from_frame(frame, "BTC/USDT"))
    for t in (300, 450, 699):
        part = agent.signals(Bars.from_frame(frame.iloc[: t + 1], "BTC/USDT"))
        assert part.direction[t] == whole.direction[t]
        assert part.confidence[t] == whole.confidence[t]


def test_mismatched_features_or_timeframe_are_refused(
    trained: dict[tuple[str, bool], ModelRecord], models: Path
) -> None:
    registry = ModelRegistry(models)
    record = trained[("ppo", False)]
    agent = RLAgent.load(record, registry)
    four_hour = resample(market(bars=3_000), "4h")
    with pytest.raises(ModelMismatchError, match="trained on 1h bars but is being applied to 4h"):
        agent.signals(Bars.from_frame(four_hour, "BTC/USDT"))
    other = FeatureSpec.default(clip=3.0)
    with pytest.raises(ModelMismatchError, match="retrain it on the current feature spec"):
        RLAgent.load(record, registry, features=other)
    env = TradingEnv(market(), window=8, features=other)
    with pytest.raises(ModelMismatchError, match=record.id):
        registry.load(record, env=env)
    registry.load(record, env=TradingEnv(market(), window=8))  # the matching env is accepted


def test_the_tower_weighs_the_rl_agent_and_records_it(
    trained: dict[tuple[str, bool], ModelRecord], models: Path
) -> None:
    record = trained[("ppo", False)]
    settings = fast_settings(models)
    frame = market(bars=1_500, seed=15)
    by_record = EnhancedBacktester(MultiAgentStrategy(model=record, settings=settings)).run(frame)
    by_id = EnhancedBacktester(MultiAgentStrategy(model=record.id, settings=settings)).run(frame)
    by_path = EnhancedBacktester(MultiAgentStrategy(model=record.path, settings=settings)).run(
        frame
    )
    decisions = by_record.decisions
    for column in ("signal_rl", "confidence_rl", "weight_rl"):
        assert column in decisions.columns
    assert decisions["signal_rl"].abs().sum() > 0
    assert by_record.equity.equals(by_id.equity)
    assert by_record.equity.equals(by_path.equity)
    agent = RLAgent(ModelRegistry(models).load(record), record)
    rl = agent.signals(Bars.from_frame(frame, "BTC/USDT"))
    times = decisions["time"]
    at = frame.index.get_indexer(pd.Index(times))
    np.testing.assert_array_equal(decisions["signal_rl"].to_numpy(), rl.direction[at])
    np.testing.assert_allclose(decisions["confidence_rl"].to_numpy(), rl.confidence[at])


def test_use_rl_without_models_says_how_to_train(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "empty")
    with pytest.raises(UserInputError, match="reinforcetrade train"):
        MultiAgentStrategy(use_rl=True, settings=settings)


def test_use_rl_needs_a_champion_for_each_symbol(
    trained: dict[tuple[str, bool], ModelRecord], tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path / "m")
    record = train(tmp_path / "m", steps=256)
    settings = fast_settings(tmp_path / "m")
    strategy = MultiAgentStrategy(use_rl=True, settings=settings)
    with pytest.raises(UserInputError, match="no champion RL model for BTC/USDT 1h"):
        EnhancedBacktester(strategy).run(market())
    assert registry.promote(record.id).promoted
    result = EnhancedBacktester(MultiAgentStrategy(use_rl=True, settings=settings)).run(market())
    assert "signal_rl" in result.decisions.columns
    with pytest.raises(UserInputError, match="no champion RL model for ETH/USDT 1h"):
        EnhancedBacktester(strategy).run({"ETH/USDT": market(symbol="ETH/USDT")})

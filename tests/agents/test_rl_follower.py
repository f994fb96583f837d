"""`RLFollower`: the policy on the newest bar only gives what the batched series gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reinforcetrade.agents.registry import ModelRegistry
from reinforcetrade.agents.rl import RLAgent
from reinforcetrade.data.bars import Bars
from rl_support import fast_settings, market, train


def test_following_bar_by_bar_equals_the_whole_series(tmp_path: Path) -> None:
    models = tmp_path / "models"
    record = train(models, "ppo", 512, data=market(900, seed=5), allow_short=True)
    agent = RLAgent.load(record.id, ModelRegistry(models))
    frame = market(700, seed=11)
    bars = Bars.from_frame(frame)
    whole = agent.signals(bars)
    follower = agent.follower()
    window = 400
    directions, confidences, warm = [], [], []
    for n in range(1, len(frame) + 1):
        seen = Bars.from_frame(frame.iloc[max(0, n - window) : n])
        d, c, w = follower.update(seen, n)
        directions.append(d)
        confidences.append(c)
        warm.append(w)
    np.testing.assert_array_equal(np.array(directions), whole.direction)
    np.testing.assert_allclose(np.array(confidences), whole.confidence, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.array(warm), np.isfinite(whole.features["target"]))
    assert (whole.direction != 0).sum() > 10
    assert (whole.direction < 0).any()
    assert fast_settings(models).rl.window == 8

"""`RLAgent`: a trained Stable-Baselines3 policy as a signal agent the Decision Tower weighs.

The policy's observation holds the side of the agent's own position (short / flat / long: the
side of its previous action, exactly as in training). So the whole series is evaluated in a few
large batches — every bar for every side the agent can hold — and a compiled scan then walks the
bars, picking at each bar the action for the side it actually holds. The actions equal stepping
through the bars with `model.predict` one observation at a time (a test proves it), at a tiny
fraction of the cost.

Direction comes from the action's target position (long +1, flat 0, short −1); confidence from
the policy's probability of that action (PPO, A2C), from the softmax of its Q-values (DQN) —
rescaled so that a uniform choice gives 0 and a certain one 1 — or from the size of the target
position (SAC).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import FlattenExtractor
from torch import nn

from reinforcetrade.agents.base import AgentSignals
from reinforcetrade.agents.registry import ModelRecord, ModelRegistry, require_compatible
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.jit import njit
from reinforcetrade.data.bars import Bars
from reinforcetrade.environments import FeatureSpec
from reinforcetrade.environments.interpreters import (
    FLAT,
    LONG,
    SHORT,
    SIDES,
    ActionInterpreter,
    ObservationInterpreter,
)

F4 = npt.NDArray[np.float32]
F8 = npt.NDArray[np.float64]
BLOCK: Final[int] = 65_536  # bars evaluated per batch


@dataclass(frozen=True)
class PolicyHead:
    """A policy cut after its first layer: the first Linear, then the rest of the network."""

    first: nn.Linear
    rest: Callable[[torch.Tensor], torch.Tensor]
    kind: str  # "categorical" (logits), "q" (Q-values) or "squashed" (tanh of the mean)


def _part(owner: object, *path: str) -> nn.Module:
    """Return a sub-module found by attribute path, or say the policy's shape is not supported."""
    node = owner
    for name in path:
        node = getattr(node, name, None)
    if not isinstance(node, nn.Module):
        raise UserInputError(f"unsupported policy: no {'.'.join(path)} module")
    return node


def _layers(owner: object, *path: str) -> tuple[nn.Linear, nn.Module]:
    """Return the first Linear of a Sequential found by path, and the layers after it."""
    seq = _part(owner, *path)
    if not (isinstance(seq, nn.Sequential) and len(seq) and isinstance(seq[0], nn.Linear)):
        raise UserInputError(f"unsupported policy: {'.'.join(path)} does not start with a Linear")
    return seq[0], seq[1:]


def policy_head(model: BaseAlgorithm) -> PolicyHead:
    """Return the policy as first layer + rest for the algorithms the pipeline trains."""
    policy = model.policy
    if isinstance(model, PPO | A2C):
        if not isinstance(getattr(policy, "features_extractor", None), FlattenExtractor):
            raise UserInputError("only flat (MLP) observation encoders are supported")
        first, hidden = _layers(policy, "mlp_extractor", "policy_net")
        action_net = _part(policy, "action_net")
        return PolicyHead(first, lambda z: action_net(hidden(z)), "categorical")
    if isinstance(model, DQN):
        first, hidden = _layers(policy, "q_net", "q_net")
        return PolicyHead(first, hidden, "q")
    if isinstance(model, SAC):
        first, hidden = _layers(policy, "actor", "latent_pi")
        mu = _part(policy, "actor", "mu")
        return PolicyHead(first, lambda z: torch.tanh(mu(hidden(z))), "squashed")
    raise UserInputError(
        f"RL agents support ppo, a2c, dqn and sac models, not {type(model).__name__}"
    )


def _rescaled(p: torch.Tensor, choices: int) -> torch.Tensor:
    """Map a chosen action's probability to [0, 1]: uniform → 0, certain → 1."""
    return torch.clamp((p - 1.0 / choices) / (1.0 - 1.0 / choices), 0.0, 1.0)


@njit
def choose_path(targets: F8, confidence: F8, first: int) -> tuple[F8, F8]:
    """Walk the bars from `first`, holding the side of the previous target; return the targets.

    `targets[t, side]` and `confidence[t, side]` are the policy's target position and its
    confidence for bar t when holding `side`. Returns the chosen target and its confidence per
    bar (NaN and 0 before `first`).
    """
    n = targets.shape[0]
    chosen = np.full(n, np.nan)
    conf = np.zeros(n)
    side = FLAT
    for t in range(first, n):
        target = targets[t, side]
        chosen[t] = target
        conf[t] = confidence[t, side]
        side = LONG if target > 0.0 else (SHORT if target < 0.0 else FLAT)
    return chosen, conf


class RLAgent:
    """Signals from a trained policy: direction from its action, confidence from its certainty."""

    def __init__(
        self,
        model: BaseAlgorithm,
        record: ModelRecord,
        *,
        name: str = "rl",
        features: FeatureSpec | None = None,
    ) -> None:
        """`features`, when given, must be the spec the model was trained on (else a mismatch)."""
        self.model = model
        self.record = record
        self.name = name
        self.spec = FeatureSpec.from_dict(record.feature_spec)
        if features is not None:
            require_compatible(
                record, feature_fingerprint=features.fingerprint(), timeframe=record.timeframe
            )
        env = record.env_config
        self.discrete = bool(env.get("discrete", True))
        self.allow_short = bool(env.get("allow_short", False))
        self.observations = ObservationInterpreter(
            int(env["window"]), len(self.spec.names), float(self.spec.clip)
        )
        self.actions = ActionInterpreter(self.discrete, self.allow_short)
        self.head = policy_head(model)

    @classmethod
    def load(
        cls,
        ref: str | Path | ModelRecord,
        registry: ModelRegistry,
        *,
        name: str = "rl",
        features: FeatureSpec | None = None,
    ) -> RLAgent:
        """Return the agent of a registered model (id, folder or record)."""
        record = registry.get(ref)
        return cls(registry.load(record), record, name=name, features=features)

    def _check(self, bars: Bars) -> None:
        if bars.timeframe is not None:
            require_compatible(
                self.record,
                feature_fingerprint=self.spec.fingerprint(),
                timeframe=bars.timeframe.text,
            )

    def model_records(self) -> list[dict[str, object]]:
        """Return this agent's model record (for results and reports)."""
        return [self.record.to_dict()]

    def sides(self) -> tuple[int, ...]:
        """Return the sides the agent can hold (no short side when it cannot short)."""
        return (SHORT, FLAT, LONG) if self.allow_short else (FLAT, LONG)

    def evaluate(self, features: F4, first: int) -> tuple[npt.NDArray[np.int64], F8, F8]:
        """Return the policy's outputs for every bar ≥ first and every side, each (bars, 3).

        The action index (discrete), the target (continuous policies) and the confidence.
        """
        n = features.shape[0]
        index = np.zeros((n, SIDES), dtype=np.int64)
        value = np.zeros((n, SIDES), dtype=np.float64)
        conf = np.zeros((n, SIDES), dtype=np.float64)
        for start in range(first, n, BLOCK):
            bars = np.arange(start, min(start + BLOCK, n))
            for side, out in self._forward(features, bars, self.sides()):
                self._fill(out, bars, side, index, value, conf)
        return index, value, conf

    def _forward(
        self, features: F4, bars: npt.NDArray[np.int64], sides: tuple[int, ...]
    ) -> list[tuple[int, torch.Tensor]]:
        """Return the policy's raw outputs on some bars' observations, for each side held."""
        head = self.head
        weight = head.first.weight.detach()
        bias = head.first.bias.detach()
        k_obs = weight.shape[1] - SIDES
        w_features, w_sides = weight[:, :k_obs], weight[:, k_obs:]
        with torch.no_grad():
            obs = self.observations.batch(features, bars, FLAT)[:, :k_obs]
            shared = torch.from_numpy(obs) @ w_features.T + bias
            return [(side, head.rest(shared + w_sides[:, side])) for side in sides]

    def follower(self) -> RLFollower:
        """Return this policy followed bar by bar (its own side carried from bar to bar)."""
        return RLFollower(self)

    def _fill(
        self,
        out: torch.Tensor,
        bars: npt.NDArray[np.int64],
        side: int,
        index: npt.NDArray[np.int64],
        value: F8,
        conf: F8,
    ) -> None:
        kind = self.head.kind
        if kind == "squashed":
            low, high = self.actions.bounds
            target = low + (out[:, 0].double() + 1.0) * 0.5 * (high - low)
            target = torch.clamp(target, low, high)
            value[bars, side] = target.numpy()
            conf[bars, side] = torch.abs(target).numpy()
            return
        probs = torch.softmax(out.double(), dim=1)
        choice = torch.argmax(out, dim=1)
        index[bars, side] = choice.numpy()
        p = probs.gather(1, choice.unsqueeze(1))[:, 0]
        conf[bars, side] = _rescaled(p, out.shape[1]).numpy()

    def signals(self, bars: Bars) -> AgentSignals:
        """Return the policy's direction and confidence for every bar.

        Causal: the features and the agent's own position are known at each bar's close.
        """
        self._check(bars)
        features = self.spec.compute(bars)
        first = self.observations.first_bar(self.spec.warmup)
        n = features.shape[0]
        if n <= first:
            empty = np.zeros(n)
            return AgentSignals(
                self.name, np.zeros(n, dtype=np.int8), empty, {"target": np.full(n, np.nan)}
            )
        index, value, conf = self.evaluate(features, first)
        if self.discrete:  # the target of each action index
            value = np.asarray(self.actions.targets, dtype=np.float64)[index]
        chosen, confidence = choose_path(value, conf, first)
        direction = np.where(np.isnan(chosen), 0, np.sign(np.nan_to_num(chosen))).astype(np.int8)
        confidence = np.where(direction != 0, confidence, 0.0)
        return AgentSignals(self.name, direction, confidence, {"target": chosen})


class RLFollower:
    """The policy on the newest bar only, holding the side of its previous target.

    Gives, bar after bar, what `RLAgent.signals` gives for the last bar of the whole series:
    the same observation, the same side (walked from FLAT at the first warm bar) — one
    forward pass for the side held instead of a batch over every bar and side.
    """

    def __init__(self, agent: RLAgent) -> None:
        self.agent = agent
        self.side = FLAT
        self.first = agent.observations.first_bar(agent.spec.warmup)
        self._checked = False

    def update(self, bars: Bars, seen: int) -> tuple[int, float, bool]:
        """Return the newest bar's (direction, confidence, warm)."""
        agent = self.agent
        if not self._checked:
            agent._check(bars)
            self._checked = True
        if seen <= self.first:
            return 0, 0.0, False
        t = len(bars) - 1
        if t < self.first:
            raise UserInputError(
                f"the RL agent needs windows of at least {self.first + 1} bars, got {len(bars)}; "
                "raise trading.history_bars"
            )
        features = agent.spec.compute(bars)
        index = np.zeros((1, SIDES), dtype=np.int64)
        value = np.zeros((1, SIDES), dtype=np.float64)
        conf = np.zeros((1, SIDES), dtype=np.float64)
        ((side, out),) = agent._forward(features, np.array([t]), (self.side,))
        agent._fill(out, np.array([0]), side, index, value, conf)
        target = (
            float(agent.actions.targets[int(index[0, side])])
            if agent.discrete
            else float(value[0, side])
        )
        self.side = LONG if target > 0.0 else (SHORT if target < 0.0 else FLAT)
        direction = int(np.sign(target))
        return direction, float(conf[0, side]) if direction else 0.0, True

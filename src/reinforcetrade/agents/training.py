"""`TrainingPipeline`: train a Stable-Baselines3 agent on market data, validate it, register it.

Data is split by time: the latest `rl.validation_fraction` is never trained on. Every
`rl.eval_every` timesteps the policy runs once, deterministically, over the validation span (the
same environment and cost model as training and backtests); the best policy by the Sharpe ratio
of its equity is kept, training stops early after `rl.patience` evaluations without improvement,
and a checkpoint is written at each evaluation. The result is saved in the model registry with
its feature spec, environment, hyperparameters, data fingerprint, metrics and library versions.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import gymnasium as gym
import numpy as np
import pandas as pd
from stable_baselines3 import A2C, DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from reinforcetrade.agents.registry import ModelRecord, ModelRegistry
from reinforcetrade.config import Settings
from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data.loader import DataLoader
from reinforcetrade.data.schema import index_ns, symbol_of, timeframe_of
from reinforcetrade.data.validate import validate
from reinforcetrade.environments import FeatureSpec, TradingEnv
from reinforcetrade.features.performance import periods_per_year, sharpe_ratio

ALGORITHMS: Final[dict[str, type[BaseAlgorithm]]] = {
    "ppo": PPO,
    "a2c": A2C,
    "dqn": DQN,
    "sac": SAC,
}
CONTINUOUS: Final[frozenset[str]] = frozenset({"sac"})
#: hyperparameters tuned for this environment's small observations and noisy rewards
DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "ppo": {"n_steps": 1024, "batch_size": 128, "n_epochs": 5, "ent_coef": 0.01},
    "a2c": {"n_steps": 16, "ent_coef": 0.01},
    "dqn": {"buffer_size": 50_000, "learning_starts": 1_000, "train_freq": 4},
    "sac": {"buffer_size": 50_000, "learning_starts": 1_000},
}


@dataclass(frozen=True)
class Evaluation:
    """How a policy did on one span: Sharpe of its equity, total return, trades."""

    sharpe: float
    total_return: float
    trades: int
    bars: int


def evaluate_policy(model: BaseAlgorithm, env: TradingEnv, per_year: float) -> Evaluation:
    """Run the policy once, deterministically, over the environment's whole series."""
    obs, _ = env.reset(seed=0)
    equity = [float(env.equity)]
    trades = 0
    last_position = 0.0
    done = False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, info = env.step(action)
        equity.append(float(info["equity"]))
        position = float(info["position"])
        if np.sign(position) != np.sign(last_position):
            trades += 1
        last_position = position
        done = terminated or truncated
    curve = np.asarray(equity)
    returns = curve[1:] / curve[:-1] - 1.0
    if returns.size > 2 and not np.any(returns):
        sharpe = 0.0  # never in the market: no risk, no return (better than any loss)
    else:
        sharpe = sharpe_ratio(returns, per_year) if returns.size > 2 else float("nan")
    return Evaluation(sharpe, float(curve[-1] / curve[0] - 1.0), trades, int(curve.size - 1))


class _Validation(BaseCallback):
    """Evaluate on the validation span every `every` steps; keep the best; stop when stale."""

    def __init__(
        self,
        env: TradingEnv,
        every: int,
        patience: int,
        per_year: float,
        checkpoints: Path | None,
    ) -> None:
        super().__init__()
        self.env = env
        self.every = every
        self.patience = patience
        self.per_year = per_year
        self.checkpoints = checkpoints
        self.best = -math.inf
        self.best_state: dict[str, Any] | None = None
        self.stale = 0
        self.history: list[tuple[int, float]] = []
        self._next = every

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next:
            return True
        self._next += self.every
        result = evaluate_policy(self.model, self.env, self.per_year)
        score = result.sharpe if math.isfinite(result.sharpe) else -math.inf
        self.history.append((self.num_timesteps, result.sharpe))
        if self.checkpoints is not None:
            self.model.save(self.checkpoints / f"step_{self.num_timesteps}")
        if score > self.best:
            self.best = score
            self.best_state = copy.deepcopy(self.model.policy.state_dict())
            self.stale = 0
        else:
            self.stale += 1
        return self.stale < self.patience


def bars_fingerprint(frame: pd.DataFrame) -> str:
    """Return a short hash of the bars' times and values."""
    digest = hashlib.sha256(index_ns(frame).tobytes())
    digest.update(np.ascontiguousarray(frame.to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()[:16]


class TrainingPipeline:
    """Train, validate and register an RL agent: `TrainingPipeline('ppo').train(data)`.

    `agent_type` is one of ppo, a2c, dqn (discrete actions) or sac (a continuous target
    position). Hyperparameters come from the `rl` settings (learning rate, gamma and
    `rl.hyperparameters[agent_type]` over this module's defaults).
    """

    def __init__(
        self,
        agent_type: str = "ppo",
        *,
        settings: Settings | None = None,
        registry: ModelRegistry | None = None,
        clock: Clock | None = None,
        progress_bar: bool = False,
        tensorboard_log: Path | None = None,
    ) -> None:
        key = agent_type.lower()
        if key not in ALGORITHMS:
            raise UserInputError(f"agent_type {agent_type!r} is not one of {', '.join(ALGORITHMS)}")
        self.agent_type = key
        self.settings = settings or Settings()
        self.clock = clock or WallClock()
        self.registry = registry or ModelRegistry(self.settings.rl.models_dir, clock=self.clock)
        self.progress_bar = progress_bar
        if tensorboard_log is not None and importlib.util.find_spec("tensorboard") is None:
            raise UserInputError(
                "TensorBoard logs need the tensorboard package: "
                "pip install 'reinforcetrade[tensorboard]'"
            )
        self.tensorboard_log = tensorboard_log
        self.history: list[tuple[int, float]] = []

    @property
    def discrete(self) -> bool:
        """Return True for algorithms with discrete actions (short/flat/long)."""
        return self.agent_type not in CONTINUOUS

    def hyperparameters(self) -> dict[str, Any]:
        """Return the keyword arguments the SB3 algorithm is built with."""
        rl = self.settings.rl
        params: dict[str, Any] = {"learning_rate": rl.learning_rate, "gamma": rl.gamma}
        params |= DEFAULTS[self.agent_type]
        params |= dict(rl.hyperparameters.get(self.agent_type, {}))
        return params

    def split(self, data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
        """Return (train, validation-with-warm-up, first validation bar's position in `data`)."""
        rl = self.settings.rl
        spec = FeatureSpec.default(clip=rl.feature_clip)
        lead = spec.warmup + rl.window
        cut = int(len(data) * (1.0 - rl.validation_fraction))
        if cut < lead + rl.window + 10 or len(data) - cut < 20:
            raise UserInputError(
                f"{len(data)} bars are too few to train and validate on: need at least "
                f"{lead + 2 * rl.window + 40} (features warm up over {spec.warmup} bars and each "
                f"observation holds {rl.window}); load more history"
            )
        return data.iloc[:cut], data.iloc[max(cut - lead, 0) :], cut

    def _env(self, frame: pd.DataFrame, episode_bars: int | None) -> TradingEnv:
        return TradingEnv(
            frame,
            window=self.settings.rl.window,
            discrete=self.discrete,
            settings=self.settings,
            episode_bars=episode_bars,
        )

    def _vec_env(self, frame: pd.DataFrame, seed: int) -> VecEnv:
        rl = self.settings.rl
        episode = min(
            rl.episode_bars, max(len(frame) - FeatureSpec.default().warmup - rl.window - 2, 16)
        )
        makers: list[Callable[[], gym.Env[Any, Any]]] = [
            (lambda: self._env(frame, episode)) for _ in range(rl.n_envs)
        ]
        vec: VecEnv = (
            SubprocVecEnv(makers, start_method="fork") if rl.n_envs > 1 else DummyVecEnv(makers)
        )
        vec.seed(seed)
        return vec

    def train(
        self,
        data: pd.DataFrame,
        total_timesteps: int | None = None,
        *,
        symbol: str | None = None,
        seed: int | None = None,
        checkpoints: Path | None = None,
    ) -> ModelRecord:
        """Train on the earlier part of `data`, keep the best on the later part, register it."""
        rl = self.settings.rl
        frame = validate(data, gaps="keep")
        symbol = symbol or symbol_of(frame) or "SYMBOL"
        tf = timeframe_of(frame)
        if tf is None:
            raise UserInputError("cannot tell the bar length of the data; set attrs['timeframe']")
        steps = int(total_timesteps if total_timesteps is not None else rl.total_timesteps)
        if steps < 1:
            raise UserInputError(f"total_timesteps must be positive, got {steps}")
        seed = rl.seed if seed is None else seed
        set_random_seed(seed)
        train_frame, valid_frame, cut = self.split(frame)
        per_year = float(periods_per_year(tf.text, self.settings.backtest.calendar))
        vec = self._vec_env(train_frame, seed)
        validation_env = self._env(valid_frame, None)
        algo = ALGORITHMS[self.agent_type]
        model = algo(
            "MlpPolicy",
            vec,
            seed=seed,
            device="cpu",
            verbose=0,
            tensorboard_log=str(self.tensorboard_log) if self.tensorboard_log else None,
            **self.hyperparameters(),
        )
        if checkpoints is not None:
            checkpoints.mkdir(parents=True, exist_ok=True)
        watch = _Validation(validation_env, rl.eval_every, rl.patience, per_year, checkpoints)
        try:
            model.learn(steps, callback=CallbackList([watch]), progress_bar=self.progress_bar)
        finally:
            vec.close()
        self.history = list(watch.history)
        if watch.best_state is not None:
            model.policy.load_state_dict(watch.best_state)
        train_eval = evaluate_policy(model, self._env(train_frame, None), per_year)
        valid_eval = evaluate_policy(model, validation_env, per_year)
        spec = validation_env.features
        return self.registry.add(
            model,
            algorithm=self.agent_type,
            symbol=symbol,
            timeframe=tf.text,
            feature_spec=spec.to_dict(),
            env_config=validation_env.config(),
            hyperparameters=self.hyperparameters(),
            data={
                "fingerprint": bars_fingerprint(frame),
                "first_bar": frame.index[0].isoformat(),
                "last_bar": frame.index[-1].isoformat(),
                "bars": len(frame),
                "validation_from": frame.index[cut].isoformat(),
            },
            metrics={
                "train_sharpe": train_eval.sharpe,
                "train_return": train_eval.total_return,
                "validation_sharpe": valid_eval.sharpe,
                "validation_return": valid_eval.total_return,
                "validation_trades": float(valid_eval.trades),
                "timesteps": float(model.num_timesteps),
                "evaluations": float(len(watch.history)),
            },
            seed=seed,
        )

    def train_on_exchange_data(
        self,
        symbol: str,
        total_timesteps: int = 50_000,
        timeframe: str = "1h",
        exchange: str = "binance",
        *,
        limit: int = 5_000,
        since: int | str | None = None,
    ) -> ModelRecord:
        """Fetch history through `DataLoader` (and its cache), then `train` on it.

        With no network and nothing cached, the error says how to get data.
        """
        loader = DataLoader(self.settings.data, clock=self.clock)
        try:
            frame = loader.fetch_historical_data(
                symbol, timeframe=timeframe, limit=limit, exchange=exchange, since=since
            )
        except UserInputError:
            raise
        except Exception as exc:  # network down, exchange unreachable: say what to do
            raise UserInputError(
                f"could not get {symbol} {timeframe} history from {exchange} ({exc}); with no "
                "network, train on a file instead: TrainingPipeline().train(load_ohlcv(path)) or "
                "`reinforcetrade train --data FILE`, or fetch once when online with "
                "`reinforcetrade data fetch` (the cache then serves it offline)"
            ) from exc
        if frame.empty:
            raise UserInputError(f"{exchange} returned no closed bars for {symbol} {timeframe}")
        return self.train(frame, total_timesteps, symbol=symbol)

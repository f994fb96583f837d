"""Benchmark the RL environment and training against their peers; prints one JSON line.

All figures use one synthetic hourly series of 100,000 bars (tests/peers/sma.py `gbm_hourly`,
seed 42: geometric Brownian motion with three volatility regimes), as PEERS.md does.

- env_steps: raw `step` calls per second with random actions (drawn beforehand, so the figure
  is the environment's alone), resetting whenever an episode ends:
  our `TradingEnv` (Discrete(3) short/flat/long, 30-bar window of 8 features, the config's
  full cost model: commission, spread, slippage, impact, volume cap, borrow; evaluation mode,
  ruin at half the starting equity ends an episode), gym-anytrading's `StocksEnv` (window 30)
  and FinRL's `StockTradingEnv` (one stock, two indicators; it is slow, so fewer steps).
- ppo: SB3 PPO (MlpPolicy, default hyperparameters) training timesteps per second on our
  environment (2,048-bar episodes from random starts) with 1 env and with 4 envs in a
  `SubprocVecEnv` (fork); the workers' start-up is reported apart. PPO on gym-anytrading's
  env in the same run is the reference: training time is SB3's and torch's, not the env's.
- env_share: the share of a 1-env PPO training run spent inside `TradingEnv.step`.
- rl_backtest: `EnhancedBacktester(MultiAgentStrategy(model=…))` with a small trained PPO model
  on 1,000,000 hourly bars (gbm_hourly, seed 42) after a warm-up run: the whole run including
  batched inference, with the lazy metrics too, inference alone, the same run without the RL
  agent, and what one `predict` per bar would cost (timed on 2,000 bars, scaled up).

Each figure is the median of 3 timed runs after an untimed warm-up (numba compiles there).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import machine, median_seconds  # benchmarks/common.py
from peers.sma import gbm_hourly
from reinforcetrade.config import Settings
from reinforcetrade.environments import TradingEnv
from reinforcetrade.features import macd, rsi

RUNS = 3
BARS = 100_000
WINDOW = 30
ENV_STEPS = 300_000  # random actions per timed run (several passes over the series)
FINRL_STEPS = 500
PPO_STEPS_1 = 8_192  # 4 rollouts of PPO's default 2,048 steps
PPO_STEPS_4 = 16_384  # 2 rollouts of 4 × 2,048
EPISODE_BARS = 2_048
RL_BARS = 1_000_000
SHORTING = Settings(backtest={"allow_short": True})


def _series() -> pd.DataFrame:
    return gbm_hourly(BARS, seed=42)


def our_env(frame: pd.DataFrame, episode_bars: int | None = None) -> TradingEnv:
    """Our environment with Discrete(3) actions and the config's full cost model."""
    return TradingEnv(frame, WINDOW, settings=SHORTING, episode_bars=episode_bars)


def steps_per_second(env: Any, actions: Any, runs: int = RUNS) -> dict[str, float]:
    """Time `env.step` over pre-drawn actions, resetting after every episode."""
    episodes = [0]

    def run() -> None:
        env.reset(seed=0)
        step = env.step
        done = 0
        for a in actions:
            _, _, terminated, truncated, _ = step(a)
            if terminated or truncated:
                env.reset()
                done += 1
        episodes[0] = done

    seconds = median_seconds(run, runs)
    return {"steps_per_s": len(actions) / seconds, "episodes": episodes[0]}


def bench_our_env(frame: pd.DataFrame) -> dict[str, Any]:
    """Steps per second of our TradingEnv, random short/flat/long actions."""
    env = our_env(frame)
    actions = np.random.default_rng(0).integers(0, 3, ENV_STEPS)
    return steps_per_second(env, actions)


def _anytrading_env(frame: pd.DataFrame) -> Any:
    """gym-anytrading's StocksEnv on the same closes, window 30."""
    from gym_anytrading.envs import StocksEnv

    df = pd.DataFrame({"Close": frame["close"].to_numpy()})
    return StocksEnv(df=df, window_size=WINDOW, frame_bound=(WINDOW, len(df)))


def bench_gym_anytrading(frame: pd.DataFrame) -> dict[str, Any]:
    """Steps per second of gym-anytrading's StocksEnv, random buy/sell actions."""
    env = _anytrading_env(frame)
    actions = np.random.default_rng(0).integers(0, 2, ENV_STEPS)
    return steps_per_second(env, actions)


def _finrl_module() -> ModuleType:
    """Load FinRL's env module by path: importing the `finrl` package would pull in alpaca."""
    spec = importlib.util.find_spec("finrl")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("finrl is not installed (pip install --no-deps finrl)")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "meta" / "env_stock_trading" / "env_stocktrading.py"
    module_spec = importlib.util.spec_from_file_location("finrl_env_stocktrading", path)
    if module_spec is None or module_spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def bench_finrl(frame: pd.DataFrame) -> dict[str, Any]:
    """Steps per second of FinRL's StockTradingEnv on one stock, random Box actions."""
    module = _finrl_module()
    close = frame["close"].to_numpy()
    tech = ["macd", "rsi_30"]
    df = pd.DataFrame(
        {
            "date": pd.DatetimeIndex(frame.index).strftime("%Y-%m-%d %H:%M:%S"),
            "tic": "SYN",
            "close": close,
            "macd": np.nan_to_num(macd(close).macd),
            "rsi_30": np.nan_to_num(rsi(close, 30), nan=50.0),
        }
    )
    df.index = pd.RangeIndex(len(df))  # FinRL indexes its frame by day number
    env = module.StockTradingEnv(
        df=df,
        stock_dim=1,
        hmax=100,
        initial_amount=1_000_000,
        num_stock_shares=[0],
        buy_cost_pct=[0.001],
        sell_cost_pct=[0.001],
        reward_scaling=1e-4,
        state_space=1 + 2 * 1 + len(tech) * 1,
        action_space=1,
        tech_indicator_list=tech,
    )
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, (FINRL_STEPS, 1)).astype(np.float32)
    return steps_per_second(env, actions)


def bench_env_steps() -> dict[str, Any]:
    """Environment steps per second: ours and the two peers, on the same bars, in one run."""
    frame = _series()
    ours = bench_our_env(frame)
    anytrading = bench_gym_anytrading(frame)
    finrl = bench_finrl(frame)
    return {
        "env_steps": {
            "bars": BARS,
            "reinforcetrade_steps_per_s": ours["steps_per_s"],
            "reinforcetrade_episodes_per_run": ours["episodes"],
            "gym_anytrading_steps_per_s": anytrading["steps_per_s"],
            "finrl_steps_per_s": finrl["steps_per_s"],
            "vs_gym_anytrading": ours["steps_per_s"] / anytrading["steps_per_s"],
            "vs_finrl": ours["steps_per_s"] / finrl["steps_per_s"],
        }
    }


def bench_ppo() -> dict[str, Any]:
    """SB3 PPO training timesteps per second on our environment, 1 env and 4 subprocess envs."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import SubprocVecEnv

    frame = _series()
    one = PPO("MlpPolicy", our_env(frame, EPISODE_BARS), seed=0, device="cpu", verbose=0)
    t_one = median_seconds(lambda: one.learn(PPO_STEPS_1), RUNS)
    peer = PPO("MlpPolicy", _anytrading_env(frame), seed=0, device="cpu", verbose=0)
    t_peer = median_seconds(lambda: peer.learn(PPO_STEPS_1), RUNS)
    start = time.perf_counter()
    venv = SubprocVecEnv(
        [lambda: our_env(frame, EPISODE_BARS) for _ in range(4)], start_method="fork"
    )
    venv.reset()
    startup = time.perf_counter() - start
    try:
        four = PPO("MlpPolicy", venv, seed=0, device="cpu", verbose=0)
        t_four = median_seconds(lambda: four.learn(PPO_STEPS_4), RUNS)
    finally:
        venv.close()
    return {
        "ppo": {
            "timesteps_per_s_1_env": PPO_STEPS_1 / t_one,
            "gym_anytrading_timesteps_per_s_1_env": PPO_STEPS_1 / t_peer,
            "timesteps_per_s_4_envs": PPO_STEPS_4 / t_four,
            "subproc_startup_s": startup,
        }
    }


def bench_env_share() -> dict[str, Any]:
    """The share of a 1-env PPO training run's wall time spent inside `TradingEnv.step`."""
    from stable_baselines3 import PPO

    env = our_env(_series(), EPISODE_BARS)
    inner = env.step
    spent = [0.0]
    clock = time.perf_counter

    def timed_step(action: Any) -> Any:
        t0 = clock()
        out = inner(action)
        spent[0] += clock() - t0
        return out

    env.step = timed_step  # type: ignore[method-assign]
    model = PPO("MlpPolicy", env, seed=0, device="cpu", verbose=0)
    model.learn(PPO_STEPS_1)  # warm-up
    spent[0] = 0.0
    start = clock()
    model.learn(PPO_STEPS_1)
    total = clock() - start
    return {
        "env_share": {
            "timesteps": PPO_STEPS_1,
            "env_step_s": spent[0],
            "training_s": total,
            "share": spent[0] / total,
            "env_step_us": spent[0] / PPO_STEPS_1 * 1e6,
        }
    }


def bench_rl_backtest() -> dict[str, Any]:
    """Backtest the multi-agent strategy with a trained PPO agent on 1,000,000 hourly bars."""
    import tempfile

    from reinforcetrade.agents.rl import RLAgent
    from reinforcetrade.agents.training import TrainingPipeline
    from reinforcetrade.backtesting import EnhancedBacktester
    from reinforcetrade.data.bars import Bars
    from reinforcetrade.strategies import MultiAgentStrategy

    big = gbm_hourly(RL_BARS, seed=42)
    bars = Bars.from_frame(big, "GBM")
    with tempfile.TemporaryDirectory() as models:
        settings = Settings(rl={"models_dir": models, "window": WINDOW})
        pipeline = TrainingPipeline("ppo", settings=settings)
        record = pipeline.train(big.iloc[:6_000], 4_096, seed=0)
        with_rl = MultiAgentStrategy(model=record, settings=settings)
        without = MultiAgentStrategy(settings=settings)
        agent = with_rl.agents[-1]
        if not isinstance(agent, RLAgent):
            raise TypeError(f"expected the RL agent last, got {type(agent).__name__}")
        _ = EnhancedBacktester(with_rl).run(big.iloc[:20_000]).metrics  # warm-up: numba compiles
        t_rl = median_seconds(lambda: EnhancedBacktester(with_rl).run(big), RUNS)
        t_rl_metrics = median_seconds(lambda: EnhancedBacktester(with_rl).run(big).metrics, RUNS)
        t_inference = median_seconds(lambda: agent.signals(bars), RUNS)
        t_without = median_seconds(lambda: EnhancedBacktester(without).run(big), RUNS)
        t_predict = _predict_per_bar_seconds(pipeline.registry.load(record), agent, bars)
    return {
        "rl_backtest": {
            "bars": RL_BARS,
            "seconds": t_rl,
            "seconds_with_metrics": t_rl_metrics,
            "bars_per_s": RL_BARS / t_rl,
            "inference_seconds": t_inference,
            "without_rl_seconds": t_without,
            "predict_per_bar_seconds_estimate": t_predict * RL_BARS,
            "batched_speedup": t_predict * RL_BARS / t_inference,
        }
    }


def _predict_per_bar_seconds(model: Any, agent: Any, bars: Any) -> float:
    """Return the seconds per bar of the naive way: one `model.predict` call per bar."""
    features = agent.spec.compute(bars)
    first = agent.observations.first_bar(agent.spec.warmup)
    sample = np.arange(first, first + 2_000)
    obs = agent.observations.batch(features, sample, 1)
    model.predict(obs[0], deterministic=True)

    def run() -> None:
        for row in obs:
            model.predict(row, deterministic=True)

    return median_seconds(run, RUNS) / len(sample)


def main() -> None:
    """Run every benchmark and print the figures as one JSON line."""
    figures: dict[str, Any] = {"benchmark": "rl", "runs": RUNS, "statistic": "median"}
    figures.update(bench_env_steps())
    figures.update(bench_ppo())
    figures.update(bench_env_share())
    figures.update(bench_rl_backtest())
    figures["machine"] = machine()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

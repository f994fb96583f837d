"""`TradingEnv`: Gymnasium's contract, vector envs, determinism, ruin, parity with the backtester."""

from __future__ import annotations

import json
import math
import pickle
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from gymnasium.spaces import Box
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from reinforcetrade.backtesting import Backtester
from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data import DataLoader
from reinforcetrade.environments import (
    FLAT,
    LONG,
    SHORT,
    FeatureParams,
    FeatureSpec,
    TradingEnv,
)
from reinforcetrade.simulation.costs import CostParams

FRAME = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=900, seed=5)
SPEC = FeatureSpec(
    params=FeatureParams(vol_window=10, vol_history=40, volume_window=20), clip=4.0
)  # a short warm-up keeps the frames small
WINDOW = 8
SHORTING = Settings(backtest={"allow_short": True})
VARIANTS: dict[str, dict[str, Any]] = {
    "discrete-3": {"discrete": True, "allow_short": True},
    "discrete-2": {"discrete": True, "allow_short": False},
    "box-short": {"discrete": False, "allow_short": True},
    "box-long": {"discrete": False, "allow_short": False},
}


def make_env(frame: pd.DataFrame = FRAME, **kwargs: Any) -> TradingEnv:
    kwargs.setdefault("features", SPEC)
    return TradingEnv(frame, WINDOW, **kwargs)


def run(env: TradingEnv, actions: list[Any]) -> list[tuple[Any, ...]]:
    out = []
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return out


# --- Gymnasium's and SB3's contracts ------------------------------------------------------------


@pytest.mark.parametrize("kwargs", VARIANTS.values(), ids=VARIANTS.keys())
@pytest.mark.parametrize("episode_bars", [None, 64])
def test_gymnasium_check_env(kwargs: dict[str, Any], episode_bars: int | None) -> None:
    env = make_env(episode_bars=episode_bars, **kwargs)
    gym_check_env(env, skip_render_check=True)  # no render modes to check


@pytest.mark.parametrize("kwargs", VARIANTS.values(), ids=VARIANTS.keys())
def test_sb3_check_env(kwargs: dict[str, Any]) -> None:
    env = make_env(episode_bars=64, **kwargs)
    with warnings.catch_warnings():
        # A long-only Box is [0, 1] on purpose (a target position cannot be negative there);
        # SB3 rescales its policies' squashed actions to the space's bounds.
        warnings.filterwarnings("ignore", "We recommend you to use a symmetric", UserWarning)
        sb3_check_env(env, warn=True)


def test_spaces_and_layout() -> None:
    env = make_env(allow_short=True)
    k = len(SPEC.names)
    assert env.observation_space.shape == (WINDOW * k + 3,)
    assert env.observation_space.dtype == np.float32
    assert isinstance(env.observation_space, Box)
    assert env.observation_space.low[0] == -4.0
    assert env.observation_space.high[-1] == 1.0
    assert env.action_space.n == 3  # type: ignore[attr-defined]
    assert make_env().action_space.n == 2  # type: ignore[attr-defined]  # settings: no shorts
    assert env.first_bar == SPEC.warmup + WINDOW - 1
    obs, info = env.reset(seed=1)
    t = env.first_bar
    np.testing.assert_array_equal(obs[:-3], env.feature_array[t - WINDOW + 1 : t + 1].ravel())
    assert obs[-3:].tolist() == [0.0, 1.0, 0.0]  # flat
    assert info == {"equity": 10_000.0, "position": 0.0}
    for action, side in ((2, LONG), (0, SHORT), (1, FLAT)):
        obs, *_ = env.step(action)
        t += 1
        np.testing.assert_array_equal(obs[:-3], env.feature_array[t - WINDOW + 1 : t + 1].ravel())
        assert obs[-3:].tolist() == np.eye(3)[side].tolist()
        assert env.observation_space.contains(obs)


def test_actions_map_to_targets() -> None:
    positions: dict[str, list[tuple[Any, float]]] = {
        "discrete-3": [(0, -1.0), (1, 0.0), (2, 1.0)],
        "discrete-2": [(0, 0.0), (1, 1.0), (np.int64(1), 1.0), (np.array(0), 0.0)],
        "box-short": [(np.array([-0.25], np.float32), -0.25), (np.array([3.0]), 1.0)],
        "box-long": [(np.array([-0.5], np.float32), 0.0), (np.array([0.5]), 0.5)],
    }
    for name, pairs in positions.items():
        env = make_env(**VARIANTS[name])
        env.reset(seed=0)
        for action, target in pairs:
            assert env.step(action)[4]["position"] == target
    with pytest.raises(UserInputError, match="action must be"):
        make_env().step(2)
    with pytest.raises(UserInputError, match="action must be"):
        make_env(discrete=False).step(np.array([np.nan]))


# --- vector environments and pickling ------------------------------------------------------------


def test_dummy_vec_env() -> None:
    venv = DummyVecEnv([lambda: make_env(episode_bars=32, allow_short=True) for _ in range(2)])
    venv.seed(3)
    obs = venv.reset()
    assert isinstance(obs, np.ndarray)
    assert obs.shape == (2, WINDOW * len(SPEC.names) + 3)
    for _ in range(40):  # through at least one automatic reset
        _, rewards, _, infos = venv.step(np.array([2, 0]))
    assert np.isfinite(rewards).all()
    assert "equity" in infos[0]
    venv.close()


def test_subproc_vec_env() -> None:  # fork starts the workers in milliseconds
    venv = SubprocVecEnv(
        [lambda: make_env(episode_bars=32, allow_short=True) for _ in range(2)],
        start_method="fork",
    )
    try:
        venv.seed(3)
        obs = venv.reset()
        assert isinstance(obs, np.ndarray)
        assert obs.shape == (2, WINDOW * len(SPEC.names) + 3)
        for _ in range(40):
            _, rewards, _, infos = venv.step(np.array([2, 0]))
        assert np.isfinite(rewards).all()
        assert infos[1]["position"] == -1.0
    finally:
        venv.close()


def test_pickle_round_trip_continues_identically() -> None:
    env = make_env(episode_bars=50, allow_short=True)
    env.reset(seed=4)
    run(env, [2, 2, 0])
    twin = pickle.loads(pickle.dumps(env))  # noqa: S301 - our own object, in memory
    actions = [0, 1, 2, 2, 1, 0, 0]
    for (o1, r1, *_), (o2, r2, *_) in zip(run(env, actions), run(twin, actions), strict=True):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2


# --- episodes: seeding, truncation, ruin ----------------------------------------------------------


def test_same_seed_same_episode() -> None:
    actions = list(np.random.default_rng(0).integers(0, 3, 100))
    a, b = make_env(episode_bars=80, allow_short=True), make_env(episode_bars=80, allow_short=True)
    starts = []
    for seed in (7, 8, 9):
        obs_a, _ = a.reset(seed=seed)
        obs_b, _ = b.reset(seed=seed)
        assert a.start_bar == b.start_bar
        starts.append(a.start_bar)
        np.testing.assert_array_equal(obs_a, obs_b)
        for sa, sb in zip(run(a, actions), run(b, actions), strict=True):
            np.testing.assert_array_equal(sa[0], sb[0])
            assert sa[1:] == sb[1:]
    assert len(set(starts)) == 3  # seeds move the start
    for start in starts:
        assert a.first_bar <= start <= a.last_bar - 80


def test_evaluation_runs_the_whole_series_once_then_truncates() -> None:
    env = make_env(allow_short=True)
    env.reset(seed=0)
    assert env.start_bar == env.first_bar
    assert env.end_bar == len(FRAME) - 1
    steps = run(env, [2] * len(FRAME))
    assert len(steps) == len(FRAME) - 1 - env.first_bar
    assert [s[3] for s in steps] == [False] * (len(steps) - 1) + [True]
    assert not any(s[2] for s in steps)
    _, reward, _, truncated, info = env.step(1)  # past the end: nothing happens
    assert truncated
    assert reward == 0.0
    assert info["equity"] == steps[-1][4]["equity"]


def test_episode_bars_truncate_and_start_option() -> None:
    env = make_env(episode_bars=25)
    env.reset(seed=0, options={"start": 300})
    assert env.start_bar == 300
    steps = run(env, [1] * 100)
    assert len(steps) == 25
    assert steps[-1][3]
    assert env.bar == 325
    with pytest.raises(UserInputError, match="options"):
        env.reset(options={"start": 3})


def test_terminated_only_on_ruin() -> None:
    frame = FRAME.copy()
    crash = 400
    frame.iloc[crash:, :4] *= 0.4  # a 60 % gap down at bar 400's open
    env = make_env(frame)
    env.reset(options={"start": crash - 10})
    steps = run(env, [1] * 50)  # long all along
    assert len(steps) == 10
    assert steps[-1][2]  # terminated: ruin
    assert not steps[-1][3]
    assert not any(s[2] for s in steps[:-1])
    assert steps[-1][4]["equity"] <= 0.5 * 10_000
    flat = make_env(frame)
    flat.reset(options={"start": crash - 10})
    assert not any(s[2] for s in run(flat, [0] * 50))  # flat through the crash: no ruin


def test_too_few_bars_is_a_clear_error() -> None:
    with pytest.raises(UserInputError, match="too few"):
        make_env(FRAME.iloc[: SPEC.warmup + WINDOW - 1])


# --- parity with the backtester and the reward ----------------------------------------------------


def backtest_equity(frame: pd.DataFrame, first: int, targets: list[float]) -> np.ndarray:
    series = np.full(len(frame), np.nan)
    series[first : first + len(targets)] = targets
    costs = CostParams.from_config(Settings().costs, 8760)
    result = Backtester(
        lambda f: pd.Series(series, index=f.index), costs=costs, settings=SHORTING
    ).run(frame)
    return result.equity.to_numpy()


@pytest.mark.parametrize("discrete", [True, False], ids=["discrete", "box"])
def test_equity_path_matches_the_backtester(discrete: bool) -> None:
    rng = np.random.default_rng(1)
    env = make_env(discrete=discrete, settings=SHORTING)
    env.reset(seed=0)
    n = len(FRAME) - 1 - env.first_bar
    if discrete:
        actions: list[Any] = list(rng.choice(3, n, p=[0.3, 0.3, 0.4]).repeat(4)[:n])
        targets = [float(a) - 1.0 for a in actions]
    else:
        targets = list(np.round(rng.uniform(-1, 1, n).repeat(3)[:n], 2))
        actions = [np.array([x]) for x in targets]
    steps = run(env, actions)
    assert len(steps) == n
    equity = np.array([s[4]["equity"] for s in steps])
    expected = backtest_equity(FRAME, env.first_bar, targets)
    assert (expected[: env.first_bar + 1] == 10_000.0).all()
    np.testing.assert_allclose(equity, expected[env.first_bar + 1 :], rtol=1e-12, atol=0)
    assert abs(equity[-1] / 10_000 - 1) > 0.01  # the path really moved


def test_reward_is_log_growth_less_penalties() -> None:
    settings = Settings(
        backtest={"allow_short": True},
        rl={"drawdown_penalty": 2.0, "turnover_penalty": 0.01, "reward_scale": 50.0},
    )
    env = make_env(settings=settings)
    env.reset(seed=0)
    equity, peak, position = 10_000.0, 10_000.0, 0.0
    penalised = 0
    for a in [2, 2, 2, 0, 0, 1, 2, 0, 2, 2, 1, 1, 0, 0, 0, 2] * 5:
        _, reward, _, _, info = env.step(a)
        new_peak = max(peak, info["equity"])
        deeper = max(0.0, (1 - info["equity"] / new_peak) - (1 - equity / peak))
        turnover = abs(info["position"] - position)
        expected = math.log(info["equity"] / equity) - 2.0 * deeper - 0.01 * turnover
        assert reward == pytest.approx(50.0 * expected, rel=1e-12, abs=1e-13)
        penalised += deeper > 0
        equity, peak, position = info["equity"], new_peak, info["position"]
        assert env.account()["peak"] == peak
    assert penalised > 5


def test_costs_reach_the_reward() -> None:
    free = make_env(costs=CostParams.simple(0.0))
    paid = make_env()
    for env in (free, paid):
        env.reset(options={"start": 300})
    r_free = sum(s[1] for s in run(free, [1, 0] * 20))
    r_paid = sum(s[1] for s in run(paid, [1, 0] * 20))
    assert r_paid < r_free - 20 * 2 * 0.001  # at least the commissions of 20 round trips


# --- the batched observation builder ---------------------------------------------------------------


def test_batch_observations_equal_step_observations() -> None:
    env = make_env(allow_short=True)
    obs, _ = env.reset(seed=0)
    seen, bars, sides = [obs], [env.bar], [FLAT]
    for a in np.random.default_rng(2).integers(0, 3, 200):
        obs, *_ = env.step(a)
        seen.append(obs)
        bars.append(env.bar)
        units = env.account()["units"]
        sides.append(LONG if units > 0 else SHORT if units < 0 else FLAT)
    enc = env.observation_interpreter
    np.testing.assert_array_equal(enc.batch(env.feature_array, bars, sides), np.stack(seen))
    every = enc.batch(env.feature_array, bars, LONG)
    assert (every[:, -3:] == [0.0, 0.0, 1.0]).all()
    np.testing.assert_array_equal(every[:, :-3], np.stack(seen)[:, :-3])
    with pytest.raises(UserInputError, match="bars must lie"):
        enc.batch(env.feature_array, [WINDOW - 2], FLAT)


def test_env_views_for_agents() -> None:
    env = make_env(allow_short=True, episode_bars=64)
    env.reset(seed=0)
    env.step(2)
    assert env.position == 1.0
    assert env.equity == env.account()["equity"]
    config = env.config()
    assert config["features"] == SPEC.to_dict()
    assert config["features_fingerprint"] == SPEC.fingerprint()
    assert config["window"] == WINDOW
    assert config["allow_short"] is True
    assert config["costs"]["borrow_per_bar"] == pytest.approx(0.05 / 8760)
    assert config == json.loads(json.dumps(config))
    bars = np.arange(env.first_bar, env.first_bar + 5)
    np.testing.assert_array_equal(
        env.observations(bars, SHORT),
        env.observation_interpreter.batch(env.feature_array, bars, SHORT),
    )

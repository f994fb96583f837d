"""`TradingEnv`: one asset as a Gymnasium environment, with the backtester's costs and fills.

Each step takes a target position decided at bar t's close, fills it at bar t + 1's open,
marks equity at t + 1's close and returns bar t + 1's observation, in one compiled call that
runs the simulator (`simulator`), the reward (`reward`, times `rl.reward_scale`) and the
observation encoder (`interpreters`). `terminated` means ruin (equity at or below
`rl.ruin_fraction` of the start); `truncated` means the episode's bars ran out.

>>> from reinforcetrade.data import DataLoader
>>> frame = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=400, seed=3)
>>> env = TradingEnv(frame, window=10, allow_short=True)
>>> obs, info = env.reset(seed=0)
>>> obs.shape, env.action_space
((83,), Discrete(3))
>>> obs, reward, terminated, truncated, info = env.step(2)  # long from the next open
>>> info["position"], terminated, truncated
(1.0, False, False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, cast

import gymnasium as gym
import numba
import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.jit import njit
from reinforcetrade.data.bars import Bars
from reinforcetrade.data.validate import validate
from reinforcetrade.environments.features import FeatureSpec
from reinforcetrade.environments.interpreters import (
    FLAT,
    ActionInterpreter,
    ObservationInterpreter,
    side_of,
    write_observation,
)
from reinforcetrade.environments.reward import step_reward
from reinforcetrade.environments.simulator import (
    CASH,
    DD_PENALTY,
    END,
    EQUITY,
    INITIAL,
    PEAK,
    START,
    TARGET,
    TURNOVER_PENALTY,
    UNITS,
    T,
    market_array,
    new_state,
    simulate_step,
    start_episode,
)
from reinforcetrade.features.performance import periods_per_year
from reinforcetrade.simulation.costs import CostParams

__all__ = ["TradingEnv"]

F4 = npt.NDArray[np.float32]
F8 = npt.NDArray[np.float64]
ObsType = npt.NDArray[Any]
ActType = Any

_EMPTY: Final = np.empty
_F4: Final = np.float32


@njit
def env_step(
    state: F8, market: F8, features: F4, out: F4, target: float
) -> tuple[float, float, float, bool, bool]:
    """Run one environment step; write the next observation into `out`.

    Return (reward, equity, target in force, ruined, episode over).
    """
    equity_old, peak_old, target_old = state[EQUITY], state[PEAK], state[TARGET]
    ruined, over = simulate_step(state, market, target)
    equity = state[EQUITY]
    reward = step_reward(
        equity_old, equity, peak_old, state[PEAK], target_old, state[TARGET],
        state[DD_PENALTY], state[TURNOVER_PENALTY],
    )  # fmt: skip
    write_observation(features, int(state[T]), side_of(state[UNITS]), out)
    return reward, equity, state[TARGET], ruined, over


def _compiled_step(*args: Any) -> Callable[..., tuple[float, float, float, bool, bool]]:
    """Return `env_step`'s compiled entry point for exactly these argument types.

    Calling the entry point skips numba's dispatcher (matching argument types on every call,
    about a fifth of a step). That is safe only because the environment always passes arrays it
    built itself with these very types (float64 C arrays, a float32 C array, a float).
    """
    typeof = cast(Callable[[object], object], numba.typeof)  # numba's own hints leave it untyped
    return env_step.compile(tuple(typeof(a) for a in args))  # type: ignore[attr-defined, no-any-return]


class TradingEnv(gym.Env[ObsType, ActType]):
    """Trade one asset bar by bar: observations of features and side, target-position actions.

    Args:
        data: an OHLCV contract frame (validated here) or `Bars`.
        window: bars of features in each observation.
        discrete: Discrete actions (short/flat/long, or flat/long without shorting); False for a
            Box target position in [-1, 1] ([0, 1] without shorting).
        allow_short: default `settings.backtest.allow_short`.
        settings: the settings tree (default `Settings()`): rl, costs and backtest sections.
        features: the feature set (default `FeatureSpec.default(clip=rl.feature_clip)`).
        episode_bars: steps per episode from a random start (training); None runs the whole
            series once from the first bar with a complete window (evaluation).
        initial_cash: default `settings.backtest.initial_cash`.
        costs: default `CostParams.from_config(settings.costs, bars_per_year)`, bars per year
            from `backtest.periods_per_year` or the bar length on `backtest.calendar` (what
            the backtester charges).

    Attributes: `features` (the FeatureSpec), `feature_array` (its (bars, k) float32 values),
    `observation_interpreter`, `action_interpreter`, `costs`, `first_bar` (the first decision
    bar with a complete window) and `last_bar`. `reset(options={"start": bar})` starts an
    episode at a chosen decision bar; `info` holds the equity and the target position in force.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's class attribute

    def __init__(
        self,
        data: pd.DataFrame | Bars,
        window: int = 30,
        *,
        discrete: bool = True,
        allow_short: bool | None = None,
        settings: Settings | None = None,
        features: FeatureSpec | None = None,
        episode_bars: int | None = None,
        initial_cash: float | None = None,
        costs: CostParams | None = None,
    ) -> None:
        super().__init__()
        settings = settings or Settings()
        bars = _bars(data)
        self.bars = bars
        self.features = features or FeatureSpec.default(clip=settings.rl.feature_clip)
        self._features = self.features.compute(bars)
        self.observation_interpreter = ObservationInterpreter(
            window, len(self.features.names), self.features.clip
        )
        short = settings.backtest.allow_short if allow_short is None else bool(allow_short)
        self.action_interpreter = ActionInterpreter(discrete=bool(discrete), allow_short=short)
        self.observation_space = self.observation_interpreter.space()
        self.action_space = self.action_interpreter.space()
        self.costs = costs if costs is not None else _config_costs(settings, bars)
        self.first_bar = self.observation_interpreter.first_bar(self.features.warmup)
        self.last_bar = len(bars) - 1
        if self.first_bar >= self.last_bar:
            raise UserInputError(
                f"{len(bars)} bars are too few: the features need {self.features.warmup} "
                f"bars of warm-up and the window {window - 1} more before the first decision, "
                "and a decision needs a next bar to fill on"
            )
        if episode_bars is not None and (isinstance(episode_bars, bool) or episode_bars < 1):
            raise UserInputError(
                f"episode_bars must be a positive number of steps, got {episode_bars!r}"
            )
        self.episode_bars = episode_bars
        cash = settings.backtest.initial_cash if initial_cash is None else float(initial_cash)
        self.ruin_fraction = settings.rl.ruin_fraction
        self.drawdown_penalty = settings.rl.drawdown_penalty
        self.turnover_penalty = settings.rl.turnover_penalty
        self.reward_scale = settings.rl.reward_scale
        self._state = new_state(
            cash,
            self.costs,
            ruin_fraction=self.ruin_fraction,
            drawdown_penalty=self.drawdown_penalty,
            turnover_penalty=self.turnover_penalty,
        )
        start_episode(self._state, self.first_bar, self.last_bar)  # usable before reset()
        self._market = market_array(bars)
        self._box = not self.action_interpreter.discrete
        self._targets = self.action_interpreter.table()
        self._size = self.observation_interpreter.size
        self._bind()

    def _bind(self) -> None:
        """Look up the compiled step for this environment's array types."""
        self._step = _compiled_step(
            self._state, self._market, self._features, _EMPTY(self._size, _F4), 0.0
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_step"]  # a compiled entry point; looked up again on unpickling
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Start an episode: at a random bar (episode_bars set), else at the first full window."""
        super().reset(seed=seed)
        start = self._start(options)
        end = self.last_bar
        if self.episode_bars is not None:
            end = min(start + self.episode_bars, self.last_bar)
        start_episode(self._state, start, end)
        obs = self.observation_interpreter.observe(self._features, start, FLAT)
        return obs, {"equity": float(self._state[EQUITY]), "position": 0.0}

    def _start(self, options: dict[str, Any] | None) -> int:
        """Return the episode's first decision bar."""
        first, last = self.first_bar, self.last_bar - 1
        if options and options.get("start") is not None:
            start = options["start"]
            if isinstance(start, bool) or not isinstance(start, int | np.integer):
                raise UserInputError(f"options['start'] must be a bar index, got {start!r}")
            if not first <= start <= last:
                raise UserInputError(
                    f"options['start'] must be a bar in [{first}, {last}], got {start}"
                )
            return int(start)
        if self.episode_bars is None:
            return first
        latest = max(first, self.last_bar - self.episode_bars)
        return int(self.np_random.integers(first, latest + 1))

    def step(self, action: ActType) -> tuple[ObsType, float, bool, bool, dict[str, Any]]:
        """Take a target position at this bar's close; see the module docstring."""
        if self._box:
            target = self.action_interpreter.target(action)
        else:
            try:
                target = self._targets[action]
            except (KeyError, TypeError):  # not a plain integer action: the checked path
                target = self.action_interpreter.target(action)
        obs = _EMPTY(self._size, _F4)
        reward, equity, position, terminated, truncated = self._step(
            self._state, self._market, self._features, obs, target
        )
        info = {"equity": equity, "position": position}
        return obs, reward * self.reward_scale, terminated, truncated, info

    # --- read-only views for evaluation, inference and tests ------------------------------------

    def observations(self, bars: npt.ArrayLike, side: int | npt.ArrayLike) -> F4:
        """Return the observations of many bars for a side (or one side per bar) in one array.

        The same encoding as `step`'s (`ObservationInterpreter.batch`), for batched inference.
        """
        return self.observation_interpreter.batch(self._features, bars, side)

    def config(self) -> dict[str, Any]:
        """Return what an agent must know to rebuild this environment (JSON-able)."""
        return {
            "window": self.observation_interpreter.window,
            "discrete": self.action_interpreter.discrete,
            "allow_short": self.action_interpreter.allow_short,
            "episode_bars": self.episode_bars,
            "initial_cash": float(self._state[INITIAL]),
            "ruin_fraction": self.ruin_fraction,
            "drawdown_penalty": self.drawdown_penalty,
            "turnover_penalty": self.turnover_penalty,
            "reward_scale": self.reward_scale,
            "costs": {name: float(v) for name, v in self.costs._asdict().items()},
            "features": self.features.to_dict(),
            "features_fingerprint": self.features.fingerprint(),
        }

    @property
    def feature_array(self) -> F4:
        """Return the (bars, k) float32 feature values observations are cut from (read-only)."""
        view = self._features.view()
        view.flags.writeable = False
        return view

    @property
    def equity(self) -> float:
        """Return the account's equity at the current bar's close."""
        return float(self._state[EQUITY])

    @property
    def position(self) -> float:
        """Return the target position in force (fraction of equity)."""
        return float(self._state[TARGET])

    @property
    def bar(self) -> int:
        """Return the bar whose close the next action is decided at."""
        return int(self._state[T])

    @property
    def start_bar(self) -> int:
        """Return the current episode's first decision bar."""
        return int(self._state[START])

    @property
    def end_bar(self) -> int:
        """Return the current episode's last bar."""
        return int(self._state[END])

    def account(self) -> dict[str, float]:
        """Return the account: cash, units held, equity, peak equity and the target in force."""
        s = self._state
        return {
            "cash": float(s[CASH]),
            "units": float(s[UNITS]),
            "equity": float(s[EQUITY]),
            "peak": float(s[PEAK]),
            "target": float(s[TARGET]),
        }


def _bars(data: pd.DataFrame | Bars) -> Bars:
    """Return validated bars from a contract frame, or the given `Bars`."""
    if isinstance(data, Bars):
        return data
    if isinstance(data, pd.DataFrame):
        symbol = str(data.attrs.get("symbol") or "") or None
        return Bars.from_frame(validate(data, gaps="keep", source=symbol), symbol)
    raise UserInputError(f"data must be an OHLCV DataFrame or Bars, got {type(data).__name__}")


def _config_costs(settings: Settings, bars: Bars) -> CostParams:
    """Return the config's cost model for these bars, as the backtester builds it.

    The borrow rate is per bar: bars per year come from `backtest.periods_per_year`, else from
    the bar length on `backtest.calendar`.
    """
    per_year = settings.backtest.periods_per_year
    if per_year is None:
        if bars.timeframe is None:
            raise UserInputError(
                "cannot tell the bar length for the borrow cost; set frame.attrs['timeframe'] "
                "or backtest.periods_per_year, or pass costs=CostParams.from_config(...)"
            )
        per_year = periods_per_year(bars.timeframe, settings.backtest.calendar)
    return CostParams.from_config(settings.costs, float(per_year))

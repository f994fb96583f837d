"""Causal factors as pure functions of bars: momentum, volatility and price/volume sentiment.

Every factor is a float64 array with one value per bar, NaN during its warm-up and causal: the
value at bar t reads bars ≤ t only, so computing on the first t + 1 bars gives exactly (bit for
bit) the value at t that computing on all bars gives. Factors are scale-free where that makes
sense (multiplying every price by a constant leaves them unchanged), so one model can read
markets at any price level. The indicators underneath are `features.indicators`'s; nothing here
re-implements one.

``FACTORS`` maps each registered name to a `FactorSpec`: a function of `Bars` (the indicator
with its default parameters) and its warm-up, the number of leading NaN values on gap-free bars.

==================  ==============================================================  =======
name                what                                                            warm-up
==================  ==============================================================  =======
``roc``             10-bar rate of change of the close                              10
``macd_hist``       MACD histogram (12/26/9) over the close                         33
``rsi``             RSI(14) centred and scaled to [-1, 1]                           14
``atr_ratio``       ATR(14) over the close                                          14
``vol_regime``      volatility regime code (`VolRegime`), the environment agent's   743
``volume_trend``    log of the fast (10) over the slow (50) EMA of volume           49
``close_location``  close location value averaged over 10 bars, in [-1, 1]          9
``obv_trend``       20-bar slope of on-balance volume over the mean volume          19
==================  ==============================================================  =======
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from reinforcetrade.agents.environment import EnvironmentAgent
from reinforcetrade.config.sections import EnvironmentAgentConfig
from reinforcetrade.core.codes import VolRegime
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data.bars import Bars
from reinforcetrade.features.indicators import atr, ema, macd, roc, rolling_slope, rsi, sma
from reinforcetrade.features.stats import rolling_mean

__all__ = [
    "DEFAULT_FACTORS",
    "DEFAULT_REGIME_WEIGHTS",
    "FACTORS",
    "UNKNOWN_REGIME",
    "FactorMatrix",
    "FactorSpec",
    "atr_ratio",
    "check_factor_names",
    "close_location",
    "close_location_value",
    "factor_matrix",
    "macd_histogram",
    "obv_trend",
    "on_balance_volume",
    "regime_warmup",
    "regime_weight",
    "rsi_centred",
    "volatility_regime",
    "volume_trend",
]

F8 = npt.NDArray[np.float64]
I1 = npt.NDArray[np.int8]

#: The code `volatility_regime` gives bars whose regime is not known yet (warm-up).
UNKNOWN_REGIME: Final[int] = -1

#: Position-weight multiplier per volatility regime: full size when calm, less when wild.
DEFAULT_REGIME_WEIGHTS: Final[Mapping[int, float]] = MappingProxyType(
    {VolRegime.LOW: 1.0, VolRegime.NORMAL: 1.0, VolRegime.HIGH: 0.5, VolRegime.EXTREME: 0.25}
)

_ROC: Final[int] = 10
_MACD: Final[tuple[int, int, int]] = (12, 26, 9)
_RSI: Final[int] = 14
_ATR: Final[int] = 14
_VOLUME: Final[tuple[int, int]] = (10, 50)
_CLV: Final[int] = 10
_OBV: Final[int] = 20


# --- momentum ----------------------------------------------------------------------------------


def macd_histogram(close: F8, fast: int = 12, slow: int = 26, signal: int = 9) -> F8:
    """Return the MACD histogram divided by the close (scale-free), first at slow + signal - 2.

    >>> macd_histogram(np.array([1.0, 2.0, 4.0, 8.0, 8.0]), fast=1, slow=2, signal=2).round(4)
    array([    nan,     nan,  0.0417,  0.0394, -0.0316])
    """
    hist = macd(close, fast, slow, signal).hist
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finite_or_nan(hist / close)


def rsi_centred(close: F8, n: int = 14) -> F8:
    """Return RSI(n) mapped from [0, 100] to [-1, 1]: (rsi - 50) / 50, first at bar n.

    >>> rsi_centred(np.array([1.0, 2.0, 1.0, 2.0, 3.0]), 2)
    array([ nan,  nan, 0.  , 0.5 , 0.75])
    """
    return (rsi(close, n) - 50.0) / 50.0


# --- volatility --------------------------------------------------------------------------------


def atr_ratio(high: F8, low: F8, close: F8, n: int = 14) -> F8:
    """Return ATR(n) divided by the close: the typical bar range as a fraction of price.

    >>> atr_ratio(np.array([11.0, 12.0, 12.0]), np.array([9.0, 10.0, 10.0]),
    ...           np.array([10.0, 10.0, 10.0]), 1)
    array([nan, 0.2, 0.2])
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finite_or_nan(atr(high, low, close, n) / close)


def regime_warmup(config: EnvironmentAgentConfig | None = None) -> int:
    """Return the first bar whose volatility regime is known: volatility window + history - 1.

    >>> regime_warmup()
    743
    """
    cfg = config or EnvironmentAgentConfig()
    return cfg.volatility_window + cfg.volatility_history - 1


def volatility_regime(bars: Bars, config: EnvironmentAgentConfig | None = None) -> I1:
    """Return each bar's `VolRegime` code as the environment agent classifies it, -1 in warm-up.

    The classification is `EnvironmentAgent.perceive`'s (the one the Decision Tower uses), with
    its warm-up (no volatility history yet) marked `UNKNOWN_REGIME` instead of NORMAL.
    """
    perception = EnvironmentAgent(config).perceive(bars)
    known = np.isfinite(perception.signals.features["volatility_z"])
    return np.where(known, perception.vol_regime, UNKNOWN_REGIME).astype(np.int8)


def regime_weight(
    codes: npt.ArrayLike,
    weights_by_regime: Mapping[int, float] = DEFAULT_REGIME_WEIGHTS,
    missing: float = math.nan,
) -> F8:
    """Return the position-weight multiplier of each bar's regime; `missing` where none is given.

    >>> regime_weight(np.array([0, 2, 3, -1], dtype=np.int8))
    array([1.  , 0.5 , 0.25,  nan])
    """
    a = np.asarray(codes)
    table = np.full(len(VolRegime) + 1, missing, dtype=np.float64)  # the last slot: unknown
    valid = [int(r) for r in VolRegime]
    for code, weight in weights_by_regime.items():
        if int(code) not in valid:
            raise UserInputError(f"weights_by_regime has key {code!r}; use VolRegime codes {valid}")
        table[int(code)] = float(weight)
    index = np.where((a >= 0) & (a < len(VolRegime)), a, len(VolRegime))
    return np.asarray(table[index], dtype=np.float64)


# --- price and volume sentiment ----------------------------------------------------------------


def volume_trend(volume: F8, fast: int = 10, slow: int = 50) -> F8:
    """Return log(EMA(volume, fast) / EMA(volume, slow)): above 0 while activity is rising.

    >>> volume_trend(np.array([1.0, 1.0, 1.0, 4.0]), fast=1, slow=2).round(4)
    array([   nan, 0.    , 0.    , 0.2877])
    """
    if fast >= slow:
        raise UserInputError(f"volume_trend needs fast < slow, got fast={fast}, slow={slow}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finite_or_nan(np.log(ema(volume, fast) / ema(volume, slow)))


def close_location_value(high: F8, low: F8, close: F8) -> F8:
    """Return ((close - low) - (high - close)) / (high - low) per bar: 1 at the high, -1 at the low.

    A bar without range (high == low) is 0; a bar with a missing input is NaN.

    >>> close_location_value(np.array([10.0, 12.0, 10.0]), np.array([8.0, 10.0, 10.0]),
    ...                      np.array([9.0, 12.0, 10.0]))
    array([0., 1., 0.])
    """
    h, lo, c = (np.asarray(v, dtype=np.float64) for v in (high, low, close))
    width = h - lo
    out = np.zeros(c.size)
    np.divide((c - lo) - (h - c), width, out=out, where=width > 0)
    out[~np.isfinite(width) | ~np.isfinite(c)] = math.nan
    return out


def close_location(high: F8, low: F8, close: F8, n: int = 10) -> F8:
    """Return the mean close location value of the last n bars (buying or selling pressure).

    >>> close_location(np.array([10.0, 12.0, 10.0]), np.array([8.0, 10.0, 10.0]),
    ...                np.array([9.0, 12.0, 10.0]), 2)
    array([nan, 0.5, 0.5])
    """
    return sma(close_location_value(high, low, close), n)


def on_balance_volume(close: F8, volume: F8) -> F8:
    """Return on-balance volume: the running sum of volume signed by the close's change.

    It starts at 0 on the first bar; a bar with a missing close or volume adds nothing.

    >>> on_balance_volume(np.array([10.0, 11.0, 11.0, 10.0, 12.0]),
    ...                   np.array([100.0, 200.0, 300.0, 400.0, 500.0]))
    array([   0.,  200.,  200., -200.,  300.])
    """
    c, v = np.asarray(close, dtype=np.float64), np.asarray(volume, dtype=np.float64)
    step = np.zeros(c.size)
    if c.size > 1:
        step[1:] = np.sign(np.diff(c)) * v[1:]
    step[~np.isfinite(step)] = 0.0
    return np.cumsum(step)


def obv_trend(close: F8, volume: F8, n: int = 20) -> F8:
    """Return the n-bar slope of on-balance volume divided by the mean volume (in [-1, 1]).

    1 when every bar of the window rose, -1 when every bar fell; NaN where the mean is 0.

    >>> obv_trend(np.array([1.0, 2.0, 3.0, 4.0]), np.array([5.0, 5.0, 5.0, 5.0]), 3)
    array([nan, nan,  1.,  1.])
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = rolling_slope(on_balance_volume(close, volume), n)
        return _finite_or_nan(slope / rolling_mean(volume, n))


# --- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorSpec:
    """A registered factor: its function of bars, warm-up (leading NaN bars) and scale claim."""

    compute: Callable[[Bars], F8]
    warmup: int
    summary: str
    scale_free: bool = True  # unchanged when every price is multiplied by a constant


def _roc(bars: Bars) -> F8:
    """Return the default rate of change."""
    return roc(bars.close, _ROC)


def _macd_hist(bars: Bars) -> F8:
    """Return the default MACD histogram over the close."""
    return macd_histogram(bars.close, *_MACD)


def _rsi(bars: Bars) -> F8:
    """Return the default centred RSI."""
    return rsi_centred(bars.close, _RSI)


def _atr_ratio(bars: Bars) -> F8:
    """Return the default ATR over the close."""
    return atr_ratio(bars.high, bars.low, bars.close, _ATR)


def _vol_regime(bars: Bars) -> F8:
    """Return the volatility regime code as a float, NaN in warm-up."""
    codes = volatility_regime(bars).astype(np.float64)
    codes[codes == UNKNOWN_REGIME] = math.nan
    return codes


def _volume_trend(bars: Bars) -> F8:
    """Return the default volume trend."""
    return volume_trend(bars.volume, *_VOLUME)


def _close_location(bars: Bars) -> F8:
    """Return the default smoothed close location value."""
    return close_location(bars.high, bars.low, bars.close, _CLV)


def _obv_trend(bars: Bars) -> F8:
    """Return the default on-balance-volume trend."""
    return obv_trend(bars.close, bars.volume, _OBV)


FACTORS: Final[Mapping[str, FactorSpec]] = MappingProxyType(
    {
        "roc": FactorSpec(_roc, _ROC, "10-bar rate of change"),
        "macd_hist": FactorSpec(_macd_hist, _MACD[1] + _MACD[2] - 2, "MACD histogram / close"),
        "rsi": FactorSpec(_rsi, _RSI, "RSI(14) in [-1, 1]"),
        "atr_ratio": FactorSpec(_atr_ratio, _ATR, "ATR(14) / close"),
        "vol_regime": FactorSpec(_vol_regime, regime_warmup(), "volatility regime code"),
        "volume_trend": FactorSpec(_volume_trend, _VOLUME[1] - 1, "log fast/slow volume EMA"),
        "close_location": FactorSpec(_close_location, _CLV - 1, "mean close location value"),
        "obv_trend": FactorSpec(_obv_trend, _OBV - 1, "OBV slope / mean volume"),
    }
)

#: The continuous factors a pipeline reads unless told otherwise (the regime code is a category).
DEFAULT_FACTORS: Final[tuple[str, ...]] = tuple(n for n in FACTORS if n != "vol_regime")


@dataclass(frozen=True)
class FactorMatrix:
    """Factor values per bar (rows) and factor (columns), their names and the longest warm-up."""

    values: F8
    names: tuple[str, ...]
    warmup: int

    def column(self, name: str) -> F8:
        """Return one factor's values."""
        return self.values[:, self.names.index(name)]

    def complete(self) -> npt.NDArray[np.bool_]:
        """Return True for the bars whose every factor is defined."""
        return np.asarray(np.isfinite(self.values).all(axis=1))


def factor_matrix(bars: Bars, names: Sequence[str] | None = None) -> FactorMatrix:
    """Return the named factors (default `DEFAULT_FACTORS`) of every bar as one matrix.

    >>> from reinforcetrade.data import generate_ohlcv
    >>> bars = Bars.from_frame(generate_ohlcv(bars=100, seed=1))
    >>> m = factor_matrix(bars, ["rsi", "close_location"])
    >>> m.values.shape, m.warmup, bool(m.complete()[14:].all())
    ((100, 2), 14, True)
    """
    chosen = check_factor_names(DEFAULT_FACTORS if names is None else names)
    columns = [FACTORS[name].compute(bars) for name in chosen]
    values = np.empty((len(bars), len(chosen)), dtype=np.float64)
    for j, column in enumerate(columns):
        values[:, j] = column
    return FactorMatrix(values, chosen, max(FACTORS[name].warmup for name in chosen))


def check_factor_names(names: Sequence[str]) -> tuple[str, ...]:
    """Return the names as a tuple if they are registered, distinct and at least one."""
    chosen = (names,) if isinstance(names, str) else tuple(names)
    if not chosen:
        raise UserInputError(f"name at least one factor of {sorted(FACTORS)}")
    for name in chosen:
        if name not in FACTORS:
            close = difflib.get_close_matches(name, list(FACTORS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UserInputError(f"unknown factor {name!r}{hint} (known: {sorted(FACTORS)})")
    if len(set(chosen)) != len(chosen):
        raise UserInputError(f"factors are listed twice: {list(chosen)}")
    return chosen


def _finite_or_nan(x: F8) -> F8:
    """Return x with ±inf (a division by zero) replaced by NaN."""
    x[np.isinf(x)] = math.nan
    return x

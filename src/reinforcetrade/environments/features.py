"""`FeatureSpec`: the observation's feature set, declared once and saved with every model.

A spec names its features (columns, in order), their parameters and the clip; `compute` turns
bars into an (n, k) float32 array of causal, normalised features built from the `features`
kernels. Rows before `warmup` are NaN (some feature is still warming up); from `warmup` on every
value is finite: a value the kernels leave undefined there (a flat window, a bar without
volume) becomes 0, the neutral value of every feature, and everything is clipped to ±clip.

The catalogue (names are columns; ``logret_<h>`` takes any horizon h ≥ 1):

============== ==========================================================================
``logret_<h>`` log(close[t] / close[t-h]) / (vol[t] × sqrt(h)), vol = realised volatility
               (std of 1-bar log returns over ``vol_window`` bars): an h-bar return in sigmas
``rsi``        (RSI(``rsi``) - 50) / 50, in [-1, 1]
``bb_pctb``    2 × Bollinger %b(``bb_window``, ``bb_std``) - 1: -1 on the lower band, +1 on
               the upper one
``macd_atr``   MACD histogram (``macd_fast``/``macd_slow``/``macd_signal``) / ATR(``atr``)
``vol_z``      z-score of log realised volatility against its last ``vol_history`` values
``volume_z``   z-score of log volume against its last ``volume_window`` values
============== ==========================================================================

Every value at bar t depends on bars ≤ t only, bit for bit: computing on ``bars[:t+1]`` gives
exactly row t of computing on all bars (the kernels' own guarantee, then element-wise steps).

>>> spec = FeatureSpec.default()
>>> spec.names[:3], spec.warmup
(('logret_1', 'logret_5', 'logret_20'), 219)
>>> FeatureSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data.bars import Bars
from reinforcetrade.features import indicators, stats

__all__ = ["FEATURE_VERSION", "FeatureParams", "FeatureSpec"]

F4 = npt.NDArray[np.float32]
F8 = npt.NDArray[np.float64]

#: version of the feature definitions; a saved spec of another version is refused
FEATURE_VERSION: Final[int] = 1
DEFAULT_NAMES: Final[tuple[str, ...]] = (
    "logret_1",
    "logret_5",
    "logret_20",
    "rsi",
    "bb_pctb",
    "macd_atr",
    "vol_z",
    "volume_z",
)
_LOGRET: Final = re.compile(r"^logret_([1-9][0-9]*)$")


@dataclass(frozen=True, slots=True)
class FeatureParams:
    """Window lengths (in bars) and other parameters of the feature catalogue."""

    vol_window: int = 20
    vol_history: int = 200
    rsi: int = 14
    bb_window: int = 20
    bb_std: float = 2.0
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    atr: int = 14
    volume_window: int = 100

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "bb_std":
                number = isinstance(value, int | float) and not isinstance(value, bool)
                ok = number and math.isfinite(value) and value > 0
                want = "a positive number of standard deviations"
                if ok:
                    object.__setattr__(self, f.name, float(value))
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 2
                want = "an integer number of bars ≥ 2"
            if not ok:
                raise UserInputError(f"feature parameter {f.name} must be {want}, got {value!r}")
        if self.macd_fast >= self.macd_slow:
            raise UserInputError(
                f"macd_fast ({self.macd_fast}) must be shorter than macd_slow ({self.macd_slow})"
            )


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """The observation's features: names (columns, in order), parameters and clip."""

    version: int = FEATURE_VERSION
    names: tuple[str, ...] = DEFAULT_NAMES
    params: FeatureParams = FeatureParams()
    clip: float = 5.0

    def __post_init__(self) -> None:
        if self.version != FEATURE_VERSION:
            raise UserInputError(
                f"feature spec version {self.version!r} is not supported (this version of "
                f"ReinforceTrade computes version {FEATURE_VERSION}); retrain the model"
            )
        if not isinstance(self.names, tuple) or not self.names:
            raise UserInputError(
                f"names must be a non-empty tuple of feature names, got {self.names!r}"
            )
        for name in self.names:
            _column_rule(name)  # raises on an unknown name
        if len(set(self.names)) != len(self.names):
            raise UserInputError(f"feature names repeat: {self.names!r}")
        if not isinstance(self.params, FeatureParams):
            raise UserInputError(f"params must be FeatureParams, got {type(self.params).__name__}")
        clip = self.clip
        if isinstance(clip, bool) or not isinstance(clip, int | float):
            raise UserInputError(f"clip must be a positive number, got {clip!r}")
        if not (math.isfinite(clip) and clip > 0):
            raise UserInputError(f"clip must be a positive number, got {clip!r}")
        object.__setattr__(self, "clip", float(clip))

    @classmethod
    def default(cls, clip: float = 5.0) -> FeatureSpec:
        """Return the default feature set (returns, RSI, %b, MACD/ATR, volatility, volume).

        >>> FeatureSpec.default(clip=3.0).clip
        3.0
        """
        return cls(clip=clip)

    @property
    def warmup(self) -> int:
        """Return the number of leading bars whose row is NaN (the first complete row's index).

        >>> FeatureSpec.default().warmup  # vol_z: 20 bars of volatility, then 200 of history
        219
        """
        return max(_column_rule(name)[1](self.params) for name in self.names)

    def compute(self, bars: Bars | pd.DataFrame) -> F4:
        """Return the (bars, features) float32 array: NaN rows before `warmup`, then finite.

        >>> from reinforcetrade.data import DataLoader
        >>> frame = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=300, seed=1)
        >>> x = FeatureSpec.default().compute(frame)
        >>> x.shape, x.dtype, bool(np.isnan(x[:219]).all()), bool(np.isfinite(x[219:]).all())
        ((300, 8), dtype('float32'), True, True)
        """
        if isinstance(bars, pd.DataFrame):
            bars = Bars.from_frame(bars)
        n = len(bars)
        out = np.empty((n, len(self.names)), dtype=np.float32)
        with np.errstate(all="ignore"):
            for j, name in enumerate(self.names):
                column = _column_rule(name)[0](bars, self.params)
                np.nan_to_num(column, copy=False, nan=0.0)
                np.clip(column, -self.clip, self.clip, out=column)
                out[:, j] = column
        out[: self.warmup] = np.nan
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the spec (and its fingerprint) as JSON-able data; `from_dict` gives it back.

        >>> FeatureSpec.default().to_dict()["params"]["rsi"]
        14
        """
        return self._core() | {"fingerprint": self.fingerprint()}

    def _core(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "names": list(self.names),
            "params": asdict(self.params),
            "clip": self.clip,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Return the spec saved by `to_dict` (unknown keys and versions are refused).

        >>> FeatureSpec.from_dict({"names": ["rsi"], "clip": 2.0}).warmup
        14
        """
        known = {"version", "names", "params", "clip", "fingerprint"}
        unknown = set(data) - known
        if unknown:
            raise UserInputError(
                f"unknown feature spec keys {sorted(unknown)}; expected {sorted(known)}"
            )
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            raise UserInputError(f"feature spec params must be a mapping, got {params!r}")
        try:
            parsed = FeatureParams(**params)
        except TypeError as exc:
            raise UserInputError(f"bad feature parameters: {exc}") from None
        names = data.get("names", DEFAULT_NAMES)
        if isinstance(names, str) or not isinstance(names, list | tuple):
            raise UserInputError(f"feature spec names must be a list of names, got {names!r}")
        spec = cls(
            version=data.get("version", FEATURE_VERSION),
            names=tuple(names),
            params=parsed,
            clip=data.get("clip", 5.0),
        )
        saved = data.get("fingerprint")
        if saved is not None and saved != spec.fingerprint():
            raise UserInputError(
                f"feature spec fingerprint {saved!r} does not match its contents "
                f"({spec.fingerprint()}): the saved spec was edited or corrupted"
            )
        return spec

    def fingerprint(self) -> str:
        """Return a short stable hash of the spec (16 hex digits of SHA-256 of its JSON).

        >>> len(FeatureSpec.default().fingerprint())
        16
        """
        text = json.dumps(self._core(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --- the catalogue: name → (column on bars, index of its first defined value) --------------------

Column = Callable[[Bars, FeatureParams], F8]
FirstValid = Callable[[FeatureParams], int]


def _volatility(bars: Bars, p: FeatureParams) -> F8:
    """Return the per-bar std of 1-bar log returns over vol_window bars (first at vol_window)."""
    return stats.realized_volatility(bars.close, p.vol_window)


def _logret(horizon: int) -> tuple[Column, FirstValid]:
    def column(bars: Bars, p: FeatureParams) -> F8:
        growth = np.log1p(indicators.roc(bars.close, horizon))
        return np.asarray(growth / (_volatility(bars, p) * math.sqrt(horizon)))

    return column, lambda p: max(horizon, p.vol_window)


def _rsi(bars: Bars, p: FeatureParams) -> F8:
    return np.asarray((indicators.rsi(bars.close, p.rsi) - 50.0) / 50.0)


def _bb_pctb(bars: Bars, p: FeatureParams) -> F8:
    return np.asarray(2.0 * indicators.bollinger(bars.close, p.bb_window, p.bb_std).percent_b - 1.0)


def _macd_atr(bars: Bars, p: FeatureParams) -> F8:
    hist = indicators.macd(bars.close, p.macd_fast, p.macd_slow, p.macd_signal).hist
    return np.asarray(hist / indicators.atr(bars.high, bars.low, bars.close, p.atr))


def _vol_z(bars: Bars, p: FeatureParams) -> F8:
    return stats.rolling_zscore(np.log(_volatility(bars, p)), p.vol_history)


def _volume_z(bars: Bars, p: FeatureParams) -> F8:
    volume = np.where(bars.volume > 0.0, bars.volume, np.nan)  # no volume: missing, not -inf
    return stats.rolling_zscore(np.log(volume), p.volume_window)


_RULES: Final[dict[str, tuple[Column, FirstValid]]] = {
    "rsi": (_rsi, lambda p: p.rsi),
    "bb_pctb": (_bb_pctb, lambda p: p.bb_window - 1),
    "macd_atr": (_macd_atr, lambda p: max(p.macd_slow + p.macd_signal - 2, p.atr)),
    "vol_z": (_vol_z, lambda p: p.vol_window + p.vol_history - 1),
    "volume_z": (_volume_z, lambda p: p.volume_window - 1),
}


def _column_rule(name: object) -> tuple[Column, FirstValid]:
    """Return how to compute the named feature and where it is first defined."""
    if isinstance(name, str):
        if name in _RULES:
            return _RULES[name]
        match = _LOGRET.match(name)
        if match:
            return _logret(int(match.group(1)))
    raise UserInputError(
        f"unknown feature {name!r}; known: logret_<bars> (e.g. logret_5), {', '.join(_RULES)}"
    )

"""Synthetic markets: correlated, regime-switching OHLCV bars that are reproducible bit for bit.

The model, per bar of length dt (in years; 24/7 trading, 365.25 days a year):

* a continuous-time Markov chain over the regimes calm / bull / bear / crash, shared by all
  symbols and stepped at most an hour at a time, so regime statistics do not depend on the
  timeframe; a bar's drift mu and variance sigma^2 integrate the regimes it spans, and its
  regime code is the one in force for most of it;
* a market variance multiplier v (GARCH(1,1), mean 1) driven by the market's shocks;
* shocks X = s * z + J, with s = sqrt(sigma^2 * v), z Student-t scaled to unit variance and J
  compound-Poisson jumps; the market draws X once, each symbol draws its own Y;
* log return r = mu + sqrt(rho) * X + sqrt(1 - rho) * Y, so corr(r_i, r_j) = rho;
* high / low from the exact excursion law of a Brownian bridge from open to close with std s;
* volume = notional * (1 + k * |r| / typical s) * lognormal noise / close.

Random streams come from `SeedSequence(seed, spawn_key=...)`: one for the market, one per symbol
keyed by the symbol's name, so adding a symbol never changes the bars of another.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.core.errors import TimeframeError, UserInputError
from reinforcetrade.core.jit import njit
from reinforcetrade.core.timeframes import Timeframe, parse_timeframe
from reinforcetrade.data.schema import F8, make_ohlcv

I1 = npt.NDArray[np.int8]
Quad = tuple[float, float, float, float]

REGIME_NAMES: Final[tuple[str, ...]] = ("calm", "bull", "bear", "crash")
_YEAR_NS: Final[float] = 365.25 * 86_400e9
_DAY_NS: Final[float] = 86_400e9
_HOUR_NS: Final[int] = 3_600_000_000_000
_MARKET_STREAM: Final[int] = 0
_SYMBOL_STREAM: Final[int] = 1
_DEFAULT_PRICES: Final[tuple[tuple[str, float], ...]] = (("BTC", 30_000.0), ("ETH", 2_000.0))
_OTHER_PRICE: Final[float] = 100.0


@dataclass(frozen=True, slots=True)
class SyntheticParams:
    """Parameters of the synthetic market; defaults give a crypto-like market (about 55% a year).

    Attributes:
        correlation: Correlation of log returns between any two symbols, in [0, 1).
        regime_drift: Annualised log drift per regime (calm, bull, bear, crash).
        regime_vol: Annualised volatility per regime before the GARCH multiplier.
        regime_days: Mean time spent in each regime, in days (crash is short, bull/bear long).
        regime_exit: Where each regime goes when it ends: rows sum to 1, diagonal 0.
        t_df: Degrees of freedom of the Student-t shocks; above 4 so kurtosis stays finite.
        vol_halflife_days: Half-life of volatility shocks (GARCH persistence), in days.
        vol_of_vol: GARCH reaction as a fraction, in (0, 1), of the largest one that keeps the
            fourth moment finite.
        vol_cap: Upper bound of the GARCH variance multiplier (its mean is 1).
        jumps_per_year: Mean number of jumps a year in each shock stream.
        jump_mean: Mean log size of one jump.
        jump_std: Standard deviation of the log size of one jump.
        daily_notional: Mean traded value per day, in quote currency.
        volume_sensitivity: Extra volume per typical-sized absolute return.
        volume_noise: Standard deviation of the lognormal volume noise.
    """

    correlation: float = 0.7
    regime_drift: Quad = (0.05, 1.0, -0.5, -30.0)
    regime_vol: Quad = (0.30, 0.50, 0.70, 2.00)
    regime_days: Quad = (30.0, 90.0, 60.0, 1.5)
    regime_exit: tuple[Quad, Quad, Quad, Quad] = (
        (0.0, 0.45, 0.45, 0.10),
        (0.60, 0.0, 0.25, 0.15),
        (0.50, 0.30, 0.0, 0.20),
        (0.20, 0.0, 0.80, 0.0),
    )
    t_df: float = 5.0
    vol_halflife_days: float = 1.5
    vol_of_vol: float = 0.7
    vol_cap: float = 25.0
    jumps_per_year: float = 12.0
    jump_mean: float = -0.005
    jump_std: float = 0.04
    daily_notional: float = 1e9
    volume_sensitivity: float = 2.0
    volume_noise: float = 0.4

    def __post_init__(self) -> None:
        _check(
            0.0 <= self.correlation < 1.0, f"correlation must be in [0, 1), got {self.correlation}"
        )
        _check(self.t_df > 4.0, f"t_df must exceed 4 (finite kurtosis), got {self.t_df}")
        _check(0.0 < self.vol_of_vol < 1.0, f"vol_of_vol must be in (0, 1), got {self.vol_of_vol}")
        _check(self.vol_cap >= 1.0, f"vol_cap must be at least 1, got {self.vol_cap}")
        for name in ("vol_halflife_days", "daily_notional"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, f"{name} must be > 0, got {value}")
        for name in ("jumps_per_year", "jump_std", "volume_sensitivity", "volume_noise"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"{name} must be >= 0, got {value}")
        _check_regimes(self)


@dataclass(frozen=True, slots=True)
class SyntheticMarket:
    """Generated contract frames per symbol plus the shared regime path (a code per bar)."""

    frames: dict[str, pd.DataFrame]
    regimes: I1
    regime_names: tuple[str, ...]
    seed: int
    timeframe: str


def generate_market(
    symbols: Sequence[str],
    *,
    timeframe: str = "1h",
    bars: int = 5000,
    seed: int = 42,
    start: str | pd.Timestamp = "2020-01-01T00:00:00Z",
    params: SyntheticParams | None = None,
    start_prices: Mapping[str, float] | None = None,
) -> SyntheticMarket:
    """Generate correlated OHLCV frames for `symbols` that share one regime path.

    >>> m = generate_market(["BTC/USDT", "SOL/USDT"], timeframe="4h", bars=3, seed=7)
    >>> [(s, f.shape, float(f["open"].iloc[0])) for s, f in m.frames.items()]
    [('BTC/USDT', (3, 5), 30000.0), ('SOL/USDT', (3, 5), 100.0)]
    >>> str(m.frames["BTC/USDT"].index[1]), m.regimes.dtype.name, m.regime_names[0]
    ('2020-01-01 04:00:00+00:00', 'int8', 'calm')
    """
    p = params if params is not None else SyntheticParams()
    names = _check_symbols(symbols)
    tf = _check_timeframe(timeframe)
    _check(_is_int(bars) and bars >= 2, f"bars must be an integer >= 2, got {bars!r}")
    _check(_is_int(seed) and seed >= 0, f"seed must be a non-negative integer, got {seed!r}")
    bars, seed = int(bars), int(seed)
    prices = _start_prices(names, start_prices or {})
    timestamps = _grid(start, tf, bars)
    dt = tf.nanos / _YEAR_NS
    market = _market_paths(p, tf, bars, seed)
    frames: dict[str, pd.DataFrame] = {}
    for name in names:
        o, h, lo, c, v = _symbol_bars(p, dt, market, prices[name], _symbol_rng(seed, name))
        frames[name] = make_ohlcv(timestamps, o, h, lo, c, v, symbol=name, timeframe=tf)
    market.regimes.flags.writeable = False
    return SyntheticMarket(frames, market.regimes, REGIME_NAMES, seed, tf.text)


def generate_ohlcv(
    symbol: str = "BTC/USDT",
    *,
    timeframe: str = "1h",
    bars: int = 5000,
    seed: int = 42,
    start: str | pd.Timestamp = "2020-01-01T00:00:00Z",
    params: SyntheticParams | None = None,
) -> pd.DataFrame:
    """Generate one symbol's contract frame; equal to `generate_market([symbol], ...)`'s frame.

    >>> f = generate_ohlcv("ETH/USDT", timeframe="1d", bars=4, seed=3)
    >>> f.attrs["symbol"], f.attrs["timeframe"], bool((f["high"] >= f["close"]).all())
    ('ETH/USDT', '1d', True)
    """
    market = generate_market(
        [symbol], timeframe=timeframe, bars=bars, seed=seed, start=start, params=params
    )
    return market.frames[symbol]


# --- simulation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Market:
    """What every symbol shares: regimes, per-bar diffusion std and drift, market shocks."""

    regimes: I1
    std: F8
    drift: F8
    shocks: F8
    typical_std: float


def _market_paths(p: SyntheticParams, tf: Timeframe, bars: int, seed: int) -> _Market:
    """Simulate the shared regime path, GARCH variance and market shocks."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_MARKET_STREAM,)))
    dt = tf.nanos / _YEAR_NS
    sub = -(-tf.nanos // _HOUR_NS)  # regime steps per bar: at most an hour long
    generator = _generator(p)
    stationary = _stationary(generator)
    trans = np.clip(_expm(generator * (tf.nanos / _DAY_NS / sub)), 0.0, None)
    cumulative = np.cumsum(trans / trans.sum(axis=1, keepdims=True), axis=1)
    vol = np.asarray(p.regime_vol, dtype=np.float64)
    regimes, drift, regime_var = _regime_bars(
        rng.random(bars * sub),
        np.ascontiguousarray(cumulative),
        int(rng.choice(len(REGIME_NAMES), p=stationary)),
        sub,
        np.asarray(p.regime_drift, dtype=np.float64) * (dt / sub),
        np.square(vol) * (dt / sub),
    )
    z = _unit_t(rng, p.t_df, bars)
    alpha, beta = _garch_coefficients(p, tf)
    std = np.sqrt(regime_var * _garch_variance(z, alpha, beta, p.vol_cap))
    typical = math.sqrt(float(stationary @ np.square(vol)) * dt)
    return _Market(regimes, std, drift, std * z + _jumps(rng, p, dt, bars), typical)


def _symbol_bars(
    p: SyntheticParams, dt: float, m: _Market, price: float, rng: np.random.Generator
) -> tuple[F8, F8, F8, F8, F8]:
    """Return open, high, low, close and volume for one symbol."""
    n = m.std.size
    own = m.std * _unit_t(rng, p.t_df, n) + _jumps(rng, p, dt, n)
    r = m.drift + math.sqrt(p.correlation) * m.shocks + math.sqrt(1.0 - p.correlation) * own
    close = np.exp(np.cumsum(r) + math.log(price))
    open_ = np.empty(n)
    open_[0] = price
    open_[1:] = close[:-1]
    # Brownian-bridge extremes: P(max - open > m) = exp(-2 m (m - r) / s^2) for m >= max(0, r).
    spread = np.sqrt(r * r + 2.0 * np.square(m.std) * rng.standard_exponential((2, n)))
    high = np.maximum(open_ * np.exp(0.5 * (r + spread[0])), np.maximum(open_, close))
    low = np.minimum(open_ * np.exp(0.5 * (r - spread[1])), np.minimum(open_, close))
    activity = 1.0 + p.volume_sensitivity * np.abs(r) / m.typical_std
    noise = np.exp(p.volume_noise * rng.standard_normal(n) - 0.5 * p.volume_noise**2)
    volume = (p.daily_notional * dt * 365.25) * activity * noise / close
    return open_, high, low, close, volume


def _unit_t(rng: np.random.Generator, df: float, n: int) -> F8:
    """Return Student-t draws scaled to unit variance."""
    return rng.standard_t(df, n) * math.sqrt((df - 2.0) / df)


def _jumps(rng: np.random.Generator, p: SyntheticParams, dt: float, n: int) -> F8:
    """Return compound-Poisson jump sums per bar (normal log sizes)."""
    counts = rng.poisson(p.jumps_per_year * dt, n)
    hit = np.flatnonzero(counts)
    k = counts[hit].astype(np.float64)
    out = np.zeros(n)
    out[hit] = k * p.jump_mean + np.sqrt(k) * p.jump_std * rng.standard_normal(hit.size)
    return out


def _garch_coefficients(p: SyntheticParams, tf: Timeframe) -> tuple[float, float]:
    """Return per-bar GARCH (alpha, beta) with the configured half-life and finite kurtosis."""
    persistence = 0.5 ** (tf.nanos / _DAY_NS / p.vol_halflife_days)
    kurtosis = 3.0 * (p.t_df - 2.0) / (p.t_df - 4.0)
    alpha = p.vol_of_vol * math.sqrt((1.0 - persistence**2) / (kurtosis - 1.0))
    alpha = min(alpha, persistence)
    return alpha, persistence - alpha


@njit
def _garch_variance(z: F8, alpha: float, beta: float, cap: float) -> F8:
    """Return the GARCH(1,1) variance multiplier (mean 1) driven by unit shocks `z`."""
    n = z.size
    v = np.empty(n)
    omega = 1.0 - alpha - beta
    v[0] = 1.0
    for t in range(1, n):
        v[t] = min(omega + (alpha * z[t - 1] * z[t - 1] + beta) * v[t - 1], cap)
    return v


@njit
def _regime_bars(
    u: F8, cumulative: F8, init: int, sub: int, drift: F8, var: F8
) -> tuple[I1, F8, F8]:
    """Walk the regime chain `sub` steps per bar; return the main regime, drift and variance."""
    bars = u.size // sub
    k = cumulative.shape[0]
    label = np.empty(bars, dtype=np.int8)
    mu = np.zeros(bars)
    sigma2 = np.zeros(bars)
    counts = np.zeros(k, dtype=np.int64)
    state = init
    for b in range(bars):
        counts[:] = 0
        for j in range(sub):
            if b + j > 0:
                nxt = 0
                while nxt < k - 1 and u[b * sub + j] >= cumulative[state, nxt]:
                    nxt += 1
                state = nxt
            counts[state] += 1
            mu[b] += drift[state]
            sigma2[b] += var[state]
        label[b] = np.argmax(counts)
    return label, mu, sigma2


def _generator(p: SyntheticParams) -> F8:
    """Return the per-day rate matrix of the regime chain."""
    q: F8 = np.asarray(p.regime_exit, dtype=np.float64) / np.asarray(p.regime_days)[:, None]
    np.fill_diagonal(q, 0.0)
    np.fill_diagonal(q, -q.sum(axis=1))
    return q


def _stationary(q: F8) -> F8:
    """Return the stationary distribution of a rate matrix."""
    k = q.shape[0]
    system = np.vstack([q.T[:-1], np.ones(k)])
    rhs = np.zeros(k)
    rhs[-1] = 1.0
    pi = np.clip(np.linalg.solve(system, rhs), 0.0, None)
    return np.asarray(pi / pi.sum(), dtype=np.float64)


def _expm(a: F8) -> F8:
    """Return the matrix exponential by scaling and squaring a Taylor series."""
    norm = float(np.abs(a).sum(axis=1).max())
    squarings = max(0, math.ceil(math.log2(norm)) + 1) if norm > 0 else 0
    scaled = a / 2.0**squarings
    result = np.eye(a.shape[0])
    term = np.eye(a.shape[0])
    for i in range(1, 20):
        term = term @ scaled / i
        result = result + term
    for _ in range(squarings):
        result = result @ result
    return result


# --- arguments ------------------------------------------------------------------------------


def _check(ok: bool, message: str) -> None:
    """Raise UserInputError with `message` unless `ok`."""
    if not ok:
        raise UserInputError(message)


def _is_int(value: object) -> bool:
    """Return True for Python or numpy integers, but not for booleans."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_regimes(p: SyntheticParams) -> None:
    """Validate the per-regime tuples and the exit matrix."""
    for name in ("regime_drift", "regime_vol", "regime_days"):
        values = getattr(p, name)
        _check(
            len(values) == len(REGIME_NAMES) and all(math.isfinite(v) for v in values),
            f"{name} needs one finite number per regime {REGIME_NAMES}, got {values}",
        )
    _check(all(v >= 0 for v in p.regime_vol), f"regime_vol must be >= 0, got {p.regime_vol}")
    _check(all(d > 0 for d in p.regime_days), f"regime_days must be > 0, got {p.regime_days}")
    k = len(REGIME_NAMES)
    shape_ok = len(p.regime_exit) == k and all(len(row) == k for row in p.regime_exit)
    exits = np.asarray(p.regime_exit if shape_ok else np.ones((k, k)), dtype=np.float64)
    _check(
        shape_ok
        and bool((exits >= 0).all())
        and bool(np.allclose(exits.sum(axis=1), 1.0))
        and not bool(np.diag(exits).any()),
        "regime_exit must be 4 rows of 4 probabilities >= 0 that sum to 1, with a zero diagonal",
    )


def _check_symbols(symbols: Sequence[str]) -> list[str]:
    """Return the symbols as a list, rejecting a bare string, empty names and duplicates."""
    _check(
        not isinstance(symbols, str),
        f"symbols must be a list of names, e.g. [{symbols!r}], not a single string",
    )
    names = list(symbols)
    _check(len(names) > 0, "symbols is empty; pass at least one name, e.g. ['BTC/USDT']")
    _check(
        all(isinstance(s, str) and s.strip() for s in names),
        f"symbols must be non-empty strings, got {names}",
    )
    duplicates = sorted({s for s in names if names.count(s) > 1})
    _check(not duplicates, f"symbols must be unique; repeated: {duplicates}")
    return names


def _check_timeframe(timeframe: str) -> Timeframe:
    """Parse the timeframe; calendar months have no fixed length and are refused."""
    tf = parse_timeframe(timeframe)
    if tf.is_monthly:
        raise TimeframeError(
            f"timeframe {tf.text!r}: calendar-month bars are not generated; "
            "generate '1d' bars and resample them to months"
        )
    return tf


def _start_prices(names: list[str], overrides: Mapping[str, float]) -> dict[str, float]:
    """Return each symbol's first open: the override or the default for its base asset."""
    unknown = sorted(set(overrides) - set(names))
    _check(not unknown, f"start_prices names symbols that were not requested: {unknown}")
    prices: dict[str, float] = {}
    for name in names:
        default = next(
            (v for prefix, v in _DEFAULT_PRICES if name.upper().startswith(prefix)), _OTHER_PRICE
        )
        price = float(overrides.get(name, default))
        _check(
            math.isfinite(price) and price > 0, f"start price of {name!r} must be > 0, got {price}"
        )
        prices[name] = price
    return prices


def _grid(start: str | pd.Timestamp, tf: Timeframe, bars: int) -> npt.NDArray[np.int64]:
    """Return `bars` contiguous epoch-ns bar opens from `start` rounded up to the grid."""
    try:
        ts = pd.Timestamp(start)
    except (TypeError, ValueError) as exc:
        raise UserInputError(
            f"start {start!r} is not a timestamp; use ISO 8601, e.g. '2020-01-01T00:00:00Z'"
        ) from exc
    _check(not pd.isna(ts), f"start {start!r} is not a timestamp")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    start_ns = int(ts.as_unit("ns").value)
    step = tf.nanos
    first = tf.origin_ns - ((tf.origin_ns - start_ns) // step) * step
    last = first + (bars - 1) * step
    _check(
        last <= pd.Timestamp.max.value,
        f"{bars} bars of {tf.text} from {ts} run past {pd.Timestamp.max}; use fewer bars",
    )
    return first + np.arange(bars, dtype=np.int64) * step


def _symbol_rng(seed: int, symbol: str) -> np.random.Generator:
    """Return the random stream of one symbol, keyed by its name (stable across runs)."""
    digest = hashlib.blake2b(symbol.encode("utf-8"), digest_size=16).digest()
    words = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SYMBOL_STREAM, *words)))

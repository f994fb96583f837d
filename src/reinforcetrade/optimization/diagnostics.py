"""Overfitting diagnostics shown with every optimisation result: DSR and PBO.

* The deflated Sharpe ratio (Bailey & López de Prado, 2014, "The Deflated Sharpe Ratio") is the
  probability that the best of `n_trials` strategies has a true Sharpe ratio above zero, once
  the selection among many trials, a short track record and non-normal returns are allowed for.
* The probability of backtest overfitting (Bailey, Borwein, López de Prado & Zhu, 2015, "The
  Probability of Backtest Overfitting") is, over every split of the time blocks into two halves,
  the share of splits in which the trial that is best in-sample ranks in the bottom half
  out-of-sample (combinatorially symmetric cross-validation).

Conventions:

* Sharpe ratios are per period (per bar): mean / standard deviation (ddof 1) of the per-bar
  returns, never annualised. From annual figures, divide a Sharpe ratio by
  sqrt(periods_per_year) and a variance of Sharpe ratios by periods_per_year.
* `kurtosis` is the plain (Pearson) kurtosis, 3 for normal returns. Excess kurtosis (0 for
  normal returns, what `reinforcetrade.features.performance.kurtosis` returns) goes in
  `excess_kurtosis=` instead. A kurtosis below 1 is impossible and raises, which catches most
  excess kurtosis passed by mistake.
* A Sharpe ratio is undefined (NaN) with fewer than two returns or no spread. In the PBO an
  undefined Sharpe ratio ranks below every defined one.
"""

from __future__ import annotations

import itertools
import math
import operator
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.errors import UserInputError

__all__ = [
    "DiagnosticsInputError",
    "PBOResult",
    "block_stats",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "pbo_from_returns",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
]

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]

_EULER_GAMMA: Final[float] = 0.5772156649015329
_NORMAL: Final[NormalDist] = NormalDist()
# A pooled sum of squared deviations at or below this fraction of the sum of squares is the
# rounding noise of a constant series (a per-bar |Sharpe| above ~1e5), not a spread.
_NOISE: Final[float] = 1e-10
# Trials × combinations held at once while computing the PBO (a few arrays of this many floats).
_CELLS_PER_BATCH: Final[int] = 1 << 16
# Blocks per lookup table of subset sums (2**_PART rows each) that pool a combination's blocks.
_PART: Final[int] = 4
_MAX_COMBINATIONS: Final[int] = 1_000_000


class DiagnosticsInputError(UserInputError, ValueError):
    """An argument of an overfitting diagnostic is out of its domain."""


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Return the expected maximum Sharpe ratio of `n_trials` trials without skill (SR0).

    `sharpe_variance` is the variance across the trials of their per-period Sharpe ratios
    (e.g. `np.var(sharpes, ddof=1)`). One trial gives 0.

    >>> round(expected_max_sharpe(100, 0.5 / 250), 4)  # the DSR paper's example, daily
    0.1132
    >>> expected_max_sharpe(1, 0.5)
    0.0
    """
    n = _integer(n_trials, "n_trials", minimum=1)
    v = _finite(sharpe_variance, "sharpe_variance")
    if v < 0.0:
        raise DiagnosticsInputError(f"sharpe_variance must be non-negative, got {v!r}")
    if n == 1:
        return 0.0
    # Φ⁻¹(1 − p) as −Φ⁻¹(p), which keeps its digits when p is tiny
    z_n = -_NORMAL.inv_cdf(1.0 / n)
    z_ne = -_NORMAL.inv_cdf(1.0 / (n * math.e))
    return math.sqrt(v) * ((1.0 - _EULER_GAMMA) * z_n + _EULER_GAMMA * z_ne)


def probabilistic_sharpe_ratio(
    sharpe: float,
    benchmark: float,
    n_obs: int,
    skew: float = 0.0,
    kurtosis: float | None = None,
    *,
    excess_kurtosis: float | None = None,
) -> float:
    """Return the probability that the true Sharpe ratio exceeds `benchmark` (PSR).

    `sharpe` and `benchmark` are per period, measured on `n_obs` returns (at least 2) with
    `skew` and plain `kurtosis` (3 when normal, the default); give excess kurtosis as
    `excess_kurtosis=` instead. A NaN `sharpe` gives NaN. With positive skew, a very high
    per-period Sharpe ratio can score lower than a smaller one: its estimate is less certain.

    >>> round(probabilistic_sharpe_ratio(0.1, 0.0, n_obs=101), 4)
    0.8407
    >>> probabilistic_sharpe_ratio(0.1, 0.0, 101, excess_kurtosis=0.0) == (
    ...     probabilistic_sharpe_ratio(0.1, 0.0, 101, kurtosis=3.0))
    True
    """
    sr = _finite(sharpe, "sharpe", allow_nan=True)
    bench = _finite(benchmark, "benchmark")
    t = _integer(n_obs, "n_obs", minimum=2)
    g3 = _finite(skew, "skew")
    g4 = _plain_kurtosis(kurtosis, excess_kurtosis)
    if math.isnan(sr):
        return math.nan
    spread = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    if not spread > 0.0:
        raise DiagnosticsInputError(
            f"skew {g3!r} and kurtosis {g4!r} are inconsistent (plain kurtosis is at least "
            f"1 + skew²); the Sharpe ratio's variance would be {spread!r}"
        )
    return _NORMAL.cdf((sr - bench) * math.sqrt(t - 1) / math.sqrt(spread))


def deflated_sharpe_ratio(
    sharpe: float,
    n_trials: int,
    sharpe_variance: float,
    n_obs: int,
    skew: float = 0.0,
    kurtosis: float | None = None,
    *,
    excess_kurtosis: float | None = None,
) -> float:
    """Return the probability that the best of `n_trials` trials has skill (DSR).

    The PSR of the selected trial's per-period `sharpe` against `expected_max_sharpe(n_trials,
    sharpe_variance)`; `n_obs`, `skew` and `kurtosis` describe the selected trial's returns as
    in `probabilistic_sharpe_ratio`.

    >>> round(deflated_sharpe_ratio(2.5 / 250**0.5, 100, 0.5 / 250, 1250, -3.0, 10.0), 4)
    0.9004
    """
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(
        sharpe, sr0, n_obs, skew, kurtosis, excess_kurtosis=excess_kurtosis
    )


@dataclass(frozen=True, slots=True, eq=False)
class PBOResult:
    """The probability of backtest overfitting and the per-combination figures behind it.

    Arrays have one row per combination, in `itertools.combinations(range(n_blocks),
    n_blocks // 2)` order (that tuple is the in-sample blocks), and are read-only. A
    combination in which no trial has a defined in-sample Sharpe ratio has NaN `logits`,
    `is_sharpe` and `oos_sharpe` and counts in neither probability.

    Attributes:
        pbo: Share of combinations whose logit is ≤ 0: the in-sample best ranks at or below the
            out-of-sample median.
        probability_of_loss: Share of combinations whose in-sample best loses out-of-sample (its
            out-of-sample Sharpe ratio is below 0; NaN is no loss).
        logits: λ = ln(ω / (1 − ω)), ω the out-of-sample relative rank of the in-sample best.
        is_sharpe: In-sample per-bar Sharpe ratio of the in-sample best.
        oos_sharpe: Out-of-sample per-bar Sharpe ratio of the in-sample best.
        best_trial: Index of the in-sample best trial (the first one on a tie).
        in_sample_blocks: The in-sample block indices, shape (combinations, n_blocks // 2).
        combinations: C(n_blocks, n_blocks // 2).
        n_trials: Number of trials ranked.
        n_blocks: Number of time blocks.
    """

    pbo: float
    probability_of_loss: float
    logits: F8
    is_sharpe: F8
    oos_sharpe: F8
    best_trial: I8
    in_sample_blocks: I8
    combinations: int
    n_trials: int
    n_blocks: int


def block_stats(returns: npt.ArrayLike, n_blocks: int) -> F8:
    """Return each trial's count, sum and sum of squares of returns per contiguous time block.

    `returns` is (bars,) or (trials, bars); the result is (trials, n_blocks, 3). Blocks split
    the bars as `numpy.array_split` does (the first `bars % n_blocks` blocks are one bar
    longer). NaN returns are skipped (not counted).

    >>> block_stats([0.01, 0.03, float("nan"), -0.02], 2).tolist()
    [[[2.0, 0.04, 0.001], [1.0, -0.02, 0.0004]]]
    """
    r = _returns(returns)
    blocks = _integer(n_blocks, "n_blocks", minimum=1)
    bars = r.shape[1]
    if bars < blocks:
        raise DiagnosticsInputError(f"{bars} bars cannot be split into {blocks} blocks")
    size, extra = divmod(bars, blocks)
    lengths = np.full(blocks, size, dtype=np.int64)
    lengths[:extra] += 1
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    valid = ~np.isnan(r)
    x = np.where(valid, r, 0.0)
    out = np.empty((r.shape[0], blocks, 3))
    out[..., 0] = np.add.reduceat(valid.astype(np.float64), starts, axis=1)
    out[..., 1] = np.add.reduceat(x, starts, axis=1)
    out[..., 2] = np.add.reduceat(x * x, starts, axis=1)
    return out


def probability_of_backtest_overfitting(stats: npt.ArrayLike) -> PBOResult:
    """Return the probability of backtest overfitting by combinatorially symmetric CV.

    `stats` is (trials, n_blocks, 3) as `block_stats` makes, n_blocks even. Each combination
    of n_blocks / 2 blocks is in-sample, the others out-of-sample; a trial's Sharpe ratio on
    either half is that of its returns in those blocks put together. The out-of-sample rank of
    the in-sample best counts 1 for the worst to N for the best, ties sharing their mean rank;
    ω = rank / (N + 1).

    >>> returns = np.array([[0.01, 0.02, 0.03, 0.01], [0.02, 0.00, -0.01, 0.01]])
    >>> result = probability_of_backtest_overfitting(block_stats(returns, 2))
    >>> result.pbo, result.best_trial.tolist(), result.logits.round(4).tolist()
    (0.0, [0, 0], [0.6931, 0.6931])
    """
    s = _stats(stats)
    n_trials, n_blocks = s.shape[0], s.shape[1]
    blocks = np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)), dtype=np.int64)
    count = blocks.shape[0]
    codes, complement = _part_codes(blocks, n_blocks)
    by_block = s.transpose(1, 2, 0)  # (n_blocks, 3, trials)
    tables = [_subset_sums(by_block[p : p + _PART]) for p in range(0, n_blocks, _PART)]
    best = np.empty(count, dtype=np.int64)
    logits, is_best, oos_best = np.empty(count), np.empty(count), np.empty(count)
    # Each combination's out-of-sample half is another one's in-sample half: take them in pairs
    # (those holding block 0 and their complements) to compute every half's Sharpe ratios once.
    firsts = np.flatnonzero(blocks[:, 0] == 0)
    step = max(1, _CELLS_PER_BATCH // n_trials)
    for lo in range(0, firsts.size, step):
        one = firsts[lo : lo + step]
        other = complement[one]
        sr_one = _sharpe(_pooled(tables, codes[one]))
        sr_other = _sharpe(_pooled(tables, codes[other]))
        best[one], logits[one], is_best[one], oos_best[one] = _select(sr_one, sr_other)
        best[other], logits[other], is_best[other], oos_best[other] = _select(sr_other, sr_one)
    defined = ~np.isnan(logits)
    n_defined = int(defined.sum())
    pbo = float((logits[defined] <= 0.0).sum() / n_defined) if n_defined else math.nan
    loss = float((oos_best[defined] < 0.0).sum() / n_defined) if n_defined else math.nan
    for a in (logits, is_best, oos_best, best, blocks):
        a.setflags(write=False)
    return PBOResult(
        pbo=pbo,
        probability_of_loss=loss,
        logits=logits,
        is_sharpe=is_best,
        oos_sharpe=oos_best,
        best_trial=best,
        in_sample_blocks=blocks,
        combinations=count,
        n_trials=n_trials,
        n_blocks=n_blocks,
    )


def pbo_from_returns(returns: npt.ArrayLike, n_blocks: int = 16) -> PBOResult:
    """Return the probability of backtest overfitting of per-bar returns (trials, bars).

    >>> rng = np.random.default_rng(0)
    >>> pbo_from_returns(rng.normal(0.0, 0.01, (20, 400)), n_blocks=8).combinations
    70
    """
    r = _returns(returns)
    if np.ndim(returns) != 2:
        raise DiagnosticsInputError(
            f"returns must be (trials, bars), got shape {np.shape(returns)}"
        )
    _check_trials_and_blocks(r.shape[0], _integer(n_blocks, "n_blocks", minimum=1))
    return probability_of_backtest_overfitting(block_stats(r, n_blocks))


def _part_codes(blocks: I8, n_blocks: int) -> tuple[I8, I8]:
    """Return each combination's block bit mask per part of `_PART` blocks, and its complement.

    Column p of the codes has bit i set when block p·_PART + i is in the combination; the
    complement is the index of the combination holding exactly the other blocks.
    """
    count = blocks.shape[0]
    member = np.zeros((count, n_blocks), dtype=np.int64)
    member[np.arange(count)[:, None], blocks] = 1
    weights = np.int64(1) << (np.arange(n_blocks, dtype=np.int64) % _PART)
    starts = range(0, n_blocks, _PART)
    codes = np.stack([member[:, p : p + _PART] @ weights[p : p + _PART] for p in starts], axis=1)
    key = member @ (np.int64(1) << np.arange(n_blocks, dtype=np.int64))
    order = np.argsort(key)
    complement = order[np.searchsorted(key, ((1 << n_blocks) - 1) - key, sorter=order)]
    return codes, complement


def _subset_sums(part: F8) -> F8:
    """Return the sums over every subset of the rows of `part`; row i sums those set in i's bits."""
    out = np.zeros((1 << part.shape[0], *part.shape[1:]))
    for bit in range(part.shape[0]):
        out[1 << bit : 2 << bit] = out[: 1 << bit] + part[bit]
    return out


def _pooled(tables: list[F8], codes: I8) -> F8:
    """Return the summed block statistics (combinations, 3, trials) of the coded combinations."""
    out = np.take(tables[0], codes[:, 0], axis=0)
    for p in range(1, len(tables)):
        out += np.take(tables[p], codes[:, p], axis=0)
    return out


def _sharpe(pooled: F8) -> F8:
    """Return the per-bar Sharpe ratios (ddof 1) from pooled count, sum and sum of squares."""
    n, total, squares = pooled[:, 0], pooled[:, 1], pooled[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n
        deviations = squares - total * mean
        sharpe = mean * np.sqrt((n - 1.0) / deviations)
    sharpe[(n < 2.0) | ~(deviations > _NOISE * squares)] = np.nan
    return sharpe


def _select(is_sr: F8, oos_sr: F8) -> tuple[I8, F8, F8, F8]:
    """Return, per combination, the in-sample best, its logit, IS and OOS Sharpe ratios."""
    rows = np.arange(is_sr.shape[0])
    best = np.argmax(np.where(np.isnan(is_sr), -np.inf, is_sr), axis=1)
    key = np.where(np.isnan(oos_sr), -np.inf, oos_sr)
    chosen = key[rows, best][:, None]
    rank = (key < chosen).sum(axis=1) + ((key == chosen).sum(axis=1) + 1) / 2.0
    omega = rank / (is_sr.shape[1] + 1.0)
    logits = np.log(omega / (1.0 - omega))
    is_best, oos_best = is_sr[rows, best], oos_sr[rows, best]
    undefined = np.isnan(is_best)
    logits[undefined] = np.nan
    oos_best = np.where(undefined, np.nan, oos_best)
    return best, logits, is_best, oos_best


def _returns(returns: npt.ArrayLike) -> F8:
    """Return per-bar returns as a (trials, bars) float array; NaN allowed, ±inf not."""
    try:
        r = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DiagnosticsInputError(f"returns must be an array of numbers: {exc}") from exc
    if r.ndim not in (1, 2) or r.shape[-1] == 0:
        raise DiagnosticsInputError(
            f"returns must be (bars,) or (trials, bars) with bars > 0, got shape {r.shape}"
        )
    if np.isinf(r).any():
        raise DiagnosticsInputError("returns must be finite or NaN (skipped), not ±inf")
    return r.reshape(1, -1) if r.ndim == 1 else r


def _stats(stats: npt.ArrayLike) -> F8:
    """Return validated block statistics (trials, n_blocks, 3)."""
    try:
        s = np.asarray(stats, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DiagnosticsInputError(f"stats must be an array of numbers: {exc}") from exc
    if s.ndim != 3 or s.shape[2] != 3:
        raise DiagnosticsInputError(
            f"stats must be (trials, n_blocks, 3) as block_stats makes, got shape {s.shape}"
        )
    _check_trials_and_blocks(s.shape[0], s.shape[1])
    if not np.isfinite(s).all():
        raise DiagnosticsInputError("stats must be finite")
    n = s[..., 0]
    if (n < 0).any() or (n != np.round(n)).any():
        raise DiagnosticsInputError("stats[..., 0] must be counts (whole numbers ≥ 0)")
    if (s[..., 2] < 0).any():
        raise DiagnosticsInputError("stats[..., 2] must be sums of squares (≥ 0)")
    return s


def _check_trials_and_blocks(n_trials: int, n_blocks: int) -> None:
    """Raise unless there are 2+ trials and an even, tractable number of blocks."""
    if n_trials < 2:
        raise DiagnosticsInputError(f"the PBO ranks trials: need at least 2, got {n_trials}")
    if n_blocks < 2 or n_blocks % 2:
        raise DiagnosticsInputError(
            f"n_blocks must be even and at least 2 (halves in and out of sample), got {n_blocks}"
        )
    if math.comb(n_blocks, n_blocks // 2) > _MAX_COMBINATIONS:
        raise DiagnosticsInputError(
            f"n_blocks={n_blocks} gives {math.comb(n_blocks, n_blocks // 2):,} combinations; "
            f"use at most 22 blocks (16, C(16, 8) = 12,870, is usual)"
        )


def _plain_kurtosis(kurtosis: float | None, excess_kurtosis: float | None) -> float:
    """Return the plain kurtosis from either argument (3 when neither is given)."""
    if kurtosis is not None and excess_kurtosis is not None:
        raise DiagnosticsInputError("give kurtosis (plain) or excess_kurtosis, not both")
    if excess_kurtosis is not None:
        k = _finite(excess_kurtosis, "excess_kurtosis") + 3.0
    elif kurtosis is not None:
        k = _finite(kurtosis, "kurtosis")
    else:
        return 3.0
    if k < 1.0:
        raise DiagnosticsInputError(
            f"plain kurtosis must be at least 1 (3 for normal returns), got {k!r}; "
            f"for excess kurtosis (0 for normal returns) use excess_kurtosis="
        )
    return k


def _integer(value: int, name: str, *, minimum: int) -> int:
    """Return `value` as an int if it is a whole number ≥ minimum, else raise."""
    try:
        n = operator.index(value)
    except TypeError:
        raise DiagnosticsInputError(f"{name} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or n < minimum:
        raise DiagnosticsInputError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return n


def _finite(value: float, name: str, *, allow_nan: bool = False) -> float:
    """Return `value` as a float if it is finite (or NaN, when allowed), else raise."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DiagnosticsInputError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(x) or (allow_nan and math.isnan(x))):
        raise DiagnosticsInputError(f"{name} must be finite, got {value!r}")
    return x

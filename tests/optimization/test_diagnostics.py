"""Overfitting diagnostics: the DSR paper's example, scipy and Monte Carlo oracles, and a plain
Python CSCV loop as the oracle of the vectorised PBO."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats  # type: ignore[import-untyped]  # no stubs; oracle only

from reinforcetrade.optimization.diagnostics import (
    DiagnosticsInputError,
    PBOResult,
    block_stats,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    pbo_from_returns,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)

F8 = npt.NDArray[np.float64]
DAYS = 250  # the DSR paper annualises daily figures with 250 days


# --- oracles (plain Python and scipy, independent of the code under test) -----------------


def _sr0_oracle(n: int, variance: float) -> float:
    z = stats.norm.ppf
    g = np.euler_gamma
    return math.sqrt(variance) * float((1 - g) * z(1 - 1 / n) + g * z(1 - 1 / (n * math.e)))


def _psr_oracle(sr: float, bench: float, t: int, skew: float, kurt: float) -> float:
    z = (sr - bench) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return float(stats.norm.cdf(z))


def _sharpe_oracle(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    if len(xs) < 2 or statistics.stdev(xs) == 0:
        return math.nan
    return statistics.mean(xs) / statistics.stdev(xs)


def _cscv_oracle(returns: F8, n_blocks: int) -> list[tuple[int, float, float, float]]:
    """Per combination: IS-best trial, its logit, IS and OOS Sharpe (one plain loop each)."""
    n_trials = returns.shape[0]
    blocks = np.array_split(np.arange(returns.shape[1]), n_blocks)
    rows = []
    for combo in itertools.combinations(range(n_blocks), n_blocks // 2):
        inside = [i for b in combo for i in blocks[b]]
        outside = [i for b in range(n_blocks) if b not in combo for i in blocks[b]]
        is_sr = [_sharpe_oracle([float(returns[k, i]) for i in inside]) for k in range(n_trials)]
        oos_sr = [_sharpe_oracle([float(returns[k, i]) for i in outside]) for k in range(n_trials)]
        best = max(range(n_trials), key=lambda k: -math.inf if math.isnan(is_sr[k]) else is_sr[k])
        ranks = stats.rankdata([-math.inf if math.isnan(v) else v for v in oos_sr])  # mid-ranks
        omega = ranks[best] / (n_trials + 1)
        if math.isnan(is_sr[best]):  # no trial has an in-sample Sharpe ratio: undefined
            rows.append((best, math.nan, math.nan, math.nan))
        else:
            rows.append((best, math.log(omega / (1 - omega)), is_sr[best], oos_sr[best]))
    return rows


# --- deflated Sharpe ratio ---------------------------------------------------------------


def test_the_dsr_papers_numerical_example() -> None:
    # Bailey & López de Prado (2014): annual SR 2.5 over 5 years of daily returns (T = 1250),
    # the best of N = 100 trials whose annual SRs have variance 0.5; skew −3, kurtosis 10.
    sr, variance = 2.5 / math.sqrt(DAYS), 0.5 / DAYS
    sr0 = expected_max_sharpe(100, variance)
    assert round(sr0, 4) == 0.1132  # the paper's daily SR0
    assert sr0 == pytest.approx(_sr0_oracle(100, variance), rel=1e-12)
    assert sr0 * math.sqrt(DAYS) == pytest.approx(expected_max_sharpe(100, 0.5), rel=1e-12)
    dsr = deflated_sharpe_ratio(sr, 100, variance, 1250, skew=-3.0, kurtosis=10.0)
    assert round(dsr, 4) == 0.9004  # the paper's DSR
    assert dsr == pytest.approx(_psr_oracle(sr, sr0, 1250, -3.0, 10.0), rel=1e-12)


def test_hand_computed_small_cases() -> None:
    # N = 2: Φ⁻¹(1/2) = 0, so SR0 = γ·Φ⁻¹(1 − 1/(2e)) · √V
    assert expected_max_sharpe(2, 1.0) == pytest.approx(0.5197553442805939, rel=1e-12)
    assert expected_max_sharpe(2, 4.0) == pytest.approx(2 * 0.5197553442805939, rel=1e-12)
    # normal returns: z = 0.1·√100 / √(1 + 0.5·0.01) = 1/√1.005
    assert probabilistic_sharpe_ratio(0.1, 0.0, 101) == pytest.approx(0.8407413278013518)
    assert probabilistic_sharpe_ratio(0.2, 0.2, 7, skew=-1.0, kurtosis=6.0) == 0.5
    assert probabilistic_sharpe_ratio(-0.1, 0.0, 101) == pytest.approx(1 - 0.8407413278013518)


@pytest.mark.parametrize("n", [2, 3, 10, 100, 1_000, 10**6])
@pytest.mark.parametrize("variance", [1e-6, 0.01, 0.5, 3.0])
def test_expected_max_sharpe_matches_scipy(n: int, variance: float) -> None:
    assert expected_max_sharpe(n, variance) == pytest.approx(_sr0_oracle(n, variance), rel=1e-9)


@pytest.mark.parametrize(("n", "reps"), [(10, 40_000), (100, 10_000), (1_000, 2_000)])
def test_expected_max_sharpe_approximates_the_mean_maximum_of_normals(n: int, reps: int) -> None:
    rng = np.random.default_rng(n)
    mean_max = 0.1 * rng.standard_normal((reps, n)).max(axis=1).mean()  # √V = 0.1
    assert expected_max_sharpe(n, 0.01) == pytest.approx(mean_max, rel=0.03)


@pytest.mark.parametrize(
    ("sr", "bench", "t", "skew", "kurt"),
    [(0.05, 0.0, 500, 0.0, 3.0), (0.3, 0.1, 60, -2.0, 9.0), (-0.2, 0.05, 1000, 0.5, 4.0),
     (1.2, 0.5, 20, 1.5, 12.0), (0.01, 0.02, 100_000, -0.3, 30.0)],
)  # fmt: skip
def test_psr_matches_scipy(sr: float, bench: float, t: int, skew: float, kurt: float) -> None:
    expected = _psr_oracle(sr, bench, t, skew, kurt)
    assert probabilistic_sharpe_ratio(sr, bench, t, skew, kurt) == pytest.approx(expected)
    excess = probabilistic_sharpe_ratio(sr, bench, t, skew, excess_kurtosis=kurt - 3.0)
    assert excess == pytest.approx(expected, rel=1e-15)


def test_one_trial_or_no_dispersion_deflates_against_zero() -> None:
    psr0 = probabilistic_sharpe_ratio(0.08, 0.0, 400, skew=-0.5, kurtosis=5.0)
    assert deflated_sharpe_ratio(0.08, 1, 0.3, 400, skew=-0.5, kurtosis=5.0) == psr0
    assert deflated_sharpe_ratio(0.08, 500, 0.0, 400, skew=-0.5, kurtosis=5.0) == psr0
    assert expected_max_sharpe(1, 0.3) == 0.0
    assert expected_max_sharpe(500, 0.0) == 0.0


def test_nan_sharpe_gives_nan() -> None:
    assert math.isnan(probabilistic_sharpe_ratio(math.nan, 0.0, 100))
    assert math.isnan(deflated_sharpe_ratio(math.nan, 10, 0.01, 100))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 1), "n_obs"),
        (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 0), "n_obs"),
        (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 2.5), "n_obs"),  # type: ignore[arg-type]
        (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 100, 0.0, 0.0), "excess_kurtosis="),
        (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 100, 0.0, 0.9), "at least 1"),
        (lambda: probabilistic_sharpe_ratio(0.1, 0.0, 100, excess_kurtosis=-2.5), "at least 1"),
        (
            lambda: probabilistic_sharpe_ratio(0.1, 0.0, 100, 0.0, 3.0, excess_kurtosis=0.0),
            "not both",
        ),
        (lambda: probabilistic_sharpe_ratio(1.0, 0.0, 100, 2.0, 1.0), "inconsistent"),
        (lambda: probabilistic_sharpe_ratio(math.inf, 0.0, 100), "sharpe"),
        (lambda: probabilistic_sharpe_ratio(0.1, math.nan, 100), "benchmark"),
        (lambda: expected_max_sharpe(0, 0.1), "n_trials"),
        (lambda: expected_max_sharpe(10, -0.1), "non-negative"),
        (lambda: expected_max_sharpe(True, 0.1), "n_trials"),
        (lambda: deflated_sharpe_ratio(0.1, 10, 0.01, 1), "n_obs"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert isinstance(info.value, DiagnosticsInputError)


def test_psr_is_not_monotone_in_sharpe_under_positive_skew() -> None:
    # the documented caveat: with skew 3, a per-period SR of 2 is less certain than one of 0.5
    low = probabilistic_sharpe_ratio(0.5, 0.0, 10, skew=3.0, kurtosis=11.0)
    high = probabilistic_sharpe_ratio(2.0, 0.0, 10, skew=3.0, kurtosis=11.0)
    assert high < low


_skews = st.floats(-3.0, 3.0)
_extra = st.floats(0.1, 20.0)  # plain kurtosis = 1 + skew² + extra: a valid pair


@settings(deadline=None)
@given(
    st.floats(-0.5, 1.0), st.integers(1, 10**6), st.integers(1, 10**6), st.floats(1e-6, 0.1),
    st.integers(2, 10_000), _skews, _extra,
)  # fmt: skip
def test_more_trials_never_raise_the_dsr(
    sr: float, n1: int, n2: int, variance: float, t: int, skew: float, extra: float
) -> None:
    lo, hi = sorted((n1, n2))
    kurt = 1 + skew**2 + extra
    assert deflated_sharpe_ratio(sr, lo, variance, t, skew, kurt) >= deflated_sharpe_ratio(
        sr, hi, variance, t, skew, kurt
    )
    if lo < hi:
        assert expected_max_sharpe(lo, variance) < expected_max_sharpe(hi, variance)


@settings(deadline=None)
@given(
    st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.integers(1, 10**4), st.floats(0.0, 0.1),
    st.integers(2, 10_000), st.floats(-3.0, 0.0), _extra,
)  # fmt: skip
def test_a_higher_sharpe_never_lowers_the_dsr(
    sr1: float, sr2: float, n: int, variance: float, t: int, skew: float, extra: float
) -> None:
    # monotone for SR ≥ 0 and skew ≤ 0 (see test_psr_is_not_monotone_in_sharpe_under_positive_skew)
    lo, hi = sorted((sr1, sr2))
    kurt = 1 + skew**2 + extra
    assert deflated_sharpe_ratio(lo, n, variance, t, skew, kurt) <= deflated_sharpe_ratio(
        hi, n, variance, t, skew, kurt
    )


# --- block statistics ----------------------------------------------------------------------


def test_block_stats_by_hand() -> None:
    got = block_stats([0.01, 0.03, math.nan, -0.02, 0.05], 2)  # blocks of 3 and 2 bars
    expected = [[[2, 0.04, 0.0010], [2, 0.03, 0.0029]]]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert block_stats(np.zeros((4, 9)), 3).shape == (4, 3, 3)


@settings(deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 12), st.integers(0, 30))
def test_block_stats_split_as_array_split(
    seed: int, trials: int, n_blocks: int, extra: int
) -> None:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.02, (trials, n_blocks + extra))
    returns[rng.random(returns.shape) < 0.2] = np.nan
    got = block_stats(returns, n_blocks)
    for k in range(trials):
        for b, part in enumerate(np.array_split(returns[k], n_blocks)):
            kept = part[~np.isnan(part)]
            assert got[k, b, 0] == kept.size
            assert got[k, b, 1] == pytest.approx(kept.sum(), abs=1e-15)
            assert got[k, b, 2] == pytest.approx((kept**2).sum(), abs=1e-15)


# --- probability of backtest overfitting ---------------------------------------------------


def test_pbo_of_three_trials_in_four_blocks_by_hand() -> None:
    # Two bars per block. A is strong in blocks 0-1 and loses in 2-3; B is its mirror image;
    # C makes a little in every block. Halves mixing both regimes give A and B a Sharpe ratio
    # of 0, so C (SR = 0.005 / 0.01732 = 1/(2√3)) is best in and out of sample: ω = 3/4, λ = ln 3.
    # The halves {0,1} and {2,3} pick A (SR √3), resp. B, which come last out of sample
    # (SR −√3): ω = 1/4, λ = −ln 3.
    up, down, mild = [0.03, 0.01], [-0.01, -0.03], [0.02, -0.01]
    returns = np.array([up * 2 + down * 2, down * 2 + up * 2, mild * 4])
    result = pbo_from_returns(returns, n_blocks=4)
    c, r3, ln3 = 1 / (2 * math.sqrt(3)), math.sqrt(3), math.log(3)
    assert result.combinations == 6
    assert result.in_sample_blocks.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert result.best_trial.tolist() == [0, 2, 2, 2, 2, 1]
    np.testing.assert_allclose(result.logits, [-ln3, ln3, ln3, ln3, ln3, -ln3], rtol=1e-12)
    np.testing.assert_allclose(result.is_sharpe, [r3, c, c, c, c, r3], rtol=1e-12)
    np.testing.assert_allclose(result.oos_sharpe, [-r3, c, c, c, c, -r3], rtol=1e-12)
    assert result.pbo == pytest.approx(1 / 3)
    assert result.probability_of_loss == pytest.approx(1 / 3)
    assert (result.n_trials, result.n_blocks) == (3, 4)


@settings(deadline=None, max_examples=40)
@given(
    st.integers(0, 2**32 - 1), st.integers(2, 5), st.sampled_from([2, 4, 6]),
    st.integers(0, 25), st.floats(0.0, 0.3),
)  # fmt: skip
def test_pbo_matches_a_plain_loop_on_concatenated_blocks(
    seed: int, trials: int, n_blocks: int, extra: int, nan_share: float
) -> None:
    # pooled block sums give exactly the Sharpe ratio of the concatenated returns
    rng = np.random.default_rng(seed)
    returns = rng.normal(
        rng.uniform(-0.01, 0.01, (trials, 1)), 0.02, (trials, 2 * n_blocks + extra)
    )
    returns[rng.random(returns.shape) < nan_share] = np.nan
    result = pbo_from_returns(returns, n_blocks=n_blocks)
    oracle = _cscv_oracle(returns, n_blocks)
    assert result.combinations == len(oracle) == math.comb(n_blocks, n_blocks // 2)
    for c, (best, logit, is_sr, oos_sr) in enumerate(oracle):
        assert result.best_trial[c] == best
        assert result.logits[c] == pytest.approx(logit, rel=1e-12, nan_ok=True)
        assert result.is_sharpe[c] == pytest.approx(is_sr, rel=1e-9, nan_ok=True)
        assert result.oos_sharpe[c] == pytest.approx(oos_sr, rel=1e-9, abs=1e-12, nan_ok=True)
    defined = [row for row in oracle if not math.isnan(row[2])]
    if defined:
        assert result.pbo == pytest.approx(sum(r[1] <= 0 for r in defined) / len(defined))
        assert result.probability_of_loss == pytest.approx(
            sum(r[3] < 0 for r in defined) / len(defined)
        )


def test_pbo_of_pure_noise_is_about_one_half() -> None:
    # 200 trials of the same noise: the IS best's OOS rank is uniform, so PBO ≈ 0.5. One data
    # set's PBO varies (sd ≈ 0.12, the combinations share their data), so average 20 of them.
    pbos = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        result = pbo_from_returns(rng.normal(0.0, 0.01, (200, 1600)), n_blocks=16)
        assert result.combinations == 12_870
        pbos.append(result.pbo)
    assert 0.35 < pbos[0] < 0.65
    assert 0.4 < statistics.mean(pbos) < 0.6
    again = pbo_from_returns(np.random.default_rng(0).normal(0.0, 0.01, (200, 1600)))
    assert again.pbo == pbos[0]


def test_pbo_is_deterministic() -> None:
    returns = np.random.default_rng(5).normal(0.0, 0.01, (50, 800))
    first, second = pbo_from_returns(returns), pbo_from_returns(returns.copy())
    for name in ("logits", "is_sharpe", "oos_sharpe", "best_trial", "in_sample_blocks"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert (first.pbo, first.probability_of_loss) == (second.pbo, second.probability_of_loss)


def test_pbo_of_one_skilled_strategy_among_noise_is_near_zero() -> None:
    rng = np.random.default_rng(3)
    returns = rng.normal(0.0, 0.01, (50, 1600))
    returns[7] += 0.003  # per-bar Sharpe ≈ 0.3, positive in every block
    result = pbo_from_returns(returns, n_blocks=16)
    assert result.pbo < 0.05
    assert result.probability_of_loss == 0.0
    assert np.mean(result.best_trial == 7) > 0.95
    assert np.median(result.logits) == pytest.approx(math.log(50))  # ranked first: ω = 50/51


def test_ties_share_their_mean_rank() -> None:
    # identical trials tie everywhere: trial 0 is picked, mid-rank (N + 1)/2, ω = 1/2, λ = 0,
    # which counts as overfit (λ ≤ 0)
    returns = np.tile(np.random.default_rng(1).normal(0.0, 0.01, 40), (4, 1))
    result = pbo_from_returns(returns, n_blocks=4)
    assert result.best_trial.tolist() == [0] * 6
    np.testing.assert_array_equal(result.logits, np.zeros(6))
    assert result.pbo == 1.0


def test_trials_without_a_defined_sharpe_rank_last() -> None:
    rng = np.random.default_rng(2)
    returns = rng.normal(0.0, 0.01, (3, 80))
    returns[1] = 0.0  # never trades: no spread, no Sharpe ratio
    result = pbo_from_returns(returns, n_blocks=4)
    assert 1 not in result.best_trial.tolist()
    assert np.isfinite(result.logits).all()
    flat = pbo_from_returns(np.zeros((3, 80)), n_blocks=4)  # nothing defined anywhere
    assert np.isnan(flat.logits).all()
    assert np.isnan(flat.oos_sharpe).all()
    assert math.isnan(flat.pbo)
    assert math.isnan(flat.probability_of_loss)


def test_block_stats_and_pbo_from_returns_agree() -> None:
    returns = np.random.default_rng(4).normal(0.0, 0.01, (6, 333))
    direct = probability_of_backtest_overfitting(block_stats(returns, 6))
    wrapped = pbo_from_returns(returns, n_blocks=6)
    np.testing.assert_array_equal(direct.logits, wrapped.logits)


def test_the_result_is_frozen_and_read_only() -> None:
    result = pbo_from_returns(np.random.default_rng(0).normal(0.0, 0.01, (3, 40)), n_blocks=4)
    assert isinstance(result, PBOResult)
    with pytest.raises(AttributeError):
        result.pbo = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        result.logits[0] = 1.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: pbo_from_returns(np.zeros((1, 100)), 4), "at least 2"),
        (lambda: pbo_from_returns(np.zeros(100), 4), r"\(trials, bars\)"),
        (lambda: pbo_from_returns(np.zeros((3, 100)), 5), "even"),
        (lambda: pbo_from_returns(np.zeros((3, 100)), 0), "n_blocks"),
        (lambda: pbo_from_returns(np.zeros((3, 100)), 24), "combinations"),
        (lambda: pbo_from_returns(np.zeros((3, 10)), 16), "10 bars"),
        (lambda: pbo_from_returns([[0.0, math.inf], [0.0, 0.0]], 2), "inf"),
        (lambda: pbo_from_returns([["a", "b"], ["c", "d"]], 2), "numbers"),
        (lambda: block_stats(np.zeros((2, 3, 4)), 2), "shape"),
        (lambda: block_stats(np.zeros(5), 6), "5 bars"),
        (lambda: probability_of_backtest_overfitting(np.zeros((3, 4))), "shape"),
        (lambda: probability_of_backtest_overfitting(np.zeros((3, 3, 3))), "even"),
        (lambda: probability_of_backtest_overfitting(np.full((3, 4, 3), -1.0)), "counts"),
        (lambda: probability_of_backtest_overfitting(np.full((3, 4, 3), 0.5)), "counts"),
        (lambda: probability_of_backtest_overfitting(np.full((3, 4, 3), math.nan)), "finite"),
    ],
)
def test_bad_pbo_input_raises_a_clear_value_error(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert isinstance(info.value, DiagnosticsInputError)

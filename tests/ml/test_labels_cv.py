"""Forward labels and purged walk-forward folds: exact labels, no training label inside a test span."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.folds import walk_forward_folds
from reinforcetrade.ml.cv import binomial_se, purged_folds, run_cv, score_predictions
from reinforcetrade.ml.labels import forward_return, forward_return_sign


def test_forward_return_sign_on_known_closes() -> None:
    close = np.array([100.0, 110.0, 99.0, 99.0, 100.0, 101.0])
    labels = forward_return_sign(close, 2)
    np.testing.assert_allclose(labels.ret[:4], [-0.01, -0.1, 1 / 99, 2 / 99], rtol=1e-12)
    assert np.isnan(labels.ret[4:]).all()
    np.testing.assert_array_equal(labels.sign, [-1, -1, 1, 1, 0, 0])
    np.testing.assert_array_equal(labels.known, [True, True, True, True, False, False])
    np.testing.assert_array_equal(labels.usable(), labels.known)
    assert labels.sign.dtype == np.int8
    assert labels.horizon == 2


def test_flat_returns_are_labelled_zero_and_not_usable() -> None:
    labels = forward_return_sign([100.0, 100.5, 102.0, 101.9], 1, flat=0.006)
    np.testing.assert_array_equal(labels.sign, [0, 1, 0, 0])
    np.testing.assert_array_equal(labels.usable(), [False, True, False, False])


def test_labels_need_a_positive_whole_horizon() -> None:
    for k in (0, -1, 1.5, True):
        with pytest.raises(UserInputError, match="horizon k"):
            forward_return([1.0, 2.0], k)  # type: ignore[arg-type]
    assert np.isnan(forward_return([1.0, 2.0], 5)).all()


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(200, 3_000),
    k=st.integers(1, 20),
    extra=st.integers(0, 10),
    embargo=st.integers(0, 10),
    folds=st.integers(1, 6),
    anchored=st.booleans(),
)
def test_no_training_label_reads_a_bar_of_its_test_span(
    n: int, k: int, extra: int, embargo: int, folds: int, anchored: bool
) -> None:
    splits = purged_folds(n, k, folds, 0.7, purge=k + extra, embargo=embargo, anchored=anchored)
    reference = walk_forward_folds(
        n, folds, 0.7, anchored=anchored, purge=k + extra, embargo=embargo
    )
    assert len(splits) == len(reference)
    for fold, plain in zip(splits, reference, strict=True):
        np.testing.assert_array_equal(fold.train, np.arange(*plain.train))
        np.testing.assert_array_equal(fold.test, np.arange(*plain.test))
        assert not set(fold.train.tolist()) & set(fold.test.tolist())
        assert fold.train[-1] + k < fold.test[0]  # the last training label ends before the test
        assert fold.last_label_bar() < fold.test[0] - embargo


def test_purge_shorter_than_the_horizon_is_refused() -> None:
    with pytest.raises(UserInputError, match=r"purge=2 is shorter than the label horizon k=5"):
        purged_folds(1_000, 5, 3, purge=2)
    default = purged_folds(1_000, 5, 3)
    assert [f.test[0] - f.train[-1] for f in default] == [6, 6, 6]  # purge k: 5 bars cut


def test_scores_on_known_predictions() -> None:
    p = np.array([0.9, 0.6, 0.2, 0.5])
    up = np.array([True, False, False, True])
    s = score_predictions(p, up, confidence=0.05)
    assert s.rows == 4
    assert s.accuracy == 0.5  # 0.5 counts as "down"
    expected_loss = -(math.log(0.9) + math.log(0.4) + math.log(0.8) + math.log(0.5)) / 4
    assert s.log_loss == pytest.approx(expected_loss, rel=1e-12)
    assert s.brier == pytest.approx((0.01 + 0.36 + 0.04 + 0.25) / 4, rel=1e-12)
    assert s.confident_rows == 3
    assert s.confident_hit_rate == pytest.approx(2 / 3)
    empty = score_predictions(np.zeros(0), np.zeros(0, dtype=bool))
    assert empty.rows == 0
    assert math.isnan(empty.accuracy)
    assert binomial_se(0.5, 100) == 0.05


def test_run_cv_scores_only_usable_test_rows_and_pools_them() -> None:
    n, k = 600, 3
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, n)))
    labels = forward_return_sign(close, k)
    eligible = np.arange(n) >= 50  # as if the factors warmed up over 50 bars
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def always_up(train_rows: np.ndarray, test_rows: np.ndarray) -> np.ndarray:
        seen.append((train_rows, test_rows))
        return np.full(test_rows.size, 0.75)

    report = run_cv(labels, eligible, always_up, purged_folds(n, k, 4))
    usable = labels.usable() & eligible
    for train_rows, test_rows in seen:
        assert usable[train_rows].all()
        assert usable[test_rows].all()
    scored = np.flatnonzero(np.isfinite(report.proba))
    assert report.rows == scored.size == sum(t.size for _, t in seen)
    assert report.accuracy == pytest.approx(labels.up()[scored].mean())
    assert report.accuracy_se == pytest.approx(binomial_se(report.accuracy, scored.size / k))
    assert [f.scores.rows for f in report.folds] == [t.size for _, t in seen]

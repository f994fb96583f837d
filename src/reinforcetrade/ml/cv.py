"""Purged, embargoed walk-forward cross-validation and its out-of-sample scores.

The folds are `core.folds.walk_forward_folds`'s (the one walk-forward implementation). A label at
bar t reads the close of bar t + k (`ml.labels`), so a training row within k bars of its test span
would have a label that peeks into it: the purge cut from the end of every training span must be
at least the label horizon k, and is refused otherwise. The embargo leaves the first bars of each
test span unscored.

Scores are pooled over every scored out-of-sample row. Labels over k bars overlap, so neighbouring
rows share most of their future and are not independent: the accuracy's binomial standard error
is taken over rows / k effective rows (conservative; for k = 1 it is the plain binomial error).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.folds import walk_forward_folds
from reinforcetrade.ml.labels import ForwardLabels, check_horizon

__all__ = [
    "CVReport",
    "FoldScore",
    "PurgedFold",
    "Scores",
    "binomial_se",
    "purged_folds",
    "run_cv",
    "score_predictions",
]

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]
B1 = npt.NDArray[np.bool_]

#: Fits on the training rows and returns P(up) for the test rows (both bar positions).
FitPredict = Callable[[I8, I8], F8]

_CLIP: Final[float] = 1e-15  # log-loss clips probabilities to [ε, 1 - ε], as sklearn does


@dataclass(frozen=True)
class PurgedFold:
    """One fold's training and test bar positions, the purge and embargo already applied."""

    number: int
    train: I8
    test: I8
    horizon: int

    def last_label_bar(self) -> int:
        """Return the last bar any training label reads (-1 without training bars)."""
        return int(self.train[-1]) + self.horizon if self.train.size else -1


def purged_folds(
    n_bars: int,
    horizon: int,
    folds: int = 5,
    train: float = 0.7,
    *,
    purge: int | None = None,
    embargo: int = 0,
    anchored: bool = False,
) -> list[PurgedFold]:
    """Return walk-forward folds whose training labels end before their test spans begin.

    `purge` defaults to the horizon and must not be shorter.

    >>> [(f.train[[0, -1]].tolist(), f.test[[0, -1]].tolist()) for f in purged_folds(100, 3, 2)]
    [([0, 49], [53, 75]), ([23, 72], [76, 99])]
    """
    k = check_horizon(horizon)
    cut = k if purge is None else purge
    if cut < k:
        raise UserInputError(
            f"purge={cut} is shorter than the label horizon k={k}: the labels of the last "
            f"{k - cut} training bars would read prices inside the test span; use purge >= {k}"
        )
    return [
        PurgedFold(
            f.number,
            np.arange(*f.train, dtype=np.int64),
            np.arange(*f.test, dtype=np.int64),
            k,
        )
        for f in walk_forward_folds(
            n_bars, folds, train, anchored=anchored, purge=cut, embargo=embargo
        )
    ]


@dataclass(frozen=True)
class Scores:
    """Out-of-sample scores of probabilities against outcomes."""

    rows: int
    accuracy: float  # share of rows whose side (p > 0.5 means up) was right
    log_loss: float
    brier: float
    confident_rows: int  # rows with |p - 0.5| >= the confidence margin
    confident_hit_rate: float  # accuracy on those rows (NaN if none)


def score_predictions(proba: F8, up: B1, confidence: float = 0.05) -> Scores:
    """Return accuracy, log-loss, Brier score and the hit rate of confident predictions.

    >>> s = score_predictions(np.array([0.9, 0.6, 0.2, 0.5]), np.array([True, False, False, True]))
    >>> s.accuracy, s.confident_rows, round(s.confident_hit_rate, 4), round(s.brier, 4)
    (0.5, 3, 0.6667, 0.165)
    """
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(up, dtype=np.bool_)
    if p.size == 0:
        return Scores(0, math.nan, math.nan, math.nan, 0, math.nan)
    hit = (p > 0.5) == y
    clipped = np.clip(p, _CLIP, 1.0 - _CLIP)
    loss = -np.where(y, np.log(clipped), np.log1p(-clipped))
    sure = np.abs(p - 0.5) >= confidence
    return Scores(
        rows=int(p.size),
        accuracy=float(hit.mean()),
        log_loss=float(loss.mean()),
        brier=float(np.mean(np.square(p - y))),
        confident_rows=int(sure.sum()),
        confident_hit_rate=float(hit[sure].mean()) if sure.any() else math.nan,
    )


def binomial_se(accuracy: float, rows: float) -> float:
    """Return the binomial standard error sqrt(p (1 - p) / rows) (NaN without rows).

    >>> binomial_se(0.5, 100)
    0.05
    """
    return math.sqrt(accuracy * (1.0 - accuracy) / rows) if rows > 0 else math.nan


@dataclass(frozen=True)
class FoldScore:
    """One fold's size and out-of-sample scores."""

    number: int
    train_rows: int
    scores: Scores


@dataclass(frozen=True)
class CVReport:
    """Per-fold and pooled out-of-sample scores, and the out-of-sample probability per bar."""

    folds: tuple[FoldScore, ...]
    pooled: Scores
    accuracy_se: float  # binomial, over rows / horizon effective rows (see the module)
    horizon: int
    proba: F8  # P(up) where a fold scored the bar, NaN elsewhere

    @property
    def accuracy(self) -> float:
        """Return the pooled out-of-sample accuracy."""
        return self.pooled.accuracy

    @property
    def rows(self) -> int:
        """Return the number of scored out-of-sample rows."""
        return self.pooled.rows

    def z_score(self) -> float:
        """Return how many standard errors the pooled accuracy lies above 50%."""
        return (self.accuracy - 0.5) / self.accuracy_se


def run_cv(
    labels: ForwardLabels,
    eligible: B1,
    fit_predict: FitPredict,
    folds: list[PurgedFold],
    confidence: float = 0.05,
) -> CVReport:
    """Fit and score every fold on its usable rows; pool the out-of-sample scores.

    A row is usable where `eligible` (its inputs are defined) and its label is known and not
    flat; training and test rows are the fold's bar positions that are usable.
    """
    usable = labels.usable() & np.asarray(eligible, dtype=np.bool_)
    up = labels.up()
    proba = np.full(usable.size, math.nan)
    scored: list[FoldScore] = []
    for fold in folds:
        if fold.last_label_bar() >= (fold.test[0] if fold.test.size else usable.size):
            raise UserInputError(f"fold {fold.number}: training labels reach into its test span")
        train_rows = fold.train[usable[fold.train]]
        test_rows = fold.test[usable[fold.test]]
        if test_rows.size:
            proba[test_rows] = fit_predict(train_rows, test_rows)
        scored.append(
            FoldScore(fold.number, int(train_rows.size), _scores(proba, up, test_rows, confidence))
        )
    rows = np.flatnonzero(np.isfinite(proba))
    pooled = _scores(proba, up, rows, confidence)
    se = binomial_se(pooled.accuracy, pooled.rows / labels.horizon)
    return CVReport(tuple(scored), pooled, se, labels.horizon, proba)


def _scores(proba: F8, up: B1, rows: I8, confidence: float) -> Scores:
    """Return the scores of the given rows' finite probabilities."""
    p = proba[rows]
    ok = np.isfinite(p)
    return score_predictions(p[ok], up[rows][ok], confidence)

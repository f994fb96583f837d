"""The classifiers a factor pipeline fits: a weighted factor composite and two sklearn pipelines.

Each takes factor rows X and targets y (True where the forward return is up), learns everything
it needs from those rows only (standardisation statistics included) and returns P(up) for new
rows. Every random choice is seeded. scikit-learn is imported on the first fit (it takes
seconds to import), so reading factors never waits for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.errors import UserInputError

__all__ = ["Classifier", "CompositeModel", "ModelKind", "ModelParams", "fit_classifier"]

F8 = npt.NDArray[np.float64]
B1 = npt.NDArray[np.bool_]
ModelKind = Literal["composite", "logistic", "gbm"]


@dataclass(frozen=True)
class ModelParams:
    """What a model is fitted with: its seed and the estimators' settings."""

    seed: int = 0
    c: float = 1.0  # inverse L2 strength of the logistic fits (and the composite's calibration)
    gbm_max_iter: int = 100
    gbm_learning_rate: float = 0.05
    gbm_max_depth: int = 3
    gbm_min_samples_leaf: int = 50


class Classifier(Protocol):
    """A fitted model: P(up) for factor rows."""

    def up_probability(self, x: F8) -> F8:
        """Return P(up) for each row of x."""
        ...


class CompositeModel:
    """A weighted sum of standardised factors, turned into P(up) by a one-feature logistic fit.

    Means and standard deviations come from the training rows. Weights are given (fixed) or
    fitted as each standardised factor's correlation with the signed outcome (+1 up, -1 down)
    on the training rows; they are scaled so that their absolute values sum to 1.
    """

    def __init__(self, weights: F8 | None = None, seed: int = 0, c: float = 1.0) -> None:
        self.fixed = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.seed = seed
        self.c = c
        self.mean = np.zeros(0)
        self.scale = np.ones(0)
        self.weights = np.zeros(0)
        self.calibration: Any = None

    def fit(self, x: F8, up: B1) -> CompositeModel:
        """Learn standardisation, weights (unless fixed) and the score's calibration."""
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale = np.where(std > 0, std, 1.0)
        z = (x - self.mean) / self.scale
        raw = self.fixed if self.fixed is not None else _correlations(z, up)
        total = float(np.abs(raw).sum())
        self.weights = raw / total if total > 0 else raw
        self.calibration = _logistic(self.c, self.seed)
        self.calibration.fit(self.score(x)[:, None], up)
        return self

    def score(self, x: F8) -> F8:
        """Return the composite score: the weighted sum of the standardised factors."""
        return np.asarray(((x - self.mean) / self.scale) @ self.weights, dtype=np.float64)

    def up_probability(self, x: F8) -> F8:
        """Return P(up) for each row of x."""
        return _column_up(self.calibration, self.score(x)[:, None])


class SklearnModel:
    """An sklearn classifier pipeline (scaling + model) seen through `Classifier`."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def fit(self, x: F8, up: B1) -> SklearnModel:
        """Fit the pipeline on the rows."""
        self.pipeline.fit(x, up)
        return self

    def up_probability(self, x: F8) -> F8:
        """Return P(up) for each row of x."""
        return _column_up(self.pipeline, x)


def fit_classifier(
    kind: ModelKind, x: F8, up: B1, params: ModelParams, weights: F8 | None = None
) -> Classifier:
    """Fit a model of the given kind on rows x with outcomes up (weights: the composite's)."""
    outcomes = np.unique(up)
    if outcomes.size < 2:
        raise UserInputError(
            f"the training rows hold only one outcome ({'up' if outcomes.any() else 'down'}, "
            f"{up.size} rows): use more bars or a shorter warm-up"
        )
    if kind == "composite":
        return CompositeModel(weights, params.seed, params.c).fit(x, up)
    from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]
    from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    model: Any
    if kind == "logistic":
        model = _logistic(params.c, params.seed)
    elif kind == "gbm":
        model = HistGradientBoostingClassifier(
            max_iter=params.gbm_max_iter,
            learning_rate=params.gbm_learning_rate,
            max_depth=params.gbm_max_depth,
            min_samples_leaf=params.gbm_min_samples_leaf,
            early_stopping=False,
            random_state=params.seed,
        )
    else:
        raise UserInputError(f"unknown model kind {kind!r}; use composite, logistic or gbm")
    return SklearnModel(Pipeline([("scale", StandardScaler()), ("model", model)])).fit(x, up)


def _logistic(c: float, seed: int) -> Any:
    """Return an unfitted L2-penalised logistic regression."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    return LogisticRegression(C=c, max_iter=1000, random_state=seed)


def _correlations(z: F8, up: B1) -> F8:
    """Return each standardised column's correlation with the signed outcome (0 if constant)."""
    signed = np.where(up, 1.0, -1.0)
    centred = signed - signed.mean()
    spread = float(np.sqrt(np.mean(np.square(centred))))
    column_std = z.std(axis=0)
    if spread == 0:
        return np.zeros(z.shape[1])
    cov = (z - z.mean(axis=0)).T @ centred / z.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(column_std > 0, cov / (column_std * spread), 0.0)
    return np.asarray(corr, dtype=np.float64)


def _column_up(model: Any, x: F8 | Sequence[Any]) -> F8:
    """Return the probability column of the class True from a fitted sklearn classifier."""
    classes = list(model.classes_)
    return np.asarray(model.predict_proba(x)[:, classes.index(True)], dtype=np.float64)

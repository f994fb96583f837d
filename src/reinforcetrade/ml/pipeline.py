"""`FactorPipeline`: factors in, P(the next k bars' return is positive) out, with honest CV.

The pipeline computes its factors (`ml.factors`, causal) and, for fitting only, the k-bar
forward labels (`ml.labels`, the one place that looks ahead). Rows whose factors are still
warming up or whose label is unknown or flat are dropped, never filled in. A model is fitted on
the training rows alone, standardisation included, and every random choice is seeded, so the
same bars and config give the same probabilities bit for bit. With `router`, one model is
fitted per volatility regime (the environment agent's classification) that has enough training
rows and both outcomes; other bars use the global model.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pydantic import Field, ValidationError, field_validator, model_validator

from reinforcetrade.config.sections import EnvironmentAgentConfig, Section
from reinforcetrade.core.codes import VolRegime
from reinforcetrade.core.errors import ConfigError, UserInputError
from reinforcetrade.core.files import atomic_write_bytes
from reinforcetrade.data.bars import Bars
from reinforcetrade.ml.cv import CVReport, Scores, purged_folds, run_cv, score_predictions
from reinforcetrade.ml.factors import (
    DEFAULT_FACTORS,
    FactorMatrix,
    check_factor_names,
    factor_matrix,
    volatility_regime,
)
from reinforcetrade.ml.labels import ForwardLabels, forward_return_sign
from reinforcetrade.ml.models import Classifier, ModelKind, ModelParams, fit_classifier

__all__ = ["FactorPipeline", "PipelineConfig"]

F8 = npt.NDArray[np.float64]
I1 = npt.NDArray[np.int8]
I8 = npt.NDArray[np.int64]

_FORMAT: Final[str] = "reinforcetrade.ml.FactorPipeline/1"


class PipelineConfig(Section):
    """What a factor pipeline reads, predicts and fits with."""

    factors: tuple[str, ...] = DEFAULT_FACTORS
    horizon: int = Field(5, ge=1, description="bars ahead whose return sign is predicted")
    model: ModelKind = "logistic"
    weights: dict[str, float] | None = Field(
        None, description="composite only: fixed weight per factor (others 0); None fits them"
    )
    flat: float = Field(0.0, ge=0, description="|forward return| up to this is flat: not fitted")
    router: bool = Field(False, description="one model per volatility regime")
    min_regime_rows: int = Field(200, ge=2, description="fewer training rows: the global model")
    regime: EnvironmentAgentConfig = EnvironmentAgentConfig()
    c: float = Field(1.0, gt=0, description="inverse L2 strength of the logistic fits")
    gbm_max_iter: int = Field(100, ge=1)
    gbm_learning_rate: float = Field(0.05, gt=0, le=1)
    gbm_max_depth: int = Field(3, ge=1)
    gbm_min_samples_leaf: int = Field(50, ge=1)
    seed: int = Field(0, ge=0)

    @field_validator("factors")
    @classmethod
    def _registered(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        """Refuse unknown or repeated factor names."""
        try:
            return check_factor_names(names)
        except UserInputError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _weights_fit(self) -> PipelineConfig:
        """Refuse weights for another model kind or for factors not read."""
        if self.weights is None:
            return self
        if self.model != "composite":
            raise ValueError(f"weights apply to the composite model only, not to {self.model!r}")
        unknown = sorted(set(self.weights) - set(self.factors))
        if unknown:
            raise ValueError(f"weights name factors the pipeline does not read: {unknown}")
        return self

    def model_params(self) -> ModelParams:
        """Return the settings the models are fitted with."""
        return ModelParams(
            self.seed,
            self.c,
            self.gbm_max_iter,
            self.gbm_learning_rate,
            self.gbm_max_depth,
            self.gbm_min_samples_leaf,
        )


@dataclass(frozen=True)
class _Inputs:
    """Everything fitting and predicting read from one series of bars."""

    factors: FactorMatrix
    labels: ForwardLabels
    regimes: I1  # VolRegime codes (-1 unknown); all -1 without a router


class FactorPipeline:
    """Predicts P(next-k-bar return > 0) per bar from causal factors (see the module docstring).

    >>> from reinforcetrade.data import generate_ohlcv
    >>> bars = Bars.from_frame(generate_ohlcv(bars=600, seed=3))
    >>> p = FactorPipeline(model="logistic", horizon=3).fit(bars).predict_proba(bars)
    >>> bool(np.isnan(p[:49]).all()), bool(((p[49:] > 0) & (p[49:] < 1)).all())
    (True, True)
    """

    def __init__(self, config: PipelineConfig | None = None, **changes: Any) -> None:
        base = config or PipelineConfig()
        try:
            self.config = (
                PipelineConfig.model_validate(base.model_dump() | changes) if changes else base
            )
        except ValidationError as exc:
            raise ConfigError(f"bad pipeline settings: {exc}") from None
        self._global: Classifier | None = None
        self._by_regime: dict[int, Classifier] = {}

    @property
    def routed_regimes(self) -> tuple[int, ...]:
        """Return the volatility regimes that have a model of their own (fitted, router on)."""
        return tuple(sorted(self._by_regime))

    def fit(self, bars: Bars) -> FactorPipeline:
        """Fit on every usable bar: complete factors, a known label that is not flat."""
        inputs = self._inputs(bars)
        rows = np.flatnonzero(inputs.labels.usable() & inputs.factors.complete())
        if rows.size == 0:
            raise UserInputError(
                f"no bar of {len(bars)} can be fitted: the factors warm up over "
                f"{inputs.factors.warmup} bars and the last {self.config.horizon} have no label"
            )
        self._fit_rows(inputs, rows)
        return self

    def predict_proba(self, bars: Bars) -> F8:
        """Return P(the return over the next k bars is positive) per bar, NaN in warm-up."""
        inputs = self._inputs(bars)
        out = np.full(len(bars), math.nan)
        rows = np.flatnonzero(inputs.factors.complete())
        out[rows] = self._predict_rows(inputs, rows)
        return out

    def cross_validate(
        self,
        bars: Bars,
        folds: int = 5,
        train: float = 0.7,
        *,
        purge: int | None = None,
        embargo: int = 0,
        anchored: bool = False,
        confidence: float = 0.05,
    ) -> CVReport:
        """Return purged walk-forward out-of-sample scores of this configuration on the bars.

        Each fold fits a fresh pipeline of this config on its training rows only; `purge`
        (default: the horizon) may not be shorter than the horizon. This pipeline stays as it is.
        """
        inputs = self._inputs(bars)
        splits = purged_folds(
            len(bars),
            self.config.horizon,
            folds,
            train,
            purge=purge,
            embargo=embargo,
            anchored=anchored,
        )

        def fit_predict(train_rows: I8, test_rows: I8) -> F8:
            """Fit a fresh pipeline on the training rows; return its test probabilities."""
            fold = FactorPipeline(self.config)
            fold._fit_rows(inputs, train_rows)
            return fold._predict_rows(inputs, test_rows)

        return run_cv(inputs.labels, inputs.factors.complete(), fit_predict, splits, confidence)

    def score(self, bars: Bars, rows: I8, confidence: float = 0.05) -> Scores:
        """Return this fitted pipeline's out-of-sample scores on the usable ones of `rows`."""
        inputs = self._inputs(bars)
        usable = rows[(inputs.labels.usable() & inputs.factors.complete())[rows]]
        proba = self._predict_rows(inputs, usable)
        return score_predictions(proba, inputs.labels.up()[usable], confidence)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted pipeline to `path` (pickle, written atomically) and return the path."""
        model = self._fitted()
        payload = {
            "format": _FORMAT,
            "config": self.config.model_dump(mode="json"),
            "global": model,
            "by_regime": dict(self._by_regime),
        }
        return atomic_write_bytes(path, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FactorPipeline:
        """Read a pipeline that `save` wrote. Only load files you trust: pickle runs code."""
        payload = pickle.loads(Path(path).read_bytes())  # noqa: S301 - our own format, trusted files only
        if not isinstance(payload, Mapping) or payload.get("format") != _FORMAT:
            raise UserInputError(f"{path}: not a saved FactorPipeline")
        pipeline = cls(PipelineConfig.model_validate(payload["config"]))
        pipeline._global = payload["global"]
        pipeline._by_regime = dict(payload["by_regime"])
        return pipeline

    # --- internals -----------------------------------------------------------------------------

    def _inputs(self, bars: Bars) -> _Inputs:
        """Return the factors, labels and (with a router) regime codes of the bars."""
        cfg = self.config
        regimes = (
            volatility_regime(bars, cfg.regime)
            if cfg.router
            else np.full(len(bars), -1, dtype=np.int8)
        )
        return _Inputs(
            factor_matrix(bars, cfg.factors),
            forward_return_sign(bars.close, cfg.horizon, cfg.flat),
            regimes,
        )

    def _weights(self) -> F8 | None:
        """Return the composite's fixed weights in factor order (None: fitted)."""
        given = self.config.weights
        if given is None:
            return None
        return np.array([given.get(name, 0.0) for name in self.config.factors])

    def _fit(self, inputs: _Inputs, rows: I8) -> Classifier:
        """Fit one model of the configured kind on the rows."""
        up = inputs.labels.up()[rows]
        x = inputs.factors.values[rows]
        cfg = self.config
        return fit_classifier(cfg.model, x, up, cfg.model_params(), self._weights())

    def _fit_rows(self, inputs: _Inputs, rows: I8) -> None:
        """Fit the global model and, with a router, each regime's that has enough rows."""
        self._global = self._fit(inputs, rows)
        self._by_regime = {}
        if not self.config.router:
            return
        up = inputs.labels.up()
        for regime in VolRegime:
            own = rows[inputs.regimes[rows] == regime]
            both = 0 < int(up[own].sum()) < own.size
            if own.size >= self.config.min_regime_rows and both:
                self._by_regime[int(regime)] = self._fit(inputs, own)

    def _predict_rows(self, inputs: _Inputs, rows: I8) -> F8:
        """Return P(up) for rows with complete factors: their regime's model, else the global."""
        model = self._fitted()
        x = inputs.factors.values[rows]
        out = model.up_probability(x) if rows.size else np.zeros(0)
        codes = inputs.regimes[rows]
        for regime, own in self._by_regime.items():
            mine = codes == regime
            if mine.any():
                out[mine] = own.up_probability(x[mine])
        return out

    def _fitted(self) -> Classifier:
        """Return the global model, or raise if the pipeline has not been fitted."""
        if self._global is None:
            raise UserInputError("the pipeline is not fitted yet: call fit(bars) first")
        return self._global

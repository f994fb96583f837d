"""ML factor engine: causal factors, forward labels, purged walk-forward CV, factor pipelines."""

from __future__ import annotations

from reinforcetrade.ml.cv import CVReport, FoldScore, PurgedFold, Scores, purged_folds
from reinforcetrade.ml.factors import (
    DEFAULT_FACTORS,
    DEFAULT_REGIME_WEIGHTS,
    FACTORS,
    UNKNOWN_REGIME,
    FactorMatrix,
    FactorSpec,
    factor_matrix,
    regime_weight,
    volatility_regime,
)
from reinforcetrade.ml.labels import ForwardLabels, forward_return, forward_return_sign
from reinforcetrade.ml.pipeline import FactorPipeline, PipelineConfig

__all__ = [
    "DEFAULT_FACTORS",
    "DEFAULT_REGIME_WEIGHTS",
    "FACTORS",
    "UNKNOWN_REGIME",
    "CVReport",
    "FactorMatrix",
    "FactorPipeline",
    "FactorSpec",
    "FoldScore",
    "ForwardLabels",
    "PipelineConfig",
    "PurgedFold",
    "Scores",
    "factor_matrix",
    "forward_return",
    "forward_return_sign",
    "purged_folds",
    "regime_weight",
    "volatility_regime",
]

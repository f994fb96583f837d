"""FactorPipeline: finds a planted factor out of sample, finds nothing in noise, never leaks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import reinforcetrade.ml.pipeline as pipeline_module
from ml.markets import planted_bars
from reinforcetrade.config.sections import EnvironmentAgentConfig
from reinforcetrade.core.codes import VolRegime
from reinforcetrade.core.errors import ConfigError, UserInputError
from reinforcetrade.data.bars import Bars
from reinforcetrade.ml import FactorMatrix, FactorPipeline, PipelineConfig, forward_return
from reinforcetrade.ml.cv import CVReport
from reinforcetrade.ml.factors import factor_matrix
from reinforcetrade.ml.labels import forward_return_sign

KINDS = ["composite", "logistic", "gbm"]
K = 3  # label horizon
PLANTED = planted_bars(1, n=4_000, strength=0.4)
NOISE = planted_bars(2, n=4_000, strength=0.0)
FLIPPING = planted_bars(3, n=4_000, strength=0.5, flip_by_volatility=True)
FAST_REGIMES = EnvironmentAgentConfig(volatility_window=10, volatility_history=200)
I8 = npt.NDArray[np.int64]


def _cv(bars: Bars, **config: Any) -> CVReport:
    return FactorPipeline(horizon=K, **config).cross_validate(bars, folds=5, train=0.7)


@pytest.mark.parametrize("kind", KINDS)
def test_planted_factor_is_found_out_of_sample(kind: str) -> None:
    report = _cv(PLANTED, model=kind)
    assert report.rows > 2_500
    assert report.accuracy > 0.55
    assert report.z_score() > 5.0, report  # several (conservative) standard errors above 50%
    assert all(f.scores.accuracy > 0.5 for f in report.folds)
    assert report.pooled.brier < 0.25  # better calibrated than a coin


@pytest.mark.parametrize("kind", KINDS)
def test_noise_is_not_predictable(kind: str) -> None:
    report = _cv(NOISE, model=kind)
    assert report.rows > 2_500
    assert abs(report.z_score()) < 3.0, report


@pytest.mark.parametrize("kind", KINDS)
def test_router_fits_one_model_per_regime_and_beats_the_global_model(kind: str) -> None:
    # close location alone: the planted effect flips with volatility, so one model sees ~nothing
    only = ("close_location",)
    flat = _cv(FLIPPING, model=kind, factors=only)
    routed = _cv(FLIPPING, model=kind, factors=only, router=True, regime=FAST_REGIMES)
    assert abs(flat.z_score()) < 3.0, flat
    assert routed.accuracy > 0.55
    assert routed.accuracy > flat.accuracy + 4 * routed.accuracy_se, (flat, routed)
    fitted = FactorPipeline(model=kind, horizon=K, router=True, regime=FAST_REGIMES)
    assert {VolRegime.LOW, VolRegime.HIGH} <= set(fitted.fit(FLIPPING).routed_regimes)


def test_router_falls_back_to_the_global_model_for_thin_regimes() -> None:
    routed = FactorPipeline(horizon=K, router=True, regime=FAST_REGIMES, min_regime_rows=10**6)
    plain = FactorPipeline(horizon=K)
    routed.fit(FLIPPING)
    assert routed.routed_regimes == ()
    np.testing.assert_array_equal(
        routed.predict_proba(FLIPPING), plain.fit(FLIPPING).predict_proba(FLIPPING)
    )


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_gives_the_same_probabilities(kind: str) -> None:
    bars = PLANTED.head(1_500)
    first = FactorPipeline(model=kind, horizon=K, seed=5).fit(bars).predict_proba(bars)
    second = FactorPipeline(model=kind, horizon=K, seed=5).fit(bars).predict_proba(bars)
    assert np.array_equal(first, second, equal_nan=True)


@pytest.mark.parametrize("kind", KINDS)
def test_probabilities_are_nan_in_warmup_then_valid_and_causal(kind: str) -> None:
    bars = PLANTED.head(1_200)
    fitted = FactorPipeline(model=kind, horizon=K).fit(bars)
    p = fitted.predict_proba(bars)
    warmup = factor_matrix(bars).warmup
    assert np.isnan(p[:warmup]).all()
    assert ((p[warmup:] > 0) & (p[warmup:] < 1)).all()
    for t in (warmup, 700, 1_199):
        head = fitted.predict_proba(bars.head(t + 1))
        assert head[t] == pytest.approx(p[t], rel=1e-12, abs=1e-15)


def test_a_leaking_feature_fits_perfectly_yet_cv_keeps_every_training_label_out_of_the_test_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bars = NOISE.head(2_000)
    k = 4
    future = forward_return(bars.close, k)  # the label itself, offered as a "factor"

    def leaky(b: Bars, names: object = None) -> FactorMatrix:
        return FactorMatrix(future[: len(b), None].copy(), ("future_return",), 0)

    monkeypatch.setattr(pipeline_module, "factor_matrix", leaky)
    pipeline = FactorPipeline(horizon=k, model="logistic")
    labels = forward_return_sign(bars.close, k)
    usable = labels.usable()
    in_sample = pipeline.fit(bars).predict_proba(bars)[usable] > 0.5
    assert np.mean(in_sample == labels.up()[usable]) > 0.99

    calls: list[tuple[str, I8]] = []
    fit_rows, predict_rows = FactorPipeline._fit_rows, FactorPipeline._predict_rows

    def record_fit(self: FactorPipeline, inputs: object, rows: I8) -> None:
        calls.append(("train", rows))
        fit_rows(self, inputs, rows)  # type: ignore[arg-type]

    def record_predict(self: FactorPipeline, inputs: object, rows: I8) -> npt.NDArray[np.float64]:
        calls.append(("test", rows))
        return predict_rows(self, inputs, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(FactorPipeline, "_fit_rows", record_fit)
    monkeypatch.setattr(FactorPipeline, "_predict_rows", record_predict)
    report = pipeline.cross_validate(bars, folds=4, embargo=2)
    assert [kind for kind, _ in calls] == ["train", "test"] * 4
    for (_, train), (_, test) in zip(calls[::2], calls[1::2], strict=True):
        assert not set(train.tolist()) & set(test.tolist())
        assert train.max() + k < test.min()  # every training label window ends before the test
    assert report.rows == sum(rows.size for kind, rows in calls if kind == "test")


def test_purge_shorter_than_the_horizon_is_refused() -> None:
    with pytest.raises(UserInputError, match="purge=2 is shorter than the label horizon k=5"):
        FactorPipeline(horizon=5).cross_validate(PLANTED, purge=2)


def test_fixed_composite_weights_rank_bars_by_that_factor_alone() -> None:
    bars = PLANTED.head(2_000)
    fitted = FactorPipeline(model="composite", horizon=K, weights={"close_location": 1.0})
    p = fitted.fit(bars).predict_proba(bars)
    location = factor_matrix(bars).column("close_location")
    ok = np.isfinite(p)
    order = np.argsort(location[ok], kind="stable")
    assert (np.diff(p[ok][order]) >= 0).all()  # planted: a higher close location is more bullish
    assert p[ok].max() - p[ok].min() > 0.1


def test_saved_pipeline_predicts_the_same(tmp_path: Path) -> None:
    bars = PLANTED.head(1_500)
    fitted = FactorPipeline(model="gbm", horizon=K, router=True, regime=FAST_REGIMES).fit(bars)
    path = fitted.save(tmp_path / "models" / "pipeline.pkl")
    loaded = FactorPipeline.load(path)
    assert loaded.config == fitted.config
    assert loaded.routed_regimes == fitted.routed_regimes
    assert np.array_equal(loaded.predict_proba(bars), fitted.predict_proba(bars), equal_nan=True)
    (tmp_path / "other.pkl").write_bytes(b"\x80\x05N.")  # a pickled None
    with pytest.raises(UserInputError, match="not a saved FactorPipeline"):
        FactorPipeline.load(tmp_path / "other.pkl")


def test_config_refuses_what_it_cannot_honour() -> None:
    with pytest.raises(ValueError, match="composite model only"):
        PipelineConfig(model="logistic", weights={"rsi": 1.0})
    with pytest.raises(ValueError, match="does not read"):
        PipelineConfig(model="composite", factors=("rsi",), weights={"roc": 1.0})
    with pytest.raises(ValueError, match="unknown factor 'momentum'"):
        PipelineConfig(factors=("momentum",))
    with pytest.raises(ConfigError, match="learning_rate"):
        FactorPipeline(horizon=3, learning_rate=0.1)
    with pytest.raises(ConfigError, match="horizon"):
        FactorPipeline(horizon=0)


def test_unfitted_or_unfittable_pipelines_say_so() -> None:
    with pytest.raises(UserInputError, match="not fitted"):
        FactorPipeline().predict_proba(PLANTED.head(100))
    with pytest.raises(UserInputError, match="no bar of 40 can be fitted"):
        FactorPipeline().fit(PLANTED.head(40))

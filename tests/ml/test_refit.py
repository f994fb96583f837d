"""A saved factor pipeline refitted on the latest bars replaces the file only when it wins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.markets import planted_bars
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data.bars import Bars
from reinforcetrade.ml import FactorPipeline
from reinforcetrade.ml.refit import refit_factors

PLANTED = planted_bars(1, n=4_000, strength=0.4)
NOISE = planted_bars(2, n=4_000, strength=0.0)


def saved(tmp_path: Path, bars: Bars) -> Path:
    path = tmp_path / "factor.pkl"
    FactorPipeline(horizon=3, model="logistic").fit(bars).save(path)
    return path


def test_a_refit_that_finds_the_new_edge_replaces_a_pipeline_fitted_on_noise(
    tmp_path: Path,
) -> None:
    path = saved(tmp_path, NOISE)
    before = path.read_bytes()
    refit = refit_factors(PLANTED, path, folds=3, train=0.7)
    assert refit.promoted, refit.reason
    assert refit.challenger_accuracy > refit.champion_accuracy + 0.01
    assert refit.z > 2.0
    assert (tmp_path / "factor.pkl.prev").read_bytes() == before
    expected = FactorPipeline(horizon=3, model="logistic").fit(PLANTED).predict_proba(PLANTED)
    np.testing.assert_array_equal(FactorPipeline.load(path).predict_proba(PLANTED), expected)


@pytest.mark.parametrize(("fitted_on", "latest"), [("planted", "planted"), ("noise", "noise")])
def test_a_refit_that_is_not_better_leaves_the_file_alone(
    tmp_path: Path, fitted_on: str, latest: str
) -> None:
    markets = {"planted": PLANTED, "noise": NOISE}
    path = saved(tmp_path, markets[fitted_on])
    before = path.read_bytes()
    refit = refit_factors(markets[latest], path, folds=3, train=0.7)
    assert not refit.promoted
    assert "the saved one stays" in refit.reason
    assert path.read_bytes() == before
    assert not (tmp_path / "factor.pkl.prev").exists()
    assert refit.to_dict()["rows"] == refit.rows > 1_000


def test_no_saved_pipeline_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no saved factor pipeline"):
        refit_factors(PLANTED, tmp_path / "missing.pkl", folds=3, train=0.7)

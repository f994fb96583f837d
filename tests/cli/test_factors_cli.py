"""`reinforcetrade factors`: list, cross-validate and fit a pipeline, then trade it as an agent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cli_support import cli
from reinforcetrade.ml import FACTORS, FactorPipeline


def test_factors_list_names_every_factor(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "factors", "list")
    assert code == 0, err
    for name, spec in FACTORS.items():
        assert name in out
        assert str(spec.warmup) in out


def test_fit_reports_out_of_sample_folds_and_the_model_backs_the_factor_agent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = tmp_path / "factor.pkl"
    code, out, err = cli(capsys, "factors", "fit", "--symbol", "BTC/USDT", "--horizon", "3",
                         "--folds", "3", "--model", "gbm", "--out", str(model))  # fmt: skip
    assert code == 0, err
    assert "out of sample" in out
    assert "pooled accuracy" in out
    assert "z =" in out
    pipeline = FactorPipeline.load(model)
    assert (pipeline.config.model, pipeline.config.horizon) == ("gbm", 3)
    config = tmp_path / "config.yaml"
    config.write_text(f"agents:\n  factor:\n    enabled: true\n    model: {model}\n")
    code, _, err = cli(capsys, "--config", str(config), "backtest", "--synthetic", "--symbol",
                       "BTC/USDT", "--out", str(tmp_path / "bt"))  # fmt: skip
    assert code == 0, err
    decisions = pd.read_parquet(tmp_path / "bt" / "decisions.parquet")
    assert {"signal_factor", "confidence_factor"} <= set(decisions.columns)
    assert (decisions["confidence_factor"] > 0).any()  # it voted
    code, _, err = cli(capsys, "factors", "fit", "--model", "nonsense")
    assert code == 2
    assert "model" in err

"""Backtest results the report tests render: two symbols, no trades, and one with an RL model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reinforcetrade.backtesting import BacktestResult, EnhancedBacktester
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.data import generate_market, make_ohlcv
from reinforcetrade.reports import ReportGenerator
from reinforcetrade.strategies import MultiAgentStrategy
from rl_support import fast_settings, market, train

#: 2026-01-01T00:00:00Z: the reports' "generated" stamp in tests
GENERATED_NS = 1_767_225_600_000_000_000


@pytest.fixture(scope="session")
def generator() -> ReportGenerator:
    """A report generator on a fixed clock (reports are then byte-for-byte reproducible)."""
    return ReportGenerator(clock=FixedClock(GENERATED_NS))


@pytest.fixture(scope="session")
def two_symbols() -> BacktestResult:
    """The multi-agent strategy on two correlated synthetic symbols, 3,000 hourly bars."""
    frames = generate_market(["BTC/USDT", "ETH/USDT"], bars=3_000, seed=11).frames
    return EnhancedBacktester(MultiAgentStrategy(use_rl=False)).run(frames)


@pytest.fixture(scope="session")
def report(
    two_symbols: BacktestResult,
    generator: ReportGenerator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The two-symbol result's report folder (generated once; tests only read it)."""
    return generator.generate_full_report(two_symbols, tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="session")
def flat() -> BacktestResult:
    """A result with no trades: a price that never moves gives the agents nothing to act on."""
    n = 600
    times = np.arange(n, dtype=np.int64) * 3_600_000_000_000 + 1_577_836_800_000_000_000
    price = np.full(n, 100.0)
    frame: pd.DataFrame = make_ohlcv(
        times, price, price, price, price, np.full(n, 1e6), symbol="FLAT/USD", timeframe="1h"
    )
    return EnhancedBacktester(MultiAgentStrategy(use_rl=False)).run(frame)


@pytest.fixture(scope="session")
def with_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[BacktestResult, BacktestResult]:
    """An RL model's training span and a later span, backtested with it in the tower."""
    models = tmp_path_factory.mktemp("models")
    frame = market(bars=2_400, seed=21)
    train_part, test_part = frame.iloc[:1_200], frame.iloc[1_200:]
    record = train(models, steps=512, data=train_part)
    settings = fast_settings(models)
    run = EnhancedBacktester(MultiAgentStrategy(model=record, settings=settings)).run
    return run(train_part), run(test_part)


@pytest.fixture
def saved(two_symbols: BacktestResult, tmp_path: Path) -> Path:
    """The two-symbol result saved to a folder."""
    return two_symbols.save(tmp_path / "result")

"""Chart curves: rolling Sharpe equals the metric on each window, months chain, buy-and-hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reinforcetrade.features.curves import buy_and_hold, monthly_returns, rolling_sharpe
from reinforcetrade.features.performance import returns_from_equity, sharpe_ratio

H = 3_600_000_000_000


@settings(deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 40), st.integers(1, 200))
def test_rolling_sharpe_is_the_sharpe_of_each_window(seed: int, window: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    equity = 100.0 * np.cumprod(1 + rng.normal(0.0005, 0.01, n))
    rolled = rolling_sharpe(equity, window, periods_per_year=365.0)
    assert rolled.shape == equity.shape
    returns = returns_from_equity(equity)
    for i in range(n):
        if i < window:
            assert np.isnan(rolled[i])
        else:
            expected = sharpe_ratio(returns[i - window : i], 365.0)
            assert rolled[i] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_rolling_sharpe_is_causal_and_nan_without_volatility() -> None:
    rng = np.random.default_rng(1)
    equity = 100.0 * np.cumprod(1 + rng.normal(0, 0.01, 300))
    full = rolling_sharpe(equity, 20, 8760.0)
    part = rolling_sharpe(equity[:150], 20, 8760.0)
    np.testing.assert_array_equal(full[:150], part)
    flat = rolling_sharpe(np.full(50, 100.0), 10, 8760.0)
    assert np.isnan(flat).all()
    with pytest.raises(ValueError, match="at least 2"):
        rolling_sharpe(equity, 1, 8760.0)


def test_monthly_returns_chain_to_the_total_return() -> None:
    rng = np.random.default_rng(2)
    times = pd.date_range("2023-11-15", periods=24 * 200, freq="h", tz="UTC").as_unit("ns").asi8
    equity = 1_000.0 * np.cumprod(1 + rng.normal(0, 0.002, times.size))
    table = monthly_returns(equity, times)
    assert table.index.tolist() == [2023, 2024]
    assert [int(m) for m in table.columns] == list(range(1, 13))
    assert np.isnan(table.loc[2023, 1:10]).all()  # no data before November 2023
    months = table.stack().dropna()
    assert len(months) == 8  # 15 Nov 2023 + 200 days: Nov 2023 … Jun 2024
    assert np.prod(1 + months.to_numpy()) - 1 == pytest.approx(equity[-1] / equity[0] - 1)
    assert monthly_returns([], []).empty


def test_buy_and_hold_waits_in_cash_until_a_symbol_starts() -> None:
    close = np.array([[10.0, 11.0, np.nan, 12.0], [np.nan, 5.0, 6.0, 4.0]])
    curve = buy_and_hold(close, 1_000.0)
    # half in the first symbol from bar 0; the other half waits for bar 1, then holds
    assert curve.tolist() == pytest.approx([1_000.0, 1_050.0, 1_150.0, 1_000.0])

"""`save_backtest` stores a real backtest's tables, in bulk, and reads back what it was given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reinforcetrade.backtesting import BacktestResult
from reinforcetrade.storage import Journal, JournalError
from storage.conftest import result_frames, save_kwargs


def test_a_backtest_round_trips(journal: Journal, backtest_result: BacktestResult) -> None:
    result = backtest_result
    run_id = journal.save_backtest(result_frames(result), **save_kwargs(result, "bt-round-trip"))
    run = journal.run(run_id)
    assert run is not None
    assert (run.kind, run.status) == ("backtest", "completed")
    assert run.config_hash == result.config_hash
    assert run.symbols == ["BTC/USDT", "ETH/USDT"]
    assert run.settings is not None
    assert "risk" in run.settings

    decisions = journal.read_table("decisions", run_id=run_id)
    expected = result.decisions
    assert decisions["number"].tolist() == expected.index.tolist()
    assert decisions["time"].tolist() == expected["time"].tolist()
    for column in ("symbol", "action", "regime", "vol_regime", "trend_regime", "reasons"):
        assert decisions[column].tolist() == expected[column].astype(object).tolist(), column
    for column in ("confidence", "size", "qty", "stop", "take_profit", "threshold"):
        np.testing.assert_array_equal(
            decisions[column].to_numpy(dtype=float), expected[column].to_numpy(dtype=float)
        )
    assert decisions["reason_mask"].tolist() == expected["reason_mask"].tolist()

    agents = journal.read_table("decision_agents")
    names = [c.removeprefix("signal_") for c in expected.columns if c.startswith("signal_")]
    assert len(agents) == len(expected) * len(names)
    first = agents[agents["decision_id"] == decisions["id"].iloc[0]].set_index("agent")
    for name in names:
        assert first.loc[name, "signal"] == expected[f"signal_{name}"].iloc[0]
        assert first.loc[name, "weight"] == expected[f"weight_{name}"].iloc[0]

    orders = journal.read_table("orders", run_id=run_id)
    assert len(orders) == len(result.orders)
    assert set(orders["side"]) <= {"buy", "sell"}
    assert set(orders["status"]) <= {
        "filled",
        "partially_filled",
        "expired",
    }
    fills = journal.read_table("fills", run_id=run_id)
    assert len(fills) == len(result.fills)
    assert set(fills["client_order_id"]) <= set(orders["client_order_id"])
    np.testing.assert_allclose(fills["price"], result.fills["price"])
    np.testing.assert_allclose(fills["fee"], result.fills["commission"])
    filled = orders.set_index("client_order_id")["filled_qty"]
    by_order = fills.groupby("client_order_id")["qty"].sum()
    np.testing.assert_allclose(by_order.to_numpy(), filled[by_order.index].to_numpy())

    trades = journal.read_table("trades", run_id=run_id)
    assert len(trades) == len(result.trades)
    np.testing.assert_allclose(trades["pnl"], result.trades["pnl"])
    equity = journal.read_table("equity", run_id=run_id)
    assert len(equity) == len(result.equity)
    np.testing.assert_array_equal(equity["equity"].to_numpy(), result.equity.to_numpy())
    assert equity["time"].tolist() == result.equity.index.tolist()


def test_two_saves_are_two_runs(journal: Journal, backtest_result: BacktestResult) -> None:
    frames = result_frames(backtest_result)
    first = journal.save_backtest(frames, **save_kwargs(backtest_result))
    second = journal.save_backtest(frames, **save_kwargs(backtest_result))
    assert first != second
    assert len(journal.read_table("fills")) == 2 * len(backtest_result.fills)


def test_partial_and_odd_tables(journal: Journal) -> None:
    times = pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC")
    equity = pd.Series([1.0, 2.0, 3.0], index=times, name="equity")
    run_id = journal.save_backtest({"equity": equity, "decisions": pd.DataFrame()}, name="eq")
    assert journal.read_table("equity", run_id=run_id)["equity"].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(JournalError, match="unknown table"):
        journal.save_backtest({"bars": pd.DataFrame()}, name="x")
    with pytest.raises(JournalError, match="needs an 'equity' column"):
        journal.save_backtest({"equity": pd.DataFrame({"cash": [1.0]})}, name="x")
    assert [r for r in journal.read_table("runs")["name"]] == ["eq"]  # failed saves left nothing

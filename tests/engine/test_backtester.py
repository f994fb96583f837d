"""The plain `Backtester`: the peers' all-in convention, parity with backtrader, stops, costs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peers.sma import run_backtrader, run_reference_loop, sma_crossover_signals
from reinforcetrade.backtesting import Backtester
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data import DataLoader, load_ohlcv, make_ohlcv

H = 3_600_000_000_000


def sma_targets(fast: int = 10, slow: int = 50):  # type: ignore[no-untyped-def]
    """The peers' SMA crossover as target positions: 1 after an entry signal, 0 after an exit."""

    def strategy(frame: pd.DataFrame) -> pd.Series:
        entries, exits = sma_crossover_signals(frame["close"].to_numpy(), fast, slow)
        target = np.full(len(frame), np.nan)
        target[entries] = 1.0
        target[exits] = 0.0
        return pd.Series(target, index=frame.index)

    return strategy


def bars(rows: Sequence[Sequence[float]], volume: float = 1e9) -> pd.DataFrame:
    """A tiny hourly frame from (open, high, low, close) rows."""
    o, h, lo, c = (np.array(col, dtype=np.float64) for col in zip(*rows, strict=True))
    return make_ohlcv(
        np.arange(len(rows)) * H,
        o,
        h,
        lo,
        c,
        np.full(len(rows), volume),
        symbol="X",
        timeframe="1h",
    )


def test_all_in_convention_buy_and_hold() -> None:
    frame = bars(
        [(100, 101, 99, 100), (100, 102, 99, 101), (102, 104, 101, 103), (103, 104, 100, 104)]
    )
    result = Backtester(
        lambda f: pd.Series([1.0, np.nan, np.nan, np.nan], index=f.index), commission=0.001
    ).run(frame)
    units = 10_000 / (100 * 1.001)  # decided at bar 0's close, filled at bar 1's open (100)
    assert result.fills["qty"].iloc[0] == pytest.approx(units, rel=1e-15)
    assert result.final_equity == pytest.approx(units * 104, rel=1e-12)  # marked at the last close
    assert result.trades["exit_reason"].iloc[0] == "open"
    assert result.equity.iloc[0] == 10_000


def test_signal_on_last_bar_is_dropped_and_orders_only_on_change() -> None:
    frame = bars([(100, 101, 99, 100)] * 6)
    targets = pd.Series([1.0, 1.0, 1.0, 0.0, 0.0, 1.0], index=frame.index)
    result = Backtester(lambda f: targets, commission=0.0).run(frame)
    assert len(result.fills) == 2  # buy at bar 1, sell at bar 4; the last bar's 1.0 is dropped
    assert list(result.fills["time"]) == [frame.index[1], frame.index[4]]


@pytest.mark.shared_data
def test_sma_parity_with_backtrader_on_real_btc(shared_data: Path) -> None:
    frame = load_ohlcv(shared_data / "btcusdt_1h.csv.gz")
    ours = Backtester(sma_targets(), initial_balance=10_000, commission=0.001).run(frame)
    peer = run_backtrader(frame, 10, 50, commission=0.001, cash=10_000.0)
    theirs = peer.trades
    mine = ours.trades
    assert len(mine) == len(theirs) == 814
    assert (mine["entry_time"].to_numpy() == theirs["entry_time"].to_numpy()).all()
    closed = mine["exit_reason"] != "open"
    assert (mine["exit_time"][closed].to_numpy() == theirs["exit_time"][closed].to_numpy()).all()
    np.testing.assert_allclose(mine["entry_price"], theirs["entry_price"], rtol=1e-12)
    np.testing.assert_allclose(mine["qty"], theirs["qty"], rtol=1e-6)
    np.testing.assert_allclose(mine["pnl"], theirs["pnl"], rtol=1e-6, atol=1e-6)
    assert ours.final_equity == pytest.approx(peer.final_equity, rel=1e-6)


def test_sma_parity_with_the_reference_loop_on_synthetic_data() -> None:
    frame = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=20_000, seed=3)
    ours = Backtester(sma_targets(), commission=0.001).run(frame)
    peer = run_reference_loop(frame, 10, 50, commission=0.001, cash=10_000.0)
    assert len(ours.trades) == len(peer.trades)
    assert ours.final_equity == pytest.approx(peer.final_equity, rel=1e-9)
    assert peer.equity is not None
    np.testing.assert_allclose(ours.equity.to_numpy(), peer.equity.to_numpy(), rtol=1e-9)


def test_stop_loss_gap_fills_at_the_open_and_touch_fills_at_the_stop() -> None:
    rows = [(100, 100, 100, 100), (100, 101, 99, 100), (100, 101, 96, 97), (90, 92, 89, 91)]
    targets = lambda f: pd.Series([1.0, np.nan, np.nan, np.nan], index=f.index)  # noqa: E731
    touched = Backtester(targets, commission=0.0, stop_loss=0.05).run(
        bars([*rows[:2], (100, 101, 94, 96), rows[3]])
    )
    assert touched.trades["exit_reason"].iloc[0] == "stop_loss"
    assert touched.trades["exit_price"].iloc[0] == pytest.approx(
        95.0
    )  # touched intrabar: at the stop
    gapped = Backtester(targets, commission=0.0, stop_loss=0.05).run(bars(rows))
    assert gapped.trades["exit_price"].iloc[0] == pytest.approx(90.0)  # gapped through: at the open


def test_bar_touching_stop_and_take_profit_takes_the_stop() -> None:
    rows = [(100, 100, 100, 100), (100, 100, 100, 100), (100, 111, 94, 100), (100, 100, 100, 100)]
    targets = lambda f: pd.Series([1.0, np.nan, np.nan, np.nan], index=f.index)  # noqa: E731
    result = Backtester(targets, commission=0.0, stop_loss=0.05, take_profit=0.10).run(bars(rows))
    assert result.trades["exit_reason"].iloc[0] == "stop_loss"
    assert result.trades["exit_price"].iloc[0] == pytest.approx(95.0)


def test_slippage_and_commission_are_charged_and_recorded() -> None:
    frame = bars([(100, 101, 99, 100)] * 4)
    targets = pd.Series([1.0, np.nan, 0.0, np.nan], index=frame.index)
    result = Backtester(lambda f: targets, commission=0.001, slippage=0.002).run(frame)
    buy, sell = result.fills.iloc[0], result.fills.iloc[1]
    assert buy["price"] == pytest.approx(100.2)
    assert sell["price"] == pytest.approx(99.8)
    assert buy["slippage"] == pytest.approx(buy["qty"] * 0.2)
    assert result.trades["pnl"].iloc[0] == pytest.approx(
        buy["qty"] * (99.8 - 100.2) - buy["commission"] - sell["commission"]
    )


def test_short_targets_pay_no_borrow_in_the_plain_backtester_and_mirror_longs() -> None:
    frame = bars([(100, 101, 99, 100), (100, 101, 99, 100), (90, 91, 89, 90), (90, 91, 89, 90)])
    short = Backtester(
        lambda f: pd.Series([-1.0, np.nan, 0.0, np.nan], index=f.index), commission=0.0
    ).run(frame)
    assert short.trades["side"].iloc[0] == "short"
    assert short.trades["pnl"].iloc[0] == pytest.approx(10_000 / 100 * 10)


def test_lot_size_rounds_quantities_down() -> None:
    frame = bars([(100, 101, 99, 100)] * 3)
    result = Backtester(
        lambda f: pd.Series([1.0, np.nan, np.nan], index=f.index), commission=0.0, lot_size=1.0
    ).run(frame)
    assert result.fills["qty"].iloc[0] == 100.0


def test_multi_symbol_targets_share_cash() -> None:
    a = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=300, seed=1)
    b = DataLoader().load_synthetic("ETH/USDT", timeframe="1h", bars=300, seed=2)
    half = lambda f: pd.Series(0.5, index=f.index)  # noqa: E731
    result = Backtester(half, commission=0.0).run({"BTC/USDT": a, "ETH/USDT": b})
    assert set(result.trades["symbol"]) == {"BTC/USDT", "ETH/USDT"}
    first_bar = result.exposure.iloc[1]
    assert first_bar["total"] == pytest.approx(first_bar["BTC/USDT"] + first_bar["ETH/USDT"])
    assert first_bar["total"] <= 1.0 + 1e-9


@pytest.mark.parametrize(
    ("returned", "match"),
    [
        (lambda f: pd.Series(2.0, index=f.index), r"\[-1, 1\]"),
        (lambda f: np.ones(3), "one target per bar"),
        (lambda f: pd.Series(np.inf, index=f.index), r"\[-1, 1\]|finite"),
    ],
)
def test_bad_targets_are_refused(returned, match: str) -> None:  # type: ignore[no-untyped-def]
    frame = bars([(100, 101, 99, 100)] * 5)
    with pytest.raises(UserInputError, match=match):
        Backtester(returned).run(frame)


def test_a_strategy_object_with_targets_works_like_a_function() -> None:
    class Crossover:
        def targets(self, frame: pd.DataFrame) -> pd.Series:
            targets: pd.Series = sma_targets()(frame)
            return targets

    frame = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=3_000, seed=4)
    by_object = Backtester(Crossover()).run(frame)
    by_function = Backtester(sma_targets()).run(frame)
    pd.testing.assert_series_equal(by_object.equity, by_function.equity)

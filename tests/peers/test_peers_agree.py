"""The peer runners agree trade for trade: on a hand-made case, on 100k GBM bars, on real BTC/USDT.

Agreement means the same round trips (entry and exit times identical, prices bit-equal), qty and
final equity within 1e-9 relative, pnl within 1e-9 of each trade's notional. backtrader runs
about 13k bars/s, so it gets the first 20k synthetic bars; the others get all 100k.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peers.sma import (
    TRADE_COLUMNS,
    PeerResult,
    _all_in_size,
    gbm_hourly,
    run_backtesting_py,
    run_backtrader,
    run_reference_loop,
    run_vectorbt,
    sma_crossover_signals,
)
from requirements import missing

Runner = Callable[..., PeerResult]
RTOL = 1e-9
SYNTHETIC_BARS = 100_000
BACKTRADER_SYNTHETIC_BARS = 20_000
PEERS: dict[str, Runner] = {
    "vectorbt": run_vectorbt,
    "backtesting.py": run_backtesting_py,
    "backtrader": run_backtrader,
}
ALL: dict[str, Runner] = {"reference loop": run_reference_loop, **PEERS}


def assert_agree(ref: PeerResult, peer: PeerResult, name: str) -> None:
    """Assert `peer` made the same round trips as `ref`, naming the first that differs."""
    a, b = ref.trades, peer.trades
    assert list(b.columns) == list(TRADE_COLUMNS), f"{name}: columns {list(b.columns)}"
    for i in range(min(len(a), len(b))):
        x, y = a.iloc[i], b.iloc[i]
        same = (
            x.entry_time == y.entry_time
            and (x.exit_time == y.exit_time or (pd.isna(x.exit_time) and pd.isna(y.exit_time)))
            and x.entry_price == y.entry_price
            and (
                x.exit_price == y.exit_price or (np.isnan(x.exit_price) and np.isnan(y.exit_price))
            )
            and abs(y.qty - x.qty) <= RTOL * abs(x.qty)
            and abs(y.pnl - x.pnl) <= RTOL * x.qty * x.entry_price
        )
        assert same, f"{name}: trade {i} differs\nreference:\n{x}\n{name}:\n{y}"
    assert len(b) == len(a), f"{name}: {len(b)} round trips, the reference {len(a)}"
    assert b.entry_time.dtype == a.entry_time.dtype
    assert b.exit_time.dtype == a.exit_time.dtype
    assert peer.final_equity == pytest.approx(ref.final_equity, rel=RTOL, abs=0.0), name
    if peer.equity is not None and ref.equity is not None:
        assert peer.equity.index.equals(ref.equity.index), name
        np.testing.assert_allclose(peer.equity, ref.equity, rtol=RTOL, atol=0.0, err_msg=name)


# --- the convention, by hand ----------------------------------------------------------------

# fast=2, slow=4: the signs of SMA2 - SMA4 from bar 3 on are 0 0 + + + - - 0 + + 0 - 0 +, so
# entries at 5 (from a tie), 11 and 16 (the last bar: dropped) and exits at 8 and 14.
CLOSES = [10.0, 10, 10, 10, 10, 11, 12, 11, 10, 10, 11, 12, 12, 11, 12, 11, 13]


def hand_frame(n: int = len(CLOSES)) -> pd.DataFrame:
    """Return bars with those closes, each open 0.25 above the previous close (fills show it)."""
    close = np.array(CLOSES[:n])
    open_ = np.concatenate([[10.0], close[:-1] + 0.25])
    data = {
        "open": open_,
        "high": np.maximum(open_, close) + 1.0,
        "low": np.minimum(open_, close) - 1.0,
        "close": close,
        "volume": np.full(n, 100.0),
    }
    index = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    return pd.DataFrame(data, index=index)


def test_signals_follow_the_stated_definition() -> None:
    entries, exits = sma_crossover_signals(CLOSES, 2, 4)
    assert np.flatnonzero(entries).tolist() == [5, 11, 16]
    assert np.flatnonzero(exits).tolist() == [8, 14]


def test_signals_never_fire_in_the_warm_up() -> None:
    # A trend set before bar `slow` is no crossing: the sign at bar slow - 1 already shows it.
    for closes in (np.linspace(100.0, 200.0, 100), np.linspace(200.0, 100.0, 100)):
        entries, exits = sma_crossover_signals(closes, 10, 50)
        assert not entries.any()
        assert not exits.any()


def test_signals_are_causal_and_match_pandas_away_from_ties() -> None:
    close = gbm_hourly(5_000, seed=7)["close"].to_numpy()
    entries, exits = sma_crossover_signals(close)
    for t in (50, 51, 777, 2_999):
        e, x = sma_crossover_signals(close[: t + 1])
        assert np.array_equal(e, entries[: t + 1])
        assert np.array_equal(x, exits[: t + 1])
    s = pd.Series(close)
    d = (s.rolling(10).mean() - s.rolling(50).mean()).to_numpy()
    clear = np.abs(d) > 1e-9 * close
    both = np.zeros_like(clear)
    both[1:] = clear[1:] & clear[:-1]
    up, down = d > 0, d < 0
    want_entries = np.zeros_like(up)
    want_entries[1:] = up[1:] & ~up[:-1]
    want_exits = np.zeros_like(down)
    want_exits[1:] = down[1:] & ~down[:-1]
    assert both[50:].mean() > 0.99
    assert np.array_equal(entries[both], want_entries[both])
    assert np.array_equal(exits[both], want_exits[both])


@pytest.mark.parametrize(("fast", "slow"), [(0, 5), (5, 5), (10, 3)])
def test_signals_reject_bad_windows(fast: int, slow: int) -> None:
    with pytest.raises(ValueError, match="fast < slow"):
        sma_crossover_signals([1.0, 2.0, 3.0], fast, slow)


def test_signals_reject_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        sma_crossover_signals([1.0, np.nan, 3.0], 1, 2)


def test_all_in_size_passes_backtraders_cash_check_within_a_few_ulps() -> None:
    rng = np.random.default_rng(0)
    for cash, price in zip(rng.uniform(1e2, 1e6, 500), rng.uniform(1e-3, 1e5, 500), strict=True):
        size = _all_in_size(float(cash), float(price), 0.001)
        assert (cash - size * price) - size * 0.001 * price >= 0.0
        assert size == pytest.approx(cash / (price * 1.001), rel=1e-15)


def test_gbm_hourly_is_seeded_valid_ohlcv() -> None:
    f = gbm_hourly(2_000)
    assert f.equals(gbm_hourly(2_000))
    assert not f.equals(gbm_hourly(2_000, seed=1))
    assert f.index.is_monotonic_increasing
    assert (f.index.to_series().diff().dropna() == pd.Timedelta("1h")).all()
    assert isinstance(f.index, pd.DatetimeIndex)
    assert str(f.index.tz) == "UTC"
    assert (f.dtypes == np.float64).all()
    assert (f["high"] >= f[["open", "close"]].max(axis=1)).all()
    assert (f["low"] <= f[["open", "close"]].min(axis=1)).all()
    assert (f["low"] > 0).all()
    assert np.array_equal(f["open"].to_numpy()[1:], f["close"].to_numpy()[:-1])


def test_gbm_hourly_switches_between_three_volatilities() -> None:
    r = np.diff(np.log(gbm_hourly(200_000)["close"].to_numpy()))
    daily_vol = pd.Series(r).rolling(24 * 7).std().dropna() * np.sqrt(24 * 365.25)
    assert daily_vol.quantile(0.05) < 0.3
    assert daily_vol.quantile(0.95) > 0.8


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ALL))
def test_each_runner_follows_the_convention_by_hand(name: str) -> None:
    c = 0.001
    f = hand_frame()
    o = f["open"].to_numpy()
    qty1 = 10_000.0 / (o[6] * (1 + c))
    cash1 = qty1 * o[9] * (1 - c)
    qty2 = cash1 / (o[12] * (1 + c))
    result = ALL[name](f, 2, 4)
    t = result.trades
    assert t.entry_time.tolist() == [f.index[6], f.index[12]]  # the last bar's entry is dropped
    assert t.exit_time.tolist() == [f.index[9], f.index[15]]
    assert t.entry_price.tolist() == [o[6], o[12]]
    assert t.exit_price.tolist() == [o[9], o[15]]
    np.testing.assert_allclose(t.qty, [qty1, qty2], rtol=RTOL)
    np.testing.assert_allclose(t.pnl, [cash1 - 10_000.0, qty2 * o[15] * (1 - c) - cash1], rtol=RTOL)
    assert result.final_equity == pytest.approx(qty2 * o[15] * (1 - c), rel=RTOL)
    assert result.seconds > 0.0


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ALL))
def test_each_runner_marks_an_open_trade_at_the_last_close(name: str) -> None:
    c = 0.001
    f = hand_frame(14)  # ends long: entered at bar 12's open
    o, close = f["open"].to_numpy(), f["close"].to_numpy()
    cash1 = 10_000.0 / (o[6] * (1 + c)) * o[9] * (1 - c)
    qty2 = cash1 / (o[12] * (1 + c))
    result = ALL[name](f, 2, 4)
    last = result.trades.iloc[-1]
    assert len(result.trades) == 2
    assert pd.isna(last.exit_time)
    assert np.isnan(last.exit_price)
    assert last.qty == pytest.approx(qty2, rel=RTOL)
    assert last.pnl == pytest.approx(qty2 * (close[-1] - o[12]) - qty2 * o[12] * c, rel=RTOL)
    assert result.final_equity == pytest.approx(qty2 * close[-1], rel=RTOL)
    assert result.equity is not None
    assert result.equity.iloc[-1] == pytest.approx(qty2 * close[-1], rel=RTOL)


# --- long series ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return gbm_hourly(SYNTHETIC_BARS)


@pytest.fixture(scope="module")
def btcusdt(shared_data: Path) -> pd.DataFrame:
    path = shared_data / "btcusdt_1h.csv.gz"
    if not path.is_file():
        missing(f"{path} not found")
    return pd.read_csv(path, parse_dates=["timestamp"], index_col="timestamp")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PEERS))
def test_peer_agrees_with_the_reference_on_gbm(name: str, synthetic: pd.DataFrame) -> None:
    frame = synthetic.iloc[:BACKTRADER_SYNTHETIC_BARS] if name == "backtrader" else synthetic
    ref = run_reference_loop(frame)
    assert len(ref.trades) > len(frame) // 100  # about 1.3 round trips per 100 bars
    assert_agree(ref, PEERS[name](frame), name)


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", list(PEERS))
def test_peer_agrees_with_the_reference_on_btcusdt_1h(name: str, btcusdt: pd.DataFrame) -> None:
    ref = run_reference_loop(btcusdt)
    assert len(ref.trades) > 500
    assert pd.isna(ref.trades.exit_time.iloc[-1])
    assert_agree(ref, PEERS[name](btcusdt), name)

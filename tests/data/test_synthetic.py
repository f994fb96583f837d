from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reinforcetrade.core.errors import TimeframeError, UserInputError
from reinforcetrade.core.timeframes import parse_timeframe
from reinforcetrade.data.schema import COLUMNS
from reinforcetrade.data.synthetic import (
    REGIME_NAMES,
    SyntheticMarket,
    SyntheticParams,
    generate_market,
    generate_ohlcv,
)
from reinforcetrade.data.validate import check, validate

F8 = npt.NDArray[np.float64]
PAIR = ("BTC/USDT", "ETH/USDT")
CALM, CRASH = REGIME_NAMES.index("calm"), REGIME_NAMES.index("crash")


def log_returns(frame: pd.DataFrame) -> F8:
    close = frame["close"].to_numpy()
    return np.diff(np.log(close))


def excess_kurtosis(x: F8) -> float:
    d = x - x.mean()
    return float(np.mean(d**4) / np.mean(d**2) ** 2 - 3.0)


def autocorr(x: F8, lag: int = 1) -> float:
    return float(np.corrcoef(x[:-lag], x[lag:])[0, 1])


def assert_ohlc_consistent(frame: pd.DataFrame) -> None:
    o, h, lo, c, v = (frame[name].to_numpy() for name in COLUMNS)
    assert np.isfinite(frame.to_numpy()).all()
    assert (lo > 0).all()
    assert (h >= np.maximum(o, c)).all()
    assert (lo <= np.minimum(o, c)).all()
    assert (v >= 0).all()
    np.testing.assert_array_equal(o[1:], c[:-1])


@pytest.fixture(scope="module")
def hourly() -> SyntheticMarket:
    """Eleven years of hourly bars for two symbols: enough for stable stylised facts."""
    return generate_market(PAIR, timeframe="1h", bars=100_000, seed=11)


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_bit_identical_frames() -> None:
    a = generate_market(PAIR, timeframe="15m", bars=3000, seed=5)
    b = generate_market(PAIR, timeframe="15m", bars=3000, seed=5)
    np.testing.assert_array_equal(a.regimes, b.regimes)
    for symbol in PAIR:
        pd.testing.assert_frame_equal(a.frames[symbol], b.frames[symbol], check_exact=True)
        assert a.frames[symbol].to_numpy().tobytes() == b.frames[symbol].to_numpy().tobytes()


def test_different_seed_gives_different_frames() -> None:
    a = generate_ohlcv("BTC/USDT", bars=500, seed=1)
    b = generate_ohlcv("BTC/USDT", bars=500, seed=2)
    assert not np.array_equal(a["close"].to_numpy(), b["close"].to_numpy())


def test_generate_ohlcv_equals_single_symbol_market() -> None:
    single = generate_ohlcv("SOL/USDT", timeframe="4h", bars=800, seed=9)
    market = generate_market(["SOL/USDT"], timeframe="4h", bars=800, seed=9)
    pd.testing.assert_frame_equal(single, market.frames["SOL/USDT"], check_exact=True)
    assert single.attrs == market.frames["SOL/USDT"].attrs


def test_adding_a_symbol_does_not_change_the_others() -> None:
    alone = generate_market(["BTC/USDT"], bars=1000, seed=3)
    together = generate_market(["ETH/USDT", "BTC/USDT", "XRP/USDT"], bars=1000, seed=3)
    np.testing.assert_array_equal(alone.regimes, together.regimes)
    pd.testing.assert_frame_equal(
        alone.frames["BTC/USDT"], together.frames["BTC/USDT"], check_exact=True
    )
    assert list(together.frames) == ["ETH/USDT", "BTC/USDT", "XRP/USDT"]


# --- the frame contract ---------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    timeframe=st.sampled_from(["1m", "5m", "15m", "1h", "4h", "1d", "1w"]),
    bars=st.integers(2, 400),
    correlation=st.floats(0.0, 0.99),
)
def test_ohlc_is_internally_consistent(
    seed: int, timeframe: str, bars: int, correlation: float
) -> None:
    params = SyntheticParams(correlation=correlation)
    market = generate_market(
        ["BTC/USDT", "AAA"], timeframe=timeframe, bars=bars, seed=seed, params=params
    )
    assert market.regimes.shape == (bars,)
    assert set(np.unique(market.regimes)) <= set(range(len(REGIME_NAMES)))
    for frame in market.frames.values():
        assert frame.shape == (bars, 5)
        assert_ohlc_consistent(frame)
        assert check(frame).ok  # and the contract's own validator agrees
        validate(frame, gaps="raise")


def test_ohlc_survives_extreme_volatility() -> None:
    params = SyntheticParams(regime_vol=(3.0, 3.0, 3.0, 8.0), jump_std=0.3, jumps_per_year=500)
    frame = generate_ohlcv("X", timeframe="1d", bars=5000, seed=4, params=params)
    assert_ohlc_consistent(frame)


@pytest.mark.parametrize(
    ("timeframe", "start", "first"),
    [
        ("1h", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z"),
        ("15m", "2021-03-04T10:07:31Z", "2021-03-04T10:15:00Z"),
        ("4h", "2021-03-04 10:00", "2021-03-04T12:00:00Z"),
        ("1d", pd.Timestamp("2021-03-04T01:00:00+05:00"), "2021-03-04T00:00:00Z"),
        ("1w", "2024-01-03", "2024-01-08T00:00:00Z"),  # weekly bars open on Mondays
    ],
)
def test_index_is_contiguous_utc_and_on_grid(
    timeframe: str, start: str | pd.Timestamp, first: str
) -> None:
    frame = generate_ohlcv("ETH/USDT", timeframe=timeframe, bars=300, seed=2, start=start)
    index = frame.index
    tf = parse_timeframe(timeframe)
    assert isinstance(index, pd.DatetimeIndex)
    assert str(index.tz) == "UTC"
    assert index.name == "timestamp"
    assert index[0] == pd.Timestamp(first)
    ns = index.as_unit("ns").asi8
    assert (np.diff(ns) == tf.nanos).all()
    assert ((ns - tf.origin_ns) % tf.nanos == 0).all()
    assert list(frame.columns) == list(COLUMNS)
    assert (frame.dtypes == np.float64).all()
    assert frame.attrs["symbol"] == "ETH/USDT"
    assert frame.attrs["timeframe"] == tf.text


def test_start_prices_have_defaults_and_overrides() -> None:
    market = generate_market(
        ["BTC/USDT", "ETH/BTC", "AAPL", "MSFT"], bars=10, start_prices={"MSFT": 412.5}
    )
    first_open = {s: f["open"].iloc[0] for s, f in market.frames.items()}
    assert first_open == {"BTC/USDT": 30_000.0, "ETH/BTC": 2_000.0, "AAPL": 100.0, "MSFT": 412.5}


def test_market_record() -> None:
    market = generate_market(PAIR, timeframe="1d", bars=50, seed=8)
    assert market.regime_names == ("calm", "bull", "bear", "crash")
    assert market.regimes.dtype == np.int8
    assert (market.seed, market.timeframe) == (8, "1d")


# --- stylised facts -------------------------------------------------------------------------


def test_returns_have_fat_tails(hourly: SyntheticMarket) -> None:
    r = log_returns(hourly.frames["BTC/USDT"])
    assert excess_kurtosis(r) > 3.0  # a Gaussian random walk gives ~0


def test_volatility_clusters_but_returns_do_not_autocorrelate(hourly: SyntheticMarket) -> None:
    r = log_returns(hourly.frames["BTC/USDT"])
    assert autocorr(np.abs(r)) > 0.1  # a Gaussian random walk gives ~0
    assert autocorr(np.abs(r), lag=24) > 0.05
    assert abs(autocorr(r)) < 0.03


def test_volume_rises_with_absolute_returns(hourly: SyntheticMarket) -> None:
    frame = hourly.frames["ETH/USDT"]
    r = log_returns(frame)
    notional = (frame["volume"] * frame["close"]).to_numpy()[1:]
    assert np.corrcoef(notional, np.abs(r))[0, 1] > 0.5
    recent = frame.iloc[-5000:]  # units, not value: the price level moves little in 5000 bars
    assert np.corrcoef(recent["volume"].to_numpy()[1:], np.abs(log_returns(recent)))[0, 1] > 0.4


@pytest.mark.parametrize("correlation", [0.0, 0.3, 0.7, 0.9])
def test_cross_symbol_correlation_is_the_requested_one(correlation: float) -> None:
    params = SyntheticParams(correlation=correlation)
    market = generate_market(PAIR, bars=30_000, seed=21, params=params)
    r1, r2 = (log_returns(market.frames[s]) for s in PAIR)
    assert np.corrcoef(r1, r2)[0, 1] == pytest.approx(correlation, abs=0.05)


def test_default_correlation(hourly: SyntheticMarket) -> None:
    r1, r2 = (log_returns(hourly.frames[s]) for s in PAIR)
    assert np.corrcoef(r1, r2)[0, 1] == pytest.approx(0.7, abs=0.05)


def test_every_regime_is_visited_and_crashes_are_violent(hourly: SyntheticMarket) -> None:
    assert set(np.unique(hourly.regimes)) == set(range(len(REGIME_NAMES)))
    r = log_returns(hourly.frames["BTC/USDT"])
    regime = hourly.regimes[1:]
    crash, calm = r[regime == CRASH], r[regime == CALM]
    assert crash.mean() < 0
    assert crash.std() > 3 * calm.std()
    assert (regime == CRASH).mean() < 0.02  # short-lived


def test_bull_and_bear_are_persistent(hourly: SyntheticMarket) -> None:
    changes = np.flatnonzero(np.diff(hourly.regimes)) + 1
    runs = np.diff(np.concatenate([[0], changes, [hourly.regimes.size]]))
    starts = hourly.regimes[np.concatenate([[0], changes])]
    mean_hours = {name: runs[starts == i].mean() for i, name in enumerate(REGIME_NAMES)}
    assert mean_hours["bull"] > 24 * 20
    assert mean_hours["bear"] > 24 * 20
    assert mean_hours["crash"] < 24 * 5


def test_annualised_volatility_does_not_depend_on_timeframe() -> None:
    hours = generate_ohlcv("BTC/USDT", timeframe="1h", bars=24 * 365 * 8, seed=17)
    days = generate_ohlcv("BTC/USDT", timeframe="1d", bars=365 * 8, seed=17)
    vol_h = log_returns(hours).std() * np.sqrt(24 * 365.25)
    vol_d = log_returns(days).std() * np.sqrt(365.25)
    assert 0.25 < vol_h < 1.2
    assert 1 / 1.5 < vol_d / vol_h < 1.5


# --- bad arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bars": 1}, "bars must be an integer >= 2"),
        ({"bars": 10.0}, "bars must be an integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"symbols": []}, "symbols is empty"),
        ({"symbols": ["BTC/USDT", "BTC/USDT"]}, "repeated: \\['BTC/USDT'\\]"),
        ({"symbols": "BTC/USDT"}, "not a single string"),
        ({"symbols": ["BTC/USDT", ""]}, "non-empty strings"),
        ({"start": "not a date"}, "start 'not a date' is not a timestamp"),
        ({"bars": 10_000_000, "timeframe": "1d"}, "use fewer bars"),
        ({"start_prices": {"BTC/USDT": 0.0}}, "must be > 0"),
        ({"start_prices": {"DOGE/USDT": 1.0}}, "not requested: \\['DOGE/USDT'\\]"),
    ],
)
def test_bad_arguments_raise_user_input_error(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"symbols": ["BTC/USDT"], "bars": 10, **kwargs}
    with pytest.raises(UserInputError, match=match):
        generate_market(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("timeframe", ["7x", "0h", "", "1M"])
def test_bad_timeframe_raises_timeframe_error(timeframe: str) -> None:
    with pytest.raises(TimeframeError, match=repr(timeframe)):
        generate_ohlcv(timeframe=timeframe, bars=10)
    assert issubclass(TimeframeError, UserInputError)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"correlation": 1.0}, "correlation must be in \\[0, 1\\)"),
        ({"correlation": -0.1}, "correlation must be in \\[0, 1\\)"),
        ({"t_df": 3.0}, "t_df must exceed 4"),
        ({"vol_of_vol": 1.0}, "vol_of_vol"),
        ({"jumps_per_year": -1.0}, "jumps_per_year must be >= 0"),
        ({"daily_notional": float("nan")}, "daily_notional must be > 0"),
        ({"regime_vol": (0.1, 0.2, 0.3)}, "regime_vol needs one finite number per regime"),
        ({"regime_days": (1.0, 1.0, 0.0, 1.0)}, "regime_days must be > 0"),
        (
            {"regime_exit": ((0.5, 0.5, 0, 0), (1, 0, 0, 0), (1, 0, 0, 0), (1, 0, 0, 0))},
            "zero diagonal",
        ),
        ({"regime_exit": ((0, 1), (1, 0))}, "4 rows of 4 probabilities"),
    ],
)
def test_bad_params_raise_user_input_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(UserInputError, match=match):
        SyntheticParams(**kwargs)  # type: ignore[arg-type]

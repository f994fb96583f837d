"""`FeatureSpec`: causal, normalised, clipped features; a JSON round trip; a stable fingerprint."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data import DataLoader, make_ohlcv
from reinforcetrade.data.bars import Bars
from reinforcetrade.environments import FeatureParams, FeatureSpec

FRAME = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=700, seed=11)
BARS = Bars.from_frame(FRAME)
SMALL = FeatureSpec(
    names=("logret_1", "logret_3", "rsi", "bb_pctb", "macd_atr", "vol_z", "volume_z"),
    params=FeatureParams(
        vol_window=5,
        vol_history=20,
        rsi=4,
        bb_window=6,
        macd_fast=3,
        macd_slow=7,
        macd_signal=3,
        atr=4,
        volume_window=10,
    ),
    clip=3.0,
)
FULL_DEFAULT = FeatureSpec.default().compute(BARS)
FULL_SMALL = SMALL.compute(BARS)


@settings(max_examples=60, deadline=None)
@given(t=st.integers(0, len(BARS) - 1), small=st.booleans())
def test_features_are_causal(t: int, small: bool) -> None:
    spec, full = (SMALL, FULL_SMALL) if small else (FeatureSpec.default(), FULL_DEFAULT)
    prefix = spec.compute(BARS.head(t + 1))
    assert prefix.shape == (t + 1, len(spec.names))
    np.testing.assert_array_equal(prefix[t], full[t])  # bit for bit, NaN equal to NaN


@pytest.mark.parametrize("spec", [FeatureSpec.default(), SMALL], ids=["default", "small"])
def test_nan_before_warmup_then_finite_and_clipped(spec: FeatureSpec) -> None:
    x = spec.compute(FRAME)
    assert x.dtype == np.float32
    assert x.flags.c_contiguous
    assert x.shape == (len(FRAME), len(spec.names))
    assert np.isnan(x[: spec.warmup]).all()
    assert np.isfinite(x[spec.warmup :]).all()
    assert np.abs(x[spec.warmup :]).max() <= spec.clip


def test_clip_applies() -> None:
    loose = FeatureSpec(names=SMALL.names, params=SMALL.params, clip=100.0).compute(BARS)
    tight = FeatureSpec(names=SMALL.names, params=SMALL.params, clip=0.5).compute(BARS)
    np.testing.assert_array_equal(tight, np.clip(loose, -0.5, 0.5))
    assert (np.abs(tight[SMALL.warmup :]) == 0.5).mean() > 0.2


def test_warmup_is_where_each_feature_starts() -> None:
    p = SMALL.params
    firsts = {
        "logret_3": max(3, p.vol_window),
        "rsi": p.rsi,
        "bb_pctb": p.bb_window - 1,
        "macd_atr": p.macd_slow + p.macd_signal - 2,
        "vol_z": p.vol_window + p.vol_history - 1,
        "volume_z": p.volume_window - 1,
    }
    for name, first in firsts.items():
        spec = FeatureSpec(names=(name,), params=p)
        assert spec.warmup == first
        x = spec.compute(BARS)[:, 0]
        assert np.isnan(x[first - 1])
        assert np.isfinite(x[first])


def test_values_mean_what_the_names_say() -> None:
    spec = FeatureSpec(names=("rsi", "logret_1"), params=FeatureParams(vol_window=5), clip=50.0)
    x = spec.compute(BARS)
    from reinforcetrade.features import realized_volatility, rsi

    t = 300
    assert x[t, 0] == np.float32((rsi(BARS.close, 14)[t] - 50) / 50)
    scaled = np.log(BARS.close[t] / BARS.close[t - 1]) / realized_volatility(BARS.close, 5)[t]
    assert x[t, 1] == pytest.approx(scaled, rel=1e-6)


def test_flat_prices_and_missing_volume_give_neutral_zeros() -> None:
    n = 300
    price = np.full(n, 100.0)
    volume = np.where(np.arange(n) % 7 == 0, 0.0, 5.0)
    frame = make_ohlcv(np.arange(n) * 3_600_000_000_000, price, price, price, price, volume,
                       timeframe="1h")  # fmt: skip
    spec = FeatureSpec.default()
    x = spec.compute(frame)
    assert np.isfinite(x[spec.warmup :]).all()
    assert (x[spec.warmup :, :-1] == 0.0).all()  # every price feature is undefined: 0


def test_dict_round_trip_is_exact_through_json() -> None:
    for spec in (FeatureSpec.default(), SMALL, FeatureSpec.default(clip=2.5)):
        back = FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert back == spec
        assert back.fingerprint() == spec.fingerprint()
        assert back.to_dict() == spec.to_dict()


def test_fingerprint_is_stable_and_tracks_every_field() -> None:
    spec = FeatureSpec.default()
    assert spec.fingerprint() == "0c76280a60461cee"  # changes only when the definition does
    others = [
        FeatureSpec.default(clip=4.0),
        FeatureSpec(names=spec.names[:-1]),
        FeatureSpec(params=FeatureParams(rsi=21)),
        FeatureSpec(names=tuple(reversed(spec.names))),
    ]
    assert len({s.fingerprint() for s in [spec, *others]}) == 5


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"names": ["rsi", "magic"]}, "unknown feature 'magic'"),
        ({"names": ["rsi", "rsi"]}, "repeat"),
        ({"names": []}, "non-empty"),
        ({"version": 99}, "version 99"),
        ({"colour": "red"}, "unknown feature spec keys"),
        ({"params": {"rsi": 0}}, "rsi must be"),
        ({"params": {"macd_fast": 30}}, "macd_fast"),
        ({"params": {"lookback": 3}}, "bad feature parameters"),
        ({"clip": -1.0}, "clip"),
    ],
)
def test_bad_specs_are_refused(data: dict[str, object], match: str) -> None:
    with pytest.raises(UserInputError, match=match):
        FeatureSpec.from_dict(data)


def test_compute_takes_a_frame_or_bars() -> None:
    spec = FeatureSpec.default()
    np.testing.assert_array_equal(spec.compute(FRAME), spec.compute(BARS))
    assert isinstance(FRAME, pd.DataFrame)

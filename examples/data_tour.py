"""A tour of the data layer: synthetic market, files, validation, gaps, resampling, statistics.

Run it with `.venv/bin/python examples/data_tour.py [OUT_DIR]`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from reinforcetrade.data import DataLoader, check, generate_market, load_ohlcv, resample, validate
from reinforcetrade.features.stats import drawdown, realized_volatility


def main(out_dir: Path) -> None:
    market = generate_market(["BTC/USDT", "ETH/USDT"], timeframe="15m", bars=4 * 24 * 90, seed=7)
    loader = DataLoader()
    for symbol, bars in market.frames.items():
        path = loader.save(bars, out_dir / f"{symbol.replace('/', '-')}_15m.csv.gz")
        again = load_ohlcv(path, gaps="raise")  # read back, validated, no gaps allowed
        hourly = resample(again, "1h")
        vol = realized_volatility(hourly["close"].to_numpy(), 24, periods_per_year=24 * 365)
        worst = float(np.min(drawdown(hourly["close"].to_numpy())))
        print(
            f"{symbol}: {len(again)} bars of 15m -> {len(hourly)} of 1h; "
            f"last 24h volatility {vol[-1]:.1%}/yr; worst drawdown {abs(worst):.1%}"
        )
    holed = market.frames["BTC/USDT"].drop(market.frames["BTC/USDT"].index[100:104])
    report = check(holed)
    if report.gaps is not None:
        print("a frame with a hole:", report.gaps.summary())
    filled = validate(holed, gaps="fill")
    print(f"filled back to {len(filled)} bars with flat, zero-volume bars")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))

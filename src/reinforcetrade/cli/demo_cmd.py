"""`reinforcetrade demo`: the main job on the bundled synthetic market."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from reinforcetrade.backtesting import EnhancedBacktester
from reinforcetrade.cli.backtest_cmd import summary
from reinforcetrade.cli.console import out, progress_bar
from reinforcetrade.cli.state import state
from reinforcetrade.core.timeframes import parse_timeframe
from reinforcetrade.data.readers import load_ohlcv
from reinforcetrade.data.writers import symbol_filename, write_ohlcv
from reinforcetrade.features.stats import log_returns, max_drawdown
from reinforcetrade.strategies import MultiAgentStrategy

YEAR_NS = 365.25 * 86_400 * 1e9
COLUMNS = ("symbol", "bars", "from", "to", "return", "vol/yr", "max DD")


def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the demo's files.", file_okay=False)
    ] = Path("demo-output"),
) -> None:
    """Generate the bundled synthetic market and backtest the multi-agent strategy on it."""
    from reinforcetrade.data.synthetic import generate_market

    settings = state.settings()
    cfg = settings.data.synthetic
    tf = parse_timeframe(cfg.timeframe)
    with progress_bar("generating the synthetic market") as update:
        market = generate_market(
            cfg.symbols, timeframe=tf.text, bars=cfg.bars, seed=cfg.seed, start=cfg.start
        )
        paths = []
        for done, (symbol, frame) in enumerate(market.frames.items(), start=1):
            paths.append(write_ohlcv(frame, out_dir / "data" / symbol_filename(symbol, tf.text)))
            update(done, len(market.frames))
    table = Table(title=f"synthetic market, seed {cfg.seed}, {tf} bars")
    for name in COLUMNS:
        table.add_column(name, justify="left" if name in ("symbol", "from", "to") else "right")
    per_year = YEAR_NS / tf.nanos
    frames = {}
    for path in paths:
        frame = load_ohlcv(path, gaps="raise")  # the round trip must validate, with no gaps
        frames[str(frame.attrs["symbol"])] = frame
        close = frame["close"].to_numpy()
        vol = float(np.nanstd(log_returns(close), ddof=1)) * math.sqrt(per_year)
        table.add_row(
            str(frame.attrs.get("symbol")),
            f"{len(frame):,}",
            f"{frame.index[0]:%Y-%m-%d}",
            f"{frame.index[-1]:%Y-%m-%d}",
            f"{close[-1] / close[0] - 1:+.1%}",
            f"{vol:.0%}",
            f"{max_drawdown(close):.0%}",
        )
    out.print(table)
    shares = np.bincount(market.regimes, minlength=len(market.regime_names)) / len(market.regimes)
    names = zip(market.regime_names, shares, strict=True)
    out.print("regimes: " + ", ".join(f"{n} {s:.0%}" for n, s in names), markup=False)
    with progress_bar("backtesting the multi-agent strategy"):
        result = EnhancedBacktester(MultiAgentStrategy(settings=settings)).run(frames)
        folder = result.save(out_dir / "backtest")
    out.print(summary(result))
    out.print(f"data written to {out_dir / 'data'}", markup=False)
    out.print(f"backtest result written to {folder}", markup=False)

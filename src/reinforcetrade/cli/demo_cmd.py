"""`reinforcetrade demo`: the main job on the bundled synthetic market.

Generate the market → train PPO on the first symbol's training span (its last part validates)
→ backtest the multi-agent strategy with the RL agent on the held-out span it never saw → print
the summary, next to the same span without the RL agent and buy-and-hold.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from reinforcetrade.backtesting import BacktestResult, EnhancedBacktester
from reinforcetrade.cli.backtest_cmd import summary
from reinforcetrade.cli.console import err, out, progress_bar
from reinforcetrade.cli.state import state
from reinforcetrade.config import Settings
from reinforcetrade.core.timeframes import parse_timeframe
from reinforcetrade.data.readers import load_ohlcv
from reinforcetrade.data.writers import symbol_filename, write_ohlcv
from reinforcetrade.features.performance import (
    periods_per_year,
    returns_from_equity,
    sharpe_ratio,
    total_return,
)
from reinforcetrade.features.stats import log_returns, max_drawdown
from reinforcetrade.strategies import MultiAgentStrategy

YEAR_NS = 365.25 * 86_400 * 1e9
COLUMNS = ("symbol", "bars", "from", "to", "return", "vol/yr", "max DD")
HELD_OUT = 0.25  # the latest quarter of the market is never trained or validated on
DEMO_TIMESTEPS = 50_000  # about a minute of PPO on two cores


def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the demo's files.", file_okay=False)
    ] = Path("demo-output"),
    timesteps: Annotated[
        int, typer.Option("--timesteps", "-n", min=1, help="PPO training timesteps.")
    ] = DEMO_TIMESTEPS,
) -> None:
    """Synthetic market → train PPO → backtest the multi-agent strategy with it on held-out data."""
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
    symbol = cfg.symbols[0]
    result = _rl_on_held_out(settings, symbol, frames[symbol], out_dir, timesteps)
    out.print(f"data written to {out_dir / 'data'}", markup=False)
    out.print(f"backtest result written to {result}", markup=False)
    out.print(f"report: {(result / 'report' / 'report.html').resolve()}", markup=False)


def _rl_on_held_out(
    settings: Settings, symbol: str, frame: pd.DataFrame, out_dir: Path, timesteps: int
) -> Path:
    """Train PPO on the training span, backtest with and without it on the held-out span."""
    from reinforcetrade.agents.training import TrainingPipeline  # loads torch

    settings = settings.with_updates("rl", models_dir=out_dir / "models")
    cut = int(len(frame) * (1.0 - HELD_OUT))
    train = frame.iloc[:cut]
    out.print(
        f"training PPO on {symbol} {train.index[0]:%Y-%m-%d} → {train.index[-1]:%Y-%m-%d} "
        f"({len(train):,} bars, the last {settings.rl.validation_fraction:.0%} validate), "
        f"{timesteps:,} timesteps",
        markup=False,
    )
    pipeline = TrainingPipeline("ppo", settings=settings, progress_bar=err.is_terminal)
    record = pipeline.train(train, timesteps, symbol=symbol)
    decision = pipeline.registry.promote(record.id)
    out.print(
        f"model {record.id}: validation Sharpe {record.metric('validation_sharpe'):.2f}, "
        f"return {record.metric('validation_return'):+.1%}; {decision.reason}",
        markup=False,
    )
    from reinforcetrade.environments import FeatureSpec

    rl_warmup = FeatureSpec.from_dict(record.feature_spec).warmup + settings.rl.window
    lead = max(settings.backtest.warmup_bars, rl_warmup)
    held = frame.iloc[cut - lead :]  # warm-up bars before the held-out span are not traded
    settings = settings.with_updates("backtest", warmup_bars=lead)
    with progress_bar("backtesting on the held-out span"):
        with_rl = EnhancedBacktester(MultiAgentStrategy(use_rl=True, settings=settings)).run(
            {symbol: held}
        )
        without = EnhancedBacktester(MultiAgentStrategy(settings=settings)).run({symbol: held})
        in_sample = EnhancedBacktester(MultiAgentStrategy(use_rl=True, settings=settings)).run(
            {symbol: train}
        )
        folder = with_rl.save(out_dir / "backtest")
    with progress_bar("writing the report"):
        from reinforcetrade.reports import ReportGenerator

        ReportGenerator().generate_full_report(
            {"in-sample (training span)": in_sample, "out-of-sample (held-out span)": with_rl},
            folder / "report",
            title=f"ReinforceTrade demo — {symbol} with the RL agent, held-out span",
        )
    out.print(summary(with_rl))
    out.print(_comparison(with_rl, without, held.iloc[lead:], settings.backtest.calendar))
    return folder


def _comparison(
    with_rl: BacktestResult, without: BacktestResult, held: pd.DataFrame, calendar: str
) -> Table:
    """Return the held-out span's figures with the RL agent, without it, and buy-and-hold."""
    table = Table(title=f"held-out span {held.index[0]:%Y-%m-%d} → {held.index[-1]:%Y-%m-%d}")
    for name in ("", "return", "Sharpe", "max DD", "trades"):
        table.add_column(name, justify="left" if not name else "right")
    for label, result in (("multi-agent + RL", with_rl), ("multi-agent", without)):
        m = result.metrics
        table.add_row(
            label, f"{m['total_return']:+.1%}", f"{m['sharpe_ratio']:.2f}",
            f"{m['max_drawdown']:.1%}", f"{m['trade_count']:.0f}",
        )  # fmt: skip
    close = held["close"].to_numpy()
    per_year = periods_per_year(str(held.attrs["timeframe"]), calendar)
    sharpe = sharpe_ratio(returns_from_equity(close), per_year)
    table.add_row(
        "buy and hold", f"{total_return(close):+.1%}", f"{sharpe:.2f}",
        f"{-max_drawdown(close):.1%}", "1",
    )  # fmt: skip
    return table

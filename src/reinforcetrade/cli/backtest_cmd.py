"""`reinforcetrade backtest`: run the multi-agent strategy on files or the synthetic market."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Group
from rich.table import Table

from reinforcetrade.backtesting import BacktestResult, EnhancedBacktester
from reinforcetrade.cli.console import out, progress_bar
from reinforcetrade.cli.state import state
from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.formatting import figure
from reinforcetrade.data import DataLoader, generate_market, resample, timeframe_of
from reinforcetrade.strategies import MultiAgentStrategy

#: metrics shown in the summary, with how to format them
SHOWN: tuple[tuple[str, str, str], ...] = (
    ("total_return", "total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("annual_volatility", "volatility / yr", "pct"),
    ("sharpe_ratio", "Sharpe", "fixed"),
    ("sortino_ratio", "Sortino", "fixed"),
    ("calmar_ratio", "Calmar", "fixed"),
    ("max_drawdown", "max drawdown", "pct"),
    ("trade_count", "trades", "int"),
    ("win_rate", "win rate", "pct"),
    ("profit_factor", "profit factor", "fixed"),
    ("payoff_ratio", "payoff ratio", "fixed"),
    ("expectancy", "expectancy / trade", "pct"),
    ("exposure_time", "time in market", "pct"),
    ("value_at_risk", "VaR 95% / bar", "pct"),
    ("final_equity", "final equity", "money"),
)


def load_backtest_data(
    settings: Settings,
    files: list[Path] | None,
    synthetic: bool,
    symbol: str | None,
    timeframe: str | None,
    start: str | None,
    end: str | None,
) -> dict[str, pd.DataFrame]:
    """Return the frames to backtest, by symbol, sliced to [start, end] and resampled if asked."""
    loader = DataLoader(settings.data)
    frames: dict[str, pd.DataFrame] = {}
    if files and synthetic:
        raise UserInputError("give either --data FILE or --synthetic, not both")
    if files:
        for path in files:
            frame = loader.load(path)
            name = symbol if symbol and len(files) == 1 else str(frame.attrs.get("symbol"))
            frames[name] = frame
    else:
        cfg = settings.data.synthetic
        market = generate_market(
            cfg.symbols,
            timeframe=timeframe or cfg.timeframe,
            bars=cfg.bars,
            seed=cfg.seed,
            start=cfg.start,
        )
        frames = dict(market.frames)
        if symbol:
            if symbol not in frames:
                raise UserInputError(
                    f"--symbol {symbol} is not in the synthetic market ({', '.join(frames)}); "
                    "set data.synthetic.symbols in the config"
                )
            frames = {symbol: frames[symbol]}
    for name, frame in list(frames.items()):
        if timeframe and timeframe_of(frame) is not None and str(timeframe_of(frame)) != timeframe:
            frame = resample(frame, timeframe)
        if start or end:
            first = pd.Timestamp(start, tz="UTC") if start else None
            last = pd.Timestamp(end, tz="UTC") if end else None
            frame = frame.loc[first:last]
            if len(frame) < 2:
                raise UserInputError(f"{name}: fewer than 2 bars between --start and --end")
        frames[name] = frame
    return frames


def summary(result: BacktestResult) -> Group:
    """Return the rich summary of a result: metrics, recent trades, blocked entries by reason."""
    info = result.info
    title = (
        f"backtest {', '.join(result.symbols)}: {info['start'][:10]} → {info['end'][:10]}, "
        f"{info['bars']:,} bars of {info['timeframe']}"
    )
    metrics = Table(title=title, show_header=False)
    metrics.add_column("metric", style="bold")
    metrics.add_column("value", justify="right")
    for key, label, kind in SHOWN:
        metrics.add_row(label, figure(result.metrics.get(key, float("nan")), kind))
    metrics.add_row("config hash", result.config_hash)
    trades = Table(title="last trades")
    for name in ("symbol", "side", "entry", "exit", "return", "pnl", "exit reason"):
        trades.add_column(name, justify="right" if name in ("return", "pnl") else "left")
    for row in result.trades.tail(8).to_dict("records"):
        exit_time = "" if pd.isna(row["exit_time"]) else f"{row['exit_time']:%Y-%m-%d %H:%M}"
        trades.add_row(
            str(row["symbol"]),
            str(row["side"]),
            f"{row['entry_time']:%Y-%m-%d %H:%M}",
            exit_time,
            f"{row['return']:+.2%}",
            f"{row['pnl']:,.2f}",
            str(row["exit_reason"]),
        )
    blocked = Table(title="blocked entries by reason")
    blocked.add_column("reason")
    blocked.add_column("count", justify="right")
    for reason, count in result.blocked_by_reason().items():
        blocked.add_row(str(reason).lower().replace("_", " "), f"{count:,}")
    return Group(metrics, trades, blocked)


def save_to_journal(result: BacktestResult, settings: Settings, *, name: str) -> int:
    """Store a backtest in the journal; print and return its run id."""
    from reinforcetrade.storage import Journal

    with progress_bar("saving to the journal"), Journal.from_settings(settings) as journal:
        run = journal.save_backtest(
            {
                "decisions": result.decisions,
                "orders": result.orders,
                "fills": result.fills,
                "trades": result.trades,
                "equity": result.equity,
            },
            name=name,
            config_hash=result.config_hash,
            settings=result.public_config(),
            symbols=list(result.symbols),
            timeframe=result.info.get("timeframe"),
            version=str(result.info.get("version")),
        )
        where = journal.name
    out.print(f"saved to the journal {where} as run {run}", markup=False)
    return run


def backtest(
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data", "-d", help="OHLCV file (repeat for several symbols).", dir_okay=False
        ),
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Use the bundled synthetic market (the default).")
    ] = False,
    symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="Symbol to run.")] = None,
    timeframe: Annotated[
        str | None, typer.Option("--timeframe", "-t", help="Bar length (resamples files).")
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="First date (UTC).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last date (UTC).")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file.", dir_okay=False)
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the result tables.", file_okay=False)
    ] = Path("backtest-output"),
    rl: Annotated[
        bool,
        typer.Option("--rl", help="Add the RL agent: the registry's champion for each symbol."),
    ] = False,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Add this registered RL model (id/folder).")
    ] = None,
    with_report: Annotated[
        bool, typer.Option("--report", help="Also write the HTML report (into OUT/report).")
    ] = False,
    save: Annotated[
        bool,
        typer.Option(
            "--save", help="Also store the run in the journal (storage.url), beside live runs."
        ),
    ] = False,
) -> None:
    """Backtest the multi-agent strategy; print a summary and write the result tables."""
    settings = state.settings(config)
    frames = load_backtest_data(settings, data, synthetic, symbol, timeframe, start, end)
    strategy = MultiAgentStrategy(use_rl=rl, model=model, settings=settings)
    with progress_bar("backtesting"):
        result = EnhancedBacktester(strategy).run(frames)
        folder = result.save(out_dir)
    out.print(summary(result))
    out.print(f"result written to {folder}", markup=False)
    if save:
        save_to_journal(result, settings, name=str(out_dir))
    if with_report:
        from reinforcetrade.reports import ReportGenerator

        with progress_bar("writing the report"):
            page = ReportGenerator().generate_full_report(result, folder / "report")
        out.print(f"report written to {page / 'report.html'}", markup=False)

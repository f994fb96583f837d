"""`reinforcetrade data …`: validate, inspect, generate, fetch and resample market data."""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from reinforcetrade.cli.console import err, out, progress_bar
from reinforcetrade.cli.state import state
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.timeframes import parse_timeframe
from reinforcetrade.data.gaps import GapReport, render_gaps
from reinforcetrade.data.loader import DataLoader
from reinforcetrade.data.readers import read_file
from reinforcetrade.data.resample import resample
from reinforcetrade.data.schema import symbol_of, timeframe_of
from reinforcetrade.data.validate import ValidationReport
from reinforcetrade.data.writers import format_of, symbol_filename, write_ohlcv
from reinforcetrade.features.stats import log_returns, max_drawdown

data_app = typer.Typer(
    help="Market data: validate, inspect, generate, fetch, resample.", no_args_is_help=True
)

YEAR_NS = 365.25 * 86_400 * 1e9


class Fmt(StrEnum):
    """Output file formats."""

    parquet = "parquet"
    csv = "csv"


class Calendar(StrEnum):
    """Trading calendars that decide which missing bars are gaps."""

    auto = "auto"
    always = "24/7"
    fx = "fx"
    weekdays = "weekdays"


class Partial(StrEnum):
    """What to do with incomplete buckets at the edges when resampling."""

    drop = "drop"
    keep = "keep"


FileArg = Annotated[
    Path, typer.Argument(help="CSV (.csv, .csv.gz) or Parquet file.", dir_okay=False)
]
TimeframeOpt = Annotated[
    str | None,
    typer.Option("--timeframe", "-t", help="Bar length, e.g. 1m, 1h, 1d (default: inferred)."),
]
CalendarOpt = Annotated[
    Calendar | None,
    typer.Option("--calendar", help="Which absences are gaps (default: config data.calendar)."),
]
TzOpt = Annotated[
    str | None,
    typer.Option("--tz", help="Time zone of timestamps that carry none (e.g. UTC); else refused."),
]


def _gap_lines(report: GapReport, show_all: bool) -> list[str]:
    lines = [f"gaps: {report.summary()}"]
    gaps = report.missing
    lines += ["  " + line for line in render_gaps(gaps, limit=len(gaps) if show_all else 10)]
    return lines


def _describe(report: ValidationReport, frame: pd.DataFrame) -> str:
    span = ""
    if len(frame) and isinstance(frame.index, pd.DatetimeIndex):
        span = f", {frame.index[0]:%Y-%m-%d %H:%M} → {frame.index[-1]:%Y-%m-%d %H:%M} UTC"
    return f"{report.rows} bars of {report.timeframe or '?'}{span}"


@data_app.command("validate")
def validate_cmd(
    file: FileArg,
    timeframe: TimeframeOpt = None,
    calendar: CalendarOpt = None,
    tz: TzOpt = None,
    all_gaps: Annotated[
        bool, typer.Option("--all-gaps", help="List every gap, not the first 10.")
    ] = False,
) -> None:
    """Check a file against the OHLCV contract; exit 0 when valid, 2 when not. Gaps are reported."""
    settings = state.settings()
    with progress_bar(f"reading {file}"):
        loaded = read_file(
            file, timeframe=timeframe, calendar=(calendar or settings.data.calendar), tz=tz
        )
    report = loaded.report
    if not report.ok:
        for line in report.lines(limit=50):
            out.print(line, markup=False)
        count = len(report.issues) + sum(report.omitted.values())
        err.print(
            f"[bold red]invalid:[/] {escape(str(file))}: {count} problem{'s' if count != 1 else ''}"
        )
        raise typer.Exit(2)
    out.print(f"valid: {file}: {_describe(report, loaded.frame)}", markup=False)
    if report.gaps is not None:
        for line in _gap_lines(report.gaps, all_gaps):
            out.print(line, markup=False)


@data_app.command("info")
def info_cmd(
    file: FileArg,
    timeframe: TimeframeOpt = None,
    calendar: CalendarOpt = None,
    tz: TzOpt = None,
) -> None:
    """Summarise a file: symbol, bars, range, gaps, prices, volume and volatility."""
    settings = state.settings()
    with progress_bar(f"reading {file}"):
        loaded = read_file(
            file, timeframe=timeframe, calendar=calendar or settings.data.calendar, tz=tz
        )
    if not loaded.report.ok:
        raise loaded.report.error()  # `data validate` lists the problems
    frame = loaded.frame
    tf = timeframe_of(frame)
    close = frame["close"].to_numpy()
    table = Table(title=str(file), show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("format", format_of(file))
    table.add_row("size", f"{file.stat().st_size:,} bytes")
    table.add_row("symbol", symbol_of(frame) or "?")
    table.add_row("timeframe", str(tf) if tf else "?")
    table.add_row("bars", f"{len(frame):,}")
    table.add_row("first bar", f"{frame.index[0]:%Y-%m-%d %H:%M} UTC")
    table.add_row("last bar", f"{frame.index[-1]:%Y-%m-%d %H:%M} UTC")
    gaps = loaded.report.gaps
    table.add_row("gaps", gaps.summary() if gaps is not None else "n/a")
    table.add_row(
        "price",
        f"low {frame['low'].min():.6g}, high {frame['high'].max():.6g}, last close {close[-1]:.6g}",
    )
    table.add_row("total return", f"{close[-1] / close[0] - 1:+.2%}")
    table.add_row("max drawdown (close)", f"{max_drawdown(close):.2%}")
    if tf is not None and len(frame) > 2:
        per_year = YEAR_NS / tf.nanos
        vol = float(np.nanstd(log_returns(close), ddof=1)) * math.sqrt(per_year)
        table.add_row("volatility", f"{vol:.2%} a year (log returns, {per_year:,.0f} bars a year)")
    table.add_row(
        "volume",
        f"total {frame['volume'].sum():,.6g}, zero-volume bars {int((frame['volume'] == 0).sum())}",
    )
    out.print(table)


@data_app.command("generate")
def generate_cmd(
    out_dir: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for the files (one per symbol).", file_okay=False),
    ],
    symbols: Annotated[
        str | None,
        typer.Option("--symbols", "-s", help="Comma-separated symbols, e.g. BTC/USDT,ETH/USDT."),
    ] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", "-t", help="Bar length.")] = None,
    bars: Annotated[
        int | None, typer.Option("--bars", "-n", min=2, help="Bars per symbol.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Random seed (same seed, same market).")
    ] = None,
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="File format.")] = Fmt.parquet,
    start: Annotated[str | None, typer.Option("--start", help="First bar (ISO date, UTC).")] = None,
) -> None:
    """Generate the synthetic market: correlated symbols with regimes, deterministic by seed."""
    from reinforcetrade.data.synthetic import generate_market

    cfg = state.settings().data.synthetic
    names = tuple(s.strip() for s in symbols.split(",") if s.strip()) if symbols else cfg.symbols
    tf = parse_timeframe(timeframe or cfg.timeframe).text
    with progress_bar("generating") as update:
        market = generate_market(
            names,
            timeframe=tf,
            bars=bars if bars is not None else cfg.bars,
            seed=seed if seed is not None else cfg.seed,
            start=start or cfg.start,
        )
        written = []
        for done, (symbol, frame) in enumerate(market.frames.items(), start=1):
            written.append(write_ohlcv(frame, out_dir / symbol_filename(symbol, tf, fmt.value)))
            update(done, len(market.frames))
    for path in written:
        out.print(f"wrote {path}", markup=False)


@data_app.command("fetch")
def fetch_cmd(
    symbol: Annotated[str, typer.Argument(help="Market symbol, e.g. BTC/USDT.")],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the file.", file_okay=False)
    ],
    exchange: Annotated[
        str | None, typer.Option("--exchange", "-e", help="ccxt exchange id (default: config).")
    ] = None,
    timeframe: Annotated[str, typer.Option("--timeframe", "-t", help="Bar length.")] = "1h",
    since: Annotated[
        str | None, typer.Option("--since", help="First bar, ISO date/time (UTC) or epoch ms.")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", "-n", min=1, help="Bars wanted (default: 5000, or all since --since)."
        ),
    ] = None,
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="File format.")] = Fmt.parquet,
) -> None:
    """Download closed bars from an exchange (paged, retried, cached) and write them to a file."""
    settings = state.settings()
    loader = DataLoader(settings.data)
    wanted = limit if limit is not None else (None if since else 5000)
    tf = parse_timeframe(timeframe).text
    with progress_bar(f"fetching {symbol} {tf}") as update:
        frame = loader.fetch_historical_data(
            symbol,
            timeframe=tf,
            limit=wanted,
            exchange=exchange,
            since=int(since) if since and since.isdigit() else since,  # epoch ms or ISO text
            progress=update,
        )
    if frame.empty:
        raise UserInputError(
            f"{exchange or settings.data.exchange} returned no closed bars for {symbol} {tf}"
        )
    path = write_ohlcv(frame, out_dir / symbol_filename(symbol, tf, fmt.value))
    out.print(
        f"wrote {path}: {len(frame)} bars, "
        f"{frame.index[0]:%Y-%m-%d %H:%M} → {frame.index[-1]:%Y-%m-%d %H:%M} UTC",
        markup=False,
    )


@data_app.command("resample")
def resample_cmd(
    source: Annotated[Path, typer.Argument(help="Input file.", dir_okay=False)],
    target: Annotated[
        Path, typer.Argument(help="Output file (.csv, .csv.gz or .parquet).", dir_okay=False)
    ],
    timeframe: Annotated[
        str, typer.Option("--timeframe", "-t", help="Target bar length, e.g. 1h.")
    ],
    partial: Annotated[
        Partial, typer.Option("--partial", help="Incomplete first/last buckets: drop or keep.")
    ] = Partial.drop,
    tz: TzOpt = None,
) -> None:
    """Aggregate bars to a coarser timeframe: open first, high max, low min, close last, sum."""
    settings = state.settings()
    format_of(target)  # refuse an unknown suffix before doing any work
    with progress_bar(f"reading {source}"):
        frame = DataLoader(settings.data).load(source, tz=tz)
    result = resample(frame, timeframe, partial=partial.value)
    write_ohlcv(result, target)
    out.print(
        f"wrote {target}: {len(frame)} → {len(result)} bars of {timeframe_of(result)}", markup=False
    )

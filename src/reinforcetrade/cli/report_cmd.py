"""`reinforcetrade report RESULT_DIR`: the HTML report of a saved backtest result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reinforcetrade.cli.console import out, progress_bar


def report(
    result_dir: Annotated[
        Path, typer.Argument(help="A backtest result folder (backtest --out).", file_okay=False)
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Report folder (default: RESULT_DIR/report).", file_okay=False
        ),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Report title.")] = None,
) -> None:
    """Write the HTML report (with its JSON and CSV tables) of a saved backtest result."""
    from reinforcetrade.backtesting.saved import load_result
    from reinforcetrade.reports import ReportGenerator

    result = load_result(result_dir)
    with progress_bar("writing the report"):
        folder = ReportGenerator().generate_full_report(result, out_dir, title=title)
    out.print(f"report written to {folder / 'report.html'}", markup=False)

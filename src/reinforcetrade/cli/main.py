"""The root `reinforcetrade` command: global options, sub-command groups and exit codes.

Exit codes: 0 success, 2 bad input (one line saying why, no traceback), 1 unexpected error
(traceback only with `--debug`), 130 interrupted.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from reinforcetrade import __version__
from reinforcetrade.cli.backtest_cmd import backtest
from reinforcetrade.cli.config_cmds import config_app
from reinforcetrade.cli.console import err
from reinforcetrade.cli.data_cmds import data_app
from reinforcetrade.cli.demo_cmd import demo
from reinforcetrade.cli.factor_cmds import factors_app
from reinforcetrade.cli.optimize_cmds import optimize, walkforward
from reinforcetrade.cli.report_cmd import report
from reinforcetrade.cli.retrain_cmd import retrain
from reinforcetrade.cli.rl_cmds import models_app, train
from reinforcetrade.cli.serve_cmd import serve_app
from reinforcetrade.cli.state import state
from reinforcetrade.cli.trade_cmds import alerts_app, trade_app
from reinforcetrade.core.errors import DataValidationError, UserInputError

app = typer.Typer(
    name="reinforcetrade",
    help="Multi-agent reinforcement-learning trading: data, backtests, RL, live execution.\n\n"
    "Research and education software: trading risks loss.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")
app.command("demo")(demo)
app.command("backtest")(backtest)
app.command("train")(train)
app.command("report")(report)
app.command("optimize")(optimize)
app.command("walkforward")(walkforward)
app.command("retrain")(retrain)
app.add_typer(models_app, name="models")
app.add_typer(trade_app, name="trade")
app.add_typer(alerts_app, name="alerts")
app.add_typer(serve_app, name="serve")
app.add_typer(factors_app, name="factors")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reinforcetrade {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML settings file (default: ./reinforcetrade.yaml if present).",
            dir_okay=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """ReinforceTrade: research and education software; trading risks loss."""
    state.config_path = config
    state.debug = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )


def _one_line(exc: UserInputError) -> str:
    """Return the cause of a bad-input error as one line (the first problem when there are many)."""
    text = str(exc)
    if isinstance(exc, DataValidationError) and exc.issues and "\n" in text:
        count = len(exc.issues)
        first = exc.issues[0].render(exc.source, exc.row_label)
        more = (
            f" (and {count - 1} more: `reinforcetrade data validate` lists them)"
            if count > 1
            else ""
        )
        return f"{first}{more}"
    return " ".join(part.strip() for part in text.splitlines())


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return (and exit with) its exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    code = 0
    try:  # typer handles usage errors itself (exit 2) and ends with SystemExit
        app(args=args, prog_name="reinforcetrade")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except UserInputError as exc:
        err.print(f"[bold red]error:[/] {escape(_one_line(exc))}", markup=True, highlight=False)
        if debug:
            traceback.print_exc()
        code = 2
    except KeyboardInterrupt:
        err.print("interrupted")
        code = 130
    except Exception as exc:  # the last line of defence: say what, hide the traceback
        err.print(
            f"[bold red]unexpected error:[/] {type(exc).__name__}: {escape(str(exc))}", markup=True
        )
        if debug:
            traceback.print_exc()
        else:
            err.print("run again with --debug for the traceback")
        code = 1
    if argv is None:
        sys.exit(code)
    return code

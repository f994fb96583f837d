"""`reinforcetrade retrain`: the self-reinforcement loop — retrain, validate, promote a winner."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
import yaml
from rich.table import Table

from reinforcetrade.cli.backtest_cmd import load_backtest_data
from reinforcetrade.cli.console import err, out
from reinforcetrade.cli.state import state
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.files import atomic_write_bytes
from reinforcetrade.core.formatting import figure
from reinforcetrade.core.timeframes import parse_timeframe

if TYPE_CHECKING:
    from reinforcetrade.optimization.retrain import RetrainResult


def retrain(
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", "-d", help="OHLCV file (re-read each run).", dir_okay=False),
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Retrain on the bundled synthetic market.")
    ] = False,
    symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="Symbol (one).")] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", "-t", help="Bar length.")] = None,
    timesteps: Annotated[
        int | None, typer.Option("--timesteps", "-n", min=1, help="Timesteps per model.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Random seed.")] = None,
    tune: Annotated[
        bool, typer.Option("--tune", help="Tune hyperparameters by a genetic search first.")
    ] = False,
    reweight: Annotated[
        bool, typer.Option("--reweight", help="Re-estimate the tower's weights (recorded).")
    ] = False,
    from_run: Annotated[
        int | None,
        typer.Option(
            "--from-run",
            min=1,
            help="With --reweight: judge the agents on this journal "
            "run's decisions (paper or live) instead of the out-of-sample backtests.",
        ),
    ] = None,
    weights_out: Annotated[
        Path | None,
        typer.Option(
            "--weights-out",
            help="With --reweight: write the weights as YAML settings.",
            dir_okay=False,
        ),
    ] = None,
    placebo: Annotated[
        bool,
        typer.Option(
            "--placebo",
            help="Train on the bars in a destroyed order: a check of the "
            "validation, which must keep the champion.",
        ),
    ] = False,
    factors: Annotated[
        bool,
        typer.Option(
            "--factors",
            help="Also refit the factor pipeline (agents.factor.model); "
            "it replaces the file only if it wins out of sample.",
        ),
    ] = False,
    every: Annotated[
        str | None, typer.Option("--every", help="Retrain on a schedule, e.g. 1d or 12h.")
    ] = None,
    runs: Annotated[
        int | None, typer.Option("--runs", min=1, help="With --every: stop after this many.")
    ] = None,
    journal: Annotated[
        str | None, typer.Option("--journal", help="Journal URL for the record (storage.url).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each verdict as a line of JSON.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file.", dir_okay=False)
    ] = None,
) -> None:
    """Retrain a challenger RL model and promote it only if it beats the champion out of sample.

    Runs in its own process: an engine following the champion switches at its next bar.
    Every run is recorded in the journal (the retrains table).
    """
    from reinforcetrade.optimization.retrain import Retrainer
    from reinforcetrade.storage import Journal

    settings = state.settings(config)
    if (weights_out is not None or from_run is not None) and not reweight:
        raise UserInputError("--weights-out and --from-run need --reweight")
    interval = every or settings.retrain.every
    period = parse_timeframe(interval).nanos / 1e9 if interval else None
    if runs is not None and period is None:
        raise UserInputError("--runs needs a schedule: --every 1d (or retrain.every)")
    url = journal or settings.storage.url
    with Journal(url, password=settings.storage.password) as book:
        retrainer = Retrainer(settings, journal=book, progress=lambda m: err.print(m, markup=False))
        done = 0
        while True:
            started = time.monotonic()
            frames = load_backtest_data(settings, data, synthetic, symbol, timeframe, None, None)
            if len(frames) > 1:
                names = ", ".join(frames)
                raise UserInputError(f"several symbols ({names}); retrain one with --symbol")
            name, frame = next(iter(frames.items()))
            try:
                trigger: Literal["manual", "schedule"] = "manual" if period is None else "schedule"
                result = retrainer.run(frame, symbol=name, timesteps=timesteps, tune=tune,
                                       reweight=reweight, experience=from_run, placebo=placebo,
                                       factors=factors,
                                       seed=seed, trigger=trigger)  # fmt: skip
            except UserInputError as exc:
                if period is None:
                    raise
                err.print(f"retrain failed (recorded): {exc}", markup=False)
            else:
                _show(result, as_json)
                if weights_out is not None and result.weights is not None:
                    document = {"tower": {"weights": result.weights.after}}
                    atomic_write_bytes(weights_out, yaml.safe_dump(document).encode())
                    out.print(f"tower weights written to {weights_out}", markup=False)
            done += 1
            if period is None or (runs is not None and done >= runs):
                return
            time.sleep(max(0.0, period - (time.monotonic() - started)))


def _show(result: RetrainResult, as_json: bool) -> None:
    """Print a verdict: a table of both sides' figures, or JSON."""
    if as_json:
        document: dict[str, Any] = {
            "record": result.record_id, "verdict": result.verdict, "reason": result.reason,
            "symbol": result.symbol, "timeframe": result.timeframe,
            "champion": result.champion_id,
            "model": None if result.model is None else result.model.id,
            "figures": result.figures(), "tried": result.tried,
            "weights": None if result.weights is None else result.weights.to_dict(),
        }  # fmt: skip
        typer.echo(json.dumps(document, default=str))  # one line per verdict (JSON Lines)
        return
    table = Table(title=f"retrain {result.symbol} {result.timeframe}: {result.verdict}",
                  title_justify="left")  # fmt: skip
    for column in ("side", "model", "sharpe (oos)", "return (oos)", "trades"):
        table.add_column(column)
    sides = [result.challenger, result.champion]
    if result.baseline is not result.champion:  # with no champion the rule agents are it
        sides.append(result.baseline)
    for side in sides:
        if side is None:
            continue
        model = side.model or ("one per fold" if side.name == "challenger" else "-")
        table.add_row(side.name, model, figure(side.sharpe), figure(side.total_return),
                      str(side.trades))  # fmt: skip
    out.print(table)
    out.print(result.reason, markup=False)
    if result.model is not None:
        out.print(f"new champion: {result.model.id}", markup=False)
    if result.factors is not None:
        out.print(f"factor pipeline: {result.factors.reason}", markup=False)
    if result.record_id is not None:
        out.print(f"recorded as retrain {result.record_id}", markup=False)

"""`reinforcetrade train` and `reinforcetrade models …`: RL agents from data to the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reinforcetrade.agents.registry import ALGORITHMS, ModelRecord, ModelRegistry
from reinforcetrade.cli.backtest_cmd import load_backtest_data
from reinforcetrade.cli.console import err, out
from reinforcetrade.cli.state import state
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.formatting import figure

models_app = typer.Typer(help="The model registry: list, show, promote.", no_args_is_help=True)


def train(
    data: Annotated[
        list[Path] | None, typer.Option("--data", "-d", help="OHLCV file.", dir_okay=False)
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Train on the bundled synthetic market.")
    ] = False,
    exchange: Annotated[
        str | None, typer.Option("--exchange", "-e", help="Fetch history from this ccxt exchange.")
    ] = None,
    symbol: Annotated[
        str | None, typer.Option("--symbol", "-s", help="Symbol to train on.")
    ] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", "-t", help="Bar length.")] = None,
    algo: Annotated[str, typer.Option("--algo", "-a", help="ppo, a2c, dqn or sac.")] = "ppo",
    timesteps: Annotated[
        int | None, typer.Option("--timesteps", "-n", min=1, help="Training timesteps.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Random seed.")] = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="Make it the champion if it beats the current one.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file.", dir_okay=False)
    ] = None,
) -> None:
    """Train an RL agent (validated on the latest data, best kept) and add it to the registry."""
    from reinforcetrade.agents.training import TrainingPipeline  # loads torch

    settings = state.settings(config)
    if algo.lower() not in ALGORITHMS:
        raise UserInputError(f"--algo {algo!r} is not one of {', '.join(ALGORITHMS)}")
    pipeline = TrainingPipeline(algo, settings=settings, progress_bar=err.is_terminal)
    if exchange:
        if not symbol:
            raise UserInputError("--exchange needs --symbol, e.g. --symbol BTC/USDT")
        record = pipeline.train_on_exchange_data(
            symbol, timesteps or settings.rl.total_timesteps, timeframe or "1h", exchange
        )
    else:
        frames = load_backtest_data(settings, data, synthetic, symbol, timeframe, None, None)
        if len(frames) > 1 and not symbol:
            names = ", ".join(frames)
            raise UserInputError(f"several symbols ({names}); pick one with --symbol")
        name, frame = next(iter(frames.items()))
        record = pipeline.train(frame, timesteps, symbol=name, seed=seed)
    out.print(f"trained {record.id}", markup=False)
    _show(record)
    if promote:
        decision = pipeline.registry.promote(record.id)
        out.print(decision.reason, markup=False)


def _registry() -> ModelRegistry:
    return ModelRegistry(state.settings().rl.models_dir)


def _show(record: ModelRecord) -> None:
    table = Table(title=record.id, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("algorithm", record.algorithm)
    table.add_row("symbol / timeframe", f"{record.symbol} {record.timeframe}")
    table.add_row("created", record.created)
    table.add_row("data", f"{record.data.get('first_bar')} → {record.data.get('last_bar')}")
    table.add_row("validation from", str(record.data.get("validation_from")))
    for key, value in sorted(record.metrics.items()):
        table.add_row(key, figure(value))
    table.add_row(
        "features", f"{record.feature_spec.get('fingerprint')} {record.feature_spec.get('names')}"
    )
    table.add_row("path", str(record.path))
    out.print(table)


@models_app.command("list")
def list_models(
    symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="Only this symbol.")] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", "-t", help="Only this.")] = None,
) -> None:
    """List registered models, newest first; champions are marked."""
    registry = _registry()
    table = Table(title=f"models in {registry.root}")
    for name in ("", "id", "algorithm", "symbol", "timeframe", "validation sharpe", "created"):
        table.add_column(name)
    for record in registry.list(symbol=symbol, timeframe=timeframe):
        champion = registry.champion(record.symbol, record.timeframe)
        mark = "★" if champion is not None and champion.id == record.id else ""
        table.add_row(
            mark, record.id, record.algorithm, record.symbol, record.timeframe,
            figure(record.metrics.get("validation_sharpe", float("nan"))), record.created,
        )  # fmt: skip
    out.print(table)


@models_app.command("show")
def show_model(
    ref: Annotated[str, typer.Argument(help="Model id or folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Show everything recorded about a model."""
    record = _registry().get(ref)
    if as_json:
        out.print_json(json.dumps(record.to_dict(), default=str))
    else:
        _show(record)


@models_app.command("promote")
def promote_model(
    ref: Annotated[str, typer.Argument(help="Model id or folder.")],
    metric: Annotated[
        str, typer.Option("--metric", help="Metric to compare.")
    ] = "validation_sharpe",
) -> None:
    """Make a model the champion for its symbol and timeframe, if it beats the current one."""
    decision = _registry().promote(ref, metric=metric)
    out.print(decision.reason, markup=False)

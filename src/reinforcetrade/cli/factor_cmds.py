"""`reinforcetrade factors`: cross-validate and fit ML factor pipelines (the factor agent)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reinforcetrade.cli.backtest_cmd import load_backtest_data
from reinforcetrade.cli.console import out
from reinforcetrade.cli.state import state
from reinforcetrade.core.errors import UserInputError

factors_app = typer.Typer(help="The ML factor engine: factors, pipelines, the factor agent.",
                          no_args_is_help=True)  # fmt: skip

DataOpt = Annotated[
    list[Path] | None, typer.Option("--data", "-d", help="OHLCV file.", dir_okay=False)
]
SymbolOpt = Annotated[str | None, typer.Option("--symbol", "-s", help="Symbol (one).")]
TimeframeOpt = Annotated[str | None, typer.Option("--timeframe", "-t", help="Bar length.")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="composite, logistic or gbm.")]
HorizonOpt = Annotated[
    int, typer.Option("--horizon", "-k", min=1, help="Predict the sign of the next k bars.")
]
FactorOpt = Annotated[
    list[str] | None, typer.Option("--factor", "-f", help="A factor (repeat; default: all).")
]
RouterOpt = Annotated[bool, typer.Option("--router", help="One model per volatility regime.")]
FoldsOpt = Annotated[int, typer.Option("--folds", min=2, help="Walk-forward folds.")]
EmbargoOpt = Annotated[int, typer.Option("--embargo", min=0, help="Bars skipped after a purge.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file.", dir_okay=False)
]


@factors_app.command("list")
def list_factors() -> None:
    """List the registered factors with their warm-up and what they measure."""
    from reinforcetrade.ml import FACTORS

    table = Table(title="factors")
    for column in ("name", "warm-up bars", "what"):
        table.add_column(column)
    for name, spec in FACTORS.items():
        table.add_row(name, str(spec.warmup), spec.summary)
    out.print(table)


@factors_app.command("fit")
def fit(
    data: DataOpt = None,
    symbol: SymbolOpt = None,
    timeframe: TimeframeOpt = None,
    model: ModelOpt = "logistic",
    horizon: HorizonOpt = 5,
    factor: FactorOpt = None,
    router: RouterOpt = False,
    folds: FoldsOpt = 5,
    embargo: EmbargoOpt = 0,
    output: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Save the fitted pipeline here.", dir_okay=False),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Cross-validate a factor pipeline (purged walk-forward), then fit it on all the data.

    Prints each fold's out-of-sample accuracy and the pooled one with its standard error; with
    --out, saves the pipeline fitted on every bar for `agents.factor.model`.
    """
    from reinforcetrade.data.bars import Bars
    from reinforcetrade.ml import DEFAULT_FACTORS, FactorPipeline

    pipeline = FactorPipeline(model=model, horizon=horizon, router=router,
                              factors=tuple(factor) if factor else DEFAULT_FACTORS)  # fmt: skip
    settings = state.settings(config)
    frames = load_backtest_data(settings, data, not data, symbol, timeframe, None, None)
    if len(frames) != 1:
        raise UserInputError(f"fit one symbol at a time: give --symbol (of {', '.join(frames)})")
    ((name, frame),) = frames.items()
    bars = Bars.from_frame(frame, symbol=name)
    report = pipeline.cross_validate(bars, folds=folds, embargo=embargo)
    table = Table(title=f"{name}: {model}, next {horizon} bars, out of sample")
    for column in ("fold", "train rows", "test rows", "accuracy", "Brier", "confident hit rate"):
        table.add_column(column, justify="right")
    for fold in report.folds:
        s = fold.scores
        table.add_row(str(fold.number), f"{fold.train_rows:,}", f"{s.rows:,}", _pct(s.accuracy),
                      f"{s.brier:.4f}", _pct(s.confident_hit_rate))  # fmt: skip
    p = report.pooled
    table.add_row("all", "", f"{p.rows:,}", _pct(p.accuracy), f"{p.brier:.4f}",
                  _pct(p.confident_hit_rate))  # fmt: skip
    out.print(table)
    out.print(f"pooled accuracy {_pct(report.accuracy)} ± {_pct(report.accuracy_se)} "
              f"(z = {report.z_score():.1f} against 50%)", markup=False)  # fmt: skip
    if output is not None:
        path = pipeline.fit(bars).save(output)
        out.print(f"fitted on {len(bars):,} bars and saved to {path} "
                  f"(agents.factor.model: {path})", markup=False)  # fmt: skip


def _pct(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{100 * x:.1f}%"

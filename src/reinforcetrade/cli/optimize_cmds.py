"""`reinforcetrade optimize` and `reinforcetrade walkforward`: search settings, honestly."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from reinforcetrade.cli.backtest_cmd import load_backtest_data
from reinforcetrade.cli.console import out, progress_bar
from reinforcetrade.cli.state import state
from reinforcetrade.config import Settings
from reinforcetrade.core.files import atomic_write_bytes
from reinforcetrade.core.formatting import figure
from reinforcetrade.core.plain import plain

DataFiles = Annotated[
    list[Path] | None,
    typer.Option("--data", "-d", help="OHLCV file (repeat for several symbols).", dir_okay=False),
]
Synthetic = Annotated[
    bool, typer.Option("--synthetic", help="Use the bundled synthetic market (the default).")
]
Symbol = Annotated[str | None, typer.Option("--symbol", "-s", help="Symbol to run.")]
Timeframe = Annotated[
    str | None, typer.Option("--timeframe", "-t", help="Bar length (resamples files).")
]
Start = Annotated[str | None, typer.Option("--start", help="First date (UTC).")]
End = Annotated[str | None, typer.Option("--end", help="Last date (UTC).")]
Config = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file.", dir_okay=False)
]
Method = Annotated[
    str | None,
    typer.Option("--method", help="grid, genetic (NSGA-II), tpe or random (default: config)."),
]
Space = Annotated[
    Path | None,
    typer.Option(
        "--space",
        help="SPACE.yaml: setting → {low, high, step|log} or [choices] "
        "(default: the ranges declared for tower.* and risk.*).",
        dir_okay=False,
    ),
]
Objectives = Annotated[
    list[str] | None,
    typer.Option(
        "--objective",
        help="Metric to optimise (repeat for several: the Pareto front); max:/min: to force "
        "the direction. Default: sharpe.",
    ),
]
Constraints = Annotated[
    list[str] | None,
    typer.Option("--constraint", help="e.g. 'trade_count>=30', 'max_drawdown>=-0.25' (repeat)."),
]
Trials = Annotated[
    int | None, typer.Option("--trials", "-n", help="Trials to run (grid: at most this many).")
]
Storage = Annotated[
    str | None,
    typer.Option("--storage", help="Optuna storage URL (default: optimization.storage)."),
]
Study = Annotated[
    str | None,
    typer.Option("--study", help="Study name (default: named by the search; reruns resume)."),
]
Workers = Annotated[
    int | None, typer.Option("--workers", "-w", help="Local worker processes (1: in-process).")
]
Dask = Annotated[
    str | None, typer.Option("--dask", help="Run trials on the Dask scheduler at this address.")
]
Seed = Annotated[int | None, typer.Option("--seed", help="Sampler seed (default: backtest.seed).")]
Report = Annotated[
    bool, typer.Option("--report/--no-report", help="Write the HTML report (default: yes).")
]


def _settings(
    config: Path | None, workers: int | None, dask: str | None, storage: str | None
) -> Settings:
    settings = state.settings(config)
    updates: dict[str, Any] = {}
    if workers is not None:
        updates["optimization.n_jobs"] = workers
    if dask:
        updates["optimization.dask_address"] = dask  # a scheduler given: trials run there
    if storage:
        updates["optimization.storage"] = storage
    return settings.with_params(updates) if updates else settings


def _space(path: Path | None) -> Any:
    from reinforcetrade.optimization.space import SearchSpace

    return SearchSpace.from_yaml(path) if path else SearchSpace.declared("tower.", "risk.")


def optimize(
    data: DataFiles = None,
    synthetic: Synthetic = False,
    symbol: Symbol = None,
    timeframe: Timeframe = None,
    start: Start = None,
    end: End = None,
    config: Config = None,
    method: Method = None,
    space: Space = None,
    objective: Objectives = None,
    constraint: Constraints = None,
    trials: Trials = None,
    storage: Storage = None,
    study: Study = None,
    workers: Workers = None,
    dask: Dask = None,
    seed: Seed = None,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the results.", file_okay=False)
    ] = Path("optimize-output"),
    with_report: Report = True,
) -> None:
    """Search the strategy's settings; print the best trials and the overfitting diagnostics."""
    from reinforcetrade.optimization import StrategyOptimizer

    settings = _settings(config, workers, dask, storage)
    frames = load_backtest_data(settings, data, synthetic, symbol, timeframe, start, end)
    optimizer = StrategyOptimizer(
        frames,
        _space(space),
        objective or ["sharpe"],
        method=method,
        settings=settings,
        constraints=constraint or [],
        n_trials=trials,
        study_name=study,
        seed=seed,
    )
    with progress_bar(f"{optimizer.method} search") as update:
        result = optimizer.optimize(progress=update)
    out.print(trials_table(result))
    out.print(diagnostics_text(result.diagnostics, len(result.trials)), markup=False)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    result.trials.to_csv(folder / "trials.csv", index=False)
    summary = result.summary()
    text = json.dumps(plain(summary), indent=2, default=str)
    atomic_write_bytes(folder / "summary.json", text.encode())
    out.print(
        f"study {result.study_name} ({result.workers} workers, {result.seconds:,.1f} s); "
        f"trials written to {folder / 'trials.csv'}",
        markup=False,
    )
    if result.best_params is None:
        out.print("no feasible trial: nothing to backtest", markup=False)
        return
    with progress_bar("backtesting the best parameters"):
        best = optimizer.best_result(result)
        best.info["optimization"] = plain(summary)
        saved = best.save(folder / "best")
    out.print(f"best parameters backtested: {saved}", markup=False)
    if with_report:
        from reinforcetrade.reports import ReportGenerator

        with progress_bar("writing the report"):
            page = ReportGenerator().generate_full_report(
                best, saved / "report", title=f"Optimised ({result.method}): best trial"
            )
        out.print(f"report written to {page / 'report.html'}", markup=False)


def walkforward(
    data: DataFiles = None,
    synthetic: Synthetic = False,
    symbol: Symbol = None,
    timeframe: Timeframe = None,
    start: Start = None,
    end: End = None,
    config: Config = None,
    folds: Annotated[
        int | None, typer.Option("--folds", "-k", help="Folds (default: optimization.folds).")
    ] = None,
    train: Annotated[
        float | None,
        typer.Option("--train", help="In-sample share of each fold's window (default 0.7)."),
    ] = None,
    anchored: Annotated[
        bool | None,
        typer.Option("--anchored/--rolling", help="In-sample spans grow from the first bar."),
    ] = None,
    purge: Annotated[
        int | None, typer.Option("--purge", help="Bars cut from the end of each in-sample span.")
    ] = None,
    embargo: Annotated[
        int | None,
        typer.Option("--embargo", help="Bars at the start of each out-of-sample span unscored."),
    ] = None,
    method: Method = None,
    space: Space = None,
    objective: Objectives = None,
    constraint: Constraints = None,
    trials: Annotated[
        int | None, typer.Option("--trials", "-n", help="Trials per fold's search.")
    ] = None,
    storage: Storage = None,
    workers: Workers = None,
    dask: Dask = None,
    seed: Seed = None,
    rl: Annotated[
        bool,
        typer.Option(
            "--rl", help="Train an RL agent in each fold's in-sample span instead of searching."
        ),
    ] = False,
    algo: Annotated[str, typer.Option("--algo", help="With --rl: ppo, a2c, dqn or sac.")] = "ppo",
    timesteps: Annotated[
        int | None, typer.Option("--timesteps", help="With --rl: timesteps per fold.")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the results.", file_okay=False)
    ] = Path("walkforward-output"),
    with_report: Report = True,
) -> None:
    """Optimise (or train) in-sample and trade out-of-sample, fold after fold."""
    from reinforcetrade.optimization import WalkForward, WalkForwardTraining

    settings = _settings(config, workers, dask, storage)
    frames = load_backtest_data(settings, data, synthetic, symbol, timeframe, start, end)
    if rl:
        training = WalkForwardTraining(
            frames, algo, timesteps=timesteps, folds=folds, train=train, anchored=anchored,
            purge=purge, embargo=embargo, settings=settings, seed=seed,
        )  # fmt: skip
        with progress_bar(f"walk-forward RL, {len(training.folds)} folds") as update:
            result = training.run(progress=lambda fold, _d, total: update(fold, total))
        _show_walk(result, out_dir, with_report)
        return
    walk = WalkForward(
        frames,
        _space(space),
        objective or ["sharpe"],
        folds=folds,
        train=train,
        anchored=anchored,
        purge=purge,
        embargo=embargo,
        method=method,
        settings=settings,
        constraints=constraint or [],
        n_trials=trials,
        seed=seed,
    )
    with progress_bar(f"walk-forward, {len(walk.folds)} folds") as update:
        total = len(walk.folds)

        def step(fold: int, done: int, fold_total: int) -> None:
            update((fold - 1) * fold_total + done, total * fold_total)

        result = walk.run(progress=step)
    _show_walk(result, out_dir, with_report)


def _show_walk(result: Any, out_dir: Path, with_report: bool) -> None:
    """Print a walk-forward's folds, stability and stitched result; write everything."""
    out.print(folds_table(result))
    if len(result.stability()):
        out.print(stability_table(result))
    oos = result.stitched.metrics
    out.print(
        f"stitched out-of-sample: return {figure(oos['total_return'], 'pct')}, "
        f"Sharpe {figure(oos['sharpe_ratio'], 'fixed')}, "
        f"max drawdown {figure(oos['max_drawdown'], 'pct')}, "
        f"{figure(oos['trade_count'], 'int')} trades",
        markup=False,
    )
    with progress_bar("writing the results"):
        folder = result.save(out_dir)
    out.print(f"walk-forward written to {folder}", markup=False)
    if with_report:
        from reinforcetrade.reports import ReportGenerator

        with progress_bar("writing the report"):
            page = ReportGenerator().generate_full_report(
                result.segments(), folder / "report", title="Walk-forward: out of sample"
            )
        out.print(f"report written to {page / 'report.html'}", markup=False)


def trials_table(result: Any, rows: int = 10) -> Table:
    """Return the best trials (the Pareto front first when there are several objectives)."""
    trials = result.trials
    names = [o.name for o in result.objectives]
    table = Table(title=f"{result.method} search: {len(trials)} trials, best first")
    for column in ("#", *names, "trades", *result.space_paths(), "feasible"):
        table.add_column(column, justify="right")
    if not len(trials):
        return table
    first = result.objectives[0]
    ordered = trials.sort_values(
        ["feasible", first.name], ascending=[False, first.direction == "minimize"]
    )
    for row in ordered.head(rows).to_dict("records"):
        table.add_row(
            str(row["number"]),
            *(figure(row[n], "fixed" if "ratio" in n else "num") for n in names),
            figure(row.get("trade_count"), "int"),
            *(figure(row[p]) for p in result.space_paths()),
            "yes" if row["feasible"] else "no",
        )
    return table


def diagnostics_text(diagnostics: dict[str, Any], trials: int) -> str:
    """Return the overfitting diagnostics in words."""
    dsr = diagnostics.get("deflated_sharpe_ratio")
    pbo = diagnostics.get("pbo")
    parts = [f"{diagnostics.get('distinct_trials', trials)} distinct trials"]
    if dsr is not None:
        parts.append(
            f"deflated Sharpe ratio {dsr:.2f} (probability the chosen Sharpe beats the best of "
            "that many random tries)"
        )
    if pbo is not None:
        parts.append(
            f"probability of backtest overfitting {pbo:.0%} (how often the in-sample winner "
            "ranks below the median out of sample)"
        )
    return "; ".join(parts)


def folds_table(result: Any) -> Table:
    """Return each fold's spans, chosen parameters and in- vs out-of-sample metrics."""
    frame = result.table()
    table = Table(title="walk-forward: in-sample (IS) vs out-of-sample (OOS)")
    for column in ("fold", "test span", "IS Sharpe", "OOS Sharpe", "IS return", "OOS return",
                   "OOS trades", "DSR", "PBO"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in frame.to_dict("records"):
        table.add_row(
            str(row["fold"]),
            f"{row['test_start']:%Y-%m-%d} → {row['test_end']:%Y-%m-%d}",
            figure(row["is_sharpe_ratio"], "fixed"),
            figure(row["oos_sharpe_ratio"], "fixed"),
            figure(row["is_total_return"], "pct"),
            figure(row["oos_total_return"], "pct"),
            figure(row["oos_trade_count"], "int"),
            figure(_float(row["deflated_sharpe_ratio"]), "fixed"),
            figure(_float(row["pbo"]), "pct"),
        )
    return table


def stability_table(result: Any) -> Table:
    """Return how much each parameter's choice moved across folds."""
    frame = result.stability()
    table = Table(title="parameter stability across folds (spread 0: same every fold)")
    for column in ("parameter", "chosen per fold", "spread", "changes"):
        table.add_column(column, justify="left" if column != "spread" else "right")
    for name, row in frame.iterrows():
        table.add_row(
            str(name),
            ", ".join(figure(v) for v in row["values"]),
            f"{row['spread']:.2f}",
            str(row["changes"]),
        )
    return table


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)

"""Walk-forward validation: optimise in-sample, trade the chosen parameters out-of-sample.

Each fold runs a search (`StrategyOptimizer`) on its in-sample span — or trains an RL agent on
it (`WalkForwardTraining`) — then backtests the result on its out-of-sample span, trading from
the span's first bar with the bars before it as the agents' warm-up history only. The
out-of-sample results stitch into one history: the honest estimate of how the whole procedure
(search or training included) would have done.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reinforcetrade.backtesting import BacktestResult, SavedResult, align, stitch
from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.files import atomic_write_bytes
from reinforcetrade.core.plain import plain
from reinforcetrade.optimization.evaluate import Data, TrialData, run_backtest
from reinforcetrade.optimization.executors import TrialExecutor
from reinforcetrade.optimization.folds import Fold, walk_forward_folds
from reinforcetrade.optimization.objectives import Constraint, Objective
from reinforcetrade.optimization.optimizer import (
    OptimizationResult,
    StrategyOptimizer,
    open_executor,
    why_none,
)
from reinforcetrade.optimization.space import SearchSpace

#: metrics shown per fold, in-sample beside out-of-sample
FOLD_METRICS = ("sharpe_ratio", "total_return", "max_drawdown", "trade_count", "win_rate")


@dataclass(frozen=True)
class FoldResult:
    """One fold: its spans, the search (or training) on its in-sample span, both backtests."""

    fold: Fold
    train_span: tuple[pd.Timestamp, pd.Timestamp]
    test_span: tuple[pd.Timestamp, pd.Timestamp]
    search: OptimizationResult | None = field(repr=False)
    params: dict[str, Any]
    in_sample: BacktestResult = field(repr=False)
    out_of_sample: BacktestResult = field(repr=False)
    model: dict[str, Any] | None = field(default=None, repr=False)  # the RL model trained


@dataclass(frozen=True)
class WalkForwardResult:
    """Every fold's in- and out-of-sample results, the stitched out-of-sample history, stability."""

    folds: tuple[FoldResult, ...]
    stitched: SavedResult = field(repr=False)
    space: SearchSpace | None = field(repr=False)
    settings: dict[str, Any] = field(repr=False)

    @property
    def equity(self) -> pd.Series:
        """Return the stitched out-of-sample equity curve."""
        return self.stitched.equity

    def table(self) -> pd.DataFrame:
        """Return one row per fold: spans, chosen parameters, in- and out-of-sample metrics."""
        rows = []
        for f in self.folds:
            diagnostics = f.search.diagnostics if f.search is not None else {}
            row: dict[str, Any] = {
                "fold": f.fold.number,
                "train_start": f.train_span[0],
                "train_end": f.train_span[1],
                "test_start": f.test_span[0],
                "test_end": f.test_span[1],
                "trials": len(f.search.trials) if f.search is not None else 0,
                "deflated_sharpe_ratio": diagnostics.get("deflated_sharpe_ratio"),
                "pbo": diagnostics.get("pbo"),
            }
            if f.model is not None:
                row["model"] = f.model.get("id")
                row["validation_sharpe"] = dict(f.model.get("metrics", {})).get("validation_sharpe")
            row.update(f.params)
            for name in FOLD_METRICS:
                row[f"is_{name}"] = f.in_sample.metrics.get(name, math.nan)
                row[f"oos_{name}"] = f.out_of_sample.metrics.get(name, math.nan)
            rows.append(row)
        return pd.DataFrame(rows)

    def stability(self) -> pd.DataFrame:
        """Return, per parameter, its chosen values across folds and how much they moved.

        `spread` is the standard deviation of the values placed on their range (0 to 1; log
        scale where the range is): 0 means every fold chose the same, about 0.3 means anywhere.
        `changes` counts folds whose choice differs from the fold before.
        """
        rows = []
        for param in self.space or ():
            values = [f.params[param.path] for f in self.folds]
            placed = np.asarray([param.normalise(v) for v in values], dtype=np.float64)
            numeric = param.choices is None or all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values
            )
            row: dict[str, Any] = {
                "parameter": param.path,
                "values": values,
                "spread": float(placed.std(ddof=0)),
                "changes": sum(a != b for a, b in itertools.pairwise(values)),
                "mode": max(set(values), key=values.count),
                "mode_share": max(values.count(v) for v in values) / len(values),
            }
            if numeric:
                row["mean"] = float(np.mean(np.asarray(values, dtype=np.float64)))
                row["std"] = float(np.std(np.asarray(values, dtype=np.float64), ddof=0))
            rows.append(row)
        columns = ["parameter", "values", "spread", "changes", "mode", "mode_share"]
        return pd.DataFrame(rows, columns=columns if not rows else None).set_index("parameter")

    def summary(self) -> dict[str, Any]:
        """Return the walk-forward as plain data (saved as walkforward.json, shown by reports)."""
        table = self.table()
        return {
            "folds": _records(table),
            "stability": _records(self.stability().reset_index()),
            "out_of_sample": {k: plain(v) for k, v in self.stitched.metrics.items()},
            "in_sample_mean": {
                name: plain(float(table[f"is_{name}"].mean())) for name in FOLD_METRICS
            },
            "out_of_sample_mean": {
                name: plain(float(table[f"oos_{name}"].mean())) for name in FOLD_METRICS
            },
        }

    def save(self, directory: str | Path) -> Path:
        """Write folds.csv, stability.csv, walkforward.json and every fold's results.

        The report: `ReportGenerator().generate_full_report(result.segments(), folder)`.
        """
        import json

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        summary = self.summary()
        self.table().to_csv(folder / "folds.csv", index=False)
        self.stability().to_csv(folder / "stability.csv")
        text = json.dumps(summary, indent=2, default=str, allow_nan=False)
        atomic_write_bytes(folder / "walkforward.json", text.encode())
        for f in self.folds:
            f.in_sample.save(folder / f"fold-{f.fold.number}" / "in-sample")
            f.out_of_sample.save(folder / f"fold-{f.fold.number}" / "out-of-sample")
        self.stitched.info["walk_forward"] = summary
        self.stitched.save(folder / "out-of-sample")
        return folder

    def segments(self) -> dict[str, Any]:
        """Return the results the report sets side by side (the stitched one last, in full)."""
        parts: dict[str, Any] = {}
        for f in self.folds:
            parts[f"fold {f.fold.number} in-sample"] = f.in_sample
            parts[f"fold {f.fold.number} out-of-sample"] = f.out_of_sample
        parts["out-of-sample (stitched)"] = self.stitched
        return parts


class Folded:
    """Data cut into walk-forward folds (settings default to the `optimization` section)."""

    def __init__(
        self,
        data: Data,
        settings: Settings | None,
        folds: int | None,
        train: float | None,
        anchored: bool | None,
        purge: int | None,
        embargo: int | None,
    ) -> None:
        self.settings = settings or Settings()
        opt = self.settings.optimization
        self.data = data
        self.index = align(data).index
        self.folds = walk_forward_folds(
            len(self.index),
            opt.folds if folds is None else folds,
            opt.train_fraction if train is None else train,
            anchored=opt.anchored if anchored is None else anchored,
            purge=opt.purge_bars if purge is None else purge,
            embargo=opt.embargo_bars if embargo is None else embargo,
        )

    def spans(
        self, fold: Fold
    ) -> tuple[pd.Timestamp, pd.Timestamp | None, pd.Timestamp, pd.Timestamp | None]:
        """Return a fold's (train start, train end, test start, test end) times; ends exclusive."""
        return (*self._span(fold.train), *self._span(fold.test))

    def _span(self, span: tuple[int, int]) -> tuple[pd.Timestamp, pd.Timestamp | None]:
        """Return a [start, stop) span of bar positions as times (stop None: to the end)."""
        start, stop = span
        return self.index[start], (self.index[stop] if stop < len(self.index) else None)

    def fold_result(
        self,
        fold: Fold,
        backtest: Callable[[pd.Timestamp, pd.Timestamp | None], BacktestResult],
        search: OptimizationResult | None,
        params: dict[str, Any],
        model: dict[str, Any] | None = None,
    ) -> FoldResult:
        """Return a fold's in- and out-of-sample backtests (`backtest(start, end)` runs one)."""
        train_start, train_end, test_start, test_end = self.spans(fold)
        return FoldResult(
            fold=fold,
            train_span=(self.index[fold.train[0]], self.index[fold.train[1] - 1]),
            test_span=(self.index[fold.test[0]], self.index[fold.test[1] - 1]),
            search=search,
            params=params,
            in_sample=backtest(train_start, train_end),
            out_of_sample=backtest(test_start, test_end),
            model=model,
        )


class WalkForward(Folded):
    """Walk-forward validation of the multi-agent strategy over a search space.

    Fold settings default to the `optimization` section (folds, train_fraction, anchored,
    purge_bars, embargo_bars); the search per fold is a `StrategyOptimizer` with the same
    method, objectives, constraints and trial budget.
    """

    def __init__(
        self,
        data: Data,
        space: SearchSpace,
        objectives: Sequence[str | Objective] = ("sharpe",),
        *,
        folds: int | None = None,
        train: float | None = None,
        anchored: bool | None = None,
        purge: int | None = None,
        embargo: int | None = None,
        method: str | None = None,
        settings: Settings | None = None,
        constraints: Sequence[str | Constraint] = (),
        n_trials: int | None = None,
        storage: str | None = "settings",
        seed: int | None = None,
    ) -> None:
        super().__init__(data, settings, folds, train, anchored, purge, embargo)
        self.space = space
        self.objectives = objectives
        self.constraints = constraints
        self.method = method
        self.n_trials = n_trials
        self.storage = storage
        self.seed = seed

    def optimizer(self, fold: Fold) -> StrategyOptimizer:
        """Return the search of one fold's in-sample span."""
        start, end = self._span(fold.train)
        return StrategyOptimizer(
            self.data,
            self.space,
            self.objectives,
            method=self.method,
            settings=self.settings,
            constraints=self.constraints,
            n_trials=self.n_trials,
            storage=self.storage,
            seed=self.seed,
            start=start,
            end=end,
        )

    def run(
        self,
        *,
        executor: TrialExecutor[TrialData] | None = None,
        progress: Callable[[int, int, int], None] | None = None,
    ) -> WalkForwardResult:
        """Run every fold; `progress(fold, done, total)` follows each fold's trials."""
        if executor is None:
            shared = self.optimizer(self.folds[0]).trial_data()
            with open_executor(self.settings, shared) as owned:
                return self.run(executor=owned, progress=progress)
        results = []
        for fold in self.folds:
            optimizer = self.optimizer(fold)

            def step(done: int, total: int, number: int = fold.number) -> None:
                if progress is not None:
                    progress(number, done, total)

            search = optimizer.optimize(executor=executor, progress=step)
            if search.best_params is None:
                raise UserInputError(
                    f"fold {fold.number}: no feasible trial in-sample — {why_none(optimizer)}"
                )
            settings = self.settings.with_params(search.best_params)

            def backtest(
                start: pd.Timestamp, end: pd.Timestamp | None, settings: Settings = settings
            ) -> BacktestResult:
                return run_backtest(self.data, settings, start, end)

            results.append(self.fold_result(fold, backtest, search, search.best_params))
        stitched = stitch([r.out_of_sample for r in results], name="walk-forward out-of-sample")
        return WalkForwardResult(tuple(results), stitched, self.space, self.settings.public_dict())


class WalkForwardTraining(Folded):
    """Walk-forward RL: in each fold train an agent in-sample, trade with it out-of-sample.

    The RL training pipeline (`TrainingPipeline`, with its own validation split inside the
    in-sample span) trains a model per fold; the multi-agent strategy with that model in the
    tower is then backtested on the fold's spans. One symbol (RL models are per symbol).
    """

    def __init__(
        self,
        data: Data,
        algorithm: str = "ppo",
        *,
        timesteps: int | None = None,
        folds: int | None = None,
        train: float | None = None,
        anchored: bool | None = None,
        purge: int | None = None,
        embargo: int | None = None,
        settings: Settings | None = None,
        seed: int | None = None,
    ) -> None:
        frames = {"": data} if isinstance(data, pd.DataFrame) else dict(data)
        if len(frames) != 1:
            raise UserInputError(
                f"walk-forward RL trains one model per symbol: give one symbol, not {len(frames)}"
            )
        super().__init__(data, settings, folds, train, anchored, purge, embargo)
        self.frame = next(iter(frames.values()))
        self.symbol = next(iter(frames)) or None
        self.algorithm = algorithm
        self.timesteps = timesteps
        self.seed = seed

    def run(self, *, progress: Callable[[int, int, int], None] | None = None) -> WalkForwardResult:
        """Train and trade every fold; `progress(fold, done, total)` follows the folds."""
        from reinforcetrade.agents.training import TrainingPipeline

        results = []
        for fold in self.folds:
            train_start, train_end, _, _ = self.spans(fold)
            span = self.frame.loc[self.frame.index >= train_start]
            span = span.loc[span.index < train_end] if train_end is not None else span
            pipeline = TrainingPipeline(self.algorithm, settings=self.settings)
            record = pipeline.train(span, self.timesteps, symbol=self.symbol, seed=self.seed)
            results.append(
                self.fold_result(
                    fold, self._backtester(record), None, {"model": record.id}, record.to_dict()
                )
            )
            if progress is not None:
                progress(fold.number, fold.number, len(self.folds))
        stitched = stitch([r.out_of_sample for r in results], name="walk-forward out-of-sample")
        return WalkForwardResult(tuple(results), stitched, None, self.settings.public_dict())

    def _backtester(
        self, record: Any
    ) -> Callable[[pd.Timestamp, pd.Timestamp | None], BacktestResult]:
        """Return a backtest of the multi-agent strategy with this model in the tower."""

        def backtest(start: pd.Timestamp, end: pd.Timestamp | None) -> BacktestResult:
            return trade_span(self.frame, self.symbol, self.settings, record, start, end)

        return backtest


def trade_span(
    frame: pd.DataFrame,
    symbol: str | None,
    settings: Settings,
    model: Any,
    start: pd.Timestamp,
    end: pd.Timestamp | None,
    registry: Any = None,
) -> BacktestResult:
    """Backtest the multi-agent strategy with `model` (None: no RL agent) on [start, end).

    The bars before `start` only warm the agents up; `registry` holds the model (default:
    `rl.models_dir`).
    """
    from reinforcetrade.backtesting import EnhancedBacktester
    from reinforcetrade.strategies import MultiAgentStrategy

    bars = frame.loc[frame.index < end] if end is not None else frame
    strategy = MultiAgentStrategy(model=model, settings=settings, registry=registry)
    return EnhancedBacktester(strategy, settings=settings).run(bars, symbol=symbol, start=start)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): plain(v) for k, v in row.items()} for row in frame.to_dict("records")]

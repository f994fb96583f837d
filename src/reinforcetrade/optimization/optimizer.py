"""`StrategyOptimizer`: grid, genetic (NSGA-II), TPE and random search through one API.

A study lives in Optuna storage (a SQLite file by default, PostgreSQL by URL), so it can be
resumed — running the same search again continues it — and shared between machines. Trials are
asked in batches of `optimization.batch_size`, run on an executor (local processes or a Dask
cluster; the market is shipped to each worker once) and told back in the order they were asked:
for a given seed and batch size the search is the same on any executor.

Every result carries the overfitting diagnostics: the deflated Sharpe ratio of the chosen trial
(given how many were tried) and the probability of backtest overfitting across the trials.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from reinforcetrade.backtesting import BacktestResult
from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.plain import plain
from reinforcetrade.optimization.diagnostics import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
)
from reinforcetrade.optimization.evaluate import (
    Data,
    TrialData,
    TrialOutcome,
    TrialTask,
    data_fingerprint,
    evaluate_trial,
    run_backtest,
)
from reinforcetrade.optimization.executors import TrialExecutor, make_executor
from reinforcetrade.optimization.objectives import (
    Constraint,
    Objective,
    objectives_from,
    pareto_front,
)
from reinforcetrade.optimization.space import SearchSpace

METHODS = ("grid", "genetic", "tpe", "random")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class OptimizationResult:
    """Every trial of a search, the chosen parameters, the Pareto front and the diagnostics."""

    method: str
    study_name: str
    space: list[dict[str, Any]]
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    trials: pd.DataFrame = field(repr=False)
    best_params: dict[str, Any] | None
    best_number: int | None
    pareto: tuple[int, ...]
    diagnostics: dict[str, Any]
    seconds: float
    workers: int

    def space_paths(self) -> list[str]:
        """Return the tuned settings' dotted paths."""
        return [str(p["path"]) for p in self.space]

    @property
    def best_values(self) -> dict[str, float]:
        """Return the chosen trial's objective values by name."""
        if self.best_number is None:
            return {}
        row = self.trials.loc[self.trials["number"] == self.best_number].iloc[0]
        return {o.name: float(row[o.name]) for o in self.objectives}

    def summary(self) -> dict[str, Any]:
        """Return the search as plain data (what `save` writes to summary.json)."""
        return {
            "method": self.method,
            "study": self.study_name,
            "space": self.space,
            "objectives": [{"name": o.name, "direction": o.direction} for o in self.objectives],
            "constraints": [str(c) for c in self.constraints],
            "trials": len(self.trials),
            "feasible": int(self.trials["feasible"].sum()) if len(self.trials) else 0,
            "best_params": self.best_params,
            "best_number": self.best_number,
            "best_values": self.best_values,
            "pareto": list(self.pareto),
            "diagnostics": self.diagnostics,
            "seconds": self.seconds,
            "workers": self.workers,
        }


class StrategyOptimizer:
    """Searches the multi-agent strategy's settings for the best objective values.

    >>> from reinforcetrade.data import DataLoader
    >>> data = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=1_500, seed=7)
    >>> space = SearchSpace.from_mapping({"tower.entry_confidence": [0.5, 0.6]})
    >>> settings = Settings(optimization={"n_jobs": 1, "min_trades": 0})
    >>> optimizer = StrategyOptimizer(data, space, method="grid", settings=settings, storage=None)
    >>> result = optimizer.optimize()
    >>> len(result.trials), sorted(result.best_params)
    (2, ['tower.entry_confidence'])
    """

    def __init__(
        self,
        data: Data,
        space: SearchSpace,
        objectives: Sequence[str | Objective] = ("sharpe",),
        *,
        method: str | None = None,
        settings: Settings | None = None,
        constraints: Sequence[str | Constraint] = (),
        n_trials: int | None = None,
        storage: str | None = "settings",
        study_name: str | None = None,
        seed: int | None = None,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
    ) -> None:
        self.settings = settings or Settings()
        opt = self.settings.optimization
        self.data = data
        self.space = space
        self.objectives = objectives_from(objectives)
        self.method = method or opt.method
        if self.method not in METHODS:
            raise UserInputError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        parsed = [c if isinstance(c, Constraint) else Constraint.parse(c) for c in constraints]
        if opt.min_trades and not any(c.metric == "trade_count" for c in parsed):
            parsed.append(Constraint("trade_count", ">=", float(opt.min_trades)))
        self.constraints = tuple(parsed)
        self.n_trials = n_trials
        self.storage = opt.storage if storage == "settings" else storage
        self.seed = self.settings.backtest.seed if seed is None else seed
        self.start = None if start is None else pd.Timestamp(start)
        self.end = None if end is None else pd.Timestamp(end)
        space.check(self.settings)
        self.study_name = study_name or self._default_study_name()

    def trial_data(self) -> TrialData:
        """Return what every worker holds (build an executor from it to share between runs)."""
        return TrialData(self.data, self.settings, self.objectives, self.constraints)

    def optimize(
        self,
        n_trials: int | None = None,
        *,
        executor: TrialExecutor[TrialData] | None = None,
        progress: Progress | None = None,
    ) -> OptimizationResult:
        """Run (or continue) the search; return every trial and the chosen parameters.

        `n_trials` more trials are run (grid: the grid points not yet run, at most n_trials).
        """
        began = time.perf_counter()
        if executor is None:
            with open_executor(self.settings, self.trial_data()) as owned:
                return self.optimize(n_trials, executor=owned, progress=progress)
        storage = self._storage()
        try:
            mirror = _Mirror(self._study(storage) if storage is not None else None)
            working = optuna.create_study(
                directions=[o.direction for o in self.objectives], sampler=self._sampler()
            )
            try:
                mirror.pull(working)
                self._search(working, mirror, n_trials, executor, progress)
            finally:
                mirror.close()  # whatever ran is stored, even after an error
            final = mirror.study or working
            return self._result(final, time.perf_counter() - began, executor.workers)
        finally:
            if isinstance(storage, optuna.storages.RDBStorage):
                storage.engine.dispose()  # close its connections (SQLite file, PostgreSQL)

    def _search(
        self,
        study: optuna.Study,
        mirror: _Mirror,
        n_trials: int | None,
        executor: TrialExecutor[TrialData],
        progress: Progress | None,
    ) -> None:
        """Ask, run and tell batches of trials on the in-memory study; mirror each batch."""
        wanted = n_trials if n_trials is not None else self.n_trials
        queue = self._grid_queue(study, wanted) if self.method == "grid" else None
        total = len(queue) if queue is not None else (wanted or self.settings.optimization.n_trials)
        distributions = self._distributions()
        batch = self.settings.optimization.batch_size
        done = 0
        while done < total:
            if done:
                mirror.pull(study)  # trials other machines added to a shared study meanwhile
            known = {
                _key(self._clean(t.params)): _outcome(t)
                for t in study.get_trials(deepcopy=False)
                if t.state in (TrialState.COMPLETE, TrialState.FAIL) and "metrics" in t.user_attrs
            }
            size = min(batch, total - done)
            if queue is not None:
                for params in queue[done : done + size]:
                    study.enqueue_trial(params)
            asked = [study.ask(distributions) for _ in range(size)]
            tasks = [
                TrialTask(t.number, self._clean(t.params), self.start, self.end) for t in asked
            ]
            fresh = list({_key(t.params): t for t in tasks if _key(t.params) not in known}.values())
            offset = done

            def step(
                k: int, _n: int, offset: int = offset, skipped: int = size - len(fresh)
            ) -> None:
                if progress is not None:
                    progress(offset + skipped + k, total)

            outcomes = executor.map(evaluate_trial, fresh, progress=step) if fresh else []
            for outcome in outcomes:
                known[_key(outcome.params)] = outcome
            for trial, task in zip(asked, tasks, strict=True):
                trial.set_user_attr("run", mirror.run)
                self._tell(study, trial, known[_key(task.params)], task.number)
            finished = study.get_trials(deepcopy=False)
            mirror.push([finished[t.number] for t in asked])
            done += size
            if progress is not None:
                progress(done, total)

    def best_result(self, result: OptimizationResult) -> BacktestResult:
        """Return the backtest of the chosen parameters (run here, with every table)."""
        if result.best_params is None:
            raise UserInputError(
                f"no feasible trial in study {result.study_name!r}: {why_none(self)}"
            )
        settings = self.settings.with_params(result.best_params)
        return run_backtest(self.data, settings, self.start, self.end)

    # --- internals ----------------------------------------------------------------------------
    def _default_study_name(self) -> str:
        """Return a name fixed by what the search is: the same search resumes the same study."""
        spec = {
            "method": self.method,
            "space": self.space.describe(),
            "objectives": [(o.name, o.direction) for o in self.objectives],
            "constraints": [str(c) for c in self.constraints],
            "data": data_fingerprint(self.data),
            "settings": self.settings.config_hash(),
            "span": [str(self.start), str(self.end)],
            "seed": self.seed,
        }
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode())
        return f"{self.method}-{digest.hexdigest()[:12]}"

    def _storage(self) -> optuna.storages.BaseStorage:
        """Return the study's storage: in memory without a URL, else a database."""
        if self.storage is None:
            return optuna.storages.InMemoryStorage()
        if self.storage.startswith("sqlite:///") and self.storage != "sqlite:///:memory:":
            Path(self.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            return optuna.storages.RDBStorage(self.storage)
        except Exception as exc:  # a bad URL, a missing driver, an unreachable server
            raise UserInputError(
                f"cannot open the study storage {_masked(self.storage)}: {exc}"
            ) from None

    def _study(self, storage: optuna.storages.BaseStorage) -> optuna.Study:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        directions = [o.direction for o in self.objectives]
        try:
            return optuna.create_study(
                study_name=self.study_name,
                storage=storage,
                directions=directions,
                sampler=self._sampler(),
                load_if_exists=True,
            )
        except ValueError as exc:  # e.g. an existing study with other directions
            raise UserInputError(
                f"study {self.study_name!r} in {_masked(self.storage)}: {exc}"
            ) from None

    def _sampler(self) -> optuna.samplers.BaseSampler:
        if self.method == "genetic":
            population = self.settings.optimization.population_size
            return optuna.samplers.NSGAIISampler(population_size=population, seed=self.seed)
        if self.method == "tpe":
            return optuna.samplers.TPESampler(seed=self.seed, multivariate=True)
        return optuna.samplers.RandomSampler(seed=self.seed)

    def _distributions(self) -> dict[str, BaseDistribution]:
        if self.method == "grid":
            return {p.path: CategoricalDistribution(p.values()) for p in self.space}
        return self.space.distributions()

    def _clean(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {p.path: p.clean(params[p.path]) for p in self.space}

    def _grid_queue(self, study: optuna.Study, wanted: int | None) -> list[dict[str, Any]]:
        seen = {
            _key(self._clean(t.params))
            for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.FAIL)
        }
        queue = [p for p in self.space.grid() if _key(p) not in seen]
        return queue if wanted is None else queue[:wanted]

    def _tell(
        self, study: optuna.Study, trial: optuna.Trial, outcome: TrialOutcome, n: int
    ) -> None:
        trial.set_user_attr("metrics", outcome.metrics)
        trial.set_user_attr("blocks", outcome.blocks)
        for constraint, violation in zip(self.constraints, outcome.violations, strict=True):
            trial.set_constraint(str(constraint), min(violation, 1e12))  # samplers avoid > 0
        trial.set_user_attr(
            "outcome",
            {"violations": list(outcome.violations), "seconds": outcome.seconds,
             "error": outcome.error},
        )  # fmt: skip
        if outcome.error is None and all(math.isfinite(v) for v in outcome.values):
            study.tell(trial, list(outcome.values))
        else:
            study.tell(trial, state=TrialState.FAIL)

    def _result(self, study: optuna.Study, seconds: float, workers: int) -> OptimizationResult:
        trials = trials_table(study.get_trials(deepcopy=False), self.space.paths, self.objectives)
        best, pareto = choose(trials, self.objectives)
        best_params = None
        if best is not None:
            row = trials.loc[trials["number"] == best].iloc[0]
            best_params = {p.path: p.clean(row[p.path]) for p in self.space}
        return OptimizationResult(
            method=self.method,
            study_name=self.study_name,
            space=self.space.describe(),
            objectives=self.objectives,
            constraints=self.constraints,
            trials=trials,
            best_params=best_params,
            best_number=best,
            pareto=tuple(pareto),
            diagnostics=diagnostics(study.get_trials(deepcopy=False), best),
            seconds=seconds,
            workers=workers,
        )


def open_executor(settings: Settings, shared: TrialData) -> TrialExecutor[TrialData]:
    """Return the executor the settings name: a Dask cluster whenever a scheduler is given."""
    opt = settings.optimization
    kind = "dask" if opt.dask_address else opt.executor
    return make_executor(shared, executor=kind, workers=opt.n_jobs, address=opt.dask_address)


class _Mirror:
    """The persistent study, kept in step with the in-memory one the sampler works on.

    Optuna's database storage costs tens of milliseconds per trial (a query per parameter and
    attribute), so the search runs on an in-memory study and each finished batch is written by
    a background thread while the workers compute the next one. Trials that other machines add
    to a shared study are read in before each batch, so the sampler learns from them too.
    """

    def __init__(self, study: optuna.Study | None) -> None:
        self.study = study
        self.run = uuid.uuid4().hex[:12]
        self._mirrored: set[int] = set()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="rt-study") if study else None
        self._pending: list[Future[None]] = []

    def pull(self, working: optuna.Study) -> None:
        """Copy the stored trials not yet seen (and not written by this run) into `working`."""
        if self.study is None:
            return
        new = []
        for t in self.study.get_trials(deepcopy=False):
            if t.number in self._mirrored or t.state not in (TrialState.COMPLETE, TrialState.FAIL):
                continue
            self._mirrored.add(t.number)
            if t.user_attrs.get("run") != self.run:
                new.append(t)
        if new:
            working.add_trials(new)

    def push(self, trials: Sequence[FrozenTrial]) -> None:
        """Store finished trials (in the background, in order)."""
        if self.study is not None and self._writer is not None:
            self._pending.append(self._writer.submit(self.study.add_trials, list(trials)))

    def flush(self) -> None:
        """Wait until every pushed trial is stored; re-raise a failed write."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        """Flush and stop the writer."""
        try:
            self.flush()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)


def why_none(optimizer: StrategyOptimizer) -> str:
    """Return why a search may have no feasible trial, and what to do about it."""
    kept = ", ".join(str(c) for c in optimizer.constraints)
    return (
        "every trial failed, had an undefined objective (no trades or no volatility: the span "
        f"may be shorter than the warm-up of {optimizer.settings.backtest.warmup_bars} bars)"
        + (f" or broke a constraint ({kept})" if kept else "")
        + "; give more data or trials, widen the space or relax the constraints"
    )


def trials_table(
    trials: Sequence[FrozenTrial], paths: Sequence[str], objectives: Sequence[Objective]
) -> pd.DataFrame:
    """Return one row per finished trial: parameters, objective values, metrics, feasibility."""
    rows = []
    for t in trials:
        if t.state not in (TrialState.COMPLETE, TrialState.FAIL) or "metrics" not in t.user_attrs:
            continue
        metrics = dict(t.user_attrs.get("metrics", {}))
        outcome = _outcome(t)
        row: dict[str, Any] = {"number": t.number}
        row.update({p: _plain(t.params.get(p)) for p in paths})
        for o, v in zip(objectives, _values(t, outcome, objectives), strict=True):
            row[o.name] = v
        row["feasible"] = outcome.feasible and t.state == TrialState.COMPLETE
        row["error"] = outcome.error
        row["seconds"] = outcome.seconds
        for name, value in metrics.items():
            row.setdefault(name, value)
        rows.append(row)
    return pd.DataFrame(rows)


def choose(trials: pd.DataFrame, objectives: Sequence[Objective]) -> tuple[int | None, list[int]]:
    """Return (the chosen trial, the Pareto front) among the feasible trials.

    One objective: the best value (the earliest trial among equals). Several: the Pareto front,
    and of it the trial best on the first objective.
    """
    if not len(trials):
        return None, []
    feasible = trials[trials["feasible"]]
    if not len(feasible):
        return None, []
    values = feasible[[o.name for o in objectives]].to_numpy(dtype=np.float64)
    front = feasible["number"].to_numpy()[pareto_front(values, [o.direction for o in objectives])]
    first = objectives[0]
    ordered = feasible.sort_values(
        [first.name, "number"], ascending=[first.direction == "minimize", True], kind="stable"
    )
    if len(objectives) > 1:
        ordered = ordered[ordered["number"].isin(front)]
    return int(ordered["number"].iloc[0]), sorted(int(n) for n in front)


def diagnostics(trials: Sequence[FrozenTrial], chosen: int | None) -> dict[str, Any]:
    """Return the deflated Sharpe ratio of the chosen trial and the PBO across the trials."""
    ran = [t for t in trials if t.user_attrs.get("blocks") and not _outcome(t).error]
    unique: dict[tuple[Any, ...], FrozenTrial] = {}
    for t in ran:
        unique.setdefault(_key(t.params), t)
    distinct = list(unique.values())
    out: dict[str, Any] = {"distinct_trials": len(distinct)}
    if not distinct:
        return out
    stats = np.asarray([t.user_attrs["blocks"] for t in distinct], dtype=np.float64)
    n, total, squares = (
        stats[..., 0].sum(axis=1),
        stats[..., 1].sum(axis=1),
        stats[..., 2].sum(axis=1),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        std = np.sqrt(np.maximum(squares - n * mean**2, 0.0) / (n - 1))
        sharpe = np.where(std > 0, mean / std, np.nan)  # per bar
    finite = np.isfinite(sharpe)
    out["sharpe_per_bar_variance"] = (
        float(np.var(sharpe[finite], ddof=1)) if finite.sum() > 1 else None
    )
    by_number = {t.number: i for i, t in enumerate(distinct)}
    chosen_trial = next((t for t in ran if t.number == chosen), None)
    if chosen_trial is not None and out["sharpe_per_bar_variance"] is not None:
        i = by_number.get(
            chosen_trial.number, by_number.get(unique[_key(chosen_trial.params)].number)
        )
        metrics = chosen_trial.user_attrs["metrics"]
        skew = float(metrics.get("skew", 0.0))
        kurt = float(metrics.get("kurtosis", 0.0)) + 3.0  # metrics hold excess kurtosis
        dsr = deflated_sharpe_ratio(
            float(sharpe[i]), len(distinct), out["sharpe_per_bar_variance"], int(n[i]),
            0.0 if math.isnan(skew) else skew, 3.0 if math.isnan(kurt) else kurt,
        )  # fmt: skip
        out["deflated_sharpe_ratio"] = plain(dsr)
        out["chosen_sharpe_per_bar"] = plain(float(sharpe[i]))
    if len(distinct) >= 2 and stats.shape[1] >= 2 and stats.shape[1] % 2 == 0:
        pbo = probability_of_backtest_overfitting(stats)
        out["pbo"] = plain(float(pbo.pbo))
        out["pbo_combinations"] = int(pbo.combinations)
        out["probability_oos_loss"] = plain(float(pbo.probability_of_loss))
    return out


def _outcome(t: FrozenTrial) -> TrialOutcome:
    metrics = dict(t.user_attrs.get("metrics", {}))
    extra = dict(t.user_attrs.get("outcome", {}))
    values = tuple(t.values) if t.values is not None else ()
    return TrialOutcome(
        t.number,
        dict(t.params),
        metrics=metrics,
        values=values or (math.nan,),
        violations=tuple(float(v) for v in extra.get("violations", [])),
        blocks=list(t.user_attrs.get("blocks", [])),
        error=extra.get("error"),
        seconds=float(extra.get("seconds") or 0.0),
    )


def _values(t: FrozenTrial, outcome: TrialOutcome, objectives: Sequence[Objective]) -> list[float]:
    if t.values is not None:
        return [float(v) for v in t.values]
    return [o.value(outcome.metrics) if o.function is None else math.nan for o in objectives]


def _key(params: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(
        sorted((k, round(v, 12) if isinstance(v, float) else v) for k, v in params.items())
    )


def _plain(value: Any) -> Any:
    return round(value, 12) if isinstance(value, float) else value


def _masked(url: str | None) -> str:
    """Return a storage URL without its password."""
    if not url or "@" not in url or "://" not in url:
        return str(url or "memory")
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url

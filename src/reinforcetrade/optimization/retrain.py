"""The self-reinforcement loop's retrain: a challenger against the champion, out of sample.

`Retrainer.run(data)` cuts the data into walk-forward folds. In each fold the challenger's
recipe (algorithm, hyperparameters — tuned by a genetic search when asked — and timesteps) is
trained on the in-sample span and the multi-agent strategy with that model trades the
out-of-sample span; the champion (the registry's model as it trades now, or the rule-based
agents alone when there is none) trades the very same spans. Both out-of-sample histories are
stitched and scored by their Sharpe ratio. The challenger is promoted only when it

- made at least `retrain.min_trades` trades out of sample,
- beat the champion's Sharpe ratio by `retrain.margin`, and
- has a deflated Sharpe ratio of its advantage (its per-bar returns less the champion's on the
  same bars: the probability that the edge over the champion is skill, deflated by the
  hyperparameter sets tried) of at least `retrain.min_deflated_sharpe`.

Then one model is trained on all the data with the same recipe and crowned in the registry
(refused if the champion changed meanwhile). The fixed champion may have been trained on some of
the out-of-sample spans: that flatters it, which only makes the challenger's task harder (the
record says which folds overlapped). Every run — promoted, kept or failed — writes one record to
the journal (`retrains`): what was tried, every fold's figures, the verdict and why.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.backtesting import BacktestResult, SavedResult, stitch
from reinforcetrade.config import Settings
from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.plain import plain
from reinforcetrade.data.placebo import destroy_order
from reinforcetrade.data.schema import symbol_of, timeframe_of
from reinforcetrade.data.validate import validate
from reinforcetrade.features.performance import (
    kurtosis,
    periods_per_year,
    returns_from_equity,
    skew,
)
from reinforcetrade.optimization.diagnostics import deflated_sharpe_ratio
from reinforcetrade.optimization.folds import Fold, walk_forward_folds
from reinforcetrade.optimization.walkforward import trade_span

if TYPE_CHECKING:
    from reinforcetrade.agents.registry import ModelRecord, ModelRegistry
    from reinforcetrade.ml.refit import FactorRefit
    from reinforcetrade.ml.reweight import WeightChange
    from reinforcetrade.storage import Journal

F8 = npt.NDArray[np.float64]
Verdict = Literal["promoted", "kept", "failed"]
METRIC = "oos_sharpe"
#: the hyperparameters the genetic search tunes: (low, high, log scale)
TUNED: dict[str, tuple[float, float, bool]] = {
    "learning_rate": (1e-5, 3e-3, True),
    "gamma": (0.9, 0.999, False),
    "ent_coef": (0.0, 0.05, False),
}
_ENTROPY = frozenset({"ppo", "a2c"})


@dataclass(frozen=True)
class Contender:
    """One side's out-of-sample record on the folds: per fold and stitched."""

    name: str  # "challenger", "champion" or "rule agents"
    model: str | None  # the champion's model id (None: the challenger's are one per fold)
    folds: tuple[dict[str, Any], ...]
    sharpe: float  # annualised, of the stitched out-of-sample returns
    total_return: float
    trades: int
    returns: F8 = field(repr=False)
    result: SavedResult | None = field(default=None, repr=False)  # the stitched history

    def summary(self) -> dict[str, Any]:
        """Return the figures as plain data."""
        return {"name": self.name, "model": self.model, "sharpe": plain(self.sharpe),
                "total_return": plain(self.total_return), "trades": self.trades,
                "bars": int(self.returns.size), "folds": list(self.folds)}  # fmt: skip


@dataclass(frozen=True)
class RetrainResult:
    """A retrain's verdict, its figures and what was tried (as recorded in the journal)."""

    symbol: str
    timeframe: str
    algorithm: str
    trigger: str
    verdict: Verdict
    reason: str
    champion_id: str | None
    challenger: Contender | None
    champion: Contender | None  # the champion's side, or the rule agents' when there is none
    deflated_sharpe: float  # of the challenger's advantage over `champion`
    trials: int
    margin: float
    model: ModelRecord | None  # the model crowned (None unless promoted)
    tried: dict[str, Any]
    data: dict[str, Any]
    weights: WeightChange | None = None
    record_id: int | None = None
    baseline: Contender | None = None  # the rule agents alone
    factors: FactorRefit | None = None  # the factor pipeline's refit, when asked

    @property
    def promoted(self) -> bool:
        """Return True when the challenger became the champion."""
        return self.verdict == "promoted"

    def figures(self) -> dict[str, Any]:
        """Return both contenders' figures and the deflated Sharpe ratio as plain data."""
        return {
            "challenger": None if self.challenger is None else self.challenger.summary(),
            "champion": None if self.champion is None else self.champion.summary(),
            "rule_agents": None if self.baseline is None else self.baseline.summary(),
            "deflated_sharpe": plain(self.deflated_sharpe),
            "min_deflated_sharpe": self.tried.get("min_deflated_sharpe"),
            "margin": self.margin,
            "factors": None if self.factors is None else self.factors.to_dict(),
        }


class Retrainer:
    """Retrain, validate against the champion, promote only a winner, and record it all.

    Settings come from `retrain` (margin, deflated-Sharpe bar, folds, timesteps, tuning,
    re-weighting) with the folds' shape from `optimization` and training from `rl`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        registry: ModelRegistry | None = None,
        journal: Journal | None = None,
        clock: Clock | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        from reinforcetrade.agents.registry import ModelRegistry

        self.settings = settings or Settings()
        self.clock = clock or WallClock()
        self.registry = registry or ModelRegistry(self.settings.rl.models_dir, clock=self.clock)
        self.journal = journal
        self.progress = progress or (lambda _message: None)

    def run(
        self,
        data: pd.DataFrame,
        *,
        symbol: str | None = None,
        timesteps: int | None = None,
        tune: bool = False,
        reweight: bool = False,
        experience: int | None = None,
        placebo: bool = False,
        factors: bool = False,
        trigger: Literal["manual", "schedule"] = "manual",
        seed: int | None = None,
    ) -> RetrainResult:
        """Retrain on `data` (one symbol's bars, the latest last) and return the verdict.

        `reweight` re-estimates the tower's weights from the out-of-sample votes of the side that
        will trade, or from the decisions of journal run `experience` (paper or live) when
        given. `placebo` trains the challenger on the bars in a destroyed order (`destroy_order`)
        and trades it on the real ones: a check of the validation, which must never promote
        it. `factors` also refits the saved factor pipeline (`agents.factor.model`), which
        replaces the file only if it wins out of sample (`ml.refit`). A failure (too little
        data, say) is recorded as a failed retrain, then raised.
        """
        cfg = self.settings.retrain
        started = self.clock.now_ns()
        frame = validate(data, gaps="keep")
        symbol = symbol or symbol_of(frame) or "SYMBOL"
        tf = timeframe_of(frame)
        if tf is None:
            raise UserInputError("cannot tell the bar length of the data; set attrs['timeframe']")
        champion = self.registry.champion(symbol, tf.text)
        algorithm = cfg.algorithm or (
            champion.algorithm if champion is not None else self.settings.rl.algorithm
        )
        steps = int(timesteps if timesteps is not None else cfg.timesteps)
        seed = cfg.seed if seed is None else seed
        tried: dict[str, Any] = {"algorithm": algorithm, "timesteps": steps, "seed": seed,
                                 "folds": cfg.folds, "placebo": placebo, "tuned": tune,
                                 "margin": cfg.margin, "min_trades": cfg.min_trades,
                                 "min_deflated_sharpe": cfg.min_deflated_sharpe,
                                 "factors": factors, "reweight": reweight,
                                 "experience": experience}  # fmt: skip
        facts = _data_facts(frame)
        base: dict[str, Any] = {
            "symbol": symbol, "timeframe": tf.text, "algorithm": algorithm, "trigger": trigger,
            "champion_id": None if champion is None else champion.id, "margin": cfg.margin,
            "tried": tried, "data": facts,
        }  # fmt: skip
        try:
            result = self._judge(frame, symbol, champion, algorithm, steps, seed, tune, placebo,
                                 base)  # fmt: skip
            if factors:
                result = replace(result, factors=self._refit(frame, symbol))
            if reweight:
                result = self._reweight(result, experience)
        except (UserInputError, ValueError) as exc:
            failed = RetrainResult(**base, verdict="failed", reason=str(exc), challenger=None,
                                   champion=None, deflated_sharpe=math.nan, trials=0,
                                   model=None)  # fmt: skip
            self._record(failed, started)
            raise
        return self._record(result, started)

    # -- the steps -----------------------------------------------------------------------------

    def _judge(
        self,
        frame: pd.DataFrame,
        symbol: str,
        champion: ModelRecord | None,
        algorithm: str,
        steps: int,
        seed: int,
        tune: bool,
        placebo: bool,
        base: dict[str, Any],
    ) -> RetrainResult:
        """Score both contenders on the same folds; crown the challenger if it won."""
        from reinforcetrade.agents.training import TrainingPipeline

        cfg, opt = self.settings.retrain, self.settings.optimization
        folds = walk_forward_folds(len(frame), cfg.folds, opt.train_fraction,
                                   anchored=opt.anchored, purge=opt.purge_bars,
                                   embargo=opt.embargo_bars)  # fmt: skip
        per_year = periods_per_year(base["timeframe"], self.settings.backtest.calendar)
        settings, trials, spread = self.settings, 1, 0.0
        if tune:
            settings, trials, spread, search = self._tune(
                _span(frame, folds[0].train), algorithm, steps, seed, placebo, per_year
            )
            base["tried"]["search"] = search
        base["tried"]["hyperparameters"] = TrainingPipeline(
            algorithm, settings=settings, registry=self.registry
        ).hyperparameters()
        with tempfile.TemporaryDirectory(prefix="rt-retrain-") as scratch:
            challenger = self._challenger(frame, symbol, folds, algorithm, steps, seed, placebo,
                                          settings, Path(scratch))  # fmt: skip
        rivals = [self._held(frame, symbol, folds, None)]  # the rule agents alone
        if champion is not None:
            rivals.insert(0, self._held(frame, symbol, folds, champion))
        edges = [_deflated(challenger.returns - r.returns, trials, spread) for r in rivals]
        verdict, reason = _verdict(challenger, rivals, edges, cfg.margin,
                                   cfg.min_deflated_sharpe, cfg.min_trades)  # fmt: skip
        held = rivals[0]
        model = None
        if verdict == "promoted":
            self.progress("training the challenger on all the data")
            data = destroy_order(frame, seed) if placebo else frame
            model = TrainingPipeline(algorithm, settings=settings, registry=self.registry,
                                     clock=self.clock).train(data, steps, symbol=symbol,
                                                             seed=seed)  # fmt: skip
            try:
                self.registry.crown(model, champion=base["champion_id"], metric=METRIC,
                                    challenger_value=challenger.sharpe,
                                    champion_value=held.sharpe, reason=reason)  # fmt: skip
            except UserInputError as exc:
                verdict, reason = "failed", str(exc)
        return RetrainResult(**base, verdict=verdict, reason=reason, challenger=challenger,
                             champion=held, baseline=rivals[-1], deflated_sharpe=edges[0],
                             trials=trials, model=model)  # fmt: skip

    def _challenger(
        self,
        frame: pd.DataFrame,
        symbol: str,
        folds: list[Fold],
        algorithm: str,
        steps: int,
        seed: int,
        placebo: bool,
        settings: Settings,
        scratch: Path,
    ) -> Contender:
        """Train the recipe on each fold's in-sample span; trade each out-of-sample span."""
        from reinforcetrade.agents.registry import ModelRegistry
        from reinforcetrade.agents.training import TrainingPipeline

        registry = ModelRegistry(scratch, clock=self.clock)
        parts, rows = [], []
        for fold in folds:
            self.progress(f"fold {fold.number}/{len(folds)}: training the challenger")
            span = _span(frame, fold.train)
            if placebo:
                span = destroy_order(span, seed + fold.number)
            record = TrainingPipeline(algorithm, settings=settings, registry=registry,
                                      clock=self.clock).train(span, steps, symbol=symbol,
                                                              seed=seed)  # fmt: skip
            result = _backtest(frame, symbol, fold, settings, record, registry)
            parts.append(result)
            rows.append(_fold_row(fold, result) | {
                "model": record.id, "validation_sharpe": plain(record.metric("validation_sharpe")),
            })  # fmt: skip
        return _contender("challenger", None, parts, rows)

    def _held(
        self, frame: pd.DataFrame, symbol: str, folds: list[Fold], model: ModelRecord | None
    ) -> Contender:
        """Trade a fixed model (None: the rule agents alone) on every out-of-sample span."""
        last = None if model is None else model.data.get("last_bar")
        trained_to = pd.Timestamp(last) if isinstance(last, str) else None
        parts, rows = [], []
        name = "rule agents" if model is None else "champion"
        for fold in folds:
            self.progress(f"fold {fold.number}/{len(folds)}: trading the {name}")
            result = _backtest(frame, symbol, fold, self.settings, model, self.registry)
            start = frame.index[fold.test[0]]
            parts.append(result)
            rows.append(_fold_row(fold, result) | {
                "seen_in_training": bool(trained_to is not None and start <= trained_to),
            })  # fmt: skip
        return _contender(name, None if model is None else model.id, parts, rows)

    def _tune(
        self,
        span: pd.DataFrame,
        algorithm: str,
        steps: int,
        seed: int,
        placebo: bool,
        per_year: float,
    ) -> tuple[Settings, int, float, dict[str, Any]]:
        """Search hyperparameters genetically on the first fold's in-sample span only.

        Each trial trains on the span's earlier part and is scored by its validation Sharpe
        ratio on the later part (TrainingPipeline's own split): no out-of-sample bar is seen.
        Returns the best settings, the trials, the variance of their per-bar Sharpe ratios and
        the search's record.
        """
        import optuna

        from reinforcetrade.agents.registry import ModelRegistry
        from reinforcetrade.agents.training import TrainingPipeline

        cfg = self.settings.retrain
        names = [n for n in TUNED if n != "ent_coef" or algorithm in _ENTROPY]
        data = destroy_order(span, seed) if placebo else span
        population = max(2, min(cfg.tune_trials // 2, 8))
        sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        scores: list[float] = []
        with tempfile.TemporaryDirectory(prefix="rt-tune-") as scratch:
            registry = ModelRegistry(Path(scratch), clock=self.clock)
            for number in range(cfg.tune_trials):
                trial = study.ask()
                params = {n: trial.suggest_float(n, lo, hi, log=log)
                          for n, (lo, hi, log) in TUNED.items() if n in names}  # fmt: skip
                self.progress(f"tuning: trial {number + 1}/{cfg.tune_trials}")
                record = TrainingPipeline(algorithm, settings=_with(self.settings, algorithm,
                                                                    params),
                                          registry=registry, clock=self.clock).train(
                    data, steps, seed=seed)  # fmt: skip
                score = record.metric("validation_sharpe")
                scores.append(score)
                study.tell(trial, score if math.isfinite(score) else -1e9)
        best = study.best_trial.params
        finite = np.asarray([s for s in scores if math.isfinite(s)]) / math.sqrt(per_year)
        spread = float(np.var(finite, ddof=1)) if finite.size > 1 else 0.0
        search = {"method": "genetic (NSGA-II)", "population": population,
                  "trials": [{"params": t.params, "validation_sharpe": plain(s)}
                             for t, s in zip(study.trials, scores, strict=True)],
                  "best": best, "span": [str(span.index[0]), str(span.index[-1])]}  # fmt: skip
        return _with(self.settings, algorithm, best), cfg.tune_trials, spread, search

    def _refit(self, frame: pd.DataFrame, symbol: str) -> FactorRefit:
        """Refit the saved factor pipeline on the latest bars (kept only if it wins)."""
        from reinforcetrade.data.bars import Bars
        from reinforcetrade.ml.refit import refit_factors

        cfg, opt = self.settings.retrain, self.settings.optimization
        path = self.settings.agents.factor.model
        if path is None:
            raise UserInputError("refitting factors needs agents.factor.model (a saved pipeline)")
        self.progress(f"refitting the factor pipeline {path}")
        return refit_factors(Bars.from_frame(frame, symbol), path, folds=cfg.folds,
                             train=opt.train_fraction, anchored=opt.anchored,
                             embargo=opt.embargo_bars, margin=cfg.factor_margin,
                             min_z=cfg.factor_min_z)  # fmt: skip

    def _reweight(self, result: RetrainResult, experience: int | None) -> RetrainResult:
        """Re-estimate the tower's weights from a journal run's votes or the out-of-sample ones."""
        from reinforcetrade.ml.performance import AgentPerformance
        from reinforcetrade.ml.reweight import reestimate_weights

        if experience is not None:
            if self.journal is None:
                raise UserInputError("re-weighting from a journal run needs a journal")
            performance = AgentPerformance.from_journal(self.journal, experience)
            source = f"journal run {experience}"
        else:
            side = result.challenger if result.promoted else result.champion
            if side is None or side.result is None:
                return result
            performance = AgentPerformance.from_result(side.result)
            source = f"the {side.name}'s out-of-sample votes"
        cfg = self.settings.retrain
        change = reestimate_weights(
            self.settings.tower.weights, performance.hit_rates,
            performance.agents, max_change=cfg.reweight_max_change,
            min_votes=cfg.reweight_min_votes, floor=cfg.reweight_floor, source=source,
        )  # fmt: skip
        return replace(result, weights=change)

    def _record(self, result: RetrainResult, started: int) -> RetrainResult:
        """Write the retrain's record to the journal (when there is one)."""
        if self.journal is None:
            return result
        ch = result.challenger
        record_id = self.journal.record_retrain(
            started=pd.Timestamp(started, tz="UTC"), symbol=result.symbol,
            timeframe=result.timeframe, algorithm=result.algorithm, trigger=result.trigger,
            verdict=result.verdict, reason=result.reason, metric=METRIC, margin=result.margin,
            trials=result.trials, tried=result.tried, figures=result.figures(), data=result.data,
            challenger=None if result.model is None else result.model.id,
            champion=result.champion_id,
            challenger_value=None if ch is None else plain(ch.sharpe),
            champion_value=None if result.champion is None else plain(result.champion.sharpe),
            deflated_sharpe=plain(result.deflated_sharpe),
            weights=None if result.weights is None else result.weights.to_dict(),
            time=pd.Timestamp(self.clock.now_ns(), tz="UTC"),
        )  # fmt: skip
        return replace(result, record_id=record_id)


def _verdict(
    challenger: Contender,
    rivals: list[Contender],
    edges: list[float],
    margin: float,
    min_dsr: float,
    min_trades: int,
) -> tuple[Verdict, str]:
    """Return the verdict and its reason, with the figures that decided it.

    The challenger must beat every rival — the champion, and the rule agents alone (an RL
    model earns its seat in the tower only by adding to them) — by the margin, with a deflated
    Sharpe ratio of its advantage over each of at least `min_dsr`.
    """
    ch = challenger.sharpe
    champion = rivals[0]
    keeper = f"the {champion.name}" + (f" {champion.model}" if champion.model else "")
    stays = f"{keeper} {'stay' if champion.name == 'rule agents' else 'stays'}"
    against = "; ".join(f"{_fmt(_flat_as_zero(r))} for the {r.name}" for r in rivals)
    figures = f"out-of-sample Sharpe {_fmt(ch)} against {against}"
    if challenger.trades < min_trades:
        return "kept", (
            f"the challenger made {challenger.trades} trades out of sample, fewer than the "
            f"{min_trades} needed to judge it ({figures}); {stays}"
        )
    if not math.isfinite(ch):
        return "kept", f"the challenger has no finite Sharpe ratio out of sample; {stays}"
    for rival, dsr in zip(rivals, edges, strict=True):
        if not ch >= _flat_as_zero(rival) + margin:
            return (
                "kept",
                f"{figures}: not ahead of the {rival.name} by the margin {margin:g}; {stays}",
            )
        if not dsr >= min_dsr:
            return "kept", (
                f"{figures}: ahead by the margin, but the deflated Sharpe ratio of its advantage "
                f"over the {rival.name} is {_fmt(dsr)}, below {min_dsr:g}: too likely luck; {stays}"
            )
    over = ", ".join(f"{_fmt(d)} over the {r.name}" for r, d in zip(rivals, edges, strict=True))
    return "promoted", (
        f"{figures}: ahead of each by more than the margin {margin:g}, and the deflated Sharpe "
        f"ratios of its advantage ({over}) reach {min_dsr:g}"
    )


def _flat_as_zero(contender: Contender) -> float:
    """Return a contender's Sharpe ratio, 0 for one that never moved (no risk, no return)."""
    if math.isfinite(contender.sharpe):
        return contender.sharpe
    return 0.0 if not np.any(contender.returns) else contender.sharpe


def _deflated(returns: F8, trials: int, spread: float) -> float:
    """Return the deflated Sharpe ratio of per-bar (active) returns after `trials` trials."""
    r = returns[np.isfinite(returns)]
    if r.size < 4 or not np.std(r) > 0.0:
        return math.nan
    g3, g2 = skew(r), kurtosis(r)  # bias-corrected, as the optimiser's diagnostics use them
    g3, g2 = (0.0 if math.isnan(g3) else g3), (0.0 if math.isnan(g2) else g2)  # as normal
    sharpe = float(r.mean() / np.std(r, ddof=1))
    return deflated_sharpe_ratio(sharpe, trials, spread, int(r.size), g3, excess_kurtosis=g2)


def _backtest(
    frame: pd.DataFrame,
    symbol: str,
    fold: Fold,
    settings: Settings,
    model: ModelRecord | None,
    registry: ModelRegistry,
) -> BacktestResult:
    """Trade a fold's out-of-sample span (the bars before it only warm the agents up)."""
    start, stop = fold.test
    end = frame.index[stop] if stop < len(frame) else None
    return trade_span(frame, symbol, settings, model, frame.index[start], end, registry)


def _contender(
    name: str, model: str | None, parts: list[BacktestResult], rows: list[dict[str, Any]]
) -> Contender:
    """Stitch a side's out-of-sample results and score them."""
    joined = stitch(parts, name=f"{name} out of sample")
    returns = returns_from_equity(joined.equity.to_numpy(dtype=np.float64))
    metrics = joined.metrics
    return Contender(name, model, tuple(rows), float(metrics.get("sharpe_ratio", math.nan)),
                     float(metrics.get("total_return", math.nan)),
                     int(metrics.get("trade_count", 0)), returns, joined)  # fmt: skip


def _fold_row(fold: Fold, result: BacktestResult) -> dict[str, Any]:
    """Return one fold's out-of-sample figures."""
    m = result.metrics
    return {"fold": fold.number, "test_start": str(result.equity.index[0]),
            "test_end": str(result.equity.index[-1]), "sharpe": plain(m.get("sharpe_ratio")),
            "total_return": plain(m.get("total_return")),
            "trades": int(m.get("trade_count", 0))}  # fmt: skip


def _span(frame: pd.DataFrame, span: tuple[int, int]) -> pd.DataFrame:
    """Return the bars of a [start, stop) span of positions."""
    return frame.iloc[span[0] : span[1]]


def _with(settings: Settings, algorithm: str, params: Mapping[str, float]) -> Settings:
    """Return settings with tuned rl hyperparameters (learning rate, gamma, the rest per algo)."""
    direct = {f"rl.{k}": v for k, v in params.items() if k in ("learning_rate", "gamma")}
    extra = {k: v for k, v in params.items() if k not in ("learning_rate", "gamma")}
    tuned = settings.with_params(direct) if direct else settings
    if extra:
        table = {k: dict(v) for k, v in tuned.rl.hyperparameters.items()}
        table[algorithm] = table.get(algorithm, {}) | extra
        tuned = tuned.with_params({"rl.hyperparameters": table})
    return tuned


def _data_facts(frame: pd.DataFrame) -> dict[str, Any]:
    """Return what identifies the data a retrain saw."""
    from reinforcetrade.agents.training import bars_fingerprint

    return {"fingerprint": bars_fingerprint(frame), "bars": len(frame),
            "first_bar": frame.index[0].isoformat(),
            "last_bar": frame.index[-1].isoformat()}  # fmt: skip


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "n/a"

"""Per-agent performance by regime: hit rate, confidence calibration and P&L attribution.

Everything is read off a run's decision records (`ml.votes`); nothing about a decision is
recomputed. What an agent is credited with is only what it recorded at the decision (signal,
confidence, weight, regime); the outcome a vote is scored against is measured after it, by
design. Attribution: `ml.attribution`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sqlalchemy import select

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.ml.attribution import Attribution, pnl_attribution
from reinforcetrade.ml.labels import check_horizon
from reinforcetrade.ml.votes import (
    ALL,
    DEFAULT_BINS,
    DEFAULT_HORIZON,
    VOTE_COLUMNS,
    agent_votes,
    agents_of,
    closes,
    groups_of,
    journal_votes,
    vote_outcomes,
)
from reinforcetrade.storage import Journal, schema

__all__ = [
    "ALL",
    "VOTE_COLUMNS",
    "AgentPerformance",
    "Attribution",
    "Calibration",
    "agent_votes",
    "calibration",
    "closes",
    "hit_rates",
    "journal_votes",
    "pnl_attribution",
    "vote_outcomes",
]


class ResultTables(Protocol):
    """What `AgentPerformance.from_result` reads: a `BacktestResult` or a `SavedResult`."""

    @property
    def decisions(self) -> pd.DataFrame: ...
    @property
    def bars(self) -> pd.DataFrame: ...
    @property
    def trades(self) -> pd.DataFrame: ...


def hit_rates(
    votes: pd.DataFrame,
    close_by_symbol: Mapping[str, pd.Series],
    horizon: int = DEFAULT_HORIZON,
    *,
    by: str = "regime",
) -> pd.DataFrame:
    """Return each agent's hit rate per regime (column `by`) and over all (regime ``"all"``).

    Columns: agent, `by`, votes (resolved non-zero votes), hits, hit_rate, hit_rate_se (the
    binomial standard error sqrt(p(1-p)/n)), mean_confidence, mean_signed_return (the mean of
    signal × forward return). Rows without votes have NaN rates.
    """
    outcomes = vote_outcomes(votes, close_by_symbol, horizon)
    return _hit_table(outcomes, agents_of(votes), groups_of(votes, by), by)


def _hit_table(
    outcomes: pd.DataFrame, agents: Sequence[str], groups: Sequence[str], by: str
) -> pd.DataFrame:
    """Return `hit_rates`' table from `vote_outcomes`."""
    done = outcomes["resolved"].to_numpy(dtype=bool)
    agent = np.asarray(outcomes["agent"], dtype=object)
    group = np.asarray(outcomes[by], dtype=object)
    hit = outcomes["hit"].to_numpy(dtype=bool)
    confidence = outcomes["confidence"].to_numpy(dtype=np.float64)
    edge = outcomes["signal"].to_numpy(dtype=np.float64) * outcomes["forward_return"].to_numpy()
    rows = []
    for name in agents:
        own = done & (agent == name)
        for label in [ALL, *groups]:
            part = own if label == ALL else own & (group == label)
            n = int(part.sum())
            hits = int(hit[part].sum())
            rate = hits / n if n else math.nan
            rows.append(
                {
                    "agent": name,
                    by: label,
                    "votes": n,
                    "hits": hits,
                    "hit_rate": rate,
                    "hit_rate_se": math.sqrt(rate * (1.0 - rate) / n) if n else math.nan,
                    "mean_confidence": _mean(confidence[part]),
                    "mean_signed_return": _mean(edge[part]),
                }
            )
    columns = ["agent", by, "votes", "hits", "hit_rate", "hit_rate_se", "mean_confidence",
               "mean_signed_return"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


@dataclass(frozen=True)
class Calibration:
    """Confidence bins per agent (``bins``) and each agent's expected calibration error."""

    bins: pd.DataFrame
    error: dict[str, float]


def calibration(
    votes: pd.DataFrame,
    close_by_symbol: Mapping[str, pd.Series],
    horizon: int = DEFAULT_HORIZON,
    *,
    bins: int = DEFAULT_BINS,
) -> Calibration:
    """Return each agent's realised hit rate per confidence bin against what it claimed.

    A directional vote of confidence c claims a hit probability of (1 + c) / 2 — no conviction
    is a coin flip, full conviction a certainty (the factor agent's confidence is exactly
    2·P − 1). Confidence [0, 1] is cut in `bins` equal bins (the last one closed); each row holds
    votes, mean_confidence, expected_hit_rate ((1 + mean confidence) / 2) and hit_rate. The
    error is the expected calibration error: Σ_b (n_b / n) · |hit_rate_b − expected_b| over
    the bins that hold votes (NaN for an agent without resolved votes).
    """
    outcomes = vote_outcomes(votes, close_by_symbol, horizon)
    return _calibration(outcomes, agents_of(votes), bins)


def _calibration(outcomes: pd.DataFrame, agents: Sequence[str], bins: int) -> Calibration:
    """Return `calibration`'s bins and errors from `vote_outcomes`."""
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise UserInputError(f"bins must be a whole number, 1 or more (got {bins!r})")
    confidence = outcomes["confidence"].to_numpy(dtype=np.float64)
    done = outcomes["resolved"].to_numpy(dtype=bool) & np.isfinite(confidence)
    agent = np.asarray(outcomes["agent"], dtype=object)
    hit = outcomes["hit"].to_numpy(dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows, errors = [], {}
    for name in agents:
        own = done & (agent == name)
        c = np.clip(confidence[own], 0.0, 1.0)
        where = np.minimum((c * bins).astype(np.int64), bins - 1)
        hits = hit[own]
        gap = 0.0
        for b in range(bins):
            inside = where == b
            n = int(inside.sum())
            mean = float(c[inside].mean()) if n else math.nan
            rate = float(hits[inside].mean()) if n else math.nan
            expected = (1.0 + mean) / 2.0
            if n:
                gap += n * abs(rate - expected)
            rows.append({"agent": name, "bin": b, "low": float(edges[b]),
                         "high": float(edges[b + 1]), "votes": n, "mean_confidence": mean,
                         "expected_hit_rate": expected, "hit_rate": rate})  # fmt: skip
        errors[name] = gap / c.size if c.size else math.nan
    columns = ["agent", "bin", "low", "high", "votes", "mean_confidence", "expected_hit_rate",
               "hit_rate"]  # fmt: skip
    return Calibration(pd.DataFrame(rows, columns=columns), errors)


# -- P&L attribution --------------------------------------------------------------------------


def _value(x: Any) -> Any:
    """Return a table cell as plain JSON data (NaN and infinities as None)."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass(frozen=True)
class AgentPerformance:
    """Per-agent hit rates, calibration and P&L attribution of one run, by regime.

    Build it with `from_result` (a backtest) or `from_journal` (a journalled run); both read
    the same records and give the same figures for the same decisions.
    """

    agents: tuple[str, ...]
    horizon: int
    decisions: int
    votes: int  # non-zero votes (one per agent and bar)
    unresolved: int  # non-zero votes whose outcome lies beyond the closes known
    hit_rates: pd.DataFrame
    calibration: Calibration
    attribution: Attribution

    @classmethod
    def build(
        cls,
        votes: pd.DataFrame,
        close_by_symbol: Mapping[str, pd.Series],
        trades: pd.DataFrame,
        *,
        decisions: int,
        horizon: int = DEFAULT_HORIZON,
        bins: int = DEFAULT_BINS,
    ) -> AgentPerformance:
        """Return the figures of a vote table, the symbols' closes and the trades."""
        outcomes = vote_outcomes(votes, close_by_symbol, horizon)
        agents = agents_of(votes)
        return cls(
            agents=tuple(agents),
            horizon=int(horizon),
            decisions=int(decisions),
            votes=len(outcomes),
            unresolved=int((~outcomes["resolved"]).sum()),
            hit_rates=_hit_table(outcomes, agents, groups_of(votes, "regime"), "regime"),
            calibration=_calibration(outcomes, agents, bins),
            attribution=pnl_attribution(votes, trades),
        )

    @classmethod
    def from_result(
        cls, result: ResultTables, *, horizon: int = DEFAULT_HORIZON, bins: int = DEFAULT_BINS
    ) -> AgentPerformance:
        """Return the figures of a `BacktestResult` (or `SavedResult`)."""
        decisions = result.decisions
        return cls.build(agent_votes(decisions), closes(result.bars), result.trades,
                         decisions=len(decisions), horizon=horizon, bins=bins)  # fmt: skip

    @classmethod
    def from_journal(
        cls,
        journal: Journal,
        run_id: int,
        *,
        horizon: int = DEFAULT_HORIZON,
        bins: int = DEFAULT_BINS,
    ) -> AgentPerformance:
        """Return the figures of a journalled run (its decisions, agents' votes, bars, trades).

        A saved backtest's run has no bars in the journal: its votes stay unresolved (no hit
        rates), its attribution is complete.
        """
        if journal.run(run_id) is None:
            raise UserInputError(f"journal {journal.name} has no run {run_id}")
        check_horizon(horizon)
        d, a = schema.decisions, schema.decision_agents
        rows = journal.fetch(
            select(a.c.decision_id, a.c.agent, a.c.signal, a.c.confidence, a.c.weight)
            .join(d, d.c.id == a.c.decision_id)
            .where(d.c.run_id == run_id)
        )
        agents = pd.DataFrame(rows, columns=["decision_id", "agent", "signal", "confidence",
                                             "weight"])  # fmt: skip
        decisions = journal.read_table("decisions", run_id=run_id)
        trades = journal.read_table("trades", run_id=run_id)
        trades = trades.rename(columns={"decision_number": "decision"})
        trades = trades[trades["decision"].notna()]
        return cls.build(
            journal_votes(decisions, agents),
            closes(journal.read_table("bars", run_id=run_id)),
            trades,
            decisions=len(decisions),
            horizon=horizon,
            bins=bins,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as plain JSON data, nested by agent then regime (NaN as None)."""
        hits: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        for row in self.hit_rates.to_dict("records"):
            hits[row["agent"]][row["regime"]] = {
                str(k): _value(v) for k, v in row.items() if k not in ("agent", "regime")
            }
        bins: dict[str, list[dict[str, Any]]] = {a: [] for a in self.agents}
        for row in self.calibration.bins.to_dict("records"):
            bins[row["agent"]].append({str(k): _value(v) for k, v in row.items() if k != "agent"})
        pnl: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        for row in self.attribution.totals.to_dict("records"):
            pnl[row["agent"]][row["regime"]] = {"trades": int(row["trades"]),
                                                "pnl": _value(float(row["pnl"]))}  # fmt: skip
        return {
            "horizon": self.horizon,
            "agents": list(self.agents),
            "decisions": self.decisions,
            "votes": self.votes,
            "unresolved_votes": self.unresolved,
            "regimes": list(dict.fromkeys([ALL, *self.hit_rates["regime"].tolist()])),
            "hit_rates": hits,
            "calibration": {
                a: {"error": _value(self.calibration.error.get(a, math.nan)), "bins": bins[a]}
                for a in self.agents
            },
            "attribution": pnl,
            "trades": self.attribution.trades,
            "total_pnl": _value(self.attribution.total_pnl),
            "unattributed_pnl": _value(self.attribution.unattributed_pnl),
        }

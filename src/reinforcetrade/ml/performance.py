"""Per-agent performance by regime: hit rate, confidence calibration and P&L attribution.

Everything is read off a run's decision records — a backtest's wide decision table or the
journal's ``decisions`` + ``decision_agents`` rows, which `agent_votes` and `journal_votes` turn
into the same long table of votes — and nothing about a decision is recomputed. What an agent
is credited with is only what it recorded at the decision (signal, confidence, weight, regime);
the outcome a vote is scored against, the close ``horizon`` bars after the decision bar, is by
design measured after the vote.

>>> votes = pd.DataFrame({"decision": [0, 0], "time": pd.to_datetime(["2024-01-01"] * 2, utc=True),
...     "symbol": "X", "agent": ["a", "b"], "signal": [1, -1], "confidence": [0.8, 0.4],
...     "weight": [0.5, 0.5], "regime": "trending", "vol_regime": "normal",
...     "trend_regime": "up", "action": "enter_long"})
>>> trades = pd.DataFrame({"decision": [0], "side": ["long"], "pnl": [10.0]})
>>> pnl_attribution(votes, trades).totals.query("regime == 'all'")[["agent", "pnl"]]
  agent   pnl
0     a  10.0
2     b   0.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sqlalchemy import select

from reinforcetrade.core.codes import REGIME_KEYS
from reinforcetrade.core.errors import UserInputError
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

#: the regime label of the rows that cover every regime
ALL = "all"
UNKNOWN = "unknown"
#: the long vote table's columns, one row per decision and agent
VOTE_COLUMNS = ("decision", "time", "symbol", "agent", "signal", "confidence", "weight",
                "regime", "vol_regime", "trend_regime", "action")  # fmt: skip
_WORDS = ("symbol", "regime", "vol_regime", "trend_regime", "action")
DEFAULT_HORIZON = 24
DEFAULT_BINS = 5


class ResultTables(Protocol):
    """What `AgentPerformance.from_result` reads: a `BacktestResult` or a `SavedResult`."""

    @property
    def decisions(self) -> pd.DataFrame: ...
    @property
    def bars(self) -> pd.DataFrame: ...
    @property
    def trades(self) -> pd.DataFrame: ...


# -- the vote table ---------------------------------------------------------------------------


def agent_votes(decisions: pd.DataFrame) -> pd.DataFrame:
    """Return every agent's vote per decision from a backtest's wide decision table.

    `decisions` is `BacktestResult.decisions`: its index is the decision number, each agent has
    ``signal_<agent>``, ``confidence_<agent>`` and ``weight_<agent>`` columns. Rows are sorted by
    decision, then agent name (see `VOTE_COLUMNS`).
    """
    agents = sorted(c.removeprefix("signal_") for c in decisions.columns if c.startswith("signal_"))
    numbers = np.asarray(decisions.index, dtype=np.int64)
    parts = []
    for agent in agents:
        part: dict[str, Any] = {"decision": numbers, "time": decisions["time"], "agent": agent}
        for name in _WORDS:
            part[name] = decisions[name] if name in decisions else None
        part["signal"] = decisions[f"signal_{agent}"]
        part["confidence"] = decisions.get(f"confidence_{agent}", np.nan)
        part["weight"] = decisions.get(f"weight_{agent}", np.nan)
        parts.append(pd.DataFrame(part).reset_index(drop=True))
    return _tidy(pd.concat(parts, ignore_index=True) if parts else pd.DataFrame())


def journal_votes(decisions: pd.DataFrame, agents: pd.DataFrame) -> pd.DataFrame:
    """Return every agent's vote per decision from the journal's rows.

    The table is the one `agent_votes` gives for the backtest those rows record. `decisions`
    holds rows of the ``decisions`` table (``id``, ``number``, ``time`` …), `agents` rows of
    ``decision_agents`` (``decision_id``, ``agent``, ``signal``, ``confidence``, ``weight``).
    """
    if not len(decisions) or not len(agents):
        return _tidy(pd.DataFrame())
    facts = decisions[["id", "number", "time", *[w for w in _WORDS if w in decisions]]]
    facts = facts.rename(columns={"id": "decision_id", "number": "decision"})
    votes = agents[["decision_id", "agent", "signal", "confidence", "weight"]]
    return _tidy(votes.merge(facts, on="decision_id", how="inner"))


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a vote table with `VOTE_COLUMNS` in one set of dtypes, sorted by decision, agent."""
    n = len(frame)

    def numbers(name: str) -> np.ndarray:
        if name not in frame:
            return np.full(n, np.nan)
        return np.asarray(pd.to_numeric(frame[name], errors="coerce"), dtype=np.float64)

    time = frame["time"] if "time" in frame else pd.Series(pd.NaT, index=range(n))
    out = pd.DataFrame(
        {
            "decision": numbers("decision").astype(np.int64),
            "time": pd.DatetimeIndex(pd.to_datetime(time, utc=True)).as_unit("ns"),
            "symbol": _labels(frame, "symbol", ""),
            "agent": _labels(frame, "agent", ""),
            "signal": np.nan_to_num(numbers("signal")).astype(np.int64),
            "confidence": numbers("confidence"),
            "weight": numbers("weight"),
            **{w: _labels(frame, w, UNKNOWN) for w in _WORDS if w != "symbol"},
        }
    )[list(VOTE_COLUMNS)]
    return out.sort_values(["decision", "agent"], kind="stable").reset_index(drop=True)


def _labels(frame: pd.DataFrame, name: str, missing: str) -> pd.Categorical[str]:
    """Return a column's labels as a categorical of the words present, sorted.

    Absent columns, None, NaN and '' become `missing`.
    """
    if name not in frame:
        return pd.Categorical(np.full(len(frame), missing, dtype=object))
    codes, uniques = pd.factorize(frame[name])
    words = [missing if pd.isna(u) or u == "" else str(u) for u in uniques] + [missing]
    categories = sorted({words[c] for c in np.unique(codes).tolist()})
    where = {w: i for i, w in enumerate(categories)}
    lookup = np.asarray([where.get(w, -1) for w in words], dtype=np.int64)
    return pd.Categorical.from_codes(lookup[codes], categories=pd.Index(categories, dtype=object))


def closes(bars: pd.DataFrame) -> dict[str, pd.Series]:
    """Return each symbol's closes, indexed by bar time (UTC), from a long bars table."""
    out: dict[str, pd.Series] = {}
    if not len(bars):
        return out
    times = pd.DatetimeIndex(pd.to_datetime(bars["time"], utc=True)).as_unit("ns")
    symbols = np.asarray(bars["symbol"].astype(object))
    close = bars["close"].to_numpy(dtype=np.float64)
    for symbol in dict.fromkeys(symbols.tolist()):
        rows = symbols == symbol
        series = pd.Series(close[rows], index=times[rows]).sort_index()
        out[str(symbol)] = series[~series.index.duplicated(keep="last")]
    return out


# -- outcomes, hit rates, calibration ---------------------------------------------------------


def vote_outcomes(
    votes: pd.DataFrame, close_by_symbol: Mapping[str, pd.Series], horizon: int
) -> pd.DataFrame:
    """Return the non-zero votes with their forward return and whether they hit.

    A vote is scored against the symbol's close `horizon` of its own bars after the decision
    bar: ``forward_return = close[t + horizon] / close[t] - 1``; it hit when that return has the
    vote's sign (an unchanged close is a miss). A vote is ``resolved`` when both closes are
    known. An agent's vote on a bar that carried two decisions (an exit, then a reversal's
    entry) is counted once.
    """
    _check_horizon(horizon)
    mine = votes[votes["signal"].to_numpy() != 0]
    mine = mine.drop_duplicates(["symbol", "time", "agent"]).reset_index(drop=True)
    forward = np.full(len(mine), np.nan)
    symbols = mine["symbol"].to_numpy()
    times = pd.DatetimeIndex(mine["time"]).as_unit("ns")
    for symbol in dict.fromkeys(symbols.tolist()):
        close = close_by_symbol.get(symbol)
        if close is None or not len(close):
            continue
        rows = np.flatnonzero(symbols == symbol)
        index = pd.DatetimeIndex(close.index).as_unit("ns")
        at = index.get_indexer(times[rows])
        later = at + horizon
        known = (at >= 0) & (later < len(index))
        values = close.to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            forward[rows[known]] = values[later[known]] / values[at[known]] - 1.0
    resolved = np.isfinite(forward)
    signal = mine["signal"].to_numpy()
    out: pd.DataFrame = mine.assign(
        forward_return=forward,
        resolved=resolved,
        hit=resolved & (np.sign(np.nan_to_num(forward)) == np.sign(signal)),
    )
    return out


def _check_horizon(horizon: int) -> None:
    """Raise `UserInputError` unless the horizon is a whole number of bars, 1 or more."""
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise UserInputError(f"horizon must be a whole number of bars, 1 or more (got {horizon!r})")


def _regimes(values: Sequence[str]) -> list[str]:
    """Return the regime labels present: the tower's regimes in their order, then the rest."""
    present = set(values)
    known = [r for r in REGIME_KEYS if r in present]
    return known + sorted(present - set(known))


def _agents(votes: pd.DataFrame) -> list[str]:
    """Return the agents of a vote table, by name."""
    return sorted(str(a) for a in pd.unique(np.asarray(votes["agent"], dtype=object)))


def _groups(votes: pd.DataFrame, by: str) -> list[str]:
    """Return the labels of column `by` present in a vote table, in `_regimes` order."""
    return _regimes([str(g) for g in pd.unique(np.asarray(votes[by], dtype=object))])


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
    return _hit_table(outcomes, _agents(votes), _groups(votes, by), by)


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
    return _calibration(outcomes, _agents(votes), bins)


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


@dataclass(frozen=True)
class Attribution:
    """Closed trades' P&L split among the agents: per trade and agent, and totals."""

    per_trade: pd.DataFrame  # trade, decision, symbol, regime, direction, agent, signal, share, pnl
    totals: pd.DataFrame  # agent, regime (and "all"), trades (with a share > 0), pnl
    unattributed_pnl: float  # trades no agent agreed with (or whose entry was not recorded)
    total_pnl: float
    trades: int  # closed trades


def _closed(trades: pd.DataFrame) -> pd.DataFrame:
    """Return the closed trades as trade, decision, direction, pnl (open ones left out)."""
    keep = np.ones(len(trades), dtype=bool)
    if "exit_reason" in trades:
        keep &= np.asarray(trades["exit_reason"].astype(object) != "open", dtype=bool)
    if "exit_time" in trades:
        keep &= np.asarray(pd.notna(trades["exit_time"]), dtype=bool)
    if "pnl" in trades:
        keep &= np.isfinite(trades["pnl"].to_numpy(dtype=np.float64))
    rows = trades[keep]
    if "direction" in rows:
        direction = np.sign(rows["direction"].to_numpy(dtype=np.float64)).astype(np.int64)
    else:
        direction = np.where(rows["side"].astype(object).to_numpy() == "short", -1, 1)
    number = rows["number"] if "number" in rows else rows.index
    return pd.DataFrame(
        {
            "trade": np.asarray(number, dtype=np.int64),
            "decision": rows["decision"].to_numpy(dtype=np.int64),
            "direction": direction,
            "pnl": rows["pnl"].to_numpy(dtype=np.float64),
        }
    )


def pnl_attribution(votes: pd.DataFrame, trades: pd.DataFrame) -> Attribution:
    """Return each closed trade's P&L split among the agents by their vote at its entry.

    Agent i's share of a trade is its weighted confidence if it voted the trade's way, over the
    sum of those of every agent that did::

        share_i = w_i·c_i·[s_i == d] / Σ_j w_j·c_j·[s_j == d]

    where d is the trade's direction and s, c, w the signal, confidence and weight recorded at
    the entry decision (``trades["decision"]``; missing confidences and weights count 0,
    negative ones are clipped to 0). Agents that voted against the trade or not at all get 0;
    the shares of a trade sum to 1 unless no agent agreed with a positive weight × confidence,
    in which case its P&L is reported as unattributed. Open trades are left out. Totals are per
    agent and the entry's regime, and over all regimes (``"all"``): the trades the agent had a
    share in and the P&L it was given.
    """
    closed = _closed(trades)
    facts = votes[["decision", "symbol", "regime", "agent", "signal", "confidence", "weight"]]
    joined = closed.merge(facts, on="decision", how="left")
    agreed = joined["signal"].to_numpy() == joined["direction"].to_numpy()
    weight = np.clip(np.nan_to_num(joined["weight"].to_numpy(dtype=np.float64)), 0.0, None)
    conf = np.clip(np.nan_to_num(joined["confidence"].to_numpy(dtype=np.float64)), 0.0, None)
    score = np.where(agreed, weight * conf, 0.0)
    total = pd.Series(score).groupby(joined["trade"].to_numpy()).transform("sum").to_numpy()
    share = np.divide(score, total, out=np.zeros_like(score), where=total > 0)
    per_trade = joined.assign(share=share, pnl=share * joined["pnl"].to_numpy() + 0.0)
    per_trade = per_trade[per_trade["agent"].notna()]
    per_trade = per_trade[["trade", "decision", "symbol", "regime", "direction", "agent",
                           "signal", "share", "pnl"]].reset_index(drop=True)  # fmt: skip
    per_trade["signal"] = per_trade["signal"].astype(np.int64)
    attributed = per_trade.groupby("trade")["share"].sum()
    credited = attributed.reindex(closed["trade"].to_numpy()).fillna(0.0).to_numpy() > 0
    unattributed = float(closed["pnl"].to_numpy()[~credited].sum())
    return Attribution(
        per_trade=per_trade,
        totals=_attribution_totals(per_trade, votes),
        unattributed_pnl=unattributed,
        total_pnl=float(closed["pnl"].sum()),
        trades=len(closed),
    )


def _attribution_totals(per_trade: pd.DataFrame, votes: pd.DataFrame) -> pd.DataFrame:
    """Return attributed P&L and trades per agent and regime (and over all regimes)."""
    rows = []
    regimes = np.asarray(per_trade["regime"], dtype=object)
    agents = np.asarray(per_trade["agent"], dtype=object)
    for agent in _agents(votes):
        own = agents == agent
        for regime in [ALL, *_groups(votes, "regime")]:
            part = per_trade[own if regime == ALL else own & (regimes == regime)]
            rows.append(
                {
                    "agent": agent,
                    "regime": regime,
                    "trades": int((part["share"].to_numpy() > 0).sum()),
                    "pnl": float(part["pnl"].sum()),
                }
            )
    return pd.DataFrame(rows, columns=["agent", "regime", "trades", "pnl"])


# -- the bundle -------------------------------------------------------------------------------


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
        agents = _agents(votes)
        return cls(
            agents=tuple(agents),
            horizon=int(horizon),
            decisions=int(decisions),
            votes=len(outcomes),
            unresolved=int((~outcomes["resolved"]).sum()),
            hit_rates=_hit_table(outcomes, agents, _groups(votes, "regime"), "regime"),
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
        _check_horizon(horizon)
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

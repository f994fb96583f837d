"""The agents' votes as one long table, from a backtest or from the journal, and their outcomes.

`agent_votes` (a backtest's wide decision table) and `journal_votes` (the journal's
``decisions`` + ``decision_agents`` rows) give the same table: one row per decision and agent
with what it recorded then (signal, confidence, weight, regime). `vote_outcomes` scores each
non-zero vote against the close ``horizon`` bars after the decision bar — by design measured
after the vote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from reinforcetrade.core.codes import REGIME_KEYS
from reinforcetrade.ml.labels import check_horizon

#: the regime label of the rows that cover every regime
ALL = "all"
UNKNOWN = "unknown"
#: the long vote table's columns, one row per decision and agent
VOTE_COLUMNS = ("decision", "time", "symbol", "agent", "signal", "confidence", "weight",
                "regime", "vol_regime", "trend_regime", "action")  # fmt: skip
_WORDS = ("symbol", "regime", "vol_regime", "trend_regime", "action")
DEFAULT_HORIZON = 24
DEFAULT_BINS = 5


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
    check_horizon(horizon)
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


def _regimes(values: Sequence[str]) -> list[str]:
    """Return the regime labels present: the tower's regimes in their order, then the rest."""
    present = set(values)
    known = [r for r in REGIME_KEYS if r in present]
    return known + sorted(present - set(known))


def agents_of(votes: pd.DataFrame) -> list[str]:
    """Return the agents of a vote table, by name."""
    return sorted(str(a) for a in pd.unique(np.asarray(votes["agent"], dtype=object)))


def groups_of(votes: pd.DataFrame, by: str) -> list[str]:
    """Return the labels of column `by` present in a vote table, in `_regimes` order."""
    return _regimes([str(g) for g in pd.unique(np.asarray(votes[by], dtype=object))])

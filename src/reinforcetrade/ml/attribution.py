"""P&L attribution: each closed trade's P&L shared among the agents that voted its way.

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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reinforcetrade.ml.votes import ALL, agents_of, groups_of


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
    for agent in agents_of(votes):
        own = agents == agent
        for regime in [ALL, *groups_of(votes, "regime")]:
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

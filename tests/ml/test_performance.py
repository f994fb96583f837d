"""Per-agent performance: hit rates, calibration and P&L attribution on tables with known answers,
and the journal's records giving the same figures as the backtest they replay."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reinforcetrade.backtesting import BacktestResult, EnhancedBacktester
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data import generate_market
from reinforcetrade.ml.performance import (
    VOTE_COLUMNS,
    AgentPerformance,
    agent_votes,
    calibration,
    closes,
    hit_rates,
    journal_votes,
    pnl_attribution,
    vote_outcomes,
)
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.feeds import ReplayFeed
from reinforcetrade.trading.paper import PaperBroker

T0 = pd.Timestamp("2024-01-01", tz="UTC")
HOUR = pd.Timedelta(hours=1)


def at(*bars: int) -> list[pd.Timestamp]:
    return [T0 + b * HOUR for b in bars]


def wide(rows: list[dict[str, object]], index: list[int] | None = None) -> pd.DataFrame:
    """A decision table shaped like `BacktestResult.decisions` (index: decision number)."""
    frame = pd.DataFrame(rows, index=index)
    for name in ("symbol", "action", "regime", "vol_regime", "trend_regime"):
        frame[name] = frame[name].astype("category")
    return frame


def decision(
    bar: int,
    regime: str,
    votes: dict[str, tuple[int, float, float]],
    *,
    symbol: str = "X",
    action: str = "blocked",
) -> dict[str, object]:
    row: dict[str, object] = {"time": at(bar)[0], "symbol": symbol, "action": action,
                              "direction": 0, "confidence": 0.5, "regime": regime,
                              "vol_regime": "normal", "trend_regime": "up"}  # fmt: skip
    for agent, (signal, confidence, weight) in votes.items():
        row[f"signal_{agent}"] = np.int8(signal)
        row[f"confidence_{agent}"] = confidence
        row[f"weight_{agent}"] = weight
    return row


def rows_of(table: pd.DataFrame) -> dict[tuple[str, str], Any]:
    """Return a per-agent table's rows keyed by (agent, regime)."""
    return {(str(r["agent"]), str(r["regime"])): r for r in table.to_dict("records")}


#: closes of symbol X on bars 0…5
CLOSE = {"X": pd.Series([100.0, 101.0, 99.0, 102.0, 102.0, 103.0], index=at(0, 1, 2, 3, 4, 5))}


@pytest.fixture
def table() -> pd.DataFrame:
    """Four decisions of agents a and b on symbol X (bars 0, 1, 3 and 5)."""
    return wide(
        [
            decision(0, "trending", {"a": (1, 0.8, 0.6), "b": (0, 0.0, 0.4)}),  # a hits: 100 → 101
            decision(1, "ranging", {"a": (-1, 0.3, 0.5), "b": (1, 0.6, 0.5)}),  # a hits, b misses
            decision(3, "ranging", {"a": (1, 0.9, 0.5), "b": (-1, 0.2, 0.5)}),  # unchanged: misses
            decision(5, "trending", {"a": (1, 1.0, 0.6), "b": (1, 1.0, 0.4)}),  # no later close
        ],
        index=[10, 11, 12, 13],
    )


def test_votes_are_one_row_per_decision_and_agent(table: pd.DataFrame) -> None:
    votes = agent_votes(table)
    assert list(votes.columns) == list(VOTE_COLUMNS)
    assert len(votes) == 8
    assert votes["decision"].tolist() == [10, 10, 11, 11, 12, 12, 13, 13]
    assert votes["agent"].tolist() == ["a", "b"] * 4
    assert votes["signal"].tolist() == [1, 0, -1, 1, 1, -1, 1, 1]
    assert votes["regime"].tolist()[:4] == ["trending", "trending", "ranging", "ranging"]
    first = votes.iloc[0]
    assert (first["confidence"], first["weight"], first["time"]) == (0.8, 0.6, T0)
    assert first["action"] == "blocked"


def test_the_journals_rows_give_the_same_votes(table: pd.DataFrame) -> None:
    decisions = pd.DataFrame(
        {
            "id": [7, 8, 9, 10],  # the journal's row ids differ from the run's numbers
            "number": table.index,
            "time": table["time"].dt.tz_convert(None).astype("datetime64[us]").dt.tz_localize("UTC"),
            **{c: table[c].astype(str).to_numpy() for c in ("symbol", "action", "regime",
                                                            "vol_regime", "trend_regime")},
        }
    )  # fmt: skip
    agents = pd.DataFrame(
        [
            {"decision_id": i, "agent": a, "signal": int(row[f"signal_{a}"]),
             "confidence": row[f"confidence_{a}"], "weight": row[f"weight_{a}"]}
            for i, (_, row) in zip([7, 8, 9, 10], table.iterrows(), strict=True)
            for a in ("b", "a")  # stored in any order
        ]
    )  # fmt: skip
    pd.testing.assert_frame_equal(journal_votes(decisions, agents), agent_votes(table))


def test_a_vote_that_hit_one_that_missed_and_zero_votes_ignored(table: pd.DataFrame) -> None:
    votes = agent_votes(table)
    outcomes = vote_outcomes(votes, CLOSE, 1)
    assert len(outcomes) == 7  # b's zero vote on bar 0 is not a vote
    resolved = outcomes[outcomes["resolved"]]
    assert list(zip(resolved["agent"], resolved["decision"], resolved["hit"], strict=True)) == [
        ("a", 10, True), ("a", 11, True), ("b", 11, False), ("a", 12, False), ("b", 12, False),
    ]  # fmt: skip
    np.testing.assert_allclose(resolved["forward_return"], [0.01, -0.02 / 1.01, -0.02 / 1.01, 0, 0])
    assert (~outcomes["resolved"]).sum() == 2  # bar 5 has no close an hour later

    rates = rows_of(hit_rates(votes, CLOSE, 1))
    assert list(rates) == [
        ("a", "all"), ("a", "trending"), ("a", "ranging"),
        ("b", "all"), ("b", "trending"), ("b", "ranging"),
    ]  # fmt: skip
    a = rates[("a", "all")]
    assert (a["votes"], a["hits"]) == (3, 2)
    assert a["hit_rate"] == pytest.approx(2 / 3)
    assert a["hit_rate_se"] == pytest.approx(math.sqrt(2 / 3 * 1 / 3 / 3))
    assert a["mean_confidence"] == pytest.approx((0.8 + 0.3 + 0.9) / 3)
    assert a["mean_signed_return"] == pytest.approx((0.01 + 0.02 / 1.01 + 0) / 3)
    assert [rates[("a", "trending")][k] for k in ("votes", "hits", "hit_rate")] == [1, 1, 1.0]
    assert [rates[("a", "ranging")][k] for k in ("votes", "hits", "hit_rate")] == [2, 1, 0.5]
    b = rates[("b", "all")]
    assert (b["votes"], b["hits"], b["hit_rate"], b["hit_rate_se"]) == (2, 0, 0.0, 0.0)
    assert rates[("b", "trending")]["votes"] == 0  # its only trending vote is unresolved
    assert math.isnan(rates[("b", "trending")]["hit_rate"])

    two = rows_of(hit_rates(votes, CLOSE, 2))
    # a at horizon 2: 100 → 99 ✗, 101 → 102 ✗, 102 → 103 ✓
    assert (two[("a", "all")]["votes"], two[("a", "all")]["hits"]) == (3, 1)
    by_trend = hit_rates(votes, CLOSE, 1, by="trend_regime")
    assert set(by_trend["trend_regime"]) == {"all", "up"}


def test_two_decisions_on_one_bar_count_an_agents_vote_once() -> None:
    table = wide([decision(0, "trending", {"a": (1, 0.5, 1.0)}, action="exit"),
                  decision(0, "trending", {"a": (1, 0.5, 1.0)}, action="enter_long")])  # fmt: skip
    rates = hit_rates(agent_votes(table), CLOSE, 1)
    assert rates.loc[0, "votes"] == 1


def test_calibration_bins_and_error(table: pd.DataFrame) -> None:
    found = calibration(agent_votes(table), CLOSE, 1, bins=2)
    a = found.bins[found.bins["agent"] == "a"].set_index("bin")
    # a: confidence 0.3 (hit) in bin 0; 0.8 (hit) and 0.9 (miss) in bin 1
    assert a["votes"].tolist() == [1, 2]
    assert a[["low", "high"]].to_numpy().tolist() == [[0.0, 0.5], [0.5, 1.0]]
    np.testing.assert_allclose(a["mean_confidence"], [0.3, 0.85])
    np.testing.assert_allclose(a["expected_hit_rate"], [0.65, 0.925])
    np.testing.assert_allclose(a["hit_rate"], [1.0, 0.5])
    assert found.error["a"] == pytest.approx((1 * 0.35 + 2 * 0.425) / 3)
    b = found.bins[found.bins["agent"] == "b"].set_index("bin")
    assert b["votes"].tolist() == [1, 1]  # 0.2 (miss) and 0.6 (miss)
    assert found.error["b"] == pytest.approx((0.6 + 0.8) / 2)
    everything_certain = calibration(agent_votes(table), CLOSE, 1, bins=1)
    assert everything_certain.bins["votes"].tolist() == [3, 2]
    empty = calibration(agent_votes(table), {}, 1)
    assert empty.bins["votes"].sum() == 0
    assert math.isnan(empty.error["a"])


def test_attribution_splits_each_trades_pnl_among_the_agents_that_agreed() -> None:
    table = wide(
        [
            decision(0, "trending", {"a": (1, 0.8, 0.5), "b": (1, 0.4, 0.25), "c": (-1, 0.9, 1.0)}),
            decision(2, "ranging", {"a": (1, 1.0, 0.5), "b": (0, 0.0, 0.25), "c": (1, 1.0, 1.0)}),
            decision(4, "ranging", {"a": (1, 0.7, 0.5), "b": (0, 0.0, 0.25), "c": (1, 0.1, 1.0)}),
            decision(5, "trending", {"a": (1, 0.5, 0.5), "b": (1, 0.5, 0.25), "c": (1, 0.5, 1.0)}),
        ]
    )
    trades = pd.DataFrame(
        {
            "symbol": "X",
            "side": ["long", "short", "long", "long"],
            "exit_time": [at(1)[0], at(3)[0], at(5)[0], pd.NaT],
            "pnl": [10.0, -4.0, 6.0, 99.0],
            "exit_reason": ["signal", "stop_loss", "signal", "open"],
            "decision": [0, 1, 2, 3],
        }
    )
    found = pnl_attribution(agent_votes(table), trades)
    shares = found.per_trade.pivot(index="trade", columns="agent", values="share")
    # trade 0 (long): a 0.8·0.5 = 0.4, b 0.4·0.25 = 0.1, c voted short: 0.8 / 0.2 / 0
    np.testing.assert_allclose(shares.loc[0], [0.8, 0.2, 0.0])
    # trade 1 (short): every agent that voted at its entry voted long, so nobody agreed
    np.testing.assert_allclose(shares.loc[1], [0.0, 0.0, 0.0])
    # trade 2 (long): a 0.7·0.5 = 0.35, b did not vote, c 0.1·1 = 0.1
    np.testing.assert_allclose(shares.loc[2], [0.35 / 0.45, 0.0, 0.1 / 0.45])
    assert 3 not in shares.index  # the open trade is left out
    pnl = found.per_trade.groupby("trade")["pnl"].sum()
    assert pnl.loc[0] == pytest.approx(10.0)
    assert pnl.loc[2] == pytest.approx(6.0)
    assert found.unattributed_pnl == -4.0
    assert found.total_pnl == 12.0
    assert found.trades == 3
    totals = rows_of(found.totals)
    assert totals[("a", "all")]["pnl"] == pytest.approx(8.0 + 6.0 * 0.35 / 0.45)
    assert totals[("a", "trending")]["pnl"] == pytest.approx(8.0)
    assert totals[("a", "ranging")]["pnl"] == pytest.approx(6.0 * 0.35 / 0.45)
    assert (totals[("c", "trending")]["trades"], totals[("c", "trending")]["pnl"]) == (0, 0.0)
    assert totals[("b", "all")]["trades"] == 1
    assert totals[("c", "all")]["trades"] == 1
    assert (found.per_trade[found.per_trade["trade"] == 1]["pnl"] == 0).all()


def test_the_bundle_is_json_and_checks_its_inputs(table: pd.DataFrame) -> None:
    trades = pd.DataFrame({"side": ["long"], "pnl": [5.0], "decision": [10],
                           "exit_time": [at(2)[0]], "exit_reason": ["signal"]})  # fmt: skip
    bars = pd.DataFrame({"symbol": "X", "time": CLOSE["X"].index, "close": CLOSE["X"].to_numpy()})
    assert closes(bars)["X"].equals(CLOSE["X"])
    found = AgentPerformance.build(agent_votes(table), closes(bars), trades, decisions=4,
                                   horizon=1, bins=2)  # fmt: skip
    data = found.to_dict()
    json.dumps(data, allow_nan=False)  # NaN became None
    assert data["agents"] == ["a", "b"]
    assert data["regimes"] == ["all", "trending", "ranging"]
    assert (data["decisions"], data["votes"], data["unresolved_votes"]) == (4, 7, 2)
    assert data["hit_rates"]["a"]["all"]["hit_rate"] == pytest.approx(2 / 3)
    assert data["hit_rates"]["b"]["trending"]["hit_rate"] is None
    assert len(data["calibration"]["a"]["bins"]) == 2
    assert data["attribution"]["a"]["trending"] == {"trades": 1, "pnl": 5.0}
    assert (data["trades"], data["total_pnl"], data["unattributed_pnl"]) == (1, 5.0, 0.0)
    for bad in (0, -3, 1.5, True):
        with pytest.raises(UserInputError, match="horizon"):
            hit_rates(agent_votes(table), CLOSE, bad)  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="bins"):
        calibration(agent_votes(table), CLOSE, 1, bins=0)


def test_a_run_without_agents_gives_empty_figures() -> None:
    frame = pd.DataFrame({"time": pd.to_datetime([], utc=True), "symbol": [], "action": []})
    votes = agent_votes(frame)
    assert list(votes.columns) == list(VOTE_COLUMNS)
    assert votes.empty
    found = AgentPerformance.build(votes, {}, pd.DataFrame(columns=["side", "pnl", "decision"]),
                                   decisions=0)  # fmt: skip
    assert found.to_dict()["agents"] == []
    assert found.hit_rates.empty
    assert found.attribution.totals.empty


vote = st.tuples(
    st.sampled_from([-1, 0, 1]),
    st.floats(0.0, 1.0, allow_nan=False),
    st.floats(0.0, 1.0, allow_nan=False),
)


@settings(max_examples=100, deadline=None)
@given(
    trades=st.lists(
        st.tuples(
            st.sampled_from([-1, 1]), st.floats(-1e6, 1e6), st.lists(vote, min_size=1, max_size=5)
        ),
        min_size=1,
        max_size=8,
    )
)
def test_attribution_shares_are_fractions_that_sum_to_one_when_an_agent_agreed(
    trades: list[tuple[int, float, list[tuple[int, float, float]]]],
) -> None:
    rows, trade_rows = [], []
    for k, (direction, pnl, votes) in enumerate(trades):
        for i, (signal, confidence, weight) in enumerate(votes):
            rows.append({"decision": k, "time": T0, "symbol": "X", "agent": f"agent{i}",
                         "signal": signal, "confidence": confidence, "weight": weight,
                         "regime": "trending"})  # fmt: skip
        trade_rows.append({"decision": k, "side": "long" if direction > 0 else "short",
                           "pnl": pnl})  # fmt: skip
    found = pnl_attribution(pd.DataFrame(rows), pd.DataFrame(trade_rows))
    shares = found.per_trade["share"].to_numpy()
    assert ((shares >= 0) & (shares <= 1)).all()
    sums = found.per_trade.groupby("trade")["share"].sum()
    unattributed = 0.0
    for k, (direction, pnl, votes) in enumerate(trades):
        agreed = any(s == direction and c * w > 0 for s, c, w in votes)
        assert sums.loc[k] == pytest.approx(1.0 if agreed else 0.0)
        mine = found.per_trade[found.per_trade["trade"] == k]
        assert mine["pnl"].sum() == pytest.approx(pnl if agreed else 0.0, abs=1e-6)
        assert (mine.loc[mine["signal"] != direction, "share"] == 0).all()  # dissent earns 0
        unattributed += 0.0 if agreed else pnl
    assert found.unattributed_pnl == pytest.approx(unattributed)


# -- a real paper session and the backtest it replays -----------------------------------------


@pytest.fixture(scope="module")
def paper(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Journal, int, BacktestResult]]:
    """A paper session over 1,500 bars journalled to SQLite, and the backtest of the same bars."""
    frames = {"BTC/USDT": generate_market(["BTC/USDT"], bars=1_500, seed=4).frames["BTC/USDT"]}
    path: Path = tmp_path_factory.mktemp("performance") / "paper.db"
    with Journal(f"sqlite:///{path}") as journal:
        summary = LiveEngine(MultiAgentStrategy(), ReplayFeed(frames), PaperBroker(), journal).run()
        yield journal, summary.run_id, EnhancedBacktester(MultiAgentStrategy()).run(frames)


@pytest.mark.slow
def test_the_journal_and_the_backtest_give_the_same_figures(
    paper: tuple[Journal, int, BacktestResult],
) -> None:
    journal, run_id, result = paper
    from_journal = AgentPerformance.from_journal(journal, run_id, horizon=24)
    from_result = AgentPerformance.from_result(result, horizon=24)
    assert from_journal.to_dict() == from_result.to_dict()
    assert from_result.agents == ("environment", "short_term", "trend")
    assert from_result.decisions == len(result.decisions) > 100
    assert from_result.hit_rates["votes"].sum() > 100
    pd.testing.assert_frame_equal(from_journal.hit_rates, from_result.hit_rates)
    pd.testing.assert_frame_equal(from_journal.calibration.bins, from_result.calibration.bins)
    pd.testing.assert_frame_equal(from_journal.attribution.per_trade,
                                  from_result.attribution.per_trade)  # fmt: skip
    closed = result.trades[result.trades["exit_reason"] != "open"]
    assert from_journal.attribution.trades == len(closed) > 0
    attributed = from_result.attribution.per_trade.groupby("trade")["pnl"].sum()
    np.testing.assert_allclose(attributed.to_numpy(), closed["pnl"].to_numpy())


@pytest.mark.slow
def test_a_saved_backtest_in_the_journal_attributes_but_cannot_score_votes(
    paper: tuple[Journal, int, BacktestResult],
) -> None:
    journal, _, result = paper
    tables = {"decisions": result.decisions, "orders": result.orders, "fills": result.fills,
              "trades": result.trades, "equity": result.equity}  # fmt: skip
    run = journal.save_backtest(tables, name="bt", symbols=list(result.symbols))
    saved = AgentPerformance.from_journal(journal, run, horizon=24)
    expected = AgentPerformance.from_result(result, horizon=24)
    assert saved.hit_rates["votes"].sum() == 0  # no bars are journalled with a backtest
    assert saved.unresolved == saved.votes == expected.votes
    pd.testing.assert_frame_equal(saved.attribution.totals, expected.attribution.totals)
    with pytest.raises(UserInputError, match="no run 999"):
        AgentPerformance.from_journal(journal, 999)

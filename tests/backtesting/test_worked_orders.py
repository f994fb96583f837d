"""Execution algorithms in the backtester's loop: worked entries and exits, bar by bar.

A scripted strategy (the three agents vote together on chosen bars) on hand-made bars, so every
child, price and leftover is computed by hand; then properties on a thin synthetic market, where
the loop's children must be those of `slicing.schedule`, the algorithms' own description.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reinforcetrade.agents import AgentSignals
from reinforcetrade.agents.environment import Perception
from reinforcetrade.backtesting import BacktestResult, EnhancedBacktester
from reinforcetrade.config import Settings
from reinforcetrade.data import generate_market
from reinforcetrade.data.bars import Bars
from reinforcetrade.simulation.costs import CostParams
from reinforcetrade.simulation.slicing import (
    Algo,
    SliceParams,
    choose_algo,
    schedule,
    volume_profile,
)
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.strategies.multi_agent import PreparedSignals

# commission 0.1 %, no spread or fixed slippage, impact 0.1 × range × sqrt(qty / volume), and
# the venue fills at most 10 % of a bar's volume
COSTS = CostParams(0.001, 0.001, 0.0, 0.0, 0.0, 0.1, 0.1, 0.0, 0.0)
RANGE = 0.02  # every scripted bar: open 100, high 101, low 99, close 100


class Scripted(MultiAgentStrategy):
    """All three agents vote `votes[t]` on bar t (0 elsewhere), fully confident, always ready."""

    def __init__(self, votes: Mapping[int, int], settings: Settings) -> None:
        super().__init__(settings=settings)
        self.votes = dict(votes)

    def prepare(self, bars: Bars) -> PreparedSignals:
        n = len(bars.close)
        direction = np.zeros(n, dtype=np.int8)
        for t, vote in self.votes.items():
            direction[t] = vote
        confident = np.ones(n)
        agents = tuple(AgentSignals(name, direction, confident) for name in self.agent_names)
        flat = np.zeros(n, dtype=np.int8)
        normal = np.ones(n, dtype=np.int8)
        ready = np.ones(n, dtype=np.bool_)
        reading = Perception(agents[0], normal, flat, flat, ~ready, np.zeros(n), ready)
        return PreparedSignals(agents, reading, ready)


def bars(volumes: list[float], *, low: Mapping[int, float] | None = None) -> pd.DataFrame:
    """Hourly bars at 100 (high 101, low 99) with these volumes; `low` overrides some lows."""
    index = pd.date_range("2024-01-01", periods=len(volumes), freq="1h", tz="UTC")
    frame = pd.DataFrame(
        {"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0, "volume": volumes},
        index=index,
    )
    for t, price in (low or {}).items():
        frame.loc[index[t], "low"] = price
    frame.attrs["timeframe"] = "1h"
    return frame


def run(frame: pd.DataFrame, votes: Mapping[int, int], **execution: object) -> BacktestResult:
    """Backtest the scripted votes: entries of 5 % of equity (500 at 100: 5 units)."""
    cfg = Settings(
        backtest={"warmup_bars": 0},
        risk={"max_trade_fraction": 0.05},
        execution=execution,
    )
    return EnhancedBacktester(Scripted(votes, cfg), settings=cfg, costs=COSTS).run(frame)


def rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Return a table's rows as plain dicts."""
    return [{str(k): v for k, v in row.items()} for row in table.to_dict("records")]


def price_paid(qty: float, volume: float) -> float:
    """A buy's fill price at 100: impact 0.1 × range × sqrt(qty / volume) (costs.py)."""
    return 100.0 * (1.0 + 0.1 * RANGE * math.sqrt(qty / volume))


def test_twap_fills_a_thin_market_order_that_immediate_leaves_mostly_unfilled() -> None:
    frame = bars([20.0] * 10)  # the venue takes 2 units a bar; the order is 5
    at_once = run(frame, {2: 1}, algo="immediate")
    twap = run(frame, {2: 1}, algo="twap", horizon_bars=4, participation=0.1)
    assert at_once.decisions["qty"].tolist() == twap.decisions["qty"].tolist() == [5.0]

    (fill,) = rows(at_once.fills)  # 2 of 5 at bar 3's open; the rest is reported
    assert (fill["qty"], fill["partial"], fill["algo"], fill["child"]) == (2, True, "immediate", 0)
    assert fill["price"] == pytest.approx(price_paid(2.0, 20.0), rel=1e-14)
    (order,) = rows(at_once.orders)
    assert (order["status"], order["filled_qty"], order["unfilled_qty"]) == ("partial", 2, 3)

    fills = twap.fills  # 5 / 4 = 1.25 a bar on bars 3-6: sqrt(1.25 / 20) = 0.25 exactly
    assert fills["qty"].tolist() == [1.25] * 4
    assert fills["time"].tolist() == frame.index[3:7].tolist()
    assert fills["child"].tolist() == [1, 2, 3, 4]
    assert set(fills["algo"]) == {"twap"}
    assert not fills["partial"].any()
    assert fills["price"].tolist() == pytest.approx([100.05] * 4, rel=1e-14)
    assert (fills["decision"] == 0).all()
    (order,) = rows(twap.orders)
    assert (order["status"], order["algo"], order["children"]) == ("filled", "twap", 4)
    assert order["filled_qty"] == 5.0  # the children sum to the parent
    assert order["unfilled_qty"] == 0.0
    # what slicing saved: all 5 units at 5 bps against the decision close, where sending it
    # at once bought 2 units at 20 × sqrt(0.1) = 6.32 bps and left 3 unbought
    assert order["shortfall_bps"] == pytest.approx(5.0, rel=1e-9)
    assert at_once.orders["shortfall_bps"].iloc[0] == pytest.approx(20 * math.sqrt(0.1), rel=1e-9)
    assert twap.trades["algo"].tolist() == ["twap"]
    assert twap.trades["qty"].tolist() == [5.0]


def test_vwap_follows_the_volume_profile_and_costs_less_than_twap() -> None:
    frame = bars([10.0, 20.0, 30.0, 40.0] * 4)  # a cycle of 4 bars, thinnest first
    vwap = run(frame, {7: 1}, algo="vwap", horizon_bars=4, volume_window=1, volume_period=4)
    twap = run(frame, {7: 1}, algo="twap", horizon_bars=4)
    # VWAP: 5 in proportion 1 : 2 : 3 : 4 on bars 8-11, each child 5 % of its bar's volume
    assert vwap.fills["qty"].tolist() == pytest.approx([0.5, 1.0, 1.5, 2.0], rel=1e-14)
    assert vwap.fills["time"].tolist() == frame.index[8:12].tolist()
    assert vwap.fills["price"].tolist() == pytest.approx([price_paid(1, 20)] * 4, rel=1e-14)
    # TWAP: 1.25 wanted on bar 8 is capped at 10 % of 10; the three others share the rest
    third = 4.0 / 3.0
    assert twap.fills["qty"].tolist() == pytest.approx([1.0, third, third, third], rel=1e-14)
    paid = [price_paid(1.0, 10.0), *(price_paid(third, v) for v in (20.0, 30.0, 40.0))]
    assert twap.fills["price"].tolist() == pytest.approx(paid, rel=1e-14)
    vwap_bps = 20 * math.sqrt(0.05)  # 4.47 bps
    twap_bps = (1.0 * (paid[0] - 100) + third * sum(p - 100 for p in paid[1:])) / 5 * 100
    (v_order,), (t_order,) = rows(vwap.orders), rows(twap.orders)
    assert v_order["shortfall_bps"] == pytest.approx(vwap_bps, rel=1e-9)
    assert t_order["shortfall_bps"] == pytest.approx(twap_bps, rel=1e-9)
    assert v_order["shortfall_bps"] < t_order["shortfall_bps"]  # along the volume: less impact
    assert v_order["filled_qty"] == pytest.approx(5.0, rel=1e-15) == t_order["filled_qty"]


def test_a_stop_inside_the_horizon_cancels_what_is_left() -> None:
    frame = bars([20.0] * 10, low={4: 90.0})  # bar 4 falls through the stop after its child
    result = run(frame, {2: 1}, algo="twap", horizon_bars=4)
    fills = result.fills
    assert fills["time"].tolist() == [frame.index[3], frame.index[4], frame.index[4]]
    assert fills["qty"].tolist() == [1.25, 1.25, 2.5]
    assert fills["exit_reason"].astype(str).tolist() == ["", "", "stop_loss"]
    assert fills["child"].tolist() == [1, 2, 0]
    entry = result.orders[result.orders["type"] == "market"].iloc[0]
    assert (entry["status"], entry["filled_qty"], entry["unfilled_qty"]) == ("partial", 2.5, 2.5)
    # the stop sits 5 % under the average entry of the children filled so far
    assert fills["reference_price"].iloc[2] == pytest.approx(100.05 * 0.95, rel=1e-14)
    (trade,) = rows(result.trades)
    assert (trade["qty"], trade["exit_reason"]) == (2.5, "stop_loss")
    assert trade["entry_price"] == pytest.approx(100.05, rel=1e-14)


def test_a_signal_exit_is_worked_and_never_dropped() -> None:
    frame = bars([20.0] * 16)
    result = run(frame, {2: 1, 8: -1}, algo="twap", horizon_bars=4)
    exits = result.fills[result.fills["side"] == "sell"]
    assert exits["qty"].tolist() == [1.25] * 4
    assert exits["time"].tolist() == frame.index[9:13].tolist()
    assert exits["child"].tolist() == [1, 2, 3, 4]
    assert set(exits["exit_reason"].astype(str)) == {"reversal"}
    (trade,) = rows(result.trades)
    assert (trade["qty"], trade["exit_reason"], trade["exit_time"]) == (
        5,
        "reversal",
        frame.index[12],
    )
    # thinner than the horizon's slices: 1 a bar; the exit goes on past its horizon until done
    thin = run(bars([20.0] * 9 + [10.0] * 7), {2: 1, 8: -1}, algo="twap", horizon_bars=4)
    exits = thin.fills[thin.fills["side"] == "sell"]
    assert exits["qty"].tolist() == [1.0] * 5
    # the horizon's last child leaves 1 (flagged), the next bar closes the rest
    assert exits["partial"].tolist() == [False, False, False, True, False]
    assert thin.trades["exit_time"].tolist() == [thin.equity.index[13]]


@pytest.mark.parametrize(
    ("immediate_below", "twap_below", "algo"),
    [(0.3, 0.5, "immediate"), (0.1, 0.3, "twap"), (0.1, 0.2, "vwap")],
)
def test_auto_picks_by_the_order_size_against_recent_volume(
    immediate_below: float, twap_below: float, algo: str
) -> None:
    volumes = [20.0] * 10
    volumes[3] = 1e6  # the bar the order first fills in: its volume is not known at the decision
    frame = bars(volumes)
    result = run(frame, {2: 1}, algo="auto", volume_window=3, immediate_below=immediate_below,
                 twap_below=twap_below)  # fmt: skip
    # 5 units against a mean of 20 over bars 0-2: a share of 0.25
    expected = choose_algo(5.0, 20.0, immediate_below=immediate_below, twap_below=twap_below)
    assert expected.name.lower() == algo
    assert result.orders["algo"].tolist() == [algo]
    assert set(result.fills["algo"]) == {algo}


def test_the_default_sends_every_order_whole() -> None:
    assert Settings().execution.algo == "immediate"
    frames = dict(generate_market(["BTC/USDT"], bars=3_000, seed=4).frames)
    plain = EnhancedBacktester(MultiAgentStrategy()).run(frames)
    assert len(plain.fills) > 10
    assert set(plain.fills["algo"]) == {"immediate"}
    assert (plain.fills["child"] == 0).all()
    assert set(plain.orders["algo"]) == {"immediate"}
    assert (plain.orders["children"] == 0).all()


# ---- properties on a thin synthetic market


def thin_market(seed: int) -> dict[str, pd.DataFrame]:
    """A synthetic market whose volume is so thin that 10 % of a bar is about one child."""
    frames = dict(generate_market(["BTC/USDT"], bars=4_000, seed=seed).frames)
    frame = frames["BTC/USDT"].copy()
    frame["volume"] *= 2e-5
    return {"BTC/USDT": frame}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 50),
    algo=st.sampled_from(["twap", "vwap"]),
    horizon=st.integers(1, 6),
    participation=st.sampled_from([0.02, 0.05, 0.1]),
)
def test_worked_entries_are_the_schedule_of_their_parent(
    seed: int, algo: str, horizon: int, participation: float
) -> None:
    frames = thin_market(seed)
    frame = frames["BTC/USDT"]
    execution = {"algo": algo, "horizon_bars": horizon, "participation": participation,
                 "volume_window": 3, "volume_period": 24}  # fmt: skip
    cfg = Settings(execution=execution)
    result = EnhancedBacktester(MultiAgentStrategy(settings=cfg), settings=cfg).run(frames)
    fills, orders = result.fills, result.orders
    volumes = frame["volume"].to_numpy()
    at = frame.index.get_indexer(pd.DatetimeIndex(fills["time"]))
    worked = fills[fills["child"] > 0]
    assert len(worked) >= 8
    # every child within the participation cap of the bar it filled in
    cap = participation * volumes[at[fills["child"] > 0]]
    assert (worked["qty"].to_numpy() <= cap * (1 + 1e-12)).all()
    profile = volume_profile(volumes, 3, 24)
    compared = 0
    for order in rows(orders[orders["children"] > 0]):
        parent, asked, unfilled = order["order_id"], order["qty"], order["unfilled_qty"]
        mine = worked[worked["decision"] == parent]
        assert mine["child"].tolist() == list(range(1, len(mine) + 1))  # numbered in order
        assert mine["qty"].sum() <= asked * (1 + 1e-12)  # never more than the parent
        if order["status"] == "filled":
            assert mine["qty"].sum() == pytest.approx(asked, rel=1e-12)
        else:
            assert unfilled == pytest.approx(asked - mine["qty"].sum())
        if order["side"] == "close":
            continue
        t = int(frame.index.searchsorted(order["time"]))
        horizon_end = frame.index[min(t + horizon, len(frame) - 1)]
        others = fills[(fills["decision"] != parent) & (fills["time"] > order["time"])]
        if (others["time"] <= horizon_end).any():
            continue  # a stop or an exit cut it short: checked above
        plan = schedule(SliceParams(Algo.parse(algo), horizon, participation), asked, volumes,
                        profile if algo == "vwap" else None, start=t + 1)  # fmt: skip
        sent = plan.children > 0
        np.testing.assert_allclose(mine["qty"].to_numpy(), plan.children[sent], rtol=1e-12)
        assert (at[mine.index] == t + 1 + np.flatnonzero(sent)).all()
        assert unfilled == pytest.approx(plan.unfilled, rel=1e-9, abs=1e-15)
        compared += 1
    assert compared > 0

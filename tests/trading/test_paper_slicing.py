"""Worked orders on the paper venue: the backtest's children, fill for fill, traced to parents.

The paper engine steps the backtester's own loop, so with an execution algorithm set it must
produce the very fills a backtest of the same bars produces; each child's fill carries the
client id `child_id(parent, n)` and books onto its parent order in the journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reinforcetrade.backtesting import EnhancedBacktester
from reinforcetrade.config import Settings
from reinforcetrade.data import generate_market
from reinforcetrade.simulation.slicing import child_id
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.feeds import ReplayFeed
from reinforcetrade.trading.paper import PaperBroker


def thin_market() -> dict[str, pd.DataFrame]:
    """Two symbols (one listed later) whose volume is thin enough for the cap to bind."""
    frames = dict(generate_market(["BTC/USDT", "ETH/USDT"], bars=1_500, seed=4).frames)
    frames["ETH/USDT"] = frames["ETH/USDT"].iloc[150:]
    for symbol, frame in frames.items():
        thin = frame.copy()
        thin["volume"] *= 2e-5 if symbol == "BTC/USDT" else 1e-3
        frames[symbol] = thin
    return frames


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(f"sqlite:///{tmp_path / 'paper.db'}") as j:
        yield j


@pytest.mark.parametrize("algo", ["twap", "vwap"])
def test_paper_fills_are_the_backtests_children(journal: Journal, algo: str) -> None:
    frames = thin_market()
    cfg = Settings(execution={"algo": algo, "horizon_bars": 3, "participation": 0.05,
                              "volume_window": 3, "volume_period": 24})  # fmt: skip
    engine = LiveEngine(MultiAgentStrategy(settings=cfg), ReplayFeed(frames), PaperBroker(),
                        journal)  # fmt: skip
    summary = engine.run()
    backtest = EnhancedBacktester(MultiAgentStrategy(settings=cfg), settings=cfg).run(frames)
    expected = backtest.fills
    assert (expected["child"] > 0).sum() > 20
    assert (backtest.orders["status"] == "partial").any()  # the cap left some parents short

    broker = engine.broker
    assert isinstance(broker, PaperBroker)
    paper = sorted(
        (f for symbol in frames for f in broker.fills(symbol)),
        key=lambda f: int(f.trade_id.rsplit("-", 1)[1]),  # the loop's fill number
    )
    assert len(paper) == len(expected)
    rows = expected.to_dict("records")
    for fill, row in zip(paper, rows, strict=True):  # fill for fill, exactly
        assert (fill.symbol, fill.side, fill.ts) == (row["symbol"], row["side"], row["time"].value)
        assert (fill.quantity, fill.price, fill.fee) == (
            row["qty"],
            row["price"],
            row["commission"],
        )

    orders = journal.read_table("orders", run_id=summary.run_id)
    market = orders[orders["type"] == "market"]
    parent_of = dict(zip(market["decision_number"], market["client_order_id"], strict=True))
    for fill, row in zip(paper, rows, strict=True):
        if row["child"] > 0:  # a child: named after its parent, and filled on the parent's order
            parent = str(parent_of[row["decision"]])
            assert fill.client_order_id == child_id(parent, int(row["child"]))
            assert fill.client_order_id.startswith(parent[:20])
    booked = journal.read_table("fills", run_id=summary.run_id)
    assert booked["client_order_id"].notna().all()  # every child booked onto its parent
    assert not booked["reconciliation"].any()
    worked = backtest.orders[backtest.orders["children"] > 0]
    by_decision = orders[orders["type"] == "market"].set_index("decision_number")
    filled = by_decision.loc[worked["order_id"], "filled_qty"].to_numpy(float)
    np.testing.assert_allclose(filled, worked["filled_qty"].to_numpy(float), rtol=1e-9)
    assert set(by_decision.loc[worked["order_id"], "status"]) <= {"filled", "cancelled"}

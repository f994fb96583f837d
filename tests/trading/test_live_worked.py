"""Worked entries on a live venue: a TWAP entry sent as children over bars to a fake Binance.

The compiled loop picks the entry's algorithm as in a backtest; the live engine sends one
market child per bar (`parent.1`, `parent.2`, …) sized by `slicing.live_child` and replaces the
position's stop after each fill. The figures are computed by hand from the journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import live_support as ls
from fakes.binance_trading import FakeBinanceExchange
from reinforcetrade.config import Settings
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.feeds import ReplayFeed

pytestmark = pytest.mark.network


@pytest.fixture
def venue() -> Iterator[FakeBinanceExchange]:
    frame = ls.market()
    clock = FixedClock(int(frame.index[0].value))
    opening = round(float(frame["open"].iloc[0]), 2)
    with FakeBinanceExchange(clock, prices={ls.SYMBOL: opening}) as v:
        yield v


@pytest.fixture
def journal(tmp_path: Path, venue: FakeBinanceExchange) -> Iterator[Journal]:
    with Journal(f"sqlite:///{tmp_path / 'live.db'}", clock=venue.clock) as j:
        yield j


def engine(journal: Journal, venue: FakeBinanceExchange, **execution: Any) -> LiveEngine:
    settings = Settings(
        trading={"api_key": ls.CANARY_KEY, "api_secret": ls.CANARY_SECRET},
        execution={"horizon_bars": 4, "volume_period": 1, **execution},
    )
    live = LiveEngine(MultiAgentStrategy(settings=settings), ReplayFeed({ls.SYMBOL: ls.market()}),
                      ls.broker(venue.ccxt_config(timeout=1_500)), journal, venue.clock,
                      mode="live", name="worked")  # fmt: skip
    live.start()
    return live


def children(journal: Journal, run_id: int) -> pd.DataFrame:
    orders = journal.read_table("orders", run_id=run_id)
    market = orders[orders["type"] == "market"].sort_values("created_at", kind="stable")
    return market.reset_index(drop=True)


def test_a_twap_entry_goes_out_as_children_over_the_horizon(
    venue: FakeBinanceExchange, journal: Journal
) -> None:
    live = engine(journal, venue, algo="twap")
    ls.drive(live, venue, ls.market(), 0, ls.entry_bar() + 1)  # the decision and the first child
    decisions = journal.read_table("decisions", run_id=live.run_id)
    decided = decisions[decisions["action"] == "enter_long"].iloc[-1]
    wanted = float(decided["qty"])
    first = children(journal, live.run_id)
    assert len(first) == 1
    parent = first["client_order_id"].iloc[0].removesuffix(".1")
    ls.drive(live, venue, ls.market(), ls.entry_bar() + 1, ls.entry_bar() + 5)
    sent = children(journal, live.run_id)
    assert list(sent["client_order_id"]) == [f"{parent}.{n}" for n in range(1, 5)]
    assert set(sent["decision_number"]) == {int(decided["number"])}  # all the parent's
    # by hand: each child asks for what is left over the bars left (the venue's 1e-5 step)
    assert set(sent["status"]) == {"filled"}
    left = wanted
    for n, (asked, filled) in enumerate(zip(quantities(sent, "qty"), quantities(sent, "filled_qty"),
                                            strict=True), start=1):  # fmt: skip
        assert asked == pytest.approx(left / (5 - n), rel=1e-9)
        left -= filled
    assert left < 1e-5  # the last child took the rest, to the venue's quantity step
    held = float(live.stepper.run.book.pos_f[0, 0])
    assert held == pytest.approx(ls_btc(venue), rel=1e-9)
    stops = [o for o in venue.orders() if o.type == "STOP_LOSS_LIMIT"]
    assert [o.status for o in stops] == ["CANCELED"] * 3 + ["NEW"]  # replaced as it grew
    assert float(stops[-1].qty) == pytest.approx(held, abs=1e-5)
    assert live.worked is not None
    assert live.worked.working == {}
    live.shutdown("stopped")


def test_the_participation_cap_uses_the_expected_volume_and_leftovers_are_dropped(
    venue: FakeBinanceExchange, journal: Journal
) -> None:
    share, window = 1e-6, 3
    live = engine(journal, venue, algo="twap", participation=share, volume_window=window)
    ls.drive(live, venue, ls.market(), 0, ls.entry_bar() + 5)
    sent = children(journal, live.run_id)
    assert len(sent) == 4
    volumes = ls.market()["volume"].to_numpy()
    decisions = journal.read_table("decisions", run_id=live.run_id)
    wanted = float(decisions[decisions["action"] == "enter_long"].iloc[-1]["qty"])
    left, capped = wanted, []
    for n, (asked, filled) in enumerate(zip(quantities(sent, "qty"), quantities(sent, "filled_qty"),
                                            strict=True)):  # fmt: skip
        t = (
            ls.entry_bar() + 1 + n
        )  # the bar the child trades in; its forecast: the last 3 bars' mean
        cap = share * float(volumes[t - window : t].mean())
        target = left / (4 - n)  # TWAP; the last bar asks for all that is left
        assert asked == pytest.approx(min(target, cap), rel=1e-9)
        capped.append(cap < target)
        left -= filled
    assert capped[-1]  # the last child could not take the rest: the cap bound it
    assert live.worked is not None
    (worked, why) = live.worked.done[0]
    assert why == "the horizon ended"
    assert worked.remaining == pytest.approx(wanted - sum(quantities(sent, "filled_qty")), rel=1e-9)
    assert worked.remaining > 0  # reported, not sent
    live.shutdown("stopped")


def test_immediate_is_the_default_and_sends_the_entry_whole(
    venue: FakeBinanceExchange, journal: Journal
) -> None:
    live = engine(journal, venue)
    ls.drive(live, venue, ls.market(), 0, ls.entry_bar() + 3)
    sent = children(journal, live.run_id)
    assert len(sent) == 1
    assert "." not in sent["client_order_id"].iloc[0]
    live.shutdown("stopped")


def quantities(frame: pd.DataFrame, column: str) -> list[float]:
    return [float(v) for v in frame[column].to_numpy(dtype=float)]


def ls_btc(venue: FakeBinanceExchange) -> float:
    free, locked = venue.balance("BTC")
    return float(free + locked)


def test_a_stop_that_fills_while_working_ends_the_entry(
    venue: FakeBinanceExchange, journal: Journal
) -> None:
    live = engine(journal, venue, algo="twap", horizon_bars=40)
    ls.drive(live, venue, ls.market(), 0, ls.entry_bar() + 2)  # two children out
    (stop,) = [o for o in venue.orders(open_only=True) if o.type == "STOP_LOSS_LIMIT"]
    venue.set_price(ls.SYMBOL, round(float(stop.stop_price) * 0.999, 2))  # the stop fills
    ls.drive(live, venue, ls.market(), ls.entry_bar() + 2, ls.entry_bar() + 4)
    assert live.worked is not None
    assert live.worked.working == {}
    ((worked, why),) = live.worked.done
    assert why == "the position was reduced (its stop, or an exit)"
    assert worked.children == 2
    assert len(children(journal, live.run_id)) == 2  # no child after the stop
    assert float(live.stepper.run.book.pos_f[0, 0]) < 2e-5  # the stop's quantity step's dust
    live.shutdown("stopped")

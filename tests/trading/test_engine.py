"""`LiveEngine` on the paper broker: the backtester's decisions, journalled, stopped cleanly."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reinforcetrade.backtesting import EnhancedBacktester
from reinforcetrade.config import Settings
from reinforcetrade.core.timeframes import Timeframe, parse_timeframe
from reinforcetrade.data import generate_market
from reinforcetrade.storage import Journal
from reinforcetrade.storage.errors import EngineLockedError
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.engine import EngineRefused, LiveEngine, journal_url
from reinforcetrade.trading.events import Alert
from reinforcetrade.trading.feeds import ClosedBar, ReplayFeed
from reinforcetrade.trading.paper import PaperBroker

HOUR = 3_600 * 10**9
DISCRETE = ["time", "symbol", "action", "direction", "regime", "vol_regime", "trend_regime",
            "agreeing", "reason_mask", "exit_reason"]  # fmt: skip
FLOATS = ["confidence", "size", "qty", "stop", "take_profit", "threshold"]


def market(bars: int = 1_500) -> dict[str, pd.DataFrame]:
    frames = dict(generate_market(["BTC/USDT", "ETH/USDT"], bars=bars, seed=4).frames)
    frames["ETH/USDT"] = frames["ETH/USDT"].iloc[150:]  # listed later
    return frames


def session(journal: Journal, frames: Mapping[str, pd.DataFrame], **engine: object) -> LiveEngine:
    settings = engine.pop("settings", None)
    strategy = MultiAgentStrategy(settings=settings if isinstance(settings, Settings) else None)
    live = LiveEngine(strategy, ReplayFeed(frames), PaperBroker(), journal, **engine)  # type: ignore[arg-type]
    return live


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(f"sqlite:///{tmp_path / 'paper.db'}") as j:
        yield j


@pytest.mark.parametrize("history", [None, 1_000])
def test_a_paper_session_replays_as_the_backtest(journal: Journal, history: int | None) -> None:
    frames = market()
    summary = session(journal, frames, history=history).run()
    assert summary.bars == 1_500
    assert summary.stopped == "the feed ended"
    backtest = EnhancedBacktester(MultiAgentStrategy()).run(frames)
    expected = backtest.decisions
    got = journal.read_table("decisions", run_id=summary.run_id).sort_values("number")
    got = got[got["time"] < expected["time"].max() + pd.Timedelta(hours=1)]
    got = got.iloc[: len(expected)].reset_index(drop=True)
    assert len(expected) > 50
    assert len(got) == len(expected)
    for column in DISCRETE:
        left = pd.Series(got[column]).astype(str).str.replace(r"\+00:00$", "", regex=True)
        right = pd.Series(expected[column]).astype(str).str.replace(r"\+00:00$", "", regex=True)
        assert (left.to_numpy() == right.to_numpy()).all(), column
    for column in FLOATS:  # the whole history: bit for bit; a window: recursive tails ~1e-13
        tol = 0.0 if history is None else 1e-9
        np.testing.assert_allclose(
            got[column].to_numpy(float), expected[column].to_numpy(float), rtol=tol, atol=tol
        )
    fills = journal.read_table("fills", run_id=summary.run_id)
    assert len(fills) == len(backtest.fills)
    trades = journal.read_table("trades", run_id=summary.run_id)  # closed round trips
    closed = backtest.trades[backtest.trades["exit_reason"] != "open"]
    assert len(trades) == len(closed) > 0
    np.testing.assert_allclose(trades["pnl"].to_numpy(float), closed["pnl"].to_numpy(float))
    assert trades["exit_reason"].tolist() == closed["exit_reason"].astype(str).tolist()
    np.testing.assert_allclose(
        np.sort(fills["price"].to_numpy(float)), np.sort(backtest.fills["price"].to_numpy(float))
    )


def test_orders_are_journalled_with_their_stops_and_settle(journal: Journal) -> None:
    summary = session(journal, market()).run()
    orders = journal.read_table("orders", run_id=summary.run_id)
    market_orders = orders[orders["type"] == "market"]
    assert len(market_orders)
    assert (market_orders["status"] == "filled").all()
    entries = market_orders[market_orders["decision_number"].isin(
        journal.read_table("decisions", run_id=summary.run_id)
        .query("action in ['enter_long', 'enter_short']")["number"]
    )]  # fmt: skip
    stops = orders[orders["type"] == "stop"]
    assert set(stops["decision_number"]) == set(entries["decision_number"])  # each entry a stop
    # one of stop / take-profit fills, its sibling is cancelled, or both still protect
    for _, pair in orders[orders["type"].isin(["stop", "limit"])].groupby("decision_number"):
        assert (pair["status"] == "filled").sum() <= 1
        if (pair["status"] == "filled").any():
            assert set(pair["status"]) <= {"filled", "cancelled"}
    fills = journal.read_table("fills", run_id=summary.run_id)
    assert fills["client_order_id"].notna().all()  # every simulated fill belongs to an order
    assert not fills["reconciliation"].any()
    assert len(journal.read_table("equity", run_id=summary.run_id)) == 1_500
    bars = journal.read_table("bars", run_id=summary.run_id)
    assert len(bars) == 1_500 + 1_350


def test_a_second_engine_on_the_journal_refuses(journal: Journal) -> None:
    first = session(journal, market(300))
    first.start()
    try:
        with pytest.raises(EngineLockedError, match="pid"):
            session(journal, market(300), name="other").start()
    finally:
        first.shutdown()
    second = session(journal, market(300))  # the lock is free again
    second.start()
    second.shutdown()


def test_paper_and_live_never_share_a_journal(journal: Journal, tmp_path: Path) -> None:
    journal.start_run("live", name="real")
    with pytest.raises(EngineRefused, match="live runs"):
        session(journal, market(300)).start()
    settings = Settings(storage={"url": f"sqlite:///{tmp_path / 'rt.db'}"})
    assert journal_url(settings, "paper").endswith("rt-paper.db")
    assert journal_url(settings, "live").endswith("rt-live.db")
    with pytest.raises(Exception, match=r"trading\.journal_url"):
        journal_url(Settings(storage={"url": "postgresql+psycopg://u@h/db"}), "live")


def test_a_graceful_stop_withholds_entries_and_cancels_open_ones(journal: Journal) -> None:
    frames = market()
    engine = session(journal, frames)
    engine.start()
    feed = engine.feed
    cancelled = None
    while (bars := feed.next_bars(1.0)) is not None:
        step = engine.on_bars(bars)
        di, _ = engine.stepper.decision_rows(step.decisions)
        if (di[:, 2] <= 2).any():  # an entry was just sent: stop now, before its fill
            engine.request_stop("test")
            cancelled = journal.open_orders(engine.run_id)
            break
    assert cancelled, "the session never entered"
    engine.shutdown("stopped")
    orders = journal.read_table("orders", run_id=engine.run_id)
    entry = orders[orders["client_order_id"] == cancelled[-1].client_order_id].iloc[0]
    assert entry["status"] == "cancelled"
    runs = journal.read_table("runs")
    assert runs.loc[runs["id"] == engine.run_id, "status"].item() == "stopped"
    journal.acquire_engine_lock("trading-engine", owner="next").release()  # free again


class SettableClock:
    """A clock the test feed sets to each bar's arrival (a late bar, then on time again)."""

    def __init__(self) -> None:
        self.now = 0

    def now_ns(self) -> int:
        return self.now


class SilentFeed:
    """A real-time feed that delivers some bars, then a late one, then goes silent."""

    def __init__(self, clock: SettableClock, frames: Mapping[str, pd.DataFrame], late_at: int):
        self.clock = clock
        self.replay = ReplayFeed(frames)
        self.late_at = late_at
        self.count = 0

    symbols = property(lambda self: self.replay.symbols)
    timeframe: Timeframe = parse_timeframe("1h")
    realtime = True
    finished = False

    def next_bars(self, timeout: float) -> list[ClosedBar] | None:
        bars = self.replay.next_bars(timeout)
        if bars is None:  # silence: time passes, nothing arrives
            self.clock.now += HOUR
            return None
        self.count += 1
        delay = 10 * HOUR if self.count == self.late_at else 1_000
        self.clock.now = bars[0].ts + HOUR + delay
        return bars

    def close(self) -> None:
        self.replay.close()


def test_stale_data_withholds_entries_and_alerts_once(journal: Journal) -> None:
    frames = {"BTC/USDT": market(1_400)["BTC/USDT"]}
    decided = EnhancedBacktester(MultiAgentStrategy()).run(frames).decisions
    entry_times = decided.loc[decided["action"].isin(["enter_long", "enter_short"]), "time"]
    late_at = int(frames["BTC/USDT"].index.searchsorted(entry_times.iloc[0])) + 1  # an entry's bar
    clock = SettableClock()
    feed = SilentFeed(clock, frames, late_at=late_at)
    alerts: list[Alert] = []
    engine = LiveEngine(MultiAgentStrategy(), feed, PaperBroker(), journal, clock,
                        alert=alerts.append)  # fmt: skip
    engine.start()
    for _ in range(1_400 + 10):
        bars = feed.next_bars(0.0)
        if bars is None:
            engine._check_silence()
        else:
            engine.on_bars(bars)
    engine.shutdown()
    stale = [a for a in alerts if a.kind == "stale_data"]
    assert len(stale) == 2  # the late bar, then the silence at the end: one alert per episode
    events = journal.read_table("risk_events", run_id=engine.run_id)
    kinds = events["kind"].tolist()
    assert kinds.count("stale_data") == 3  # stale, fresh again, stale
    orders = journal.read_table("orders", run_id=engine.run_id)
    withheld = orders[orders["reason"].fillna("").str.contains("stale")]
    late = pd.Timestamp(frames["BTC/USDT"].index[late_at - 1])
    decisions = journal.read_table("decisions", run_id=engine.run_id)
    entries_on_late = decisions[(decisions["time"] == late)
                                & decisions["action"].isin(["enter_long", "enter_short"])]  # fmt: skip
    assert len(withheld) == len(entries_on_late) == 1
    fills = journal.read_table("fills", run_id=engine.run_id)
    assert not (fills["time"] == late + pd.Timedelta(hours=1)).any()  # nothing filled from it


def test_a_halt_survives_restarts_until_an_explicit_resume(journal: Journal) -> None:
    halting = Settings(risk={"max_drawdown_halt": 0.001})
    frames = market()
    first = session(journal, frames, settings=halting, name="desk").run()
    assert first.state == "halted"
    assert any(a.kind == "halted" for a in first.alerts)
    again = session(journal, market(400), settings=halting, name="desk")
    again.start()
    assert again.alerts[0].kind == "halted"
    assert "trade resume" in again.alerts[0].message
    assert again.stepper.run.pf[2] == 2  # HALTED from the first bar
    again.shutdown()
    with pytest.raises(Exception, match="reason"):
        LiveEngine.resume(journal, "desk", reason=" ", actor="ops", mode="paper")
    LiveEngine.resume(journal, "desk", reason="drawdown reviewed", actor="ops", mode="paper")
    resumed = session(journal, market(400), name="desk")
    resumed.start()
    assert resumed.alerts == []
    assert resumed.stepper.run.pf[2] == 0
    resumed.shutdown()
    events = journal.read_table("risk_events")
    resume = events[events["kind"] == "resume"].iloc[-1]
    assert resume["actor"] == "ops"
    assert resume["reason"] == "drawdown reviewed"
    with pytest.raises(Exception, match="not halted"):
        LiveEngine.resume(journal, "desk", reason="again", actor="ops", mode="paper")


def test_a_window_shorter_than_the_agents_look_back_is_refused(journal: Journal) -> None:
    with pytest.raises(Exception, match="look-back"):
        session(journal, market(300), history=700)


def test_the_paper_broker_takes_only_the_strategys_own_orders(journal: Journal) -> None:
    from reinforcetrade.trading.broker import OrderNotFound, OrderRejected, OrderRequest

    engine = session(journal, market(300))
    engine.start()
    paper = engine.broker
    with pytest.raises(OrderRejected, match="own decisions"):
        paper.create_order(OrderRequest("manual-1", "BTC/USDT", "buy", "market", 1.0))
    with pytest.raises(OrderRejected, match="open position"):
        paper.create_order(
            OrderRequest("manual-2", "BTC/USDT", "sell", "stop", 1.0, stop_price=1.0)
        )
    with pytest.raises(OrderRejected, match="not one of"):
        paper.create_order(OrderRequest("manual-3", "XRP/USDT", "buy", "market", 1.0))
    with pytest.raises(OrderNotFound):
        paper.fetch_order("BTC/USDT", "manual-1")
    assert paper.open_orders() == []
    assert paper.positions() == {"BTC/USDT": 0.0, "ETH/USDT": 0.0}
    engine.shutdown()

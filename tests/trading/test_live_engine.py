"""`LiveEngine` in live mode on the real ccxt client and a fake Binance: orders, stops, faults."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest

import live_support as ls
from fakes.binance import AcceptThenStall, Maintenance, Reject, StallThenDrop
from fakes.binance_trading import FakeBinanceExchange
from reinforcetrade.config import Settings
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.storage import Journal
from reinforcetrade.trading.broker import BrokerFill
from reinforcetrade.trading.ccxt_broker import CcxtBroker
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.events import Alert
from reinforcetrade.trading.live import ReconciliationError

pytestmark = pytest.mark.network

ORDER = "POST /api/v3/order"


@pytest.fixture
def venue() -> Iterator[FakeBinanceExchange]:
    frame = ls.market()
    clock = FixedClock(int(frame.index[0].value))
    with FakeBinanceExchange(
        clock, prices={ls.SYMBOL: round(float(frame["open"].iloc[0]), 2)}
    ) as v:
        yield v


@pytest.fixture
def journal(tmp_path: Path, venue: FakeBinanceExchange) -> Iterator[Journal]:
    with Journal(f"sqlite:///{tmp_path / 'live.db'}", clock=venue.clock) as j:  # venue's time
        yield j


def config(venue: FakeBinanceExchange) -> dict[str, Any]:
    return venue.ccxt_config(timeout=1_500)


def start(
    journal: Journal, venue: FakeBinanceExchange, alerts: list[Alert] | None = None
) -> LiveEngine:
    live = ls.engine(journal, config(venue), ls.market(), clock=venue.clock, alerts=alerts)
    live.start()
    return live


def btc(venue: FakeBinanceExchange) -> float:
    free, locked = venue.balance("BTC")
    return float(free + locked)


def held(live: LiveEngine) -> float:
    return float(live.stepper.run.book.pos_f[0, 0])


def venue_orders(venue: FakeBinanceExchange, kind: str) -> list[Any]:
    return [o for o in venue.orders() if o.type == kind]


def stopped_in_a_position(journal: Journal, venue: FakeBinanceExchange) -> LiveEngine:
    """Trade up to the first entry's fill, then stop the engine (its stop left on the venue)."""
    first = start(journal, venue)
    ls.drive(first, venue, ls.market(), 0, ls.entry_bar() + 1)
    first.shutdown("stopped")
    return first


def test_a_live_session_books_the_venues_fills_and_protects_each_entry(
    venue: FakeBinanceExchange, journal: Journal
) -> None:
    live = start(journal, venue)
    ls.drive(live, venue, ls.market(), 0, ls.entry_bar() + 1)
    (bought,) = venue_orders(venue, "MARKET")
    assert (bought.side, bought.status) == ("BUY", "FILLED")
    (stop,) = venue_orders(venue, "STOP_LOSS_LIMIT")
    assert stop.status == "NEW"
    assert stop.side == "SELL"
    assert float(stop.qty) == pytest.approx(btc(venue), abs=1e-5)  # the quantity held
    assert held(live) == pytest.approx(btc(venue), rel=1e-9)  # net of the fee paid in BTC
    decisions = journal.read_table("decisions", run_id=live.run_id)
    chosen = decisions[decisions["action"] == "enter_long"].iloc[-1]
    assert float(stop.stop_price) == pytest.approx(chosen["stop"], rel=0.01)
    ls.drive(live, venue, ls.market(), ls.entry_bar() + 1, len(ls.market()))
    live.shutdown("stopped")
    fills = journal.read_table("fills", run_id=live.run_id)
    assert sorted(fills["exchange_trade_id"].astype(str)) == sorted(
        str(f.trade_id) for f in venue.fills()
    )
    assert not fills["reconciliation"].any()
    assert held(live) == pytest.approx(btc(venue), abs=1e-5)
    orders = journal.read_table("orders", run_id=live.run_id)
    sent = orders[orders["status"] != "rejected"]
    assert len(sent) == len(venue.orders())  # one venue order per journalled order


def test_a_refused_stop_exits_the_position_and_alerts(
    venue: FakeBinanceExchange, journal: Journal
) -> None:
    alerts: list[Alert] = []
    live = start(journal, venue, alerts)
    ls.drive(live, venue, ls.market(), 0, ls.entry_bar())
    venue.script(ORDER, None, Reject(-2010, "Account has insufficient balance."))
    ls.drive(live, venue, ls.market(), ls.entry_bar(), ls.entry_bar() + 1)
    assert [a.kind for a in alerts] == ["stop_rejected"]
    assert "insufficient balance" in alerts[0].message
    kinds = [(o.type, o.side, o.status) for o in venue.orders()]
    assert kinds == [("MARKET", "BUY", "FILLED"), ("MARKET", "SELL", "FILLED")]
    assert held(live) == 0.0
    assert btc(venue) < 1e-4  # dust of the quantity step only
    orders = journal.read_table("orders", run_id=live.run_id).set_index("type")
    assert orders.loc["stop", "status"] == "rejected"
    live.shutdown()


def test_a_stop_that_fills_while_down_is_booked_at_restart(
    venue: FakeBinanceExchange, journal: Journal
) -> None:
    first = stopped_in_a_position(journal, venue)
    (stop,) = venue_orders(venue, "STOP_LOSS_LIMIT")
    venue.set_price(ls.SYMBOL, round(float(stop.stop_price) * 0.999, 2))  # triggers, fills
    assert venue.order(stop.client_id).status == "FILLED"
    again = start(journal, venue)
    assert again.run_id == first.run_id  # the live session goes on
    booked = journal.orders_by_client_id([stop.client_id])[stop.client_id]
    assert booked.status == "filled"
    assert journal.fills_for(stop.client_id)
    assert held(again) == 0.0
    assert len(venue_orders(venue, "STOP_LOSS_LIMIT")) == 1  # no new stop for a closed position
    assert venue.orders(open_only=True) == []
    again.shutdown()


def test_a_restart_keeps_the_position_and_its_stop(
    venue: FakeBinanceExchange, journal: Journal
) -> None:
    first = stopped_in_a_position(journal, venue)
    position = held(first)
    again = start(journal, venue)
    assert held(again) == pytest.approx(position)
    (stop,) = venue_orders(venue, "STOP_LOSS_LIMIT")
    assert stop.status == "NEW"
    events = journal.read_table("risk_events", run_id=again.run_id)
    assert events["reason"].str.contains("its stop stays").any()
    ls.drive(
        again, venue, ls.market(), ls.entry_bar() + 1, ls.entry_bar() + 40
    )  # trades on from there
    again.shutdown()


def test_a_failed_query_at_start_is_never_read_as_flat(
    venue: FakeBinanceExchange, journal: Journal
) -> None:
    stopped_in_a_position(journal, venue)
    venue.script("GET /api/v3/myTrades", *[Maintenance()] * 4)
    with pytest.raises(ReconciliationError, match="unknown"):
        start(journal, venue)
    runs = journal.read_table("runs")
    assert runs["status"].tolist() == ["failed"]
    again = start(journal, venue)  # the lock was released; the venue answers again
    assert held(again) > 0
    again.shutdown()


def test_a_venue_holding_less_than_the_journal_halts(
    venue: FakeBinanceExchange, journal: Journal
) -> None:
    stopped_in_a_position(journal, venue)
    other = ccxt.binance({**config(venue), "apiKey": "someone", "secret": "else"})
    (stop,) = venue_orders(venue, "STOP_LOSS_LIMIT")
    other.cancel_order(None, ls.SYMBOL, {"origClientOrderId": stop.client_id})
    other.create_order(ls.SYMBOL, "market", "sell", 0.005, None, {"newClientOrderId": "manual-1"})
    with pytest.raises(ReconciliationError, match="the venue holds"):
        start(journal, venue)
    events = journal.read_table("risk_events")
    assert (events["kind"] == "reconcile").any()


class Echo(CcxtBroker):
    """A venue whose trade lists repeat every execution, newest first (a flaky API)."""

    def fills(self, symbol: str, since_ns: int | None = None) -> list[BrokerFill]:
        rows = super().fills(symbol, since_ns)
        return list(reversed(rows)) + rows


def test_duplicate_and_reordered_fills_are_applied_once(
    venue: FakeBinanceExchange, journal: Journal
) -> None:
    live = ls.engine(journal, config(venue), ls.market(), clock=venue.clock)
    plain = live.broker
    assert isinstance(plain, CcxtBroker)
    echo = Echo(plain.exchange, sleep=lambda _s: None)
    live.broker = echo
    live.start()
    ls.drive(live, venue, ls.market(), 0, ls.entry_bar() + 5)
    assert held(live) == pytest.approx(btc(venue), rel=1e-9)
    fills = journal.read_table("fills", run_id=live.run_id)
    assert len(fills) == len(venue.fills()) == fills["exchange_trade_id"].nunique()
    live.shutdown()


def test_no_entries_while_the_venue_is_down_and_it_recovers(
    venue: FakeBinanceExchange, journal: Journal
) -> None:
    alerts: list[Alert] = []
    live = start(journal, venue, alerts)
    ls.drive(live, venue, ls.market(), 0, ls.entry_bar())
    venue.script(ORDER, Maintenance())
    ls.drive(live, venue, ls.market(), ls.entry_bar(), ls.entry_bar() + 1)
    assert venue.orders() == []
    orders = journal.read_table("orders", run_id=live.run_id)
    assert orders["reason"].str.contains("unavailable").any()
    assert held(live) == 0.0
    assert live.stepper.run.pending.pend_i[0, 0] == 0  # the loop's order was let go
    ls.drive(live, venue, ls.market(), ls.entry_bar() + 1, len(ls.market()))
    assert venue.orders()  # trading went on once the venue answered
    live.shutdown()


def order_requests(venue: FakeBinanceExchange) -> list[Any]:
    return [r for r in venue.requests if (r.method, r.path) == ("POST", "/api/v3/order")]


def child(venue: FakeBinanceExchange, url: str, stop: int) -> subprocess.Popen[str]:
    helper = Path(ls.__file__)
    return subprocess.Popen(  # noqa: S603 - our own test helper
        [
            sys.executable,
            str(helper),
            json.dumps(venue.ccxt_config(timeout=120_000)),
            url,
            str(stop),
            str(venue.clock.now_ns()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_when(process: subprocess.Popen[str], ready: Any, what: str) -> None:
    deadline = time.monotonic() + 120
    while not ready():
        if process.poll() is not None:
            raise AssertionError(f"the engine ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    process.kill()  # SIGKILL: no clean-up of any kind
    process.communicate(timeout=30)  # and close its pipes


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["before_the_venue_records_it", "after_the_venue_acked_it"])
def test_kill_9_around_an_order_leaves_one_truth(
    venue: FakeBinanceExchange, journal: Journal, tmp_path: Path, moment: str
) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    venue.set_price(ls.SYMBOL, round(float(ls.market()["close"].iloc[ls.entry_bar()]), 2))
    if moment == "before_the_venue_records_it":
        venue.script(ORDER, StallThenDrop(60))
    else:
        venue.script(ORDER, AcceptThenStall(60))
    process = child(venue, url, ls.entry_bar() + 1)
    kill_when(process, lambda: order_requests(venue), "the order request")
    assert len(order_requests(venue)) == 1
    (row,) = journal.read_table("orders").to_dict("records")
    assert row["status"] == "pending"  # written before it was sent, and then the engine died
    cid = str(row["client_order_id"])
    live = start(journal, venue)
    booked = journal.orders_by_client_id([cid])[cid]
    if moment == "before_the_venue_records_it":
        assert venue.orders() == []
        assert booked.status == "rejected"
        assert "never reached" in (booked.reason or "")
        assert held(live) == 0.0
    else:
        (order,) = venue_orders(venue, "MARKET")
        assert order.client_id == cid
        assert order.status == "FILLED"
        assert booked.status == "filled"
        assert held(live) == pytest.approx(btc(venue), rel=1e-9)
        (stop,) = venue_orders(venue, "STOP_LOSS_LIMIT")  # protected after the restart
        assert stop.status == "NEW"
    live.shutdown()


def test_canary_secrets_appear_in_no_log_journal_error_or_report(
    venue: FakeBinanceExchange,
    journal: Journal,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    alerts: list[Alert] = []
    live = start(journal, venue, alerts)
    ls.drive(live, venue, ls.market(), 0, ls.entry_bar())
    venue.script(ORDER, None, Reject(-2010, "Account has insufficient balance."))
    ls.drive(live, venue, ls.market(), ls.entry_bar(), ls.entry_bar() + 30)
    live.shutdown("stopped")
    venue.script("GET /api/v3/myTrades", *[Maintenance()] * 4)
    with pytest.raises(ReconciliationError) as failed:
        start(journal, venue)
    errors.append(str(failed.value))
    assert alerts  # something went wrong on purpose, and was said
    settings = Settings(trading={"api_key": ls.CANARY_KEY, "api_secret": ls.CANARY_SECRET})
    from reinforcetrade.backtesting import EnhancedBacktester
    from reinforcetrade.reports import ReportGenerator
    from reinforcetrade.strategies import MultiAgentStrategy

    result = EnhancedBacktester(MultiAgentStrategy(settings=settings)).run({ls.SYMBOL: ls.market()})
    page = ReportGenerator().generate_full_report(result, tmp_path / "report")
    saved = result.save(tmp_path / "result")
    outputs = {
        "logs": caplog.text,
        "console": "".join(capsys.readouterr()),
        "errors": "\n".join(errors + [a.message for a in alerts]),
        "journal": "\n".join(
            journal.read_table(t).to_csv()
            for t in (
                "runs",
                "orders",
                "order_events",
                "fills",
                "decisions",
                "risk_events",
                "positions",
            )
        ),
        "journal file": (tmp_path / "live.db").read_bytes().decode("latin-1"),
    }
    for path in [*page.rglob("*"), *saved.rglob("*")]:
        if path.is_file():
            outputs[str(path)] = path.read_bytes().decode("latin-1")
    assert outputs["logs"]
    assert outputs["journal"]
    for where, text in outputs.items():
        for canary in (ls.CANARY_KEY, ls.CANARY_SECRET):
            assert canary not in text, f"{canary} leaked into {where}"

"""`reinforcetrade trade`: a paper session end to end, SIGTERM stops it cleanly, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_support import cli
from reinforcetrade.storage import Journal


def test_trade_paper_replays_and_resume_is_explicit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    code, out, err = cli(capsys, "trade", "--paper", "--max-bars", "1200", "--journal", url,
                         "--name", "desk")  # fmt: skip
    assert code == 0, err
    assert "paper trading as run 1" in out
    assert "1200 bars" in out
    assert "latency p99" in out
    with Journal(url) as journal:
        runs = journal.read_table("runs")
        assert runs["kind"].tolist() == ["paper"]
        assert runs["status"].tolist() == ["completed"]
        assert len(journal.read_table("equity")) == 1_200
        assert len(journal.read_table("decisions")) > 0
    code, _, err = cli(capsys, "trade", "resume", "--name", "desk", "--reason", "ok",
                       "--journal", url)  # fmt: skip
    assert code == 2
    assert "not halted" in err
    code, _, err = cli(capsys, "trade", "--live", "--paper", "--journal", url)
    assert code == 2
    assert "not both" in err


def test_sigterm_stops_a_session_cleanly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    command = [sys.executable, "-c", "from reinforcetrade.cli import run; raise SystemExit(run())",
               "trade", "--paper", "--speed", "200000x", "--journal", url]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - our own command line
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if (tmp_path / "paper.db").exists():
                with Journal(url) as journal:
                    if len(journal.read_table("equity")) > 50:
                        break
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
    assert process.returncode == 0, err
    assert "signal SIGTERM" in out
    with Journal(url) as journal:
        run = journal.read_table("runs").iloc[0]
        assert run["status"] == "stopped"
        assert run["ended_at"] is not None
        lock = journal.acquire_engine_lock("trading-engine", owner="after")  # released
        lock.release()


@pytest.mark.network
def test_trade_live_on_a_local_exchange(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fakes.binance_trading import FakeBinanceExchange
    from reinforcetrade.core.clock import WallClock

    url = f"sqlite:///{tmp_path / 'live.db'}"
    with FakeBinanceExchange(WallClock()) as venue:
        monkeypatch.setenv("RT_DATA__API_URLS", json.dumps(venue.ccxt_urls))  # trading APIs too
        monkeypatch.setenv("RT_DATA__CACHE_DIR", str(tmp_path / "cache"))
        args = ["trade", "--live", "--exchange", "binance", "--symbol", "BTC/USDT",
                "--timeframe", "1h", "--journal", url, "--max-bars", "5"]  # fmt: skip
        code, _, err = cli(capsys, *args)
        assert code == 2
        assert "trading.api_key" in err  # live needs keys from the config, never a default
        monkeypatch.setenv("RT_TRADING__API_KEY", "CANARYKEY-live-cli")
        monkeypatch.setenv("RT_TRADING__API_SECRET", "CANARYSECRET-live-cli")
        code, out, err = cli(capsys, *args)
        assert code == 0, err
        assert "live trading as run 1" in out
        assert "5 bars" in out
        assert "CANARY" not in out + err
        assert any(r.path == "/api/v3/account" for r in venue.requests)  # reconciled first
    with Journal(url) as journal:
        assert journal.read_table("runs")["kind"].tolist() == ["live"]
        assert len(journal.read_table("bars")) == 5
    code, _, err = cli(capsys, "trade", "--paper", "--journal", url, "--max-bars", "1")
    assert code == 2
    assert "live runs" in err  # paper never shares the live journal
    code, _, err = cli(capsys, "trade", "--live", "--journal", url)
    assert code == 2
    assert "--exchange" in err


@pytest.mark.network
def test_alerts_test_reports_each_channel(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fakes import FakeServer, Reply, ServerError

    with FakeServer() as hooks:
        path = "/hooks/T0CLI/B0CLI/cli-secret-path-4821"
        hooks.route("POST", path, lambda _request: Reply.json({"ok": True}))
        code, _, err = cli(capsys, "alerts", "test")
        assert code == 2
        assert "alerts.enabled" in err
        monkeypatch.setenv("RT_ALERTS__ENABLED", "true")
        monkeypatch.setenv("RT_ALERTS__CHANNELS", '["log", "webhook"]')
        monkeypatch.setenv("RT_ALERTS__WEBHOOK_URL", f"{hooks.url}{path}")
        code, out, err = cli(capsys, "alerts", "test")
        assert code == 0, err
        assert "webhook" in out
        assert "ok" in out
        (delivered,) = hooks.requests_to(path)
        assert json.loads(delivered.body)["title"] == "ReinforceTrade test alert"
        hooks.script(path, ServerError())
        code, out, _ = cli(capsys, "alerts", "test")
        assert code == 1
        assert "cli-secret-path" not in out  # the webhook URL is a secret


def test_trade_on_oanda_needs_its_settings(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "trade", "--live", "--broker", "oanda", "--max-bars", "1")
    assert code == 2
    assert "trading.oanda_account_id and trading.oanda_token" in err


@pytest.mark.network
def test_trade_live_routed_across_two_local_exchanges(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fakes.binance_trading import FakeBinanceExchange
    from reinforcetrade.core.clock import WallClock

    url = f"sqlite:///{tmp_path / 'routed.db'}"
    clock = WallClock()
    with FakeBinanceExchange(clock) as alpha, FakeBinanceExchange(clock, seed=8) as beta:
        keys = {"api_key": "CANARYKEY-routed-cli", "api_secret": "CANARYSECRET-routed-cli"}
        venues = {
            "alpha": {"broker": "ccxt:binance", "api_urls": alpha.ccxt_urls, **keys},
            "beta": {"broker": "ccxt:binance", "api_urls": beta.ccxt_urls, "fee_bps": 2, **keys},
        }
        monkeypatch.setenv("RT_ROUTING__VENUES", json.dumps(venues))
        monkeypatch.setenv("RT_DATA__API_URLS", json.dumps(alpha.ccxt_urls))  # the bars
        monkeypatch.setenv("RT_DATA__CACHE_DIR", str(tmp_path / "cache"))
        args = ["trade", "--live", "--broker", "routed", "--symbol", "BTC/USDT",
                "--timeframe", "1h", "--journal", url, "--max-bars", "3"]  # fmt: skip
        code, out, err = cli(capsys, *args)
        assert code == 0, err
        assert "live trading as run 1" in out
        assert "CANARY" not in out + err
        for venue in (alpha, beta):  # both reconciled before the first bar
            assert any(r.path == "/api/v3/account" for r in venue.requests)
    with Journal(url) as journal:
        run = journal.read_table("runs").iloc[0]
        assert run["kind"] == "live"
        assert len(journal.read_table("bars")) == 3

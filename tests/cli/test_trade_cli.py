"""`reinforcetrade trade`: a paper session end to end, SIGTERM stops it cleanly, resume."""

from __future__ import annotations

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
    code, _, err = cli(capsys, "trade", "--live", "--journal", url)
    assert code == 2
    assert "--paper" in err


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

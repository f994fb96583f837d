"""`reinforcetrade serve`: the API with a paper engine end to end, weak settings refused, tools."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cli_support import cli
from reinforcetrade.storage import Journal
from reinforcetrade.web.auth import verify_password

PASSWORD = "a long enough passphrase"  # noqa: S105 - the test's own user
SECRET = "s" * 40


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_refuses_weak_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    monkeypatch.delenv("RT_WEB__PASSWORD", raising=False)
    code, _, err = cli(capsys, "serve", "--journal", url)
    assert code == 2
    assert "no password" in err
    assert "token_secret" in err
    monkeypatch.setenv("RT_WEB__PASSWORD", "password")
    monkeypatch.setenv("RT_WEB__TOKEN_SECRET", SECRET)
    code, _, err = cli(capsys, "serve", "--journal", url)
    assert code == 2
    assert "default or guessable" in err
    monkeypatch.setenv("RT_WEB__PASSWORD", PASSWORD)
    code, _, err = cli(capsys, "serve", "--journal", url, "--host", "0.0.0.0")  # noqa: S104
    assert code == 2
    assert "allow_public_bind" in err


def test_hash_password_and_the_openapi_schema(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    code, out, err = cli(capsys, "serve", "hash-password", "--stdin")
    assert code == 0, err
    stored = out.strip()
    assert verify_password(PASSWORD, stored)
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    code, _, err = cli(capsys, "serve", "hash-password", "--stdin")
    assert code == 2
    assert "shorter than 12" in err
    target = tmp_path / "openapi.json"
    code, _, err = cli(capsys, "serve", "openapi", "--out", str(target))
    assert code == 0, err
    schema = json.loads(target.read_text())
    assert "/api/v1/decisions" in schema["paths"]
    assert schema["info"]["title"] == "ReinforceTrade"


def test_serve_runs_the_engine_and_stops_on_request_then_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    port = free_port()
    env = os.environ | {"RT_WEB__PASSWORD": PASSWORD, "RT_WEB__TOKEN_SECRET": SECRET}
    command = [sys.executable, "-c", "from reinforcetrade.cli import run; raise SystemExit(run())",
               "serve", "--paper", "--speed", "20000x", "--journal", url, "--port", str(port),
               "--name", "web-desk"]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - our own command line
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=base, timeout=10) as http:
            while True:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the server did not come up"
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            token = http.post("/api/v1/auth/login",
                              json={"username": "admin", "password": PASSWORD}).json()  # fmt: skip
            header = {"Authorization": f"Bearer {token['access_token']}"}
            while http.get("/api/v1/status", headers=header).json()["engine"]["bars"] < 20:
                assert time.monotonic() < deadline, "the engine did not trade"
                time.sleep(0.2)
            stopped = http.post("/api/v1/control/stop", headers=header, json={"reason": "test"})
            assert stopped.status_code == 200, stopped.text
            while http.get("/health").json()["engine"] != "stopped":
                assert time.monotonic() < deadline, "the engine did not stop"
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
    assert process.returncode == 0, err
    assert "paper engine running as run 1" in out
    assert f"dashboard and API on http://127.0.0.1:{port}" in out
    assert "engine stopped: stopped by admin: test" in out
    with Journal(url) as journal:
        run = journal.read_table("runs").iloc[0]
        assert (run["name"], run["status"]) == ("web-desk", "stopped")
        audit = journal.read_table("audit_log")
        assert audit[["actor", "action", "outcome"]].values.tolist() == [["admin", "stop", "done"]]


def test_the_published_openapi_schema_is_current() -> None:
    from reinforcetrade.web.app import openapi_schema

    published = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
    assert json.loads(published.read_text()) == json.loads(json.dumps(openapi_schema())), (
        "docs/openapi.json is out of date: run `reinforcetrade serve openapi --out docs/openapi.json`"
    )

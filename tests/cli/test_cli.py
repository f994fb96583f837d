"""End to end through the `reinforcetrade` command: one test (at least) per command, and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cli_support import cli
from reinforcetrade import __version__
from reinforcetrade.data import load_ohlcv


@pytest.fixture(autouse=True)
def _isolated(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--version")
    assert (code, out.strip()) == (0, f"reinforcetrade {__version__}")


def test_generate_writes_one_valid_file_per_symbol(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["data", "generate", "--symbols", "BTC/USDT,ETH/USDT", "--timeframe", "4h"]
    code, out, _ = cli(capsys, *args, "--bars", "300", "--seed", "7", "--out", "a")
    assert code == 0, out
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["BTC-USDT_4h.parquet", "ETH-USDT_4h.parquet"]
    btc = load_ohlcv(tmp_path / "a" / "BTC-USDT_4h.parquet", gaps="raise")
    assert (len(btc), btc.attrs["symbol"], btc.attrs["timeframe"]) == (300, "BTC/USDT", "4h")
    cli(capsys, *args, "--bars", "300", "--seed", "7", "--out", "b", "--format", "csv")
    again = load_ohlcv(tmp_path / "b" / "BTC-USDT_4h.csv")
    pd.testing.assert_frame_equal(again, btc, check_freq=False)  # same seed, same market


def test_validate_valid_file_reports_gaps(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli(capsys, "data", "generate", "--symbols", "BTC/USDT", "--bars", "100", "--out", ".")
    frame = load_ohlcv(tmp_path / "BTC-USDT_1h.parquet")
    holed = frame.drop(frame.index[[10, 11, 50]])
    holed.to_parquet(tmp_path / "holed.parquet")
    code, out, _ = cli(capsys, "data", "validate", "holed.parquet")
    assert code == 0
    assert "valid: holed.parquet: 97 bars of 1h" in out
    assert "gaps: 2 gaps, 3 bars missing (1h bars, calendar 24/7)" in out
    assert "2 bars missing (missing)" in out


def test_validate_invalid_file_exits_2_with_every_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "bad.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,1,2,1,2,3\n2024-01-01T01:00:00Z,1,0.5,1,2,3\n2024-01-01T01:00:00Z,1,2,1,2,-3\n"
    )
    code, out, err = cli(capsys, "data", "validate", "bad.csv", "--timeframe", "1h")
    assert code == 2
    assert "bad.csv, line 3, column 'high': high is below max(open, close)" in out
    assert "bad.csv, line 4, column 'timestamp': duplicate of line 3" in out
    assert "bad.csv, line 4, column 'volume': volume is negative" in out
    assert "invalid: bad.csv: 3 problems" in err
    assert "Traceback" not in out + err


@pytest.mark.shared_data
def test_validate_real_file(capsys: pytest.CaptureFixture[str], shared_data: Path) -> None:
    code, out, _ = cli(capsys, "data", "validate", str(shared_data / "btcusdt_1h.csv.gz"))
    assert code == 0
    assert "58419 bars of 1h, 2017-08-17 04:00 → 2024-04-21 14:00 UTC" in out
    assert "gaps: 28 gaps, 128 bars missing" in out
    assert "2018-02-08 00:00 → 2018-02-09 10:00 UTC: 33 bars missing" in out


def test_info(capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "data", "generate", "--symbols", "ETH/USDT", "--bars", "500", "--out", ".")
    code, out, _ = cli(capsys, "data", "info", "ETH-USDT_1h.parquet")
    assert code == 0, out
    for fragment in ("symbol", "ETH/USDT", "bars", "500", "0 gaps", "volatility", "max drawdown"):
        assert fragment in out


def test_resample(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cli(
        capsys,
        "data",
        "generate",
        "--symbols",
        "BTC/USDT",
        "--timeframe",
        "15m",
        "--bars",
        "960",
        "--out",
        ".",
    )
    code, out, _ = cli(
        capsys, "data", "resample", "BTC-USDT_15m.parquet", "daily.csv", "--timeframe", "1d"
    )
    assert code == 0, out
    daily = load_ohlcv(tmp_path / "daily.csv")
    assert len(daily) == 10
    source = load_ohlcv(tmp_path / "BTC-USDT_15m.parquet")
    first_day = source.loc[: pd.Timestamp("2020-01-01T23:59Z")]
    assert daily["high"].iloc[0] == first_day["high"].max()
    assert daily["volume"].iloc[0] == pytest.approx(first_day["volume"].sum(), rel=1e-12)


def test_config_show_masks_secrets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my.yaml").write_text("risk:\n  stop_loss: 0.04\n")
    monkeypatch.setenv("RT_TRADING__API_SECRET", "very-secret-value")
    code, out, _ = cli(capsys, "config", "show", "--config", "my.yaml")
    assert code == 0
    assert "stop_loss: 0.04" in out
    assert "api_secret: '**********'" in out
    assert "very-secret-value" not in out
    assert out.startswith("# config hash: ")
    code, out, _ = cli(capsys, "--config", "my.yaml", "config", "show", "--json")
    assert json.loads(out)["risk"]["stop_loss"] == 0.04


def test_config_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "config", "schema")
    assert code == 0
    assert "tower" in json.loads(out)["properties"]


def test_bad_config_exits_2_with_one_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "reinforcetrade.yaml").write_text("risk:\n  stop_loss: 2\n  take_profit: -1\n")
    code, _, err = cli(capsys, "config", "show")
    assert code == 2
    assert "risk.stop_loss = 2" in err
    assert "risk.take_profit = -1" in err
    assert "Traceback" not in err


def test_missing_file_exits_2_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "data", "info", "nope.csv")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "nope.csv: no such file" in err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "data", "generate", "--bars", "1", "--out", ".")
    assert code == 2
    assert "--bars" in err


def test_unexpected_error_exits_1_traceback_only_with_debug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import reinforcetrade.cli.config_cmds as config_cmds

    def boom() -> dict[str, object]:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(config_cmds, "settings_schema", boom)
    code, _, err = cli(capsys, "config", "schema")
    assert code == 1
    assert "unexpected error: RuntimeError: kaboom" in err
    assert "Traceback" not in err
    code, _, err = cli(capsys, "--debug", "config", "schema")
    assert code == 1
    assert "Traceback" in err


@pytest.mark.slow
def test_demo_generates_and_summarises(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "reinforcetrade.yaml").write_text("data:\n  synthetic:\n    bars: 2000\n")
    code, out, _ = cli(capsys, "demo", "--out", "out", "--timesteps", "256")
    assert code == 0, out
    assert (tmp_path / "out" / "data" / "BTC-USDT_1h.parquet").is_file()
    assert "BTC/USDT" in out
    assert "ETH/USDT" in out
    assert "regimes: calm" in out
    assert "data written to out/data" in out
    assert "backtest result written to out/backtest" in out
    assert (tmp_path / "out" / "backtest" / "decisions.parquet").is_file()
    assert "training PPO on BTC/USDT" in out
    assert "becomes the first champion for BTC/USDT 1h" in out
    assert "held-out span" in out
    for row in ("multi-agent + RL", "multi-agent ", "buy and hold"):
        assert row in out
    decisions = pd.read_parquet(tmp_path / "out" / "backtest" / "decisions.parquet")
    assert "signal_rl" in decisions.columns
    held_out = pd.Timestamp("2020-01-01", tz="UTC") + pd.Timedelta(hours=1500)
    assert decisions["time"].min() >= held_out  # decisions only on the held-out span
    report = (tmp_path / "out" / "backtest" / "report" / "report.html").resolve()
    assert out.rstrip().splitlines()[-1] == f"report: {report}"  # the demo ends with the report
    html = report.read_text()
    for section in ("summary", "decisions", "segments", "models"):
        assert f'data-section="{section}"' in html
    assert "out-of-sample (held-out span)" in html


def test_console_script_is_installed_and_uses_exit_codes(tmp_path: Path) -> None:
    exe = shutil.which("reinforcetrade", path=str(Path(sys.executable).parent))
    assert exe is not None, "the console script is not installed beside this interpreter"
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    assert (done.returncode, done.stdout.strip()) == (0, f"reinforcetrade {__version__}")
    bad = subprocess.run(  # noqa: S603
        [exe, "data", "validate", str(tmp_path / "missing.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr


@pytest.mark.network
def test_fetch_from_a_local_exchange_writes_closed_bars_and_caches(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fakes.binance import FakeBinance, RateLimited
    from reinforcetrade.core.clock import WallClock

    with FakeBinance(WallClock()) as venue:
        monkeypatch.setenv("RT_DATA__API_URLS", json.dumps(venue.api_urls))
        monkeypatch.setenv("RT_DATA__CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("RT_DATA__RETRY_BACKOFF_SECONDS", "0")
        venue.script("/api/v3/klines", RateLimited())  # the first page meets a 429 and is retried
        args = ["data", "fetch", "BTC/USDT", "--exchange", "binance", "--timeframe", "1h"]
        code, out, err = cli(capsys, *args, "--limit", "1500", "--out", "bars")
        assert code == 0, err
        assert "wrote bars/BTC-USDT_1h.parquet: 1500 bars" in out
        frame = load_ohlcv(tmp_path / "bars" / "BTC-USDT_1h.parquet", gaps="raise")
        assert len(frame) == 1500
        last_open = frame.index[-1].value // 1_000_000
        assert last_open + 3_600_000 <= venue.now_ms  # only closed bars
        asked = len(venue.requests_to("/api/v3/klines"))
        code, _, _ = cli(capsys, *args, "--limit", "1000", "--out", "again", "--format", "csv")
        assert code == 0
        assert len(venue.requests_to("/api/v3/klines")) - asked <= 1  # served from the cache
        assert len(load_ohlcv(tmp_path / "again" / "BTC-USDT_1h.csv")) == 1000


@pytest.mark.network
def test_fetch_bad_symbol_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fakes.binance import FakeBinance
    from reinforcetrade.core.clock import WallClock

    with FakeBinance(WallClock()) as venue:
        monkeypatch.setenv("RT_DATA__API_URLS", json.dumps(venue.api_urls))
        monkeypatch.setenv("RT_DATA__CACHE_DIR", str(tmp_path / "cache"))
        code, _, err = cli(
            capsys, "data", "fetch", "BTC/USTD", "--exchange", "binance", "--out", "."
        )
    assert code == 2
    assert "BTC/USTD" in err
    assert "BTC/USDT" in err  # a close symbol is suggested


def test_bad_data_in_other_commands_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "bad.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,1,2,1,2,-3\n2024-01-01T01:00:00Z,1,0.5,1,2,3\n"
    )
    for command in (
        ["data", "info", "bad.csv"],
        ["data", "resample", "bad.csv", "o.csv", "-t", "4h"],
    ):
        code, _, err = cli(capsys, *command)
        assert code == 2
        assert err.strip().count("\n") == 0, err
        assert "bad.csv, line 2, column 'volume': volume is negative" in err
        assert "and 1 more" in err
    assert not (tmp_path / "o.csv").exists()


def test_backtest_on_the_synthetic_market(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "reinforcetrade.yaml").write_text("data:\n  synthetic:\n    bars: 3000\n")
    code, out, err = cli(capsys, "backtest", "--synthetic", "--symbol", "BTC/USDT", "--out", "bt")
    assert code == 0, err
    for fragment in (
        "total return",
        "Sharpe",
        "max drawdown",
        "blocked entries by reason",
        "result written to bt",
    ):
        assert fragment in out
    for name in ("equity", "trades", "orders", "fills", "decisions", "exposure"):
        assert pd.read_parquet(tmp_path / "bt" / f"{name}.parquet") is not None
    summary = json.loads((tmp_path / "bt" / "metrics.json").read_text())
    assert summary["symbols"] == ["BTC/USDT"]
    assert summary["metrics"]["trade_count"] == len(
        pd.read_parquet(tmp_path / "bt" / "trades.parquet").query("exit_reason != 'open'")
    )
    assert "api_key" in (tmp_path / "bt" / "config.yaml").read_text()


def test_backtest_on_a_file_with_dates_and_resampling(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli(
        capsys,
        "data",
        "generate",
        "--symbols",
        "ETH/USDT",
        "--timeframe",
        "15m",
        "--bars",
        "20000",
        "--out",
        ".",
    )
    code, _out, err = cli(
        capsys,
        "backtest",
        "--data",
        "ETH-USDT_15m.parquet",
        "--timeframe",
        "1h",
        "--start",
        "2020-01-20",
        "--end",
        "2020-06-30",
        "--out",
        "bt",
    )
    assert code == 0, err
    equity = pd.read_parquet(tmp_path / "bt" / "equity.parquet")
    assert equity.index[0] >= pd.Timestamp("2020-01-20", tz="UTC")
    assert equity.index[-1] < pd.Timestamp("2020-07-01", tz="UTC")
    assert (equity.index[1] - equity.index[0]) == pd.Timedelta(hours=1)


def test_backtest_refuses_both_sources(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "backtest", "--synthetic", "--data", "x.csv")
    assert code == 2
    assert "either --data FILE or --synthetic" in err

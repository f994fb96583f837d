"""End to end: `reinforcetrade report RESULT_DIR` and `reinforcetrade backtest --report`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cli_support import cli
from report_support import decode_decisions, metric_values, page_data


@pytest.fixture(autouse=True)
def _isolated(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    (clean_env / "reinforcetrade.yaml").write_text("data:\n  synthetic:\n    bars: 2000\n")


def test_backtest_report_then_report_again_from_the_saved_result(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = cli(capsys, "backtest", "--synthetic", "--out", "bt", "--report")
    assert code == 0, err
    assert "report written to bt/report/report.html" in out
    html = (tmp_path / "bt" / "report" / "report.html").read_text()
    summary = json.loads((tmp_path / "bt" / "metrics.json").read_text())
    shown = metric_values(html)
    for name, value in summary["metrics"].items():
        assert (value is None and math.isnan(shown[name])) or shown[name] == value, name

    code, out, err = cli(capsys, "report", "bt", "--out", "again", "--title", "Second look")
    assert code == 0, err
    assert "report written to again/report.html" in out
    again = (tmp_path / "again" / "report.html").read_text()
    assert "<title>Second look</title>" in again
    assert metric_values(again) == shown
    first = decode_decisions(page_data(html))
    second = decode_decisions(page_data(again))
    assert second.equals(first)
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == [
        "decisions.csv", "report.html", "report.json", "trades.csv",
    ]  # fmt: skip

    code, out, err = cli(capsys, "report", "bt")  # default folder: RESULT_DIR/report
    assert code == 0, err
    assert "report written to bt/report/report.html" in out


def test_report_of_a_folder_that_is_no_result_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = cli(capsys, "report", "empty")
    assert code == 2
    assert "is not a complete backtest result" in err
    assert "reinforcetrade backtest --out DIR" in err
    assert "Traceback" not in err
    assert not (tmp_path / "empty" / "report").exists()

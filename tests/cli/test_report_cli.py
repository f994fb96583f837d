"""End to end: `reinforcetrade report RESULT_DIR`, `backtest --report` and `backtest --save`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from cli_support import cli
from reinforcetrade.storage import Journal
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


def test_backtest_save_stores_the_run_in_the_journal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "reinforcetrade.yaml").write_text(
        "data:\n  synthetic:\n    bars: 2000\nstorage:\n  url: sqlite:///journal/rt.db\n"
    )
    code, out, err = cli(capsys, "backtest", "--synthetic", "--out", "bt", "--save")
    assert code == 0, err
    assert "saved to the journal sqlite:///journal/rt.db as run 1" in out
    with Journal(f"sqlite:///{tmp_path / 'journal' / 'rt.db'}") as journal:
        run = journal.run(1)
        assert run is not None
        assert run.kind == "backtest"
        decisions = journal.read_table("decisions", run_id=1)
        saved = pd.read_parquet(tmp_path / "bt" / "decisions.parquet")
        assert len(decisions) == len(saved) > 0
        fills = journal.read_table("fills", run_id=1)
        assert len(fills) == len(pd.read_parquet(tmp_path / "bt" / "fills.parquet"))

"""The report file: every section, the result's numbers exactly, every decision, atomic writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reinforcetrade.backtesting import BacktestResult, load_result
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.reports import ReportGenerator
from reinforcetrade.reports.encode import unpack, unpack_prices
from reinforcetrade.reports.generator import for_json
from reinforcetrade.reports.payload import MAX_POINTS
from report_support import decode_decisions, metric_values, page_data, parse, squash

SECTIONS = ["summary", "key-decisions", "performance", "trades", "agents", "decisions", "risk"]
CHARTS = {
    "equity", "drawdown", "rolling-sharpe", "monthly", "exposure", "trade-pnl", "trade-duration",
    "exit-reasons", "price", "agents", "detail",
}  # fmt: skip


def read(folder: Path) -> str:
    return (folder / "report.html").read_text(encoding="utf-8")


def test_the_folder_holds_the_page_its_json_and_both_tables(report: Path) -> None:
    assert sorted(p.name for p in report.iterdir()) == [
        "decisions.csv", "report.html", "report.json", "trades.csv",
    ]  # fmt: skip


def test_every_section_and_chart_is_on_the_page(report: Path, two_symbols: BacktestResult) -> None:
    tags = parse(read(report))
    sections = [str(a["data-section"]) for a in tags.having("data-section")]
    assert sections == SECTIONS  # no segments and no models for this result
    charts = [str(a["data-chart"]) for a in tags.having("data-chart")]
    assert set(charts) == CHARTS
    per_symbol = [a["data-symbol"] for a in tags.having("data-symbol")]
    assert per_symbol == ["BTC/USDT", "BTC/USDT", "ETH/USDT", "ETH/USDT"]  # price + agents each
    assert {"report-data", "plotly-gz"} <= set(tags.scripts)


def test_the_numbers_on_the_page_are_the_results_metrics(
    report: Path, two_symbols: BacktestResult
) -> None:
    html = read(report)
    shown = metric_values(html)
    assert set(shown) == set(two_symbols.metrics)  # every metric, none invented
    for name, value in two_symbols.metrics.items():
        if math.isnan(value):
            assert math.isnan(shown[name]), name
        else:
            assert shown[name] == value, name  # exactly: the page prints repr(float)
    text = squash(html)
    assert f"<code>{two_symbols.config_hash}</code>" in text
    assert f"<th>Seed</th><td>{two_symbols.seed}</td>" in text
    assert f"{two_symbols.metrics['total_return']:.2%}" in text


def test_every_decision_is_in_the_log_with_its_agents(
    report: Path, two_symbols: BacktestResult
) -> None:
    expected = two_symbols.decisions
    shown = decode_decisions(page_data(read(report)))
    assert len(shown) == len(expected) > 100
    assert shown.index.tolist() == expected.index.tolist()
    assert (shown["time"].to_numpy() == expected["time"].to_numpy()).all()
    for name in ("symbol", "action", "regime", "reasons"):
        assert shown[name].tolist() == expected[name].astype(str).tolist(), name
    assert set(shown["action"]) >= {"enter_long", "exit", "blocked"}
    assert (shown["direction"].to_numpy() == expected["direction"].to_numpy()).all()
    for agent in ("environment", "short_term", "trend"):
        assert (shown[f"signal_{agent}"] == expected[f"signal_{agent}"]).all()
        for prefix in ("confidence", "weight"):
            name = f"{prefix}_{agent}"
            np.testing.assert_allclose(shown[name], expected[name], atol=0.5e-4)
    np.testing.assert_allclose(shown["confidence"], expected["confidence"], atol=0.5e-4)


def test_the_csv_tables_are_the_results_tables(report: Path, two_symbols: BacktestResult) -> None:
    decisions = pd.read_csv(report / "decisions.csv")
    assert decisions["decision"].tolist() == two_symbols.decisions.index.tolist()
    np.testing.assert_array_equal(
        decisions["confidence"].to_numpy(), two_symbols.decisions["confidence"].to_numpy()
    )  # full precision in the CSV
    trades = pd.read_csv(report / "trades.csv")
    assert len(trades) == len(two_symbols.trades)
    np.testing.assert_array_equal(trades["pnl"].to_numpy(), two_symbols.trades["pnl"].to_numpy())


def test_the_json_holds_the_same_data_as_the_page(
    report: Path, two_symbols: BacktestResult
) -> None:
    sidecar = json.loads((report / "report.json").read_text())
    page = page_data(read(report))
    assert sidecar["summary"]["config_hash"] == two_symbols.config_hash
    assert sidecar["decision_count"] == len(two_symbols.decisions)
    assert sidecar["files"] == {"trades": "trades.csv", "decisions": "decisions.csv"}
    for name, value in two_symbols.metrics.items():
        got = sidecar["summary"]["metrics"][name]
        assert (got is None and math.isnan(value)) or got == value, name
    equity = sidecar["overview"]["equity"]
    assert len(equity["x"]) <= MAX_POINTS
    np.testing.assert_allclose(
        unpack(page["overview"]["equity"]["y"]), equity["y"], rtol=1e-6
    )  # float32 on the page
    assert sidecar["key_decisions"] == page["key_decisions"]


def test_charts_keep_the_extremes_of_long_series(report: Path, two_symbols: BacktestResult) -> None:
    page = page_data(read(report))
    equity = unpack(page["overview"]["equity"]["y"])
    assert equity.size <= MAX_POINTS < len(two_symbols.equity) * 2
    assert equity.max() == pytest.approx(two_symbols.equity.max(), rel=1e-6)
    assert equity.min() == pytest.approx(two_symbols.equity.min(), rel=1e-6)
    price = unpack(page["symbols"]["BTC/USDT"]["price"]["y"])
    close = two_symbols.bars.query("symbol == 'BTC/USDT'")["close"]
    assert price.max() == pytest.approx(close.max(), rel=1e-6)


def test_the_detail_chart_holds_every_close(report: Path, two_symbols: BacktestResult) -> None:
    detail = page_data(read(report))["detail"]["ETH/USDT"]
    close = two_symbols.bars.query("symbol == 'ETH/USDT'")["close"].to_numpy()
    prices = unpack_prices(detail["y"])
    assert prices.size == close.size
    assert np.max(np.abs(prices / close - 1)) < 0.6e-5


def test_key_decisions_point_at_real_decisions(report: Path, two_symbols: BacktestResult) -> None:
    picked = page_data(read(report))["key_decisions"]
    kinds = {p["kind"] for p in picked}
    assert {"largest win", "largest loss"} <= kinds
    trades = two_symbols.trades
    wins = [p for p in picked if p["kind"] == "largest win"]
    assert wins[0]["pnl"] == trades["pnl"].max()
    for p in picked:
        assert p["decision"] in two_symbols.decisions.index
        assert str(two_symbols.decisions.loc[p["decision"], "symbol"]) == p["symbol"]
    html = read(report)
    buttons = parse(html).having("data-decision")
    assert {int(str(b["data-decision"])) for b in buttons} == {p["decision"] for p in picked}


def test_a_saved_result_gives_the_same_report(
    two_symbols: BacktestResult, saved: Path, generator: ReportGenerator
) -> None:
    live = for_json(generator.data(two_symbols))
    loaded = for_json(generator.data(load_result(saved)))
    assert loaded == live
    folder = generator.generate_full_report(load_result(saved))
    assert folder == saved / "report"
    assert (folder / "report.html").is_file()


def test_reports_are_reproducible(
    two_symbols: BacktestResult, generator: ReportGenerator, tmp_path: Path
) -> None:
    a = generator.generate_full_report(two_symbols, tmp_path / "a")
    b = generator.generate_full_report(two_symbols, tmp_path / "b")
    for name in ("report.html", "report.json", "decisions.csv", "trades.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_a_result_with_no_trades_gives_a_valid_report_that_says_so(
    flat: BacktestResult, generator: ReportGenerator, tmp_path: Path
) -> None:
    assert len(flat.trades) == 0
    folder = generator.generate_full_report(flat, tmp_path)
    html = read(folder)
    tags = parse(html)
    assert [a["data-section"] for a in tags.having("data-section")] == SECTIONS
    assert any(attrs.get("id") == "no-trades" for _, attrs in tags.tags)
    assert "This backtest closed no trades" in html
    assert not {"trade-pnl", "trade-duration", "exit-reasons"} & {
        str(a["data-chart"]) for a in tags.having("data-chart")
    }
    shown = metric_values(html)
    assert shown["trade_count"] == 0
    assert math.isnan(shown["win_rate"])
    assert len(pd.read_csv(folder / "trades.csv")) == 0
    decoded = decode_decisions(page_data(html))
    assert decoded.index.tolist() == flat.decisions.index.tolist()


def test_segments_and_the_model_card(
    with_model: tuple[BacktestResult, BacktestResult], generator: ReportGenerator, tmp_path: Path
) -> None:
    inside, outside = with_model
    folder = generator.generate_full_report(
        {"in-sample": inside, "out-of-sample": outside}, tmp_path, title="PPO split"
    )
    html = read(folder)
    tags = parse(html)
    assert [a["data-section"] for a in tags.having("data-section")] == [
        *SECTIONS, "segments", "models",
    ]  # fmt: skip
    cells = {(a["data-segment"], a["data-metric"]): a for a in tags.having("data-segment")}
    assert ("in-sample", "sharpe_ratio") in cells
    assert ("out-of-sample", "sharpe_ratio") in cells
    assert f"{inside.metrics['total_return']:.2%}" in html
    assert f"{outside.metrics['total_return']:.2%}" in html
    model = outside.models[0]
    card = tags.having("data-model")
    assert [c["data-model"] for c in card] == [model["id"]]
    text = squash(html)
    assert "<th>algorithm</th><td>ppo</td>" in text.lower()
    assert f"<th>n_steps</th><td>{model['hyperparameters']['n_steps']}</td>" in text
    assert model["data"]["first_bar"] in text
    # the last result is the one rendered in full: its decisions, with the RL agent's columns
    shown = decode_decisions(page_data(html))
    assert shown.index.tolist() == outside.decisions.index.tolist()
    assert (shown["signal_rl"] == outside.decisions["signal_rl"]).all()
    assert "<title>PPO split</title>" in html


def test_writing_is_atomic_and_a_failure_keeps_the_old_report(
    two_symbols: BacktestResult,
    generator: ReportGenerator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = generator.generate_full_report(two_symbols, tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken(data: object) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(generator, "render", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generator.generate_full_report(two_symbols, tmp_path)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temp files left


def test_an_empty_mapping_is_a_clear_error(generator: ReportGenerator) -> None:
    with pytest.raises(UserInputError, match="no results to report"):
        generator.generate_full_report({})


def test_a_folder_that_is_not_a_result_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "equity.parquet").write_bytes(b"")
    with pytest.raises(UserInputError, match=r"missing .*decisions\.parquet"):
        load_result(tmp_path)

"""`ReportGenerator`: one self-contained HTML report of a backtest, and its data beside it.

The folder it writes holds `report.html` (Jinja2 page, Plotly charts, plotly.js embedded: it
opens offline, from disk), `report.json` (the same sections as data), `trades.csv` and
`decisions.csv` (the complete tables). Every file is written to a temporary name and renamed.
The report renders the result's records; it never recomputes a decision.
"""

from __future__ import annotations

import base64
import functools
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.files import atomic_path, atomic_write_bytes
from reinforcetrade.core.formatting import figure
from reinforcetrade.core.plain import plain
from reinforcetrade.reports.encode import (
    gzip_bytes,
    pack,
    pack_prices,
    quantize_unit,
    time_deltas,
)
from reinforcetrade.reports.payload import ResultLike, Series, build_report_data

#: metrics shown first in the summary, with how to format them (the rest follow, as numbers)
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("total_return", "Total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("sharpe_ratio", "Sharpe", "num"),
    ("sortino_ratio", "Sortino", "num"),
    ("calmar_ratio", "Calmar", "num"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("annual_volatility", "Volatility / yr", "pct"),
    ("trade_count", "Trades", "int"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "num"),
    ("expectancy", "Expectancy / trade", "pct"),
    ("exposure_time", "Time in market", "pct"),
    ("final_equity", "Final equity", "money"),
)
PERCENT = frozenset(
    {"total_return", "cagr", "annual_volatility", "max_drawdown", "value_at_risk",
     "conditional_value_at_risk", "exposure_time", "win_rate", "average_win", "average_loss",
     "expectancy"}
)  # fmt: skip


def metric_kind(name: str) -> str:
    """Return how a metric is formatted."""
    if name in PERCENT:
        return "pct"
    if name.endswith("_ns"):
        return "duration"
    if name in {"trade_count", "decisions", "blocked_entries", "trades_open_at_end"}:
        return "int"
    return "num"


def duration(nanos: Any) -> str:
    """Format a duration in nanoseconds as days and hours."""
    if nanos is None or not math.isfinite(nanos):
        return "n/a"
    hours = nanos / 3.6e12
    return f"{hours / 24:,.1f} d" if hours >= 48 else f"{hours:,.1f} h"


@functools.cache
def plotly_js_gzip() -> str:
    """Return plotly.js (the bundle shipped with the plotly package), gzipped, as base64."""
    from plotly.offline import get_plotlyjs

    return base64.b64encode(gzip_bytes(get_plotlyjs().encode("utf-8"), 9)).decode("ascii")


def _asset(name: str) -> str:
    return resources.files("reinforcetrade.reports").joinpath("assets", name).read_text("utf-8")


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reinforcetrade.reports", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = figure
    env.filters["duration"] = duration
    env.globals["metric_kind"] = metric_kind
    return env


def _ms(x: Any) -> Any:
    return np.asarray(x, dtype=np.int64) / 1e6


def for_page(node: Any) -> Any:
    """Return the data with arrays packed for the page (times in epoch ms)."""
    if isinstance(node, Series):
        return {"x": pack(_ms(node.x), "f8"), "y": pack(node.y, "f4")}
    if isinstance(node, np.ndarray):
        if node.dtype.kind == "f":
            return pack(node, "f4")
        if node.size and np.abs(node).max() >= 2**31:
            raise ValueError("integers beyond 32 bits (times?) must be a Series to reach the page")
        return pack(node, "i4")
    if isinstance(node, Mapping):
        return {str(k): for_page(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [for_page(v) for v in node]
    return plain(node)


def for_json(node: Any) -> Any:
    """Return the data as plain JSON values (times stay epoch ns; NaN becomes null)."""
    if isinstance(node, Series):
        return {"x": node.x.tolist(), "y": [plain(v) for v in node.y.tolist()]}
    if isinstance(node, np.ndarray):
        return [for_json(v) for v in node.tolist()]
    if isinstance(node, Mapping):
        return {str(k): for_json(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [for_json(v) for v in node]
    return plain(node)


def decisions_for_page(log: Mapping[str, Any]) -> dict[str, Any]:
    """Return the decision log packed compactly: labels as small ints, confidences to 1e-4."""
    cols = log["columns"]
    packed: dict[str, Any] = {}
    for name, values in cols.items():
        if name == "time":
            packed[name] = pack(time_deltas(values), "f8")
        elif name == "id":
            packed[name] = pack(np.diff(values, prepend=0) if len(values) else values, "i4")
        elif name == "confidence" or name.startswith(("confidence_", "weight_")):
            packed[name] = pack(quantize_unit(values), "u2", delta=True)
        elif name in {"symbol", "action", "regime", "exit_reason"}:
            packed[name] = pack(values, "u1" if len(log["labels"][name]) < 256 else "u2")
        elif name in {"reasons"}:
            packed[name] = pack(values, "u2" if len(log["labels"][name]) < 65_536 else "i4")
        elif name in {"direction", "agreeing"} or name.startswith("signal_"):
            packed[name] = pack(values, "i1")
        elif name == "threshold":
            packed[name] = pack(quantize_unit(values), "u2")
        else:
            packed[name] = pack(values, "f4")
    return {
        "count": log["count"],
        "labels": log["labels"],
        "agents": log["agents"],
        "columns": packed,
    }


class ReportGenerator:
    """Writes a backtest's report: `ReportGenerator().generate_full_report(result)`.

    `result` is a `BacktestResult`, a `SavedResult` (`load_result(folder)`), or a mapping of
    names to results — e.g. {"in-sample": a, "out-of-sample": b} or walk-forward folds — which
    the report sets side by side, rendering the last one in full.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock = clock or WallClock()

    def data(
        self,
        results: ResultLike | Mapping[str, ResultLike],
        *,
        title: str | None = None,
    ) -> dict[str, Any]:
        """Return the report's sections as data (arrays at the leaves)."""
        main, parts = _split(results)
        built = build_report_data(main, title=title, segments_of=parts)
        built["generated"] = datetime.fromtimestamp(self.clock.now_ns() / 1e9, tz=UTC).isoformat()
        return built

    def render(self, data: Mapping[str, Any]) -> str:
        """Return the report page for data from `data()`."""
        page = {k: v for k, v in data.items() if k not in {"decisions", "detail"}}
        page_data = for_page(page)
        page_data["decisions"] = decisions_for_page(data["decisions"])
        page_data["detail"] = {
            s: {"x": pack(time_deltas(d["x"]), "f8"), "y": pack_prices(d["y"])}
            for s, d in data["detail"].items()
        }
        blob = json.dumps(page_data, separators=(",", ":"), allow_nan=False)
        summary = data["summary"]
        metrics = summary["metrics"]
        others = [k for k in metrics if k not in {h[0] for h in HEADLINE}]
        template = _environment().get_template("report.html.j2")
        return template.render(
            data=data,
            summary=summary,
            headline=HEADLINE,
            metrics=metrics,
            other_metrics=others,
            payload=blob.replace("</", "<\\/"),
            plotly_gz=plotly_js_gzip(),
            css=_asset("report.css"),
            script=_asset("report.js"),
        )

    def generate_full_report(
        self,
        results: ResultLike | Mapping[str, ResultLike],
        out_dir: str | Path | None = None,
        *,
        title: str | None = None,
    ) -> Path:
        """Write report.html, report.json, trades.csv and decisions.csv; return the folder.

        Without `out_dir`: `<result folder>/report` for a saved result, else
        `reports/backtest-<config hash>`.
        """
        main, _ = _split(results)
        folder = Path(out_dir) if out_dir is not None else _default_folder(main)
        folder.mkdir(parents=True, exist_ok=True)
        data = self.data(results, title=title)
        html = self.render(data)
        atomic_write_bytes(folder / "report.html", html.encode("utf-8"))
        sidecar = {k: v for k, v in data.items() if k not in {"decisions", "detail"}}
        sidecar["files"] = {"trades": "trades.csv", "decisions": "decisions.csv"}
        sidecar["decision_count"] = data["decisions"]["count"]
        text = json.dumps(for_json(sidecar), separators=(",", ":"), allow_nan=False)
        atomic_write_bytes(folder / "report.json", text.encode("utf-8"))
        _write_csv(main.trades, folder / "trades.csv")
        decisions = main.decisions
        _write_csv(
            decisions.assign(decision=decisions.index.to_numpy())[["decision", *decisions.columns]],
            folder / "decisions.csv",
        )
        return folder


def _split(
    results: ResultLike | Mapping[str, ResultLike],
) -> tuple[ResultLike, Mapping[str, ResultLike]]:
    """Return (the result shown in full, the named segments)."""
    if isinstance(results, Mapping):
        if not results:
            raise UserInputError("no results to report: pass a result or a mapping of them")
        return list(results.values())[-1], results
    return results, {}


def _default_folder(result: ResultLike) -> Path:
    saved = getattr(result, "folder", None)
    if isinstance(saved, Path):
        return saved / "report"
    return Path("reports") / f"backtest-{result.config_hash}"


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a table as CSV (pyarrow: fast on a million rows), atomically."""
    table = frame.copy()
    for name in table.columns:
        if isinstance(table[name].dtype, pd.CategoricalDtype):
            table[name] = table[name].astype(str)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    with atomic_path(path) as temp:
        pa_csv.write_csv(arrow, str(temp))

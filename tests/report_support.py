"""Shared helpers for the report tests: read a report.html back the way the page does."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reinforcetrade.reports.encode import unpack
from requirements import missing

CHROMIUM = Path("/usr/bin/chromium")


class Tags(HTMLParser):
    """Collect every start tag's attributes, and the text of the whole page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: dict[str, str] = {}
        self._script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs).get("id") or ""
            self.scripts[self._script] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self.scripts[self._script] += data

    def having(self, attribute: str) -> list[dict[str, str | None]]:
        """Return the attributes of every tag that carries `attribute`."""
        return [attrs for _, attrs in self.tags if attribute in attrs]


def parse(html: str) -> Tags:
    """Return the page's tags and scripts."""
    tags = Tags()
    tags.feed(html)
    tags.close()
    return tags


def page_data(html: str) -> dict[str, Any]:
    """Return the data embedded in a report page (still packed)."""
    data: dict[str, Any] = json.loads(parse(html).scripts["report-data"])
    return data


def metric_values(html: str) -> dict[str, float]:
    """Return {metric: value} from the summary's `data-metric`/`data-value` rows."""
    out: dict[str, float] = {}
    for attrs in parse(html).having("data-value"):
        out[str(attrs["data-metric"])] = float(str(attrs["data-value"]))
    return out


def decode_decisions(page: dict[str, Any]) -> pd.DataFrame:
    """Return the decision log the page holds, decoded as the page's script decodes it."""
    log = page["decisions"]
    c = {name: unpack(packed) for name, packed in log["columns"].items()}
    frame = pd.DataFrame(index=pd.Index(np.cumsum(c["id"].astype(np.int64)), name="decision"))
    frame["time"] = pd.to_datetime(np.cumsum(c["time"].astype(np.int64)), unit="s", utc=True)
    for name, words in log["labels"].items():
        frame[name] = np.asarray(words, dtype=object)[c[name]] if len(frame) else []
    frame["direction"] = c["direction"].astype(np.int64)
    for name, values in c.items():
        if name == "confidence" or name.startswith(("confidence_", "weight_")):
            q = values.astype(np.float64)
            frame[name] = np.where(q == 65_535, np.nan, q / 10_000)
        elif name.startswith("signal_"):
            frame[name] = values.astype(np.int64)
    return frame


def chromium_or_skip() -> Path:
    """Return Debian's chromium; skip when it or Playwright is missing (fail under CI=true)."""
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "Playwright is not installed (pip install -e '.[dev]')"
    if reason is None and not CHROMIUM.is_file():
        reason = f"{CHROMIUM} not found (apt-get install chromium)"
    if reason is not None:
        missing(reason)
    return CHROMIUM


def artifacts_dir() -> Path:
    """Return where tests keep artifacts (screenshots): $RT_TEST_ARTIFACTS or test-artifacts/."""
    folder = Path(os.environ.get("RT_TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def squash(text: str) -> str:
    """Return text with runs of white space as one space."""
    return re.sub(r"\s+", " ", text).strip()

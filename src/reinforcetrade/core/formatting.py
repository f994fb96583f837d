"""How figures are written for people: one rule for the command line and the reports."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def figure(value: Any, kind: str = "num") -> str:
    """Return a figure as text: pct, int, money, fixed (2 decimals), time (epoch ns) or num.

    Missing or non-finite figures are 'n/a'; `num` keeps 4 significant digits.

    >>> figure(0.12345, "pct"), figure(1234567.891, "money"), figure(float("nan"))
    ('12.35%', '1,234,567.89', 'n/a')
    >>> figure(2.0 / 3.0), figure(2.0 / 3.0, "fixed"), figure(0, "time"), figure("ppo")
    ('0.6667', '0.67', '1970-01-01 00:00', 'ppo')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if kind == "pct":
        return f"{value:.2%}"
    if kind == "int":
        return f"{value:,.0f}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "fixed":
        return f"{value:.2f}"
    if kind == "time":
        return datetime.fromtimestamp(int(value) / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)

"""`TradeMonitor`: the engine's events turned into alerts worth a person's attention.

It listens to a `LiveEngine` (`observer=`) and publishes `Notice`s (to an `AlertRouter`, which
filters, de-duplicates and delivers them):

- the engine's own alerts — a halt, a refused stop, a failed reconciliation or exit: critical;
  stale or silent data, an unanswering venue, a re-placed stop: warning;
- stops placed (info) and stops the venue refused (critical);
- entries and exits with their fills (info; only with `entries_exits=True`);
- circuit-breaker trips (warning);
- repeated order errors: `order_errors` refusals within `order_error_window` (warning);
- drawdown from the equity peak crossing each of `drawdown_levels` (warning; the deepest level
  critical), once per level until equity makes a new peak;
- a daily P&L summary when the first bar of a new UTC day closes (info).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from reinforcetrade.trading.alerts import Notice, Severity
from reinforcetrade.trading.events import EngineEvent

CRITICAL_ALERTS = frozenset({"halted", "stop_rejected", "reconcile", "exit_failed"})
_ROLE_WORDS = {"e": "entry", "x": "exit", "s": "stop", "t": "take-profit"}


class TradeMonitor:
    """Watches one engine's events and publishes the alerts they call for."""

    def __init__(
        self,
        publish: Callable[[Notice], None],
        *,
        name: str = "engine",
        entries_exits: bool = False,
        drawdown_levels: Sequence[float] = (0.05, 0.10, 0.20),
        order_errors: int = 3,
        order_error_window: float = 3_600.0,
        daily_summary: bool = True,
    ) -> None:
        if any(not 0 < level < 1 for level in drawdown_levels):
            raise ValueError(f"drawdown levels must be fractions in (0, 1), got {drawdown_levels}")
        self.publish = publish
        self.name = name
        self.entries_exits = entries_exits
        self.levels = tuple(sorted(drawdown_levels))
        self.order_errors = order_errors
        self.window_ns = int(order_error_window * 1e9)
        self.daily_summary = daily_summary
        self._errors: deque[int] = deque()
        self._peak = float("nan")
        self._crossed: set[float] = set()
        self._day: pd.Timestamp | None = None
        self._day_open = float("nan")  # equity at the close of the previous day's last bar
        self._last_equity = float("nan")

    def __call__(self, event: EngineEvent) -> None:
        """Handle one engine event."""
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event, event.fields)

    # -- events -------------------------------------------------------------------------------
    def _on_alert(self, event: EngineEvent, f: Any) -> None:
        kind = str(f["alert"])
        severity = Severity.CRITICAL if kind in CRITICAL_ALERTS else Severity.WARNING
        self._notice(event, kind, severity, kind.replace("_", " "), str(f["message"]))

    def _on_order(self, event: EngineEvent, f: Any) -> None:
        placed = f["outcome"] == "placed"
        if f["role"] == "s" and placed:
            self._notice(event, "stop_placed", Severity.INFO, f"stop placed on {f['symbol']}",
                         f"{f['side']} {f['qty']:g} {f['symbol']} stop "
                         f"({f['client_order_id']})", symbol=f["symbol"])  # fmt: skip
        if placed or f["outcome"] == "unknown":
            return
        now = event.time
        self._errors.append(now)
        while self._errors and now - self._errors[0] > self.window_ns:
            self._errors.popleft()
        if len(self._errors) >= self.order_errors:
            self._notice(event, "order_errors", Severity.WARNING, "repeated order errors",
                         f"{len(self._errors)} orders refused or not taken within "
                         f"{self.window_ns / 3.6e12:g} h; the last: {f['symbol']} "
                         f"{f['outcome']}: {f['reason']}")  # fmt: skip
            self._errors.clear()

    def _on_fill(self, event: EngineEvent, f: Any) -> None:
        if not self.entries_exits:
            return
        role = _ROLE_WORDS.get(str(f["role"]), "fill")
        self._notice(event, role.replace("-", "_"), Severity.INFO, f"{role} {f['symbol']}",
                     f"{f['side']} {f['qty']:g} {f['symbol']} at {f['price']:g}",
                     symbol=f["symbol"], key=f"{role}:{f['client_order_id']}")  # fmt: skip

    def _on_breaker(self, event: EngineEvent, f: Any) -> None:
        symbol = f["symbol"]
        message = (f"{symbol}: an extreme move or volatility tripped the circuit breaker; new "
                   "entries pause for its cool-down")  # fmt: skip
        self._notice(event, "breaker", Severity.WARNING, f"circuit breaker on {symbol}", message,
                     symbol=symbol)  # fmt: skip

    def _on_bar(self, event: EngineEvent, f: Any) -> None:
        equity, close = float(f["equity"]), pd.Timestamp(int(f["close_ns"]), tz="UTC")
        self._daily(event, close, equity)
        self._last_equity = equity
        if not equity == equity:
            return
        if not equity <= self._peak:  # a new peak (or the first bar)
            self._peak = equity
            self._crossed.clear()
            return
        drawdown = 1.0 - equity / self._peak
        for level in self.levels:
            if drawdown >= level and level not in self._crossed:
                self._crossed.add(level)
                deepest = level == self.levels[-1]
                self._notice(event, "drawdown", Severity.CRITICAL if deepest else Severity.WARNING,
                             f"drawdown {level:.0%}",
                             f"equity {equity:,.2f} is {drawdown:.1%} below its peak "
                             f"{self._peak:,.2f}", key=f"drawdown:{level}")  # fmt: skip

    def _daily(self, event: EngineEvent, close: pd.Timestamp, equity: float) -> None:
        """Publish yesterday's P&L once the first bar of a new UTC day closes."""
        day = (close - pd.Timedelta(1, "ns")).normalize()  # the day the bar belongs to
        if self._day is None:
            self._day, self._day_open = day, equity
            return
        if day == self._day:
            return
        end = self._last_equity
        if self.daily_summary and end == end and self._day_open == self._day_open:
            pnl = end - self._day_open
            ret = pnl / self._day_open if self._day_open else float("nan")
            self._notice(event, "daily_pnl", Severity.INFO,
                         f"daily P&L {self._day:%Y-%m-%d}",
                         f"{pnl:+,.2f} ({ret:+.2%}); equity {end:,.2f}",
                         key=f"daily_pnl:{self._day:%Y-%m-%d}", pnl=pnl)  # fmt: skip
        self._day, self._day_open = day, end

    def _notice(
        self,
        event: EngineEvent,
        kind: str,
        severity: Severity,
        title: str,
        message: str,
        *,
        key: str | None = None,
        **fields: object,
    ) -> None:
        notice = Notice(
            kind=kind,
            severity=severity,
            title=f"{self.name}: {title}",
            message=message,
            time=event.time,
            fields=fields,
            key=key or f"{kind}:{title}",
        )
        self.publish(notice)

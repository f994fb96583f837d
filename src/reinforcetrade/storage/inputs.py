"""Checking what callers hand the journal: mappings with known keys, decisions, retrains."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral
from typing import Any, Final

from reinforcetrade.core.codes import REGIME_KEYS, reason_names, reason_words
from reinforcetrade.core.records import Decision
from reinforcetrade.storage.errors import JournalError
from reinforcetrade.storage.types import number, plain

ORDER_REQUIRED: Final = ("client_order_id", "run_id", "symbol", "side", "type", "qty")
ORDER_OPTIONAL: Final = (
    "decision_number",
    "price",
    "stop_price",
    "status",
    "exchange_order_id",
    "filled_qty",
    "avg_price",
    "reason",
    "created_at",
    "updated_at",
    "venue",
    "route",
)
#: fields `update_order` may change besides the status
ORDER_UPDATABLE: Final = ("exchange_order_id", "filled_qty", "avg_price", "price", "stop_price")
#: a venue's execution figures (`agents.venue_quality.VenueStats`) as the journal keeps them
VENUE_STATS: Final = (
    "venue",
    "orders",
    "fills",
    "rejects",
    "errors",
    "fill_ratio",
    "reject_rate",
    "slippage_bps",
    "latency_p50_ms",
    "latency_p99_ms",
    "health",
)
FILL_REQUIRED: Final = ("exchange", "exchange_trade_id", "symbol", "side", "time", "qty", "price")
FILL_OPTIONAL: Final = (
    "run_id",
    "client_order_id",
    "fee",
    "fee_currency",
    "liquidity",
    "reference_price",
    "slippage",
    "slippage_bps",
    "latency_ms",
    "reconciliation",
)
DECISION_REQUIRED: Final = ("number", "time", "symbol", "action", "direction", "reason_mask")
DECISION_OPTIONAL: Final = (
    "confidence",
    "threshold",
    "agreeing",
    "regime",
    "vol_regime",
    "trend_regime",
    "size",
    "qty",
    "stop",
    "take_profit",
    "reasons",
    "reason_codes",
    "exit_reason",
    "cost_estimate_bps",
    "algo",
)
TRADE_REQUIRED: Final = ("number", "symbol", "side", "entry_time", "qty", "entry_price")
TRADE_OPTIONAL: Final = (
    "exit_time",
    "exit_price",
    "commission",
    "slippage",
    "borrow",
    "pnl",
    "ret",
    "exit_reason",
    "decision_number",
)
MODEL_REQUIRED: Final = ("model_id", "algorithm", "created")
MODEL_OPTIONAL: Final = ("symbol", "timeframe", "metrics", "path")
#: the retrain journal's text columns and their widths
RETRAIN_WIDTHS: Final = {"symbol": 64, "timeframe": 16, "algorithm": 32, "metric": 64,
                         "challenger": 200, "champion": 200}  # fmt: skip
#: its JSON object columns (``weights`` may be None)
RETRAIN_DOCUMENTS: Final = ("tried", "figures", "weights", "data")
#: its numbers that may be missing (None or NaN: stored as NULL)
RETRAIN_NUMBERS: Final = ("challenger_value", "champion_value", "deflated_sharpe")
#: prefixes of the per-agent columns in `BacktestResult.decisions`
AGENT_PREFIXES: Final = ("signal_", "confidence_", "weight_")


def checked(
    what: str,
    values: Mapping[str, Any],
    required: Sequence[str],
    optional: Sequence[str],
    *,
    ignore: Iterable[str] = (),
) -> dict[str, Any]:
    """Return `values` as a dict after checking it has every required key and no unknown one.

    >>> checked("fill", {"a": 1}, ["a"], ["b"])
    {'a': 1}
    >>> checked("fill", {"a": 1, "c": 2}, ["a"], ["b"])
    Traceback (most recent call last):
    ...
    reinforcetrade.storage.errors.JournalError: fill: unknown field 'c' (known: a, b)
    """
    skip = set(ignore)
    known = (*required, *optional)
    unknown = [k for k in values if k not in known and k not in skip]
    if unknown:
        listed = ", ".join(repr(k) for k in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise JournalError(f"{what}: unknown field{plural} {listed} (known: {', '.join(known)})")
    missing = [k for k in required if values.get(k) is None]
    if missing:
        raise JournalError(f"{what}: missing {', '.join(missing)}")
    return {k: v for k, v in values.items() if k in known}


def _agents_from_columns(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return agent rows from flat ``signal_<a>``/``confidence_<a>``/``weight_<a>`` keys."""
    names = [k.removeprefix("signal_") for k in values if k.startswith("signal_")]
    return [
        {
            "agent": name,
            "signal": values[f"signal_{name}"],
            "confidence": values.get(f"confidence_{name}"),
            "weight": values.get(f"weight_{name}"),
        }
        for name in names
    ]


def decision_parts(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Split a decision mapping into its row and its agents' rows.

    Agents come as ``agents=[{"agent", "signal", "confidence", "weight"}, …]`` or as the flat
    per-agent columns of `BacktestResult.decisions`.
    """
    flat = [k for k in values if k.startswith(AGENT_PREFIXES)]
    number = values.get("number")
    row = checked(
        f"decision {number}",
        values,
        DECISION_REQUIRED,
        DECISION_OPTIONAL,
        ignore=("agents", *flat),
    )
    agents = [dict(a) for a in values.get("agents") or ()] or _agents_from_columns(values)
    for agent in agents:
        checked(f"decision {number} agent", agent, ("agent", "signal"), ("confidence", "weight"))
    return row, agents


def decision_mapping(
    decision: Decision, number: int, *, threshold: float | None = None
) -> dict[str, Any]:
    """Return a core `Decision` record as the mapping `Journal.record_decision` takes.

    Codes become the words `BacktestResult.decisions` uses; weights pair with the signals.
    """
    exit_reason = None if decision.exit_reason is None else decision.exit_reason.name.lower()
    return {
        "number": number,
        "time": decision.ts,
        "symbol": decision.symbol,
        "action": decision.action.name.lower(),
        "direction": decision.direction,
        "confidence": decision.confidence,
        "threshold": threshold,
        "agreeing": decision.agreeing,
        "regime": REGIME_KEYS[int(decision.regime)],
        "vol_regime": decision.vol_regime.name.lower(),
        "trend_regime": decision.trend_regime.name.lower(),
        "size": decision.size,
        "qty": decision.quantity,
        "stop": decision.stop,
        "take_profit": decision.take_profit,
        "reasons": "; ".join(reason_words(decision.reasons)),
        "reason_codes": "|".join(reason_names(decision.reasons)),
        "reason_mask": int(decision.reasons),
        "exit_reason": exit_reason,
        "cost_estimate_bps": decision.cost_estimate_bps,
        "agents": [
            {
                "agent": s.agent,
                "signal": s.direction,
                "confidence": s.confidence,
                "weight": decision.weights[i] if i < len(decision.weights) else None,
            }
            for i, s in enumerate(decision.signals)
        ],
    }


def retrain_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return a retrain's column values checked: widths, numbers, JSON objects.

    Missing numbers (None, NaN) become None; the margin and the trial count must be numbers;
    documents become JSON-ready (NaN inside them null), and must be objects.

    >>> retrain_values({"metric": "sharpe", "margin": 0.1, "trials": 3, "tried": {"a": 1},
    ...                 "challenger_value": float("nan")})["challenger_value"] is None
    True
    >>> retrain_values({"timeframe": "every-other-hour", "margin": 0.1, "trials": 3})["trials"]
    3
    >>> retrain_values({"timeframe": "every-other-hour!", "margin": 0.1, "trials": 3})
    Traceback (most recent call last):
    ...
    reinforcetrade.storage.errors.JournalError: retrain timeframe 'every-other-hour!' has 17 characters: at most 16 fit
    """  # noqa: E501 - a doctest's expected line
    row = dict(values)
    for name, width in RETRAIN_WIDTHS.items():
        _check_width(name, row.get(name), width)
    for name in RETRAIN_NUMBERS:
        row[name] = _number(name, row.get(name))
    margin = _number("margin", row.get("margin"))
    if margin is None:
        raise JournalError(f"retrain margin {row.get('margin')!r} is not a number")
    trials = row.get("trials")
    if isinstance(trials, bool) or not isinstance(trials, Integral) or trials < 0:
        raise JournalError(f"retrain trials {trials!r} is not a count (an int >= 0)")
    row |= {"margin": margin, "trials": int(trials)}
    for name in RETRAIN_DOCUMENTS:
        if name in row and not (name == "weights" and row[name] is None):
            row[name] = _document(name, row[name])
    return row


def _check_width(name: str, value: object, width: int) -> None:
    """Raise `JournalError` when a retrain's text is wider than its column."""
    if value is None or len(str(value)) <= width:
        return
    text = str(value)
    shown = text if len(text) <= 80 else f"{text[:80]}…"
    raise JournalError(f"retrain {name} {shown!r} has {len(text)} characters: at most {width} fit")


def _document(name: str, value: object) -> Any:
    """Return a retrain's JSON object ready to store, or raise `JournalError`."""
    if not isinstance(value, Mapping):
        kind = type(value).__name__
        raise JournalError(f"retrain {name} must be a mapping (a JSON object), not {kind}")
    return plain(value)


def _number(name: str, value: object) -> float | None:
    """Return a retrain's number as a float (None for None or NaN), or raise `JournalError`."""
    try:
        return number(value)
    except (TypeError, ValueError):
        raise JournalError(f"retrain {name} {value!r} is not a number") from None

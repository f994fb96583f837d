"""The retrain journal on a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from reinforcetrade.storage import Journal, JournalError, RetrainRow, schema

NOW = datetime(2026, 1, 1, tzinfo=UTC)  # the journal fixture's clock


def _retrain(**changes: Any) -> dict[str, Any]:
    """Return `record_retrain`'s arguments for a promoted challenger (with `changes`)."""
    values: dict[str, Any] = {
        "started": NOW - timedelta(minutes=5),
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "algorithm": "ppo",
        "trigger": "manual",
        "verdict": "promoted",
        "reason": "Sharpe 1.2 against 0.8 out of sample: ahead by more than the margin 0.1",
        "metric": "sharpe",
        "margin": 0.1,
        "trials": 4,
        "tried": {"hyperparameters": {"learning_rate": 3e-4}, "timesteps": 2_048, "seed": 7,
                  "span": ["2025-01-01T00:00:00+00:00", "2025-12-31T23:00:00+00:00"]},
        "figures": {"folds": [{"challenger": {"sharpe": 1.1}, "champion": {"sharpe": 0.7}},
                              {"challenger": {"sharpe": 1.3}, "champion": {"sharpe": 0.9}}]},
        "data": {"fingerprint": "ab12", "bars": 8_760, "first": "2025-01-01T00:00:00+00:00",
                 "last": "2025-12-31T23:00:00+00:00"},
        "challenger": "ppo-BTC_USDT-1h-0002",
        "champion": "ppo-BTC_USDT-1h-0001",
        "challenger_value": 1.2,
        "champion_value": 0.8,
        "deflated_sharpe": 0.97,
        "weights": {"trend": 0.4, "short_term": 0.3, "environment": 0.3},
    }  # fmt: skip
    return values | changes


def test_a_retrain_is_recorded_and_read_back_whole(journal: Journal) -> None:
    arguments = _retrain()
    record_id = journal.record_retrain(**arguments)
    [row] = journal.retrains()
    assert isinstance(row, RetrainRow)
    assert row.id == record_id
    assert len(row.uid) == 32
    assert row.time == NOW  # the clock's now: when the retrain finished
    assert row.started == NOW - timedelta(minutes=5)
    for name in ("symbol", "timeframe", "algorithm", "trigger", "verdict", "reason", "metric",
                 "challenger", "champion", "challenger_value", "champion_value", "margin",
                 "deflated_sharpe", "trials", "tried", "figures", "weights", "data"):  # fmt: skip
        assert getattr(row, name) == arguments[name], name
    assert row.figures["folds"][1]["champion"]["sharpe"] == 0.9  # JSON read back as dicts
    frame = journal.read_table("retrains")
    assert frame["verdict"].tolist() == ["promoted"]
    assert frame["time"].iloc[0] == NOW


def test_the_first_retrain_has_no_champion_and_missing_figures_are_null(journal: Journal) -> None:
    journal.record_retrain(
        **_retrain(
            verdict="failed",
            reason="the challenger made 2 trades, 10 needed to judge it",
            champion=None,
            champion_value=None,
            challenger_value=float("nan"),
            deflated_sharpe=np.float64("nan"),
            weights=None,
            trials=np.int64(1),
            figures={"folds": [{"challenger": {"sharpe": float("nan")}}]},
        )
    )
    [row] = journal.retrains()
    assert (row.champion, row.champion_value, row.weights) == (None, None, None)
    assert row.challenger_value is None
    assert row.deflated_sharpe is None
    assert row.trials == 1
    assert row.figures == {"folds": [{"challenger": {"sharpe": None}}]}


def test_retrains_come_newest_first_and_filter(journal: Journal) -> None:
    hour = timedelta(hours=1)
    ids = [
        journal.record_retrain(**_retrain(), time=NOW),
        journal.record_retrain(**_retrain(timeframe="4h"), time=NOW + hour),
        journal.record_retrain(**_retrain(symbol="ETH/USDT", verdict="kept"), time=NOW + 2 * hour),
        journal.record_retrain(**_retrain(trigger="schedule"), time=NOW + 3 * hour),
        journal.record_retrain(**_retrain(), time=NOW - hour),  # written late, finished early
    ]
    assert [r.id for r in journal.retrains()] == [ids[3], ids[2], ids[1], ids[0], ids[4]]
    assert [r.id for r in journal.retrains("BTC/USDT")] == [ids[3], ids[1], ids[0], ids[4]]
    assert [r.id for r in journal.retrains("BTC/USDT", "1h")] == [ids[3], ids[0], ids[4]]
    assert [r.id for r in journal.retrains(timeframe="4h")] == [ids[1]]
    assert [r.id for r in journal.retrains("BTC/USDT", "1h", limit=2)] == [ids[3], ids[0]]
    assert journal.retrains("SOL/USDT") == []
    assert journal.retrains()[0].trigger == "schedule"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"verdict": "won"}, "retrain verdict 'won' is not one of promoted, kept, failed"),
        ({"trigger": "cron"}, "retrain trigger 'cron' is not one of manual, schedule"),
        ({"margin": float("nan")}, "retrain margin nan is not a number"),
        ({"margin": "wide"}, "retrain margin 'wide' is not a number"),
        ({"trials": 2.5}, r"retrain trials 2.5 is not a count \(an int >= 0\)"),
        ({"trials": -1}, "retrain trials -1 is not a count"),
        ({"figures": [1, 2]}, r"retrain figures must be a mapping \(a JSON object\), not list"),
        ({"timeframe": "x" * 17}, "retrain timeframe 'x{17}' has 17 characters: at most 16 fit"),
        ({"started": datetime(2026, 1, 1)}, "naive time"),  # noqa: DTZ001 - the point
    ],
)
def test_bad_retrains_are_refused_and_nothing_is_written(
    journal: Journal, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(JournalError, match=message):
        journal.record_retrain(**_retrain(**changes))
    assert journal.retrains() == []


def test_the_database_itself_refuses_an_unknown_verdict(journal: Journal) -> None:
    row = _retrain(verdict="won", uid="u" * 32, time=NOW)
    with journal.engine.connect() as connection:
        with pytest.raises(IntegrityError, match="ck_retrains_verdict"):
            connection.execute(insert(schema.retrains), row)

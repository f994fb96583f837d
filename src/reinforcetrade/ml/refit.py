"""A saved factor pipeline refitted on the latest bars — kept only if it wins out of sample.

The challenger is the same configuration refitted: purged walk-forward cross-validation gives
its out-of-sample accuracy row by row; the saved pipeline (the champion) predicts the very same
rows. The refit replaces the saved file only when its accuracy is higher by `margin` and its own
z-score against a coin flip reaches `min_z`; the previous file is kept beside it (`.prev`). The
champion may have been fitted on some of those rows: that flatters it, which only makes the
challenger's task harder.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data.bars import Bars
from reinforcetrade.ml.pipeline import FactorPipeline


@dataclass(frozen=True)
class FactorRefit:
    """The verdict on a refitted factor pipeline, with the figures behind it."""

    path: Path
    promoted: bool
    reason: str
    challenger_accuracy: float
    champion_accuracy: float
    rows: int
    z: float  # the challenger's pooled accuracy in standard errors above 50 %

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as plain data (for the retrain record)."""

        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {"path": str(self.path), "promoted": self.promoted, "reason": self.reason,
                "challenger_accuracy": num(self.challenger_accuracy),
                "champion_accuracy": num(self.champion_accuracy), "rows": self.rows,
                "z": num(self.z)}  # fmt: skip


def refit_factors(
    bars: Bars,
    path: str | os.PathLike[str],
    *,
    folds: int,
    train: float,
    anchored: bool = False,
    embargo: int = 0,
    margin: float = 0.01,
    min_z: float = 2.0,
) -> FactorRefit:
    """Refit the pipeline saved at `path` on `bars`; replace the file only if it won."""
    target = Path(path)
    if not target.is_file():
        raise UserInputError(f"{target}: no saved factor pipeline to refit (agents.factor.model)")
    champion = FactorPipeline.load(target)
    report = FactorPipeline(champion.config).cross_validate(
        bars, folds, train, embargo=embargo, anchored=anchored
    )
    rows = np.flatnonzero(np.isfinite(report.proba))
    held = champion.score(bars, rows)
    ch, z = report.accuracy, report.z_score()
    figures = f"accuracy {ch:.2%} (z = {z:+.2f}) against {held.accuracy:.2%} on {rows.size} rows"
    if not (ch >= held.accuracy + margin and z >= min_z):
        reason = (
            f"refit {figures}: not ahead by {margin:.2%} with z ≥ {min_z:g}; the saved one stays"
        )
        return FactorRefit(target, False, reason, ch, held.accuracy, int(rows.size), z)
    refitted = FactorPipeline(champion.config).fit(bars)
    shutil.copy2(target, target.with_name(target.name + ".prev"))
    refitted.save(target)  # atomic: the file is the old pipeline or the new one, never half
    reason = f"refit {figures}: ahead by more than {margin:.2%}; saved to {target}"
    return FactorRefit(target, True, reason, ch, held.accuracy, int(rows.size), z)

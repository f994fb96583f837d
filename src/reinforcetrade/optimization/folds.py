"""Walk-forward folds (the one implementation lives in `core.folds`, shared with `ml`)."""

from __future__ import annotations

from reinforcetrade.core.folds import MIN_BARS, Fold, walk_forward_folds

__all__ = ["MIN_BARS", "Fold", "walk_forward_folds"]

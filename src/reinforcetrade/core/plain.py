"""Plain data for JSON: numpy scalars as Python numbers, NaN and infinities as None."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd


def plain(node: Any) -> Any:
    """Return `node` with every leaf JSON can hold: numbers, text, None (dicts, lists inside).

    >>> plain({"a": np.float64("nan"), "b": [np.int64(2), float("inf")], "c": (1.5,)})
    {'a': None, 'b': [2, None], 'c': [1.5]}
    """
    if isinstance(node, np.generic):
        node = node.item()
    if isinstance(node, float):
        return node if math.isfinite(node) else None
    if isinstance(node, pd.Timestamp | datetime):
        return node.isoformat()
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [plain(v) for v in node]
    return node

"""Metadata stored inside OHLCV files we write (symbol, timeframe), so a round trip keeps it."""

from __future__ import annotations

import json
from typing import Final

import pandas as pd

from reinforcetrade.data.schema import ATTR_SYMBOL, ATTR_TIMEFRAME

PARQUET_META_KEY: Final[bytes] = b"reinforcetrade.ohlcv"


def encode_meta(frame: pd.DataFrame) -> bytes:
    """Return the frame's symbol and timeframe as JSON bytes for a Parquet schema."""
    meta = {
        key: str(frame.attrs[key]) for key in (ATTR_SYMBOL, ATTR_TIMEFRAME) if key in frame.attrs
    }
    return json.dumps(meta, sort_keys=True).encode()


def decode_meta(raw: bytes | None) -> dict[str, str]:
    """Return the metadata written by `encode_meta`, or {} when absent or unreadable."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

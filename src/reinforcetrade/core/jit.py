"""Typed numba decorators: compiled kernels keep their Python signatures for mypy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def njit(fn: F) -> F:
    """Compile `fn` in nopython mode with an on-disk cache; NaN semantics are kept (no fastmath)."""
    return cast(F, numba.njit(cache=True, nogil=True)(fn))

"""Typed numba decorators: compiled kernels keep their Python signatures for mypy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def njit(fn: F) -> F:
    """Compile `fn` in nopython mode with an on-disk cache, with numpy's float semantics.

    Division by zero gives inf or NaN as in numpy (no exception, no check on every division);
    NaN is kept as NaN (no fastmath).
    """
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


def njit_inline(fn: F) -> F:
    """Compile `fn` to be inlined into its compiled callers (no call, no reference counting).

    For small helpers of hot loops that take many arrays: a plain call would copy and
    reference-count every array argument on every bar.
    """
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")(fn))

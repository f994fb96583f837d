"""Guards: each a pure function of the numbers it needs, returning a verdict as reason bits."""

from __future__ import annotations

from reinforcetrade.core.codes import Reason, VolRegime
from reinforcetrade.core.jit import njit
from reinforcetrade.risk.params import RiskParams

_HALTED = int(Reason.HALTED_DRAWDOWN)
_BREAKER = int(Reason.CIRCUIT_BREAKER)
_SHORT = int(Reason.SHORT_DISABLED)
_WIDE = int(Reason.HIGH_VOL_STOP)
_HIGH = int(VolRegime.HIGH)


@njit
def drawdown_breached(equity: float, peak: float, p: RiskParams) -> bool:
    """Return True when equity sits at or beyond the halt drawdown below its peak."""
    return peak > 0.0 and equity <= peak * (1.0 - p.halt_drawdown)


@njit
def entry_denials(halted: bool, breaker_until: int, t: int, direction: int, p: RiskParams) -> int:
    """Return the reason bits of every guard that forbids a new entry now (0: none)."""
    bits = 0
    if halted:
        bits |= _HALTED
    if t < breaker_until:
        bits |= _BREAKER
    if direction < 0 and not p.allow_short:
        bits |= _SHORT
    return bits


@njit
def stop_fractions(vol_regime: int, p: RiskParams) -> tuple[float, float, int]:
    """Return (stop, take-profit) as fractions of the entry price; wider stop in high volatility."""
    if vol_regime >= _HIGH:
        return p.stop_high_vol, p.take, _WIDE
    return p.stop, p.take, 0

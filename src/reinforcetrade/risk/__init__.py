"""Risk: sizing (Kelly × confidence), stops, and guards that return verdicts as reason codes."""

from reinforcetrade.risk.guards import drawdown_breached, entry_denials, stop_fractions
from reinforcetrade.risk.params import RiskParams
from reinforcetrade.risk.sizing import cap_size, entry_size, kelly_fraction, streak_multiplier

__all__ = [
    "RiskParams",
    "cap_size",
    "drawdown_breached",
    "entry_denials",
    "entry_size",
    "kelly_fraction",
    "stop_fractions",
    "streak_multiplier",
]

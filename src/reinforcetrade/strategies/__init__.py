"""Strategies: `MultiAgentStrategy`, the object both the backtester and the live engine run."""

from reinforcetrade.strategies.multi_agent import MultiAgentStrategy, PreparedSignals, SignalCache

__all__ = ["MultiAgentStrategy", "PreparedSignals", "SignalCache"]

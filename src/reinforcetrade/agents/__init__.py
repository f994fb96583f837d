"""Agents: the signal agents, the Decision Tower, and what they return."""

from reinforcetrade.agents.base import AgentSignals, SignalAgent
from reinforcetrade.agents.environment import EnvironmentAgent, Perception
from reinforcetrade.agents.execution import ExecutionAgent, OrderIntent
from reinforcetrade.agents.short_term import ShortTermAgent
from reinforcetrade.agents.tower import DecisionTower, TowerParams
from reinforcetrade.agents.trend import TrendAgent

__all__ = [
    "AgentSignals",
    "DecisionTower",
    "EnvironmentAgent",
    "ExecutionAgent",
    "OrderIntent",
    "Perception",
    "ShortTermAgent",
    "SignalAgent",
    "TowerParams",
    "TrendAgent",
]

"""The risk manager's numbers, as the compiled loop takes them."""

from __future__ import annotations

from typing import NamedTuple

from reinforcetrade.config.sections import RiskConfig


class RiskParams(NamedTuple):
    """Sizing, stop and guard limits (floats and ints only, for numba)."""

    kelly_fraction: float
    prior_trades: float
    prior_win_rate: float
    prior_win: float  # size of a prior win (the take-profit)
    prior_loss: float  # size of a prior loss (the stop)
    max_trade: float
    max_symbol: float
    max_total: float
    stop: float
    stop_high_vol: float
    take: float
    streak_limit: int
    streak_multiplier: float
    halt_drawdown: float
    flatten_on_halt: bool
    breaker_cooldown: int
    allow_short: bool

    @classmethod
    def from_config(cls, risk: RiskConfig, *, allow_short: bool) -> RiskParams:
        """Return the parameters of a risk section (shorting comes from the backtest section)."""
        return cls(
            kelly_fraction=risk.kelly_fraction,
            prior_trades=float(risk.kelly_prior_trades),
            prior_win_rate=risk.kelly_prior_win_rate,
            prior_win=risk.take_profit,
            prior_loss=risk.stop_loss,
            max_trade=risk.max_trade_fraction,
            max_symbol=risk.max_symbol_exposure,
            max_total=risk.max_total_exposure,
            stop=risk.stop_loss,
            stop_high_vol=risk.stop_loss_high_volatility,
            take=risk.take_profit,
            streak_limit=risk.loss_streak_limit,
            streak_multiplier=risk.loss_streak_size_multiplier,
            halt_drawdown=risk.max_drawdown_halt,
            flatten_on_halt=risk.flatten_on_halt,
            breaker_cooldown=risk.circuit_breaker_cooldown_bars,
            allow_short=allow_short,
        )

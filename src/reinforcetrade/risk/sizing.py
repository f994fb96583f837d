"""Position sizing: fractional Kelly from the strategy's own closed trades, times confidence."""

from __future__ import annotations

from reinforcetrade.core.codes import Reason
from reinforcetrade.core.jit import njit
from reinforcetrade.risk.params import RiskParams

_KELLY_PRIOR = int(Reason.KELLY_PRIOR)
_STREAK = int(Reason.LOSS_STREAK_CUT)
_CAP_TRADE = int(Reason.CAP_TRADE)
_CAP_SYMBOL = int(Reason.CAP_SYMBOL)
_CAP_TOTAL = int(Reason.CAP_TOTAL)


@njit
def kelly_fraction(
    closed: float, wins: float, sum_win: float, sum_loss: float, p: RiskParams
) -> tuple[float, int]:
    """Return the full-Kelly fraction f* = p − (1 − p) / b, with the prior blended in.

    `closed` trades of which `wins` won; `sum_win` and `sum_loss` are the summed returns of the
    winners and (as positive numbers) of the losers. The prior adds `prior_trades` pseudo-trades
    that win `prior_win_rate` of the time, winning the take-profit and losing the stop, so the
    estimate starts at the bracket's own odds and moves to the record as trades accumulate.
    The reason bit says when the prior still weighs more than the record.
    """
    m = p.prior_trades
    prior_wins = m * p.prior_win_rate
    prior_losses = m - prior_wins
    win_n = wins + prior_wins
    loss_n = (closed - wins) + prior_losses
    total = win_n + loss_n
    if total <= 0.0 or win_n <= 0.0:
        return 0.0, 0
    q = win_n / total
    avg_win = (sum_win + prior_wins * p.prior_win) / win_n
    if loss_n <= 0.0:
        return q, 0
    avg_loss = (sum_loss + prior_losses * p.prior_loss) / loss_n
    if avg_loss <= 0.0:
        return q, 0
    payoff = avg_win / avg_loss
    if payoff <= 0.0:
        return 0.0, 0
    bits = _KELLY_PRIOR if closed < m else 0
    return max(q - (1.0 - q) / payoff, 0.0), bits


@njit
def streak_multiplier(losses_in_a_row: int, p: RiskParams) -> tuple[float, int]:
    """Return the size multiplier after a loss streak (1 until the limit is reached)."""
    if losses_in_a_row >= p.streak_limit:
        return p.streak_multiplier, _STREAK
    return 1.0, 0


@njit
def cap_size(
    fraction: float, symbol_exposure: float, total_exposure: float, p: RiskParams
) -> tuple[float, int]:
    """Cap a wanted fraction of equity by the per-trade, per-symbol and total exposure limits."""
    bits = 0
    if fraction > p.max_trade:
        fraction = p.max_trade
        bits |= _CAP_TRADE
    room = p.max_symbol - symbol_exposure
    if fraction > room:
        fraction = max(room, 0.0)
        bits |= _CAP_SYMBOL
    room = p.max_total - total_exposure
    if fraction > room:
        fraction = max(room, 0.0)
        bits |= _CAP_TOTAL
    return fraction, bits


@njit
def entry_size(
    confidence: float,
    closed: float,
    wins: float,
    sum_win: float,
    sum_loss: float,
    losses_in_a_row: int,
    symbol_exposure: float,
    total_exposure: float,
    p: RiskParams,
) -> tuple[float, int]:
    """Return the fraction of equity to commit: fractional Kelly × confidence, cut and capped."""
    kelly, bits = kelly_fraction(closed, wins, sum_win, sum_loss, p)
    multiplier, cut = streak_multiplier(losses_in_a_row, p)
    fraction = p.kelly_fraction * kelly * confidence * multiplier
    fraction, capped = cap_size(fraction, symbol_exposure, total_exposure, p)
    return fraction, bits | cut | capped

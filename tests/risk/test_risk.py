"""Risk rules: Kelly sizing with a prior, caps, loss streaks, stops, guards."""

from __future__ import annotations

import pytest

from reinforcetrade.config import RiskConfig
from reinforcetrade.core.codes import Reason, VolRegime
from reinforcetrade.risk.guards import drawdown_breached, entry_denials, stop_fractions
from reinforcetrade.risk.params import RiskParams
from reinforcetrade.risk.sizing import cap_size, entry_size, kelly_fraction, streak_multiplier

P = RiskParams.from_config(RiskConfig(), allow_short=False)


def test_kelly_starts_at_the_prior_and_moves_to_the_record() -> None:
    f, bits = kelly_fraction(0, 0, 0.0, 0.0, P)
    assert f == pytest.approx(0.5 - 0.5 / (0.10 / 0.05))  # p = 0.5, payoff = take / stop = 2
    assert bits == int(Reason.KELLY_PRIOR)
    # 1000 trades winning 60 % at +2 %, losing at -2 %: f* → 0.6 − 0.4 / 1 = 0.2
    f, bits = kelly_fraction(1000, 600, 600 * 0.02, 400 * 0.02, P)
    assert f == pytest.approx(0.2, abs=0.02)
    assert bits == 0


def test_kelly_never_negative() -> None:
    f, _ = kelly_fraction(1000, 100, 100 * 0.01, 900 * 0.05, P)
    assert f == 0.0


def test_caps_apply_in_order() -> None:
    assert cap_size(0.05, 0.0, 0.0, P) == (0.05, 0)
    assert cap_size(0.5, 0.0, 0.0, P) == (0.10, int(Reason.CAP_TRADE))
    size, bits = cap_size(0.08, 0.15, 0.0, P)
    assert size == pytest.approx(0.05)
    assert bits == int(Reason.CAP_SYMBOL)
    size, bits = cap_size(0.08, 0.0, 0.95, P)
    assert size == pytest.approx(0.05)
    assert bits == int(Reason.CAP_TOTAL)
    assert cap_size(0.08, 0.25, 0.0, P)[0] == 0.0


def test_loss_streak_cuts_until_a_win() -> None:
    assert streak_multiplier(2, P) == (1.0, 0)
    assert streak_multiplier(3, P) == (0.5, int(Reason.LOSS_STREAK_CUT))


def test_entry_size_is_kelly_times_confidence_then_cut_and_capped() -> None:
    f_star = 0.25
    size, bits = entry_size(0.8, 0, 0, 0.0, 0.0, 0, 0.0, 0.0, P)
    assert size == pytest.approx(0.25 * f_star * 0.8)
    assert bits & int(Reason.KELLY_PRIOR)
    cut, cut_bits = entry_size(0.8, 0, 0, 0.0, 0.0, 3, 0.0, 0.0, P)
    assert cut == pytest.approx(size * 0.5)
    assert cut_bits & int(Reason.LOSS_STREAK_CUT)


def test_stops_widen_in_high_volatility() -> None:
    assert stop_fractions(int(VolRegime.NORMAL), P) == (0.05, 0.10, 0)
    assert stop_fractions(int(VolRegime.HIGH), P) == (0.075, 0.10, int(Reason.HIGH_VOL_STOP))
    assert stop_fractions(int(VolRegime.EXTREME), P)[0] == 0.075


def test_drawdown_halt_at_the_limit() -> None:
    assert drawdown_breached(80.0, 100.0, P)
    assert not drawdown_breached(80.01, 100.0, P)


def test_denials_are_named() -> None:
    assert entry_denials(False, -1, 10, 1, P) == 0
    assert entry_denials(True, -1, 10, 1, P) == int(Reason.HALTED_DRAWDOWN)
    assert entry_denials(False, 12, 10, 1, P) == int(Reason.CIRCUIT_BREAKER)
    assert entry_denials(False, 10, 10, 1, P) == 0  # the cool-down is over
    assert entry_denials(False, -1, 10, -1, P) == int(Reason.SHORT_DISABLED)
    shorting = RiskParams.from_config(RiskConfig(), allow_short=True)
    assert entry_denials(False, -1, 10, -1, shorting) == 0

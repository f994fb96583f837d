"""The retrain's rules: the verdict, the placebo market, the weights, crowning, the record."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reinforcetrade.agents.registry import ModelRegistry, ModelRegistryError
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data import DataLoader
from reinforcetrade.data.placebo import destroy_order
from reinforcetrade.ml.reweight import reestimate_weights
from reinforcetrade.optimization.retrain import Contender, Retrainer, _deflated, _verdict
from reinforcetrade.storage import Journal
from retrain_support import loop_settings
from rl_support import market, train


def side(name: str, sharpe: float, returns: np.ndarray, trades: int = 50) -> Contender:
    return Contender(name, None, (), sharpe, float(np.prod(1 + returns) - 1), trades, returns)


RNG = np.random.default_rng(0)
NOISE = RNG.normal(0.0, 0.01, 4_000)
EDGE = NOISE + 0.002  # a strong, steady edge over NOISE


# -- the verdict ------------------------------------------------------------------------------


def test_a_steady_edge_over_every_rival_is_promoted() -> None:
    champion, rules = side("champion", 0.5, NOISE), side("rule agents", 0.2, NOISE * 0.5)
    challenger = side("challenger", 3.0, EDGE)
    edges = [_deflated(challenger.returns - r.returns, 1, 0.0) for r in (champion, rules)]
    verdict, reason = _verdict(challenger, [champion, rules], edges, 0.25, 0.95, 10)
    assert verdict == "promoted", reason
    assert "3 against 0.5 for the champion; 0.2 for the rule agents" in reason


@pytest.mark.parametrize(
    ("challenger", "why"),
    [
        (side("challenger", 3.0, EDGE, trades=3), "made 3 trades out of sample, fewer than"),
        (side("challenger", 0.6, EDGE), "not ahead of the champion by the margin 0.25"),
        (side("challenger", math.nan, EDGE), "no finite Sharpe ratio"),
    ],
)
def test_the_champion_stays_unless_every_rule_holds(challenger: Contender, why: str) -> None:
    champion, rules = side("champion", 0.5, NOISE), side("rule agents", 0.2, NOISE)
    edges = [_deflated(challenger.returns - r.returns, 1, 0.0) for r in (champion, rules)]
    verdict, reason = _verdict(challenger, [champion, rules], edges, 0.25, 0.95, 10)
    assert verdict == "kept"
    assert why in reason
    assert "stays" in reason


def test_an_advantage_that_is_likely_luck_is_not_promoted() -> None:
    # ahead by the margin on paper, but the advantage is noise: the deflated Sharpe says so
    lucky = NOISE + RNG.normal(0.0, 0.01, NOISE.size)
    challenger, champion = side("challenger", 1.0, lucky), side("champion", 0.5, NOISE)
    dsr = _deflated(lucky - NOISE, 1, 0.0)
    verdict, reason = _verdict(challenger, [champion], [dsr], 0.25, 0.95, 10)
    assert dsr < 0.95
    assert verdict == "kept"
    assert "too likely luck" in reason


def test_more_trials_deflate_the_same_advantage() -> None:
    advantage = EDGE - NOISE + RNG.normal(0.0, 0.03, NOISE.size)
    one = _deflated(advantage, 1, 0.0)
    many = _deflated(advantage, 50, 0.002)
    assert 0.0 < many < one < 1.0


def test_the_rule_agents_must_be_beaten_too() -> None:
    # a hopeless champion does not make a challenger that adds nothing to the rule agents a winner
    champion = side("champion", -5.0, NOISE - 0.003)
    rules = side("rule agents", 2.0, EDGE)
    challenger = side("challenger", 2.0, EDGE + RNG.normal(0.0, 1e-4, NOISE.size))
    edges = [_deflated(challenger.returns - r.returns, 1, 0.0) for r in (champion, rules)]
    verdict, reason = _verdict(challenger, [champion, rules], edges, 0.25, 0.95, 10)
    assert verdict == "kept"
    assert "not ahead of the rule agents" in reason


def test_a_flat_champion_counts_as_a_sharpe_of_zero() -> None:
    flat = side("champion", math.nan, np.zeros(NOISE.size))
    challenger = side("challenger", 3.0, EDGE)
    dsr = _deflated(challenger.returns - flat.returns, 1, 0.0)
    verdict, reason = _verdict(challenger, [flat], [dsr], 0.25, 0.95, 10)
    assert verdict == "promoted"
    assert "0 for the champion" in reason


# -- the placebo market ------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), bars=st.integers(5, 400))
def test_a_destroyed_market_holds_the_same_bars_in_another_order(seed: int, bars: int) -> None:
    frame = DataLoader().load_synthetic("BTC/USDT", bars=bars, seed=seed % 1000)
    shuffled = destroy_order(frame, seed)
    assert (shuffled.index == frame.index).all()
    assert destroy_order(frame, seed).equals(shuffled)  # seeded
    for f in (frame, shuffled):
        f["body"] = f["close"] / f["open"]
    for column in ("body", "volume"):
        assert np.allclose(np.sort(frame[column].to_numpy()), np.sort(shuffled[column].to_numpy()))
    o, h, lo, c = (shuffled[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (h >= np.maximum(o, c) * (1 - 1e-12)).all()
    assert (lo <= np.minimum(o, c) * (1 + 1e-12)).all()
    assert shuffled["open"].iloc[0] == pytest.approx(frame["open"].iloc[0])


def test_a_destroyed_market_loses_its_autocorrelation() -> None:
    from rl_support import planted_market

    bars = planted_market(6_000, seed=4, phi=0.5)
    r = np.diff(np.log(bars["close"].to_numpy()))
    d = np.diff(np.log(destroy_order(bars, 1)["close"].to_numpy()))
    assert np.corrcoef(r[:-1], r[1:])[0, 1] > 0.4
    assert abs(np.corrcoef(d[:-1], d[1:])[0, 1]) < 0.05


# -- the tower's weights -----------------------------------------------------------------------


def hits(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["agent", "regime", "votes", "hit_rate"])
    frame["hit_rate_se"] = np.sqrt(frame.hit_rate * (1 - frame.hit_rate) / frame.votes)
    return frame


WEIGHTS = {"trending": {"trend": 0.5, "short_term": 0.3, "environment": 0.2}}


def test_weights_move_toward_the_edge_and_no_further_than_the_bound() -> None:
    table = hits([("trend", "trending", 5_000, 0.62), ("short_term", "trending", 5_000, 0.40),
                  ("environment", "trending", 10, 0.9)])  # fmt: skip
    change = reestimate_weights(WEIGHTS, table, ["trend", "short_term", "environment"],
                                max_change=0.2, min_votes=30, floor=0.05)  # fmt: skip
    after = change.after["trending"]
    assert after["trend"] == pytest.approx(0.6, abs=1e-3)  # +20 %: the bound, strong evidence
    assert after["short_term"] == pytest.approx(0.24, abs=1e-3)  # −20 %
    assert after["environment"] == 0.2  # too few votes: kept
    why = {(e["regime"], e["agent"]): e["why"] for e in change.evidence}
    assert "10 resolved votes, fewer than 30: kept" in why[("trending", "environment")]
    assert change.before["trending"] == WEIGHTS["trending"]
    assert change.changed


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(0.0, 1.0), votes=st.integers(1, 10_000), old=st.floats(0.0, 5.0),
    bound=st.floats(0.0, 1.0), floor=st.floats(0.0, 0.5),
)  # fmt: skip
def test_a_weight_never_moves_past_its_bound_or_below_the_floor(
    rate: float, votes: int, old: float, bound: float, floor: float
) -> None:
    change = reestimate_weights({"ranging": {"rl": old}}, hits([("rl", "ranging", votes, rate)]),
                                ["rl"], max_change=bound, min_votes=1, floor=floor)  # fmt: skip
    new = change.after["ranging"]["rl"]
    assert max(old * (1 - bound), floor) - 1e-4 <= new <= max(old * (1 + bound), floor) + 1e-4
    if rate != 0.5 and old * (1 - bound) > floor:  # it moves with the sign of the edge
        assert (new - round(old, 4)) * (rate - 0.5) >= 0


# -- crowning a retrain's winner ---------------------------------------------------------------


def test_crown_refuses_when_the_champion_changed_since_the_verdict(tmp_path: Path) -> None:
    first, second = train(tmp_path, steps=256, seed=0), train(tmp_path, steps=256, seed=1)
    registry = ModelRegistry(tmp_path)
    registry.promote(first)
    with pytest.raises(ModelRegistryError, match=r"is now .* not none as when"):
        registry.crown(second, champion=None, metric="oos_sharpe", challenger_value=1.0,
                       champion_value=None, reason="won")  # fmt: skip
    assert registry.champion(first.symbol, first.timeframe) == first
    decision = registry.crown(second, champion=first.id, metric="oos_sharpe",
                              challenger_value=1.5, champion_value=0.2, reason="won by 1.3")  # fmt: skip
    assert decision.promoted
    assert decision.reason == "won by 1.3"
    assert registry.champion(first.symbol, first.timeframe) == second
    assert registry.history()[-1] == decision


# -- a retrain's record ------------------------------------------------------------------------


def test_a_failed_retrain_is_recorded_then_raised(tmp_path: Path) -> None:
    with Journal(f"sqlite:///{tmp_path / 'j.db'}") as journal:
        retrainer = Retrainer(loop_settings(tmp_path / "models"), journal=journal)
        with pytest.raises(UserInputError, match="too few"):
            retrainer.run(market(bars=120), timesteps=64)
        (row,) = journal.retrains()
    assert row.verdict == "failed"
    assert "too few" in row.reason
    assert row.challenger is None
    assert row.champion is None
    assert row.trials == 0
    assert row.data["bars"] == 120
    assert row.tried["timesteps"] == 64


@pytest.mark.slow
def test_a_retrain_records_what_it_tried_both_sides_and_the_weights(tmp_path: Path) -> None:
    settings = loop_settings(tmp_path / "models", **{"retrain.tune_trials": 2,
                                                      "retrain.reweight_min_votes": 5})  # fmt: skip
    data = market(bars=1_500)
    with Journal(f"sqlite:///{tmp_path / 'j.db'}") as journal:
        result = Retrainer(settings, journal=journal).run(data, timesteps=512, tune=True,
                                                          reweight=True)  # fmt: skip
        (row,) = journal.retrains()
    assert row.id == result.record_id
    assert row.verdict == result.verdict
    assert row.trigger == "manual"
    assert row.metric == "oos_sharpe"
    assert row.trials == 2
    assert row.champion is None  # none yet: the rule agents are the side to beat
    assert [t["validation_sharpe"] is not None for t in row.tried["search"]["trials"]] == [True] * 2
    assert (
        row.tried["hyperparameters"]["learning_rate"]
        == row.tried["search"]["best"]["learning_rate"]
    )
    ch, rules = row.figures["challenger"], row.figures["rule_agents"]
    assert len(ch["folds"]) == len(rules["folds"]) == 2
    assert [f["test_start"] for f in ch["folds"]] == [f["test_start"] for f in rules["folds"]]
    assert row.challenger_value == pytest.approx(ch["sharpe"])
    assert row.data["last_bar"] == data.index[-1].isoformat()
    assert row.weights is not None
    assert set(row.weights["after"]) == {"trending", "ranging", "high_volatility"}
    assert (row.verdict == "promoted") == (result.model is not None)

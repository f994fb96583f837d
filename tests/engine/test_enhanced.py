"""The multi-agent backtest: quick start, result shape, determinism, no look-ahead, risk limits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reinforcetrade.agents import AgentSignals
from reinforcetrade.backtesting import BacktestResult, EnhancedBacktester
from reinforcetrade.config import Settings
from reinforcetrade.core.codes import Reason
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data import DataLoader, generate_market, make_ohlcv
from reinforcetrade.data.bars import Bars
from reinforcetrade.strategies import MultiAgentStrategy

TRADE_COLUMNS = [
    "symbol", "side", "entry_time", "exit_time", "qty", "entry_price", "exit_price",
    "commission", "slippage", "pnl", "return", "exit_reason",
]  # fmt: skip


@pytest.fixture(scope="module")
def quick() -> tuple[pd.DataFrame, BacktestResult]:
    """The seed's quick start, exactly as written there."""
    from reinforcetrade.backtesting import EnhancedBacktester
    from reinforcetrade.data import DataLoader
    from reinforcetrade.strategies import MultiAgentStrategy

    data = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=20_000, seed=7)
    strategy = MultiAgentStrategy(use_rl=False)
    results = EnhancedBacktester(strategy, initial_balance=10_000).run(data)
    return data, results


def test_quick_start_result_has_every_promised_part(
    quick: tuple[pd.DataFrame, BacktestResult],
) -> None:
    data, result = quick
    assert isinstance(result.equity, pd.Series)
    assert result.equity.index.equals(data.index)
    assert result.returns.index.equals(data.index)
    assert set(TRADE_COLUMNS) <= set(result.trades.columns)
    assert len(result.trades) > 10
    assert {"order_id", "side", "type", "qty", "filled_qty", "avg_price", "status"} <= set(
        result.orders.columns
    )
    assert {"price", "reference_price", "commission", "slippage", "latency_ms"} <= set(
        result.fills.columns
    )
    expected = {
        "time", "symbol", "action", "direction", "confidence", "regime", "vol_regime",
        "trend_regime", "agreeing", "size", "qty", "stop", "take_profit", "reasons",
        "reason_codes", "threshold", "cost_estimate_bps",
    }  # fmt: skip
    for agent in ("environment", "short_term", "trend"):
        expected |= {f"signal_{agent}", f"confidence_{agent}", f"weight_{agent}"}
    assert expected <= set(result.decisions.columns)
    assert {"BTC/USDT", "total"} <= set(result.exposure.columns)
    for key in ("total_return", "cagr", "sharpe_ratio", "max_drawdown", "trade_count", "win_rate"):
        assert key in result.metrics
    assert result.config_hash == result.config.config_hash()
    assert result.seed == result.config.backtest.seed
    assert result.metrics["trade_count"] == (result.trades["exit_reason"] != "open").sum()


def test_decisions_explain_themselves(quick: tuple[pd.DataFrame, BacktestResult]) -> None:
    _, result = quick
    decisions = result.decisions
    entries = decisions[decisions["action"] == "enter_long"]
    assert len(entries)
    assert (entries["confidence"] >= entries["threshold"]).all()
    assert (entries["agreeing"] >= 2).all()
    assert entries["reasons"].str.contains("tower confidence at or above").all()
    blocked = decisions[decisions["action"] == "blocked"]
    assert blocked["reasons"].str.len().gt(0).all()
    weights = result.config.tower.weights
    for row in entries.head(20).itertuples():
        assert row.weight_trend == weights[str(row.regime)]["trend"]
    # every trade's entry points at the decision that opened it
    opened = result.trades["decision"].to_numpy()
    assert set(decisions.loc[opened, "action"]) <= {"enter_long", "enter_short"}


def test_sizes_respect_the_caps_and_stops_widen_in_high_volatility(
    quick: tuple[pd.DataFrame, BacktestResult],
) -> None:
    _, result = quick
    risk = result.config.risk
    entries = result.decisions[result.decisions["action"].isin(["enter_long", "enter_short"])]
    assert (entries["size"] <= risk.max_trade_fraction + 1e-12).all()
    assert (result.exposure["BTC/USDT"].abs() <= risk.max_symbol_exposure * 1.05).all()
    close = quick[0]["close"].reindex(entries["time"]).to_numpy()
    distance = 1.0 - entries["stop"].to_numpy() / close
    high = entries["vol_regime"].isin(["high", "extreme"]).to_numpy()
    np.testing.assert_allclose(distance[high], risk.stop_loss_high_volatility, rtol=1e-9)
    np.testing.assert_allclose(distance[~high], risk.stop_loss, rtol=1e-9)


def test_same_inputs_give_identical_results() -> None:
    data = DataLoader().load_synthetic("ETH/USDT", timeframe="1h", bars=6_000, seed=11)
    one = EnhancedBacktester(MultiAgentStrategy()).run(data)
    two = EnhancedBacktester(MultiAgentStrategy()).run(data)
    pd.testing.assert_frame_equal(one.trades, two.trades)
    pd.testing.assert_frame_equal(one.decisions, two.decisions)
    pd.testing.assert_series_equal(one.equity, two.equity)


@pytest.mark.parametrize("cut", [3_000, 4_321, 5_999])
def test_no_look_ahead_decisions_before_the_cut_do_not_change(cut: int) -> None:
    data = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=6_000, seed=5)
    full = EnhancedBacktester(MultiAgentStrategy()).run(data).decisions
    part = EnhancedBacktester(MultiAgentStrategy()).run(data.iloc[:cut]).decisions
    boundary = data.index[cut - 1]
    before_full = _plain(full[full["time"] < boundary])
    before_part = _plain(part[part["time"] < boundary])
    assert len(before_part) > 0
    pd.testing.assert_frame_equal(before_part, before_full)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the frame with categorical columns as plain strings and a fresh index."""
    out = frame.reset_index(drop=True).copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype(str)
    return out


class AlwaysLong:
    """A test agent that always wants to be long with confidence 0.9."""

    name = "bull"

    def signals(self, bars: Bars) -> AgentSignals:
        n = len(bars)
        return AgentSignals(self.name, np.ones(n, dtype=np.int8), np.full(n, 0.9), {})


def _crash_market() -> pd.DataFrame:
    """A steady climb, then a 40% fall over one week of hourly bars, then calm."""
    up = 100 * np.exp(np.linspace(0, 0.6, 2_000))
    down = up[-1] * np.exp(np.linspace(0, np.log(0.6), 168))
    flat = np.full(400, down[-1])
    close = np.concatenate([up, down[1:], flat])
    rng = np.random.default_rng(0)
    close = close * np.exp(rng.normal(0, 0.0005, close.size))
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    return make_ohlcv(
        np.arange(close.size) * 3_600_000_000_000, open_, high, low, close,
        np.full(close.size, 1e6), symbol="CRASH", timeframe="1h",
    )  # fmt: skip


def test_drawdown_halt_holds_the_loss_near_the_limit_on_a_crash() -> None:
    settings = Settings(
        risk={
            "kelly_fraction": 1.0, "kelly_prior_win_rate": 0.95, "max_trade_fraction": 0.99,
            "max_symbol_exposure": 0.99, "stop_loss": 0.9, "stop_loss_high_volatility": 0.9,
            "take_profit": 0.9, "max_drawdown_halt": 0.2, "flatten_on_halt": True,
            "circuit_breaker": False,
        },
        tower={  # a stubborn bull alone, so nothing but the halt gets it out of the crash
            "entry_confidence": 0.05, "exit_confidence": 1.0, "consensus_agents": 1,
            "weights": {r: {"environment": 0.0, "short_term": 0.0, "trend": 0.0, "bull": 1.0}
                        for r in ("trending", "ranging", "high_volatility")},
        },
        costs={"max_participation": 1.0},
    )  # fmt: skip
    data = _crash_market()
    strategy = MultiAgentStrategy(settings=settings, extra_agents=[AlwaysLong()])
    result = EnhancedBacktester(strategy).run(data)
    equity = result.equity.to_numpy()
    drawdown = 1 - equity / np.maximum.accumulate(equity)
    one_bar = float(np.max(np.abs(np.diff(np.log(data["close"].to_numpy())))))
    assert 0.2 <= drawdown.max() <= 0.2 + 2 * one_bar + 0.01
    halts = result.decisions[result.decisions["reason_codes"].str.contains("FLATTEN_ON_HALT")]
    assert len(halts) == 1
    after = result.decisions[result.decisions["time"] > halts["time"].iloc[0]]
    assert not after["action"].isin(["enter_long", "enter_short"]).any()
    assert after[after["action"] == "blocked"]["reason_codes"].str.contains("HALTED_DRAWDOWN").all()


def test_multi_symbol_portfolio_shares_cash_within_limits() -> None:
    market = generate_market(
        ["BTC/USDT", "ETH/USDT", "SOL/USDT"], timeframe="1h", bars=5_000, seed=9
    )
    result = EnhancedBacktester(MultiAgentStrategy()).run(market.frames)
    risk = result.config.risk
    assert set(result.trades["symbol"]) <= set(market.frames)
    assert (result.exposure["total"] <= risk.max_total_exposure + 1e-9).all()
    for symbol in market.frames:
        assert (result.exposure[symbol].abs() <= risk.max_symbol_exposure * 1.05).all()
    assert (result.equity > 0).all()


def test_shorts_when_allowed_pay_borrow() -> None:
    data = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=8_000, seed=7)
    result = EnhancedBacktester(
        MultiAgentStrategy(settings=Settings(backtest={"allow_short": True}))
    ).run(data)
    shorts = result.trades[result.trades["side"] == "short"]
    assert len(shorts)
    assert (shorts["borrow"] > 0).all()
    assert not result.decisions["reason_codes"].str.contains("SHORT_DISABLED").any()


def test_execution_as_modelled_adds_no_penalty() -> None:
    data = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=6_000, seed=7)
    result = EnhancedBacktester(MultiAgentStrategy()).run(data)
    assert not result.decisions["reason_codes"].str.contains("COST_PENALTY").any()
    market = result.fills[result.fills["exit_reason"] != "take_profit"]  # limits pay no slippage
    assert (market["slippage_bps"] > 0).all()  # spread and slippage are still paid


def test_execution_worse_than_assumed_raises_the_entry_threshold() -> None:
    from reinforcetrade.backtesting.metrics import periods_per_year
    from reinforcetrade.config import CostsConfig
    from reinforcetrade.simulation.costs import CostParams

    data = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=6_000, seed=7)
    harsh = CostParams.from_config(CostsConfig(slippage_bps=40.0), periods_per_year("1h"))
    strategy = MultiAgentStrategy()
    result = EnhancedBacktester(strategy, costs=harsh).run(data)
    decisions = result.decisions
    penalised = decisions[decisions["reason_codes"].str.contains("COST_PENALTY")]
    assert len(penalised)
    settings = result.config.tower
    assert (penalised["threshold"] > settings.entry_confidence).all()
    assert (
        penalised["threshold"] <= settings.entry_confidence + settings.cost_penalty_cap + 1e-12
    ).all()
    assert strategy.environment.cost_excess_bps == pytest.approx(38.0, abs=1.0)  # 40 − 2 assumed


def test_partial_fills_when_volume_is_thin() -> None:
    data = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=6_000, seed=7)
    data["volume"] = 1e-4
    result = EnhancedBacktester(
        MultiAgentStrategy(settings=Settings(costs={"max_participation": 0.01}))
    ).run(data)
    assert result.fills["partial"].any()
    assert (result.orders["status"] == "partial").any()


def test_loss_streak_cuts_size() -> None:
    data = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=20_000, seed=7)
    result = EnhancedBacktester(
        MultiAgentStrategy(settings=Settings(risk={"loss_streak_limit": 2}))
    ).run(data)
    cut = result.decisions["reason_mask"].to_numpy() & int(Reason.LOSS_STREAK_CUT)
    assert cut.any()


def test_start_trades_from_a_date_with_the_bars_before_as_history() -> None:
    frames = generate_market(["BTC/USDT", "ETH/USDT"], bars=4_000, seed=5).frames
    bt = EnhancedBacktester(MultiAgentStrategy())
    index = frames["BTC/USDT"].index
    late = bt.run(frames, start=index[2_500])
    assert late.equity.index[0] == index[2_500]
    assert len(late.equity) == 1_500
    assert late.equity.iloc[0] == pytest.approx(10_000, rel=1e-3)
    assert late.info["start"] == index[2_500].isoformat()
    assert late.decisions["time"].min() < index[2_520]  # warmed up already: decides at once
    assert set(late.bars["time"]) == set(index[2_500:])
    # the agents saw the history: their signals equal a full run's on the same bars
    full = bt.run(frames)
    sig = full.bars.set_index(["time", "symbol"]).loc[late.bars.set_index(["time", "symbol"]).index]
    np.testing.assert_array_equal(
        sig["signal_trend"].to_numpy(), late.bars["signal_trend"].to_numpy()
    )
    # bars before the start count toward the warm-up
    early = bt.run(frames, start=index[50])
    assert early.decisions["time"].min() >= index[200]
    with pytest.raises(UserInputError, match="leaves 0 bar"):
        bt.run(frames, start="2031-01-01")
    with pytest.raises(UserInputError, match="not a date"):
        bt.run(frames, start="soon")


def test_cached_agent_signals_give_the_same_backtest() -> None:
    from reinforcetrade.strategies import SignalCache

    data = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=3_000, seed=9)
    cache = SignalCache(size=2)
    base = Settings()
    for tower in (0.55, 0.65):  # only the tower changes: the second run reuses the signals
        settings = base.with_params({"tower.entry_confidence": tower})
        plain = EnhancedBacktester(MultiAgentStrategy(settings=settings)).run(data)
        cached = EnhancedBacktester(MultiAgentStrategy(settings=settings, signal_cache=cache)).run(
            data
        )
        pd.testing.assert_series_equal(plain.equity, cached.equity)
        pd.testing.assert_frame_equal(plain.decisions, cached.decisions)
    assert cache.hits == 1
    other = base.with_params({"agents.trend.fast_ma": 20})  # agent settings: computed afresh
    EnhancedBacktester(MultiAgentStrategy(settings=other, signal_cache=cache)).run(data)
    assert cache.hits == 1
    breaker = base.with_params({"risk.circuit_breaker_move_sigmas": 4.0})  # read by the agent
    EnhancedBacktester(MultiAgentStrategy(settings=breaker, signal_cache=cache)).run(data)
    assert cache.hits == 1
    moved = data.copy()
    moved["volume"] = moved["volume"].to_numpy() * np.r_[np.ones(len(moved) - 1), 1.01]  # new bars
    EnhancedBacktester(MultiAgentStrategy(settings=base, signal_cache=cache)).run(moved)
    assert cache.hits == 1

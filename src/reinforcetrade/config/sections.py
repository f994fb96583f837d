"""The settings tree's sections: every promised threshold is a field with its default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from reinforcetrade.core.timeframes import parse_timeframe


def _timeframe_text(value: str) -> str:
    """Return a timeframe's canonical text, refusing what `parse_timeframe` refuses."""
    try:
        return parse_timeframe(value).text
    except ValueError as exc:
        raise ValueError(str(exc)) from None


TimeframeText = Annotated[str, AfterValidator(_timeframe_text)]
Fraction = Annotated[float, Field(gt=0, lt=1)]
REGIMES: tuple[str, ...] = ("trending", "ranging", "high_volatility")
SIGNAL_AGENTS: tuple[str, ...] = ("environment", "short_term", "trend")


def search(
    low: float | None = None,
    high: float | None = None,
    *,
    step: float | None = None,
    log: bool = False,
    choices: tuple[Any, ...] | None = None,
) -> dict[str, Any]:
    """Return a field's search range for the optimiser (`Field(json_schema_extra=search(...))`).

    The range sits beside the field it tunes and shows in `reinforcetrade config schema`;
    `optimization.space.SearchSpace.declared()` collects them.
    """
    spec: dict[str, Any] = {"low": low, "high": high, "step": step, "log": log, "choices": choices}
    return {"search": {k: v for k, v in spec.items() if v not in (None, False)}}


class Section(BaseModel):
    """Base of every section: frozen, and unknown fields are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class SyntheticMarketConfig(Section):
    """The bundled synthetic market used by the demo and by tests that need no real prices."""

    symbols: tuple[str, ...] = Field(("BTC/USDT", "ETH/USDT"), min_length=1)
    timeframe: TimeframeText = "1h"
    bars: int = Field(8760, ge=2, description="bars per symbol (8760 hourly bars = one year)")
    seed: int = Field(6, ge=0, description="6: a year that visits calm, bull, bear and crash")
    start: str = "2020-01-01T00:00:00Z"


class DataConfig(Section):
    """Market data: where it lives, how gaps are treated, how history is fetched."""

    directory: Path = Path("data")
    cache_dir: Path = Field(Path(".cache/reinforcetrade"), description="CCXT history cache")
    timeframe: TimeframeText = "1h"
    gap_policy: Literal["raise", "keep", "fill"] = Field(
        "keep", description="what to do with missing bars: raise, keep (logged) or fill flat bars"
    )
    calendar: Literal["auto", "24/7", "fx", "weekdays"] = "auto"
    exchange: str = Field("binance", description="default ccxt exchange id for history")
    page_limit: int = Field(1000, ge=1, le=10_000, description="bars asked per request")
    max_retries: int = Field(5, ge=0, le=20, description="retries per request on network errors")
    retry_backoff_seconds: float = Field(1.0, ge=0, le=60)
    retry_backoff_max_seconds: float = Field(30.0, ge=0, le=600)
    request_timeout_ms: int = Field(10_000, ge=100, le=300_000)
    api_urls: dict[str, str] = Field(
        default_factory=dict,
        description="override entries of the ccxt exchange's urls['api'] (proxies, test servers)",
    )
    synthetic: SyntheticMarketConfig = SyntheticMarketConfig()


class EnvironmentAgentConfig(Section):
    """Environment perception: volatility and trend regimes."""

    volatility_window: int = Field(24, ge=2, json_schema_extra=search(12, 72, step=12))
    volatility_history: int = Field(
        720, ge=10, description="bars of history the regime ranks against"
    )
    high_volatility_quantile: Fraction = 0.80
    extreme_volatility_quantile: Fraction = 0.95
    low_volatility_quantile: Fraction = 0.20
    adx_period: int = Field(14, ge=2)
    trend_adx_threshold: float = Field(25.0, gt=0, lt=100, json_schema_extra=search(15, 35, step=5))
    slope_window: int = Field(
        50,
        ge=2,
        description="bars of the moving-average slope",
        json_schema_extra=search(20, 100, step=10),
    )
    cost_feedback_alpha: float = Field(
        0.1, gt=0, le=1, description="weight of each new fill in the execution-cost estimate"
    )


class ShortTermAgentConfig(Section):
    """Short-term wave: momentum buy/sell signals."""

    rsi_period: int = Field(14, ge=2, json_schema_extra=search(7, 28, step=7))
    rsi_oversold: float = Field(30.0, gt=0, lt=50, json_schema_extra=search(20, 40, step=5))
    rsi_overbought: float = Field(70.0, gt=50, lt=100, json_schema_extra=search(60, 80, step=5))
    roc_period: int = Field(10, ge=1, json_schema_extra=search(5, 30, step=5))
    macd_fast: int = Field(12, ge=1)
    macd_slow: int = Field(26, ge=2)
    macd_signal: int = Field(9, ge=1)
    bollinger_period: int = Field(20, ge=2, json_schema_extra=search(10, 40, step=10))
    bollinger_std: float = Field(2.0, gt=0, json_schema_extra=search(1.5, 3.0, step=0.25))


class TrendAgentConfig(Section):
    """Trend tracking: long-horizon direction."""

    fast_ma: int = Field(50, ge=2, json_schema_extra=search(10, 100, step=10))
    slow_ma: int = Field(200, ge=3, json_schema_extra=search(120, 300, step=20))
    breakout_window: int = Field(55, ge=2, json_schema_extra=search(20, 100, step=10))

    @model_validator(mode="after")
    def _fast_below_slow(self) -> TrendAgentConfig:
        if self.fast_ma >= self.slow_ma:
            raise ValueError(
                f"fast_ma ({self.fast_ma}) must be shorter than slow_ma ({self.slow_ma})"
            )
        return self


class FactorAgentConfig(Section):
    """The ML factor agent: a fitted factor pipeline voting in the tower (off by default)."""

    enabled: bool = Field(False, description="add the factor agent to the tower")
    model: Path | None = Field(None, description="a saved FactorPipeline (FactorPipeline.save)")
    threshold: float = Field(
        0.0, ge=0, le=1, description="|2·P(up) − 1| below this: no vote (direction 0)"
    )
    scale: float = Field(
        0.5, gt=0, le=1, description="|2·P(up) − 1| at which its confidence reaches 1"
    )


class AgentsConfig(Section):
    """The signal agents' parameters."""

    environment: EnvironmentAgentConfig = EnvironmentAgentConfig()
    short_term: ShortTermAgentConfig = ShortTermAgentConfig()
    trend: TrendAgentConfig = TrendAgentConfig()
    factor: FactorAgentConfig = FactorAgentConfig()


def _default_weights() -> dict[str, dict[str, float]]:
    return {
        "trending": {"environment": 0.2, "short_term": 0.3, "trend": 0.5},
        "ranging": {"environment": 0.2, "short_term": 0.5, "trend": 0.3},
        "high_volatility": {"environment": 0.4, "short_term": 0.3, "trend": 0.3},
    }


class TowerConfig(Section):
    """The Decision Tower: regime weights, entry confidence and consensus."""

    entry_confidence: float = Field(
        0.60,
        ge=0,
        le=1,
        description="minimum tower confidence to enter",
        json_schema_extra=search(0.40, 0.90, step=0.05),
    )
    exit_confidence: float = Field(
        0.60,
        ge=0,
        le=1,
        description="an opposite signal this confident exits at once",
        json_schema_extra=search(0.40, 0.90, step=0.05),
    )
    consensus_agents: int = Field(
        2,
        ge=1,
        description="agents that must agree on the direction",
        json_schema_extra=search(1, 3, step=1),
    )
    signal_agents: int = Field(
        3, ge=1, description="signal agents voting (consensus is K of these)"
    )
    weights: dict[str, dict[str, float]] = Field(
        default_factory=_default_weights, description="agent weights per market regime"
    )
    cost_penalty: float = Field(
        0.002, ge=0, le=1, description="entry threshold added per bps of cost above assumption"
    )
    cost_penalty_cap: float = Field(0.2, ge=0, le=1, description="largest threshold increase")

    @field_validator("weights")
    @classmethod
    def _weights_usable(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for regime, table in value.items():
            if any(w < 0 for w in table.values()) or sum(table.values()) <= 0:
                raise ValueError(f"weights for {regime!r} must be non-negative and not all zero")
        return value

    @model_validator(mode="after")
    def _consensus_possible(self) -> TowerConfig:
        if self.consensus_agents > self.signal_agents:
            raise ValueError(
                f"consensus_agents ({self.consensus_agents}) cannot exceed "
                f"signal_agents ({self.signal_agents})"
            )
        return self


class RiskConfig(Section):
    """Sizing, stops and guards: the Risk Manager's limits."""

    kelly_fraction: float = Field(
        0.25,
        gt=0,
        le=1,
        description="fraction of full Kelly to bet",
        json_schema_extra=search(0.05, 1.0, log=True),
    )
    kelly_prior_trades: int = Field(
        20, ge=0, description="pseudo-trades of prior blended into the Kelly estimate"
    )
    kelly_prior_win_rate: Fraction = Field(0.5, description="win rate the prior assumes")
    max_trade_fraction: Fraction = Field(
        0.10,
        description="max share of equity in one trade",
        json_schema_extra=search(0.02, 0.30, step=0.02),
    )
    max_symbol_exposure: Fraction = Field(0.20, description="max share of equity in one symbol")
    max_total_exposure: float = Field(1.0, gt=0, le=10, description="gross exposure cap / equity")
    stop_loss: Fraction = Field(0.05, json_schema_extra=search(0.01, 0.15, log=True))
    stop_loss_high_volatility: Fraction = Field(
        0.075, description="stop in high-volatility regimes"
    )
    take_profit: Fraction = Field(0.10, json_schema_extra=search(0.02, 0.30, log=True))
    loss_streak_limit: int = Field(
        3,
        ge=1,
        description="consecutive losses that cut exposure",
        json_schema_extra=search(2, 6, step=1),
    )
    loss_streak_size_multiplier: float = Field(
        0.5, gt=0, le=1, description="size multiplier after the loss streak"
    )
    max_drawdown_halt: Fraction = Field(
        0.20,
        description="drawdown from peak that halts trading",
        json_schema_extra=search(0.05, 0.40, step=0.05),
    )
    flatten_on_halt: bool = Field(False, description="also close every position on a halt")
    circuit_breaker: bool = Field(True, description="halt new entries on extreme volatility")
    circuit_breaker_volatility_multiple: float = Field(
        3.0, gt=1, description="realised volatility / its rolling median that trips the breaker"
    )
    circuit_breaker_move_sigmas: float = Field(
        6.0, gt=0, description="a bar move this many recent sigmas trips the breaker"
    )
    circuit_breaker_cooldown_bars: int = Field(24, ge=1)


class CostsConfig(Section):
    """The one cost model shared by backtests, RL environments and the paper broker."""

    commission_rate: float = Field(
        0.001, ge=0, lt=0.1, description="taker commission per side, as a fraction of notional"
    )
    maker_commission_rate: float = Field(
        0.001, ge=0, lt=0.1, description="maker commission per side (resting limit orders)"
    )
    spread_bps: float = Field(1.0, ge=0, lt=1000, description="full bid-ask spread; half per side")
    slippage_bps: float = Field(2.0, ge=0, lt=1000, description="fixed slippage per market fill")
    slippage_volatility: float = Field(
        0.05, ge=0, le=10, description="extra slippage as a multiple of the bar's (high-low)/open"
    )
    impact_coefficient: float = Field(
        0.1, ge=0, le=10, description="square-root impact: coef × bar range × sqrt(qty / volume)"
    )
    max_participation: float = Field(
        0.1, gt=0, le=1, description="largest share of a bar's volume one order may fill"
    )
    borrow_rate_annual: float = Field(
        0.05, ge=0, lt=10, description="cost of holding a short, per year of notional"
    )
    lot_size: float = Field(0.0, ge=0, description="quantity step; 0 means fractional quantities")
    latency_ms: int = Field(250, ge=0, description="assumed order latency, recorded on fills")


class BacktestConfig(Section):
    """Backtest runs."""

    initial_cash: float = Field(10_000.0, gt=0)
    allow_short: bool = False
    warmup_bars: int = Field(200, ge=0, description="bars before the first decision")
    seed: int = Field(42, ge=0)
    calendar: Literal["24/7", "weekdays", "fx"] = Field(
        "24/7", description="market calendar for annualising: 24/7 crypto, 252-day equities, FX"
    )
    periods_per_year: float | None = Field(
        None, gt=0, description="override the bars per year used to annualise metrics"
    )


class RLConfig(Section):
    """Reinforcement-learning agents, their environment and their training."""

    algorithm: Literal["ppo", "a2c", "dqn", "sac"] = "ppo"
    total_timesteps: int = Field(100_000, ge=1)
    window: int = Field(30, ge=1, description="bars of features in each observation")
    learning_rate: float = Field(3e-4, gt=0, lt=1)
    gamma: float = Field(0.99, gt=0, le=1)
    seed: int = Field(0, ge=0)
    models_dir: Path = Path("models")
    drawdown_penalty: float = Field(0.0, ge=0, description="reward cost per unit of new drawdown")
    turnover_penalty: float = Field(
        0.0, ge=0, description="reward cost per unit of position change"
    )
    reward_scale: float = Field(
        100.0,
        gt=0,
        description="rewards are multiplied by this (100: percent log growth); the best policy "
        "is unchanged, but value estimates train better than on raw per-bar log returns",
    )
    episode_bars: int = Field(
        2048, ge=16, description="bars per training episode (random start); evaluation runs all"
    )
    ruin_fraction: Fraction = Field(0.5, description="equity below this share of the start ends it")
    feature_clip: float = Field(5.0, gt=0, description="normalised features are clipped to ±this")
    n_envs: int = Field(1, ge=1, le=64, description="parallel training environments")
    validation_fraction: Fraction = Field(0.2, description="latest share of the data kept out")
    eval_every: int = Field(5_000, ge=1, description="timesteps between validation evaluations")
    patience: int = Field(5, ge=1, description="evaluations without improvement before stopping")
    hyperparameters: dict[str, dict[str, float | int | str | bool | list[int]]] = Field(
        default_factory=dict,
        description="per-algorithm Stable-Baselines3 keyword arguments, e.g. ppo: {n_steps: 512}",
    )


class OptimizationConfig(Section):
    """Parameter search and walk-forward validation."""

    method: Literal["grid", "genetic", "random", "tpe"] = "genetic"
    n_trials: int = Field(100, ge=1)
    storage: str = Field(
        "sqlite:///optuna.db",
        description="Optuna storage URL: a SQLite file, or postgresql+psycopg://user@host/db",
    )
    executor: Literal["local", "dask"] = Field(
        "local", description="local: a process pool of n_jobs; dask: the cluster at dask_address"
    )
    dask_address: str | None = Field(
        None, description="Dask scheduler, e.g. tcp://10.0.0.5:8786; when set, trials run there"
    )
    n_jobs: int = Field(2, ge=1, description="local worker processes (1: run in this process)")
    batch_size: int = Field(
        16,
        ge=1,
        description="trials asked before their results are told; the same seed and batch size "
        "give the same search on any executor",
    )
    population_size: int = Field(24, ge=4, description="genetic search: NSGA-II population")
    folds: int = Field(5, ge=2)
    train_fraction: Fraction = Field(0.7, description="walk-forward: in-sample share of a window")
    anchored: bool = Field(False, description="walk-forward: in-sample spans all start at bar 0")
    purge_bars: int = Field(0, ge=0, description="bars cut from the end of each in-sample span")
    embargo_bars: int = Field(
        0, ge=0, description="bars at the start of each out-of-sample span left unscored"
    )
    min_trades: int = Field(10, ge=0, description="trials with fewer trades are infeasible")


class RetrainConfig(Section):
    """The self-reinforcement loop: retrain a challenger, validate it, promote only a winner."""

    algorithm: Literal["ppo", "a2c", "dqn", "sac"] | None = Field(
        None, description="the challenger's algorithm (none: the champion's, else rl.algorithm)"
    )
    timesteps: int = Field(20_000, ge=1, description="training timesteps per model")
    folds: int = Field(
        3,
        ge=2,
        description="walk-forward folds both contenders are scored on (train_fraction, "
        "anchored, purge_bars and embargo_bars come from the optimization section)",
    )
    margin: float = Field(
        0.25,
        ge=0,
        description="out-of-sample Sharpe ratio (annualised) the challenger must beat the "
        "champion by",
    )
    min_deflated_sharpe: float = Field(
        0.95,
        ge=0,
        le=1,
        description="the deflated Sharpe ratio of the challenger's advantage over the champion "
        "(probability it is skill, deflated by the trials tried) must reach this",
    )
    min_trades: int = Field(
        10, ge=0, description="out-of-sample trades the challenger must make to be judged"
    )
    tune_trials: int = Field(
        8, ge=2, description="--tune: hyperparameter sets the genetic search tries"
    )
    reweight_max_change: float = Field(
        0.25,
        ge=0,
        le=1,
        description="--reweight: largest relative change of a tower weight per retrain",
    )
    reweight_min_votes: int = Field(
        30, ge=1, description="--reweight: resolved votes an agent needs in a regime to move"
    )
    reweight_floor: float = Field(
        0.05, ge=0, description="--reweight: no re-estimated weight goes below this"
    )
    factor_margin: float = Field(
        0.01, ge=0, le=1, description="--factors: out-of-sample accuracy a refit must gain"
    )
    factor_min_z: float = Field(
        2.0, ge=0, description="--factors: a refit's accuracy z-score against 50 % must reach this"
    )
    every: str | None = Field(
        None, description="retrain on a schedule, e.g. 1d or 12h (--every overrides)"
    )
    seed: int = Field(0, ge=0, description="seed of the challenger's training and search")


class VenueConfig(Section):
    """One venue the router may send orders to (`trading.broker: routed`)."""

    broker: str = Field(description="ccxt:<exchange>: a venue that quotes its order book")
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    api_password: SecretStr | None = Field(None, description="passphrase some exchanges require")
    sandbox: bool = False
    fee_bps: float | None = Field(
        None, ge=0, description="its taker fee in bps (default: the exchange's fee table)"
    )
    api_urls: dict[str, str] = Field(
        default_factory=dict,
        description="its ccxt urls['api'] entries to replace (default: data.api_urls)",
    )


class RoutingConfig(Section):
    """The Execution Agent's router across venues, and when a venue counts as degraded."""

    venues: dict[str, VenueConfig] = Field(
        default_factory=dict,
        description="the venues `trading.broker: routed` routes across, by name",
    )
    stale_quote_s: float = Field(
        10.0, gt=0, description="a venue's book older than this counts as a failed call"
    )

    latency_bps_per_ms: float = Field(
        0.01, ge=0, description="expected cost of a venue's latency, in bps per millisecond"
    )
    degraded_penalty_bps: float = Field(
        10.0, ge=0, description="cost added to a degraded venue's orders (a down one is skipped)"
    )
    split: bool = Field(True, description="split an order across venues when one cannot hold it")
    max_legs: int = Field(3, ge=1, description="most venues one order is split across")
    window: int = Field(200, ge=1, description="orders a venue's reject rate and latency cover")
    alpha: float = Field(0.1, gt=0, le=1, description="weight of a fill in the slippage EWMA")
    max_reject_rate: float = Field(0.2, ge=0, le=1, description="above: the venue is degraded")
    max_slippage_bps: float = Field(25.0, ge=0, description="above: the venue is degraded")
    down_after_errors: int = Field(3, ge=1, description="failed calls in a row: the venue is down")
    cooldown_s: float = Field(60.0, ge=0, description="how long a down venue is skipped")
    min_orders: int = Field(5, ge=1, description="orders before a reject rate can degrade")


class ExecutionConfig(Section):
    """Execution algorithms: how backtests, paper and live venues work orders over bars."""

    algo: Literal["auto", "immediate", "twap", "vwap"] = Field(
        "immediate",
        json_schema_extra=search(choices=("immediate", "twap", "vwap", "auto")),
        description="immediate: each order at once (as before); twap / vwap: every entry and "
        "signal exit worked over horizon_bars; auto: chosen per order from its size against "
        "the recent volume (immediate_below, twap_below)",
    )
    horizon_bars: int = Field(
        4,
        ge=1,
        json_schema_extra=search(2, 12, step=2),
        description="bars a worked order is spread over (1: one capped child)",
    )
    participation: float = Field(
        0.1,
        gt=0,
        le=1,
        json_schema_extra=search(0.02, 0.3),
        description="largest share of a bar's traded volume one child may take",
    )
    min_child: float = Field(
        0.0, ge=0, description="smallest child worth sending (smaller ones join the next)"
    )
    immediate_below: float = Field(
        0.01,
        ge=0,
        description="auto: an order below this share of the recent bar volume goes at once",
    )
    twap_below: float = Field(
        0.1, ge=0, description="auto: below this share (and above immediate_below) TWAP, else VWAP"
    )
    volume_window: int = Field(
        20,
        ge=1,
        description="auto: bars of recent volume; VWAP: cycles its volume profile averages",
    )
    volume_period: int = Field(
        24, ge=1, description="VWAP: bars per volume cycle (24 for hourly bars; 1: no cycle)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> ExecutionConfig:
        if self.twap_below < self.immediate_below:
            raise ValueError(
                f"twap_below ({self.twap_below}) must be at least immediate_below "
                f"({self.immediate_below}): both are shares of the recent bar volume"
            )
        return self


class TradingConfig(Section):
    """Paper and live trading; exchange credentials are secrets."""

    mode: Literal["paper", "live"] = "paper"
    broker: str = Field("paper", description="paper, ccxt:<exchange>, ib or oanda")
    exchange: str = "binance"
    symbols: tuple[str, ...] = ("BTC/USDT",)
    timeframe: TimeframeText = "1h"
    sandbox: bool = False
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    api_password: SecretStr | None = Field(None, description="passphrase some exchanges require")
    journal_url: str | None = Field(
        None,
        description="the engine's journal; default: storage.url with -paper or -live added "
        "to the file name (paper and live never share a journal)",
    )
    history_bars: int = Field(
        2_000,
        ge=50,
        description="bars the agents see at each step (at least their longest look-back; "
        "recursive indicators settle within it)",
    )
    stale_after_bars: float = Field(
        3.0, gt=0, description="no closed bar for this many bar lengths: stale data alert"
    )
    open_orders_on_stop: Literal["cancel", "keep"] = Field(
        "cancel", description="what a graceful stop does with open entry orders"
    )
    poll_seconds: float = Field(5.0, gt=0, description="REST feed: seconds between polls")
    feed: Literal["poll", "stream"] = Field(
        "poll", description="exchange bars by REST polling or ccxt.pro websocket streams"
    )
    oanda_account_id: str | None = Field(None, description="OANDA v20 account, e.g. 101-004-…")
    oanda_token: SecretStr | None = Field(None, description="OANDA v20 personal access token")
    oanda_environment: Literal["practice", "live"] = "practice"
    oanda_api_url: str | None = Field(None, description="override the v20 REST URL (tests)")
    oanda_stream_url: str | None = Field(None, description="override the v20 stream URL (tests)")
    ib_host: str = Field("127.0.0.1", description="TWS / IB Gateway host")
    ib_port: int = Field(7497, ge=1, le=65_535, description="7497 paper TWS, 7496 live TWS")
    ib_client_id: int = Field(17, ge=0, description="this engine's API client id at TWS")
    ib_account: str | None = Field(None, description="the IB account to trade (default: the only)")


class StorageConfig(Section):
    """The SQL journal."""

    url: str = Field(
        "sqlite:///reinforcetrade.db", description="SQLAlchemy URL (SQLite or PostgreSQL)"
    )
    password: SecretStr | None = Field(None, description="database password, kept out of the URL")


class WebConfig(Section):
    """The API and dashboard server (`reinforcetrade serve`; see docs/web.md)."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65_535)
    allow_public_bind: bool = Field(False, description="required to bind anything but loopback")
    username: str = "admin"
    password: SecretStr | None = Field(
        None, description="plain password (from the environment); hashed in memory at start"
    )
    password_hash: SecretStr | None = Field(
        None, description="scrypt hash from `reinforcetrade serve hash-password` (preferred)"
    )
    token_secret: SecretStr | None = Field(None, description="signs access tokens; >= 32 chars")
    token_ttl_seconds: int = Field(900, ge=60, le=86_400)
    metrics_token: SecretStr | None = Field(
        None, description="static bearer token Prometheus scrapes /metrics with; >= 32 chars"
    )
    cors_origins: tuple[str, ...] = ()
    login_attempts: int = Field(5, ge=1, le=1_000, description="failed logins per window")
    login_window_seconds: int = Field(300, ge=1, le=86_400)
    ticket_ttl_seconds: int = Field(30, ge=1, le=600, description="WebSocket tickets' life")
    stream_queue: int = Field(1_000, ge=10, le=1_000_000, description="per-client messages")
    reports_dir: Path | None = Field(None, description="folder of HTML reports the API lists")


class AlertsConfig(Section):
    """Alert channels and their credentials."""

    enabled: bool = False
    channels: tuple[Literal["log", "email", "telegram", "slack", "webhook"], ...] = ("log",)
    min_level: Literal["info", "warning", "critical"] = "warning"
    telegram_bot_token: SecretStr | None = None
    telegram_chat_id: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65_535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    email_to: tuple[str, ...] = ()
    slack_webhook_url: SecretStr | None = None
    webhook_url: SecretStr | None = None
    smtp_sender: str | None = Field(None, description="e-mail From address; default: smtp_user")
    smtp_starttls: bool = Field(
        True, description="upgrade the SMTP connection with STARTTLS (required to log in)"
    )
    telegram_api_url: str = Field(
        "https://api.telegram.org",
        description="Telegram Bot API base URL (a local Bot API server, or a fake in tests)",
    )
    channel_min_levels: dict[
        Literal["log", "email", "telegram", "slack", "webhook"],
        Literal["info", "warning", "critical"],
    ] = Field(
        default_factory=dict,
        description="a stricter min_level for some channels, e.g. {email: critical}",
    )
    rate_limit_window_seconds: float = Field(
        60.0, gt=0, description="identical alerts within this window become one message"
    )
    rate_limit_max: int = Field(
        20, ge=1, description="messages per window; more are held and sent as one digest"
    )
    retry_max_attempts: int = Field(
        5, ge=1, le=20, description="delivery attempts per message and channel"
    )
    retry_backoff_seconds: float = Field(
        1.0, gt=0, description="wait before the first retry; doubles after each failure"
    )
    retry_max_backoff_seconds: float = Field(
        60.0, gt=0, description="the longest wait between two retries"
    )
    timeout_seconds: float = Field(10.0, gt=0, description="per delivery attempt")

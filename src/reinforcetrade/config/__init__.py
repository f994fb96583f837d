"""One validated, frozen settings tree: YAML file + environment (RT_…) + .env, with a hash."""

from reinforcetrade.config.sections import (
    AgentsConfig,
    AlertsConfig,
    BacktestConfig,
    CostsConfig,
    DataConfig,
    ExecutionConfig,
    OptimizationConfig,
    RetrainConfig,
    RiskConfig,
    RLConfig,
    RoutingConfig,
    StorageConfig,
    TowerConfig,
    TradingConfig,
    WebConfig,
)
from reinforcetrade.config.settings import (
    DEFAULT_FILE,
    Settings,
    load_settings,
    secret_fields,
    settings_schema,
)

__all__ = [
    "DEFAULT_FILE",
    "AgentsConfig",
    "AlertsConfig",
    "BacktestConfig",
    "CostsConfig",
    "DataConfig",
    "ExecutionConfig",
    "OptimizationConfig",
    "RLConfig",
    "RetrainConfig",
    "RiskConfig",
    "RoutingConfig",
    "Settings",
    "StorageConfig",
    "TowerConfig",
    "TradingConfig",
    "WebConfig",
    "load_settings",
    "secret_fields",
    "settings_schema",
]

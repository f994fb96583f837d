"""The training pipeline: determinism, time split, validation, early stop, registry records."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from reinforcetrade.agents.registry import ModelRegistry
from reinforcetrade.agents.training import TrainingPipeline, evaluate_policy
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.environments import FeatureSpec, TradingEnv
from rl_support import FAST, fast_settings, market, train


def params(registry: ModelRegistry, ident: str) -> dict[str, torch.Tensor]:
    return registry.load(ident).policy.state_dict()


def test_same_seed_same_model_other_seed_other_model(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "m")
    first = train(tmp_path / "m", seed=5)
    again = train(tmp_path / "m", seed=5)
    other = train(tmp_path / "m", seed=6)
    a, b, c = (params(registry, r.id) for r in (first, again, other))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert first.metrics == again.metrics
    assert first.data == again.data
    assert len(registry.list()) == 3  # each training run is its own entry


def test_same_seed_same_model_with_parallel_environments(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "m")
    records = [train(tmp_path / "m", seed=2, n_envs=2) for _ in range(2)]
    a, b = (params(registry, r.id) for r in records)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_record_holds_split_spec_env_data_metrics_versions(tmp_path: Path) -> None:
    data = market(bars=1_000)
    record = train(tmp_path / "m", data=data, validation_fraction=0.25)
    cut = int(len(data) * 0.75)
    assert record.algorithm == "ppo"
    assert (record.symbol, record.timeframe) == ("BTC/USDT", "1h")
    assert record.data["first_bar"] == data.index[0].isoformat()
    assert record.data["last_bar"] == data.index[-1].isoformat()
    assert record.data["validation_from"] == data.index[cut].isoformat()
    assert record.data["bars"] == 1_000
    assert len(record.data["fingerprint"]) == 16
    spec = FeatureSpec.from_dict(record.feature_spec)
    assert record.feature_fingerprint == spec.fingerprint() == FeatureSpec.default().fingerprint()
    assert record.env_config["window"] == 8
    assert record.env_config["discrete"] is True
    assert record.hyperparameters["n_steps"] == FAST["ppo"]["n_steps"]
    assert record.hyperparameters["learning_rate"] == pytest.approx(3e-4)
    for name in ("train_sharpe", "validation_sharpe", "validation_return", "timesteps"):
        assert name in record.metrics
    assert record.metrics["timesteps"] >= 512
    assert {"stable-baselines3", "torch", "gymnasium", "reinforcetrade"} <= set(record.versions)
    assert record.seed == 0


def test_validation_metric_is_the_policy_on_the_held_out_span(tmp_path: Path) -> None:
    data = market(bars=1_000)
    settings = fast_settings(tmp_path / "m")
    pipeline = TrainingPipeline("ppo", settings=settings)
    record = pipeline.train(data, 512, seed=1)
    _, validation, _ = pipeline.split(data)
    env = TradingEnv(validation, window=8, settings=settings)
    again = evaluate_policy(pipeline.registry.load(record), env, 8760.0)
    assert again.sharpe == pytest.approx(record.metrics["validation_sharpe"], rel=1e-12)
    assert again.total_return == pytest.approx(record.metrics["validation_return"], rel=1e-12)


def test_the_split_is_by_time_with_warm_up_before_validation(tmp_path: Path) -> None:
    data = market(bars=1_000)
    pipeline = TrainingPipeline("ppo", settings=fast_settings(tmp_path, validation_fraction=0.2))
    train_part, validation, cut = pipeline.split(data)
    assert cut == 800
    assert train_part.index[-1] < data.index[cut]
    lead = FeatureSpec.default().warmup + 8
    assert validation.index[0] == data.index[cut - lead]  # features warm up before it is scored
    assert validation.index[-1] == data.index[-1]


def test_best_is_kept_early_stop_and_checkpoints(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path / "m", eval_every=128, patience=2)
    pipeline = TrainingPipeline("ppo", settings=settings)
    record = pipeline.train(market(), 20_000, seed=0, checkpoints=tmp_path / "ckpt")
    scores = [s for _, s in pipeline.history]
    steps = [n for n, _ in pipeline.history]
    assert record.metrics["timesteps"] < 20_000  # stopped early
    best = max(range(len(scores)), key=lambda i: scores[i])
    assert len(scores) - 1 - best == 2  # two evaluations without improvement, then stop
    assert record.metrics["validation_sharpe"] == pytest.approx(scores[best], rel=1e-12)
    saved = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert saved == sorted(f"step_{n}.zip" for n in steps)


def test_a_policy_that_stays_out_scores_zero_not_nan(tmp_path: Path) -> None:
    class Flat:
        def predict(self, obs: object, deterministic: bool = True) -> tuple[int, None]:
            return 0, None

    env = TradingEnv(market(bars=600), window=8)
    result = evaluate_policy(Flat(), env, 8760.0)  # type: ignore[arg-type]
    assert result.sharpe == 0.0
    assert result.total_return == 0.0
    assert result.trades == 0


@pytest.mark.parametrize("algorithm", ["a2c", "dqn", "sac"])
def test_every_algorithm_trains_and_registers(tmp_path: Path, algorithm: str) -> None:
    record = train(tmp_path / "m", algorithm, steps=300, allow_short=True)
    assert record.algorithm == algorithm
    assert record.env_config["discrete"] is (algorithm != "sac")
    assert record.env_config["allow_short"] is True
    assert math.isfinite(record.metrics["train_return"])
    model = ModelRegistry(tmp_path / "m").load(record)
    assert type(model).__name__.lower() == algorithm


def test_bad_inputs_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="agent_type 'td3' is not one of ppo, a2c, dqn, sac"):
        TrainingPipeline("td3")
    pipeline = TrainingPipeline("ppo", settings=fast_settings(tmp_path))
    with pytest.raises(UserInputError, match="too few to train and validate on"):
        pipeline.train(market(bars=300), 100)
    with pytest.raises(UserInputError, match="total_timesteps must be positive"):
        pipeline.train(market(), 0)


def test_tensorboard_needs_its_package(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        TrainingPipeline("ppo", tensorboard_log=tmp_path)  # accepted when installed
        return
    with pytest.raises(UserInputError, match=r"pip install 'reinforcetrade\[tensorboard\]'"):
        TrainingPipeline("ppo", tensorboard_log=tmp_path)


@pytest.mark.network
def test_train_on_exchange_data_fetches_through_the_loader_and_its_cache(tmp_path: Path) -> None:
    from fakes.binance import FakeBinance
    from reinforcetrade.core.clock import WallClock

    with FakeBinance(WallClock()) as venue:
        settings = fast_settings(tmp_path / "m").with_updates(
            "data", api_urls=venue.api_urls, cache_dir=tmp_path / "cache", retry_backoff_seconds=0
        )
        pipeline = TrainingPipeline("ppo", settings=settings)
        record = pipeline.train_on_exchange_data(
            "BTC/USDT", total_timesteps=256, timeframe="1h", exchange="binance", limit=1_200
        )
        assert venue.requests_to("/api/v3/klines")
    assert (record.symbol, record.timeframe, record.data["bars"]) == ("BTC/USDT", "1h", 1_200)
    assert any((tmp_path / "cache").rglob("*.parquet"))


def test_train_on_exchange_data_offline_with_nothing_cached_says_how_to_get_data(
    tmp_path: Path,
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on: the exchange is unreachable
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = fast_settings(tmp_path / "m").with_updates(
        "data",
        api_urls={"public": f"http://127.0.0.1:{port}/api/v3"},
        cache_dir=tmp_path / "cache",
        max_retries=0,
        retry_backoff_seconds=0,
        request_timeout_ms=1_000,
    )
    pipeline = TrainingPipeline("ppo", settings=settings)
    with pytest.raises(UserInputError) as caught:
        pipeline.train_on_exchange_data("BTC/USDT", total_timesteps=256)
    message = str(caught.value)
    assert "could not get BTC/USDT 1h history from binance" in message
    assert "reinforcetrade data fetch" in message
    assert "--data FILE" in message
    assert not ModelRegistry(tmp_path / "m").list()  # nothing half-registered

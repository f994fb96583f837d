"""The model registry: real tiny SB3 models saved, found, loaded, compared and guarded."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm

from reinforcetrade.agents.registry import (
    ModelMismatchError,
    ModelRecord,
    ModelRegistry,
    ModelRegistryError,
    Promotion,
)
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.files import atomic_write_bytes

START = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z
HOUR = 3_600 * 10**9
SPEC = {"fingerprint": "feat-aaaa", "names": ["ret_1", "rsi_14"], "version": 1}


@pytest.fixture(scope="module")
def ppo() -> PPO:
    model = PPO(
        "MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, n_epochs=1, seed=3, device="cpu"
    )
    return model.learn(64)


@pytest.fixture(scope="module")
def dqn() -> DQN:
    model = DQN(
        "MlpPolicy", "CartPole-v1", learning_starts=16, buffer_size=500, seed=3, device="cpu"
    )
    return model.learn(64)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def registry(tmp_path: Path, clock: FixedClock) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models", clock=clock)


def _add(registry: ModelRegistry, model: BaseAlgorithm, **overrides: Any) -> ModelRecord:
    fields: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "feature_spec": SPEC,
        "env_config": {"window": 30, "discrete": True, "allow_short": True, "commission": 0.001},
        "hyperparameters": {"learning_rate": 3e-4, "n_steps": 32},
        "data": {"fingerprint": "data-1", "first_bar": "2023-01-01T00:00:00+00:00", "bars": 5000},
        "metrics": {"validation_sharpe": 1.0, "train_sharpe": 2.0},
        "seed": 3,
    }
    return registry.add(model, **(fields | overrides))


def _observations() -> np.ndarray:
    env = gym.make("CartPole-v1")
    obs = np.stack([env.reset(seed=s)[0] for s in range(8)])
    env.close()
    return obs


def _index_bytes(registry: ModelRegistry) -> bytes | None:
    return registry.index_path.read_bytes() if registry.index_path.exists() else None


# -- add, get, list, load -----------------------------------------------------------------------


def test_add_get_load_round_trip(registry: ModelRegistry, ppo: PPO) -> None:
    record = _add(registry, ppo, files={"vecnormalize.pkl": b"stats"})
    assert record.path == registry.root / record.id
    assert sorted(p.name for p in record.path.iterdir()) == [
        "meta.json",
        "model.zip",
        "vecnormalize.pkl",
    ]
    assert (record.path / "vecnormalize.pkl").read_bytes() == b"stats"
    assert set(record.files) == {"model.zip", "vecnormalize.pkl"}
    assert record.created == "2024-01-01T00:00:00.000000+00:00"
    assert record.versions["stable-baselines3"]
    assert record.versions["python"]
    assert registry.get(record.id) == record
    assert ModelRegistry(registry.root).list() == [record]  # a fresh instance reads it back
    loaded = registry.load(record.id)
    assert isinstance(loaded, PPO)
    assert loaded.device.type == "cpu"
    obs = _observations()
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], ppo.predict(obs, deterministic=True)[0]
    )


def test_record_json_round_trip_and_meta_file(registry: ModelRegistry, ppo: PPO) -> None:
    record = _add(registry, ppo, metrics={"validation_sharpe": float("nan"), "train_sharpe": 0.5})
    assert math.isnan(record.metric("validation_sharpe"))
    assert math.isnan(record.metric("not_recorded"))
    assert ModelRecord.from_dict(record.to_dict()) == record
    assert ModelRecord.from_json(record.to_json()) == record
    meta = json.loads((record.path / "meta.json").read_text())
    assert meta["id"] == record.id
    assert meta["path"] == record.id
    assert meta["metrics"]["validation_sharpe"] is None  # strict JSON: NaN is null

    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} in registry.json")

    json.loads(registry.index_path.read_text(), parse_constant=no_constants)


def test_ids_are_readable_and_unique(registry: ModelRegistry, ppo: PPO, dqn: DQN) -> None:
    first = _add(registry, ppo)
    other = _add(registry, ppo, metrics={"validation_sharpe": 2.0})
    assert re.fullmatch(r"ppo-BTC-USDT-1h-[0-9a-f]{8}", first.id)
    assert first.id != other.id
    q = _add(registry, dqn, symbol="EUR/USD:fx", timeframe="1M")
    assert re.fullmatch(r"dqn-EUR-USD-fx-1M-[0-9a-f]{8}", q.id)  # case kept: 1M is not 1m
    assert isinstance(registry.load(q), DQN)
    assert len({r.id for r in registry.list()}) == 3


def test_adding_the_very_same_model_twice_keeps_one(
    registry: ModelRegistry, ppo: PPO, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ppo.save(tmp_path / "fixed.zip")
    frozen = (tmp_path / "fixed.zip").read_bytes()  # SB3's zip stamps the second it was written
    monkeypatch.setattr(ppo, "save", lambda path, *_a, **_k: Path(path).write_bytes(frozen))
    a = _add(registry, ppo)
    b = _add(registry, ppo)
    assert a == b
    assert len(registry.list()) == 1
    assert len(_add(registry, ppo, seed=4).id) == len(a.id)  # any other field: a new model
    assert len(registry.list()) == 2


def test_algorithm_given_must_match_the_model(registry: ModelRegistry, ppo: PPO) -> None:
    with pytest.raises(ModelRegistryError, match="'dqn' given for a PPO model"):
        _add(registry, ppo, algorithm="dqn")
    assert _add(registry, ppo, algorithm="PPO").algorithm == "ppo"


def test_list_is_newest_first_and_filters(
    registry: ModelRegistry, clock: FixedClock, ppo: PPO
) -> None:
    old = _add(registry, ppo)
    clock.advance(HOUR)
    eth = _add(registry, ppo, symbol="ETH/USDT")
    clock.advance(HOUR)
    four = _add(registry, ppo, timeframe="4h")
    assert registry.list() == [four, eth, old]
    assert registry.list(symbol="BTC/USDT") == [four, old]
    assert registry.list(symbol="BTC/USDT", timeframe="1h") == [old]
    assert registry.list(timeframe="1d") == []
    assert ModelRegistry(registry.root.parent / "empty").list() == []


def test_lookup_by_record_folder_and_model_zip(registry: ModelRegistry, ppo: PPO) -> None:
    record = _add(registry, ppo)
    assert registry.get(record) == record
    assert registry.get(record.path) == record
    assert registry.get(str(record.path)) == record
    assert registry.get(record.path / "model.zip") == record
    assert isinstance(registry.load(record.path / "model.zip"), PPO)


def test_unknown_refs_say_what_is_wrong(registry: ModelRegistry, ppo: PPO, tmp_path: Path) -> None:
    record = _add(registry, ppo)
    with pytest.raises(ModelRegistryError, match="did you mean " + record.id):
        registry.get(record.id[:-1])
    with pytest.raises(ModelRegistryError, match="no such model folder"):
        registry.get(tmp_path / "nowhere")
    elsewhere = tmp_path / "copy"
    shutil.copytree(record.path, elsewhere)
    with pytest.raises(ModelRegistryError, match="not a model folder of the registry"):
        registry.get(elsewhere)
    with pytest.raises(UserInputError, match="does not exist"):
        _add(registry, ppo, files={"stats.pkl": tmp_path / "missing.pkl"})
    with pytest.raises(ModelRegistryError, match="plain, unused file name"):
        _add(registry, ppo, files={"../escape": b"x"})
    with pytest.raises(ModelRegistryError, match="fingerprint"):
        _add(registry, ppo, feature_spec={"names": []})
    with pytest.raises(ModelRegistryError, match="no model 'ghost'"):
        _add(registry, ppo, parent="ghost")


def test_parent_and_feature_spec_objects(registry: ModelRegistry, ppo: PPO) -> None:
    class Spec:
        def to_dict(self) -> dict[str, Any]:
            return {"fingerprint": "feat-obj", "names": ("a", "b"), "version": 2}

    base = _add(registry, ppo)
    child = _add(registry, ppo, parent=base, feature_spec=Spec())
    assert child.parent == base.id
    assert child.feature_spec == {"fingerprint": "feat-obj", "names": ["a", "b"], "version": 2}


# -- atomicity ----------------------------------------------------------------------------------


def _leftovers(registry: ModelRegistry) -> list[str]:
    return sorted(
        p.name for p in registry.root.iterdir() if p.name not in ("registry.json", ".lock")
    )


def test_failed_save_leaves_nothing(
    registry: ModelRegistry, ppo: PPO, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = _add(registry, ppo)
    before = _index_bytes(registry)

    def broken_save(path: Any, *args: Any, **kwargs: Any) -> None:
        Path(path).write_bytes(b"half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(ppo, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        _add(registry, ppo, metrics={"validation_sharpe": 9.0})
    monkeypatch.undo()
    assert _leftovers(registry) == [kept.id]
    assert _index_bytes(registry) == before


def test_failed_extra_file_and_failed_index_write_leave_nothing(
    registry: ModelRegistry, ppo: PPO, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ModelRegistryError):
        _add(registry, ppo, files={"stats.pkl": tmp_path / "missing.pkl"})
    assert _leftovers(registry) == []
    assert _index_bytes(registry) is None

    def failing_index(path: Any, data: bytes) -> Path:
        if Path(path).name == "registry.json":
            raise OSError("index write failed")
        return atomic_write_bytes(path, data)

    monkeypatch.setattr("reinforcetrade.agents.registry.atomic_write_bytes", failing_index)
    with pytest.raises(OSError, match="index write failed"):
        _add(registry, ppo)
    assert _leftovers(registry) == []
    assert _index_bytes(registry) is None


# -- champion and challenger --------------------------------------------------------------------


def test_promotion_rules_and_history(registry: ModelRegistry, clock: FixedClock, ppo: PPO) -> None:
    first = _add(registry, ppo, metrics={"validation_sharpe": 1.0})
    worse = _add(registry, ppo, metrics={"validation_sharpe": 0.5})
    tie = _add(registry, ppo, metrics={"validation_sharpe": 1.0, "x": 1.0})
    nan = _add(registry, ppo, metrics={"validation_sharpe": float("nan")})
    missing = _add(registry, ppo, metrics={"train_sharpe": 3.0})
    better = _add(registry, ppo, metrics={"validation_sharpe": 1.5})
    other_slot = _add(registry, ppo, timeframe="4h", metrics={"validation_sharpe": -1.0})
    assert registry.champion("BTC/USDT", "1h") is None

    p = registry.promote(first)
    assert p.promoted
    assert p.champion is None
    assert p.champion_value is None
    assert p.reason.startswith(f"{first.id} (validation_sharpe = 1) becomes the first champion")
    assert registry.champion("BTC/USDT", "1h") == first
    clock.advance(HOUR)
    p = registry.promote(worse.id)
    assert not p.promoted
    assert p.champion == first.id
    assert p.champion_value == 1.0
    assert p.challenger_value == 0.5
    assert "does not beat the champion" in p.reason
    assert not registry.promote(tie).promoted  # a tie keeps the champion
    assert not registry.promote(nan).promoted
    assert "never wins" in registry.promote(missing).reason
    assert not registry.promote(first).promoted  # already the champion
    assert registry.champion("BTC/USDT", "1h") == first
    p = registry.promote(better)
    assert p.promoted
    assert p.champion == first.id
    assert "beats" in p.reason
    assert registry.champion("BTC/USDT", "1h") == better
    assert registry.promote(other_slot).promoted  # its own symbol and timeframe: first there
    assert registry.champion("BTC/USDT", "1h") == better
    assert registry.champion("BTC/USDT", "4h") == other_slot

    history = ModelRegistry(registry.root).history()
    assert [(h.challenger, h.promoted) for h in history] == [
        (first.id, True), (worse.id, False), (tie.id, False), (nan.id, False),
        (missing.id, False), (first.id, False), (better.id, True), (other_slot.id, True),
    ]  # fmt: skip
    assert history[0].time == "2024-01-01T00:00:00.000000+00:00"
    assert history[1].time == "2024-01-01T01:00:00.000000+00:00"
    assert math.isnan(history[3].challenger_value)
    assert registry.history(timeframe="4h") == history[-1:]
    for h in history:
        again = Promotion.from_dict(h.to_dict())
        assert again.to_dict() == h.to_dict()


def test_missing_figure_never_becomes_champion_and_nan_champion_is_replaced(
    registry: ModelRegistry, ppo: PPO
) -> None:
    blind = _add(registry, ppo, metrics={"max_drawdown": 0.3, "validation_sharpe": 0.2})
    assert not registry.promote(blind, metric="nonexistent").promoted
    assert registry.champion("BTC/USDT", "1h") is None
    assert registry.promote(blind, metric="max_drawdown", higher_is_better=False).promoted
    deeper = _add(registry, ppo, metrics={"max_drawdown": 0.5})
    shallower = _add(registry, ppo, metrics={"max_drawdown": 0.1})
    assert not registry.promote(deeper, metric="max_drawdown", higher_is_better=False).promoted
    assert registry.promote(shallower, metric="max_drawdown", higher_is_better=False).promoted
    # the champion has no validation_sharpe: any finite challenger replaces it
    sharp = _add(registry, ppo, metrics={"validation_sharpe": -3.0})
    p = registry.promote(sharp)
    assert p.promoted
    assert p.champion == shallower.id
    assert "has no finite" in p.reason
    assert p.champion_value is not None
    assert math.isnan(p.champion_value)


def test_removing_a_model_frees_its_champion_slot(registry: ModelRegistry, ppo: PPO) -> None:
    record = _add(registry, ppo)
    kept = _add(registry, ppo, timeframe="4h")
    registry.promote(record)
    assert registry.remove(record.id) == record
    assert not record.path.exists()
    assert registry.list() == [kept]
    assert registry.champion("BTC/USDT", "1h") is None
    assert len(registry.history()) == 1  # history is kept
    assert _leftovers(registry) == [kept.id]


# -- compatibility ------------------------------------------------------------------------------


def test_check_compatible(registry: ModelRegistry, ppo: PPO) -> None:
    record = _add(registry, ppo)
    assert (
        registry.check_compatible(record, feature_fingerprint="feat-aaaa", timeframe="1h") == record
    )
    with pytest.raises(ModelMismatchError) as err:
        registry.check_compatible(record.id, feature_fingerprint="feat-bbbb", timeframe="1h")
    text = str(err.value)
    assert record.id in text
    assert "feat-aaaa" in text
    assert "feat-bbbb" in text
    assert "retrain" in text
    assert "version 1" in text
    with pytest.raises(ModelMismatchError) as err:
        registry.check_compatible(record.path, feature_fingerprint="feat-aaaa", timeframe="4h")
    text = str(err.value)
    assert record.id in text
    assert "1h" in text
    assert "4h" in text
    assert "resample the data to 1h" in text
    assert "features" not in text
    with pytest.raises(UserInputError, match=r"features .* 15m bars"):
        registry.check_compatible(record, feature_fingerprint="x", timeframe="15m")


# -- damage -------------------------------------------------------------------------------------


def test_corrupt_index_names_the_file(registry: ModelRegistry, ppo: PPO) -> None:
    _add(registry, ppo)
    path = registry.index_path
    path.write_text('{"format": 1, "models": [', encoding="utf-8")
    with pytest.raises(ModelRegistryError, match=re.escape(str(path)) + ": not valid JSON"):
        registry.list()
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(ModelRegistryError, match="not a registry index"):
        registry.get("anything")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["models"][0].pop("timeframe"), r"models\[0\]: missing fields \['timeframe'\]"),
        (lambda d: d["models"][0].update(seed="three"), "field 'seed' has the wrong type"),
        (lambda d: d["models"][0].update(algorithm="trpo"), "algorithm 'trpo'"),
        (lambda d: d["models"][0].update(id="../../etc"), "not a plain folder name"),
        (lambda d: d["models"][0].update(created="yesterday"), "not an ISO time in UTC"),
        (lambda d: d["models"].append(d["models"][0]), "listed twice"),
        (
            lambda d: d["champions"].append({"symbol": "X", "timeframe": "1h", "id": "gone"}),
            "champion gone",
        ),
        (lambda d: d.pop("history"), "malformed registry index"),
    ],
)
def test_hand_edited_index_names_file_and_field(
    registry: ModelRegistry, ppo: PPO, edit: Any, message: str
) -> None:
    _add(registry, ppo)
    document = json.loads(registry.index_path.read_text())
    edit(document)
    registry.index_path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ModelRegistryError, match=message) as err:
        registry.list()
    assert str(registry.index_path) in str(err.value)


def test_vanished_or_altered_folders_are_reported(registry: ModelRegistry, ppo: PPO) -> None:
    gone = _add(registry, ppo)
    altered = _add(registry, ppo, metrics={"validation_sharpe": 3.0})
    no_meta = _add(registry, ppo, metrics={"validation_sharpe": 4.0})
    shutil.rmtree(gone.path)
    (altered.path / "model.zip").write_bytes(b"tampered")
    (no_meta.path / "meta.json").unlink()
    (registry.root / "stray").mkdir()
    assert {r.id for r in registry.list()} == {gone.id, altered.id, no_meta.id}  # not dropped
    with pytest.raises(ModelRegistryError, match=f"{gone.id}: its folder .* is gone.*remove"):
        registry.load(gone.id)
    with pytest.raises(ModelRegistryError, match=r"model\.zip differs from the file registered"):
        registry.load(altered)
    with pytest.raises(ModelRegistryError, match=r"meta\.json is missing"):
        registry.load(no_meta)
    with pytest.raises(ModelRegistryError, match="is gone"):
        registry.promote(gone)  # a champion must be loadable
    assert registry.history() == []
    assert registry.get(gone.path) == gone  # its folder path still finds the record
    problems = registry.verify()
    assert len(problems) == 4
    assert any("stray: a folder not in" in p for p in problems)
    registry.remove(gone)  # a vanished model can still be dropped from the index
    assert gone.id not in {r.id for r in registry.list()}

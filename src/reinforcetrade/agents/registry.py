"""The model registry: trained Stable-Baselines3 models on disk, with what it takes to trust them.

Layout of a registry folder (``RLConfig.models_dir``)::

    registry.json                 the index: every record, the champions, the promotion history
    .lock                         empty; writers hold an advisory lock on it
    ppo-BTC-USDT-1h-1a2b3c4d/     one folder per model, named by its id, renamed into place whole
        model.zip                 model.save(...)
        meta.json                 the ModelRecord (the same as its entry in registry.json)
        vecnormalize.pkl          any extra files given to `add` (checksums in the record)

A usage sketch (a real, untrained PPO model):

>>> import tempfile
>>> from stable_baselines3 import PPO
>>> from reinforcetrade.core.clock import FixedClock
>>> folder = tempfile.TemporaryDirectory()
>>> registry = ModelRegistry(Path(folder.name), clock=FixedClock(1_700_000_000 * 10**9))
>>> model = PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, seed=0, device="cpu")
>>> record = registry.add(model, symbol="BTC/USDT", timeframe="1h",
...                       feature_spec={"fingerprint": "f1"}, metrics={"validation_sharpe": 1.2})
>>> record.id[:16], record.created
('ppo-BTC-USDT-1h-', '2023-11-14T22:13:20.000000+00:00')
>>> registry.promote(record.id).promoted, registry.champion("BTC/USDT", "1h") == record
(True, True)
>>> type(registry.load(record.id)).__name__
'PPO'
>>> folder.cleanup()
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import dataclasses
import difflib
import fcntl
import hashlib
import json
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # torch and Stable-Baselines3 load only when a model is saved or loaded
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.type_aliases import GymEnv

from reinforcetrade.config.sections import RLConfig
from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.files import atomic_path, atomic_write_bytes

ALGORITHMS: tuple[str, ...] = ("ppo", "a2c", "dqn", "sac")


def algorithm_classes() -> dict[str, type[BaseAlgorithm]]:
    """Return the Stable-Baselines3 class of each algorithm name (imports SB3 on first use)."""
    from stable_baselines3 import A2C, DQN, PPO, SAC

    return {"ppo": PPO, "a2c": A2C, "dqn": DQN, "sac": SAC}


MODEL_FILE, META_FILE, INDEX_FILE, LOCK_FILE = "model.zip", "meta.json", "registry.json", ".lock"
FORMAT = 1  # registry.json layout version
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DICTS = ("feature_spec", "env_config", "hyperparameters", "data")
_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "path": (str,), "algorithm": (str,), "symbol": (str,), "timeframe": (str,),
    "feature_spec": (dict,), "env_config": (dict,), "hyperparameters": (dict,), "data": (dict,),
    "metrics": (dict,), "seed": (int, type(None)), "versions": (dict,), "created": (str,),
    "parent": (str, type(None)), "files": (dict,),
}  # fmt: skip
_OPTIONAL = {"parent", "files"}


class ModelRegistryError(UserInputError):
    """The registry or a model folder is unusable as found, or a model ref is unknown."""


class ModelMismatchError(UserInputError):
    """A model is being applied to features or bars it was not trained on."""


class _SpecLike(Protocol):
    def to_dict(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """Everything recorded about one registered model; `to_dict`/`from_dict` round-trip via JSON.

    Dicts are stored as canonical JSON copies. Metrics are floats; a non-finite figure is NaN
    here and null in JSON. `files` maps each file in the folder (model.zip and extras) to its
    SHA-256, checked when the model is loaded.
    """

    id: str
    path: Path
    algorithm: str
    symbol: str
    timeframe: str
    feature_spec: dict[str, Any]
    env_config: dict[str, Any]
    hyperparameters: dict[str, Any]
    data: dict[str, Any]
    metrics: dict[str, float]
    seed: int | None
    versions: dict[str, str]
    created: str
    parent: str | None = None
    files: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _ID.fullmatch(self.id):
            raise ModelRegistryError(f"model id {self.id!r} is not a plain folder name")
        if self.algorithm not in ALGORITHMS:
            raise ModelRegistryError(
                f"algorithm {self.algorithm!r} is not one of {', '.join(ALGORITHMS)}"
            )
        set_ = object.__setattr__
        set_(self, "path", Path(self.path))
        for name in _DICTS:
            set_(self, name, _canonical(name, getattr(self, name)))
        set_(self, "metrics", {str(k): _figure(k, v) for k, v in self.metrics.items()})
        set_(self, "versions", {str(k): str(v) for k, v in self.versions.items()})
        set_(self, "files", {str(k): str(v) for k, v in self.files.items()})
        fingerprint = self.feature_spec.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise ModelRegistryError("feature_spec has no 'fingerprint' (FeatureSpec.to_dict())")
        _parse_time(self.created)

    @property
    def feature_fingerprint(self) -> str:
        """Return the fingerprint of the feature spec the model was trained on."""
        return str(self.feature_spec["fingerprint"])

    def metric(self, name: str) -> float:
        """Return a metric's figure, NaN when it was not recorded."""
        return self.metrics.get(name, math.nan)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as strict-JSON data (NaN figures become null)."""
        out = {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["path"] = str(self.path)
        out["metrics"] = {k: (v if math.isfinite(v) else None) for k, v in self.metrics.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "model record") -> ModelRecord:
        """Build a record from `to_dict` output; errors name `source` and the bad field."""
        if not isinstance(data, Mapping):
            raise ModelRegistryError(f"{source}: expected an object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_TYPES))
        missing = sorted(set(_TYPES) - set(data) - _OPTIONAL)
        if unknown or missing:
            raise ModelRegistryError(
                f"{source}: missing fields {missing}, unknown fields {unknown}"
                " (written by another version, or edited by hand?)"
            )
        for name, value in data.items():
            if not isinstance(value, _TYPES[name]) or isinstance(value, bool):
                raise ModelRegistryError(
                    f"{source}: field {name!r} has the wrong type ({type(value).__name__})"
                )
        fields = dict(data)
        fields["metrics"] = {k: math.nan if v is None else v for k, v in data["metrics"].items()}
        try:
            return cls(**fields)
        except ModelRegistryError as exc:
            raise ModelRegistryError(f"{source}: {exc}") from None

    def to_json(self) -> str:
        """Return the record as a JSON document."""
        return _dump(self.to_dict()).decode()

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "model record") -> ModelRecord:
        """Parse `to_json` output."""
        return cls.from_dict(_load_json(text, source), source=source)


@dataclass(frozen=True, slots=True)
class Promotion:
    """One champion/challenger decision, promoted or not, with both figures and the reason."""

    challenger: str
    champion: str | None  # the champion when the decision was taken (None: there was none)
    symbol: str
    timeframe: str
    metric: str
    challenger_value: float  # NaN when missing
    champion_value: float | None  # None when there was no champion, NaN when it lacks the metric
    promoted: bool
    reason: str
    time: str
    higher_is_better: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as strict-JSON data."""
        out = dataclasses.asdict(self)
        for key in ("challenger_value", "champion_value"):
            out[key] = out[key] if out[key] is not None and math.isfinite(out[key]) else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "promotion") -> Promotion:
        """Build a decision from `to_dict` output."""
        try:
            fields = dict(data)
            fields["challenger_value"] = _nan_if_none(fields["challenger_value"])
            if fields["champion"] is not None:
                fields["champion_value"] = _nan_if_none(fields["champion_value"])
            return cls(**fields)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelRegistryError(f"{source}: not a promotion record ({exc})") from None


@dataclass
class _Index:
    models: dict[str, ModelRecord] = field(default_factory=dict)  # in the order added
    champions: dict[tuple[str, str], str] = field(default_factory=dict)
    history: list[Promotion] = field(default_factory=list)


class ModelRegistry:
    """Trained models in folders under `root`, an index, and a champion per symbol and timeframe."""

    def __init__(self, root: str | os.PathLike[str], clock: Clock | None = None) -> None:
        self.root = Path(root)
        self.clock = clock or WallClock()

    @classmethod
    def from_config(cls, config: RLConfig, clock: Clock | None = None) -> ModelRegistry:
        """Return the registry in `config.models_dir`."""
        return cls(config.models_dir, clock=clock)

    @property
    def index_path(self) -> Path:
        """Return the path of registry.json."""
        return self.root / INDEX_FILE

    def add(
        self,
        model: BaseAlgorithm,
        *,
        symbol: str,
        timeframe: str,
        feature_spec: Mapping[str, Any] | _SpecLike,
        algorithm: str | None = None,
        env_config: Mapping[str, Any] | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        seed: int | None = None,
        versions: Mapping[str, str] | None = None,
        parent: str | ModelRecord | None = None,
        files: Mapping[str, str | os.PathLike[str] | bytes] | None = None,
    ) -> ModelRecord:
        """Save `model`, the extra `files` (name -> source path or bytes) and meta.json, then index.

        The folder appears whole under its id or not at all; on any failure nothing is left
        and registry.json is unchanged. `algorithm` defaults to the model's class, `seed` to
        the model's seed, `versions` to the installed libraries'.
        """
        algo = _algorithm_of(model, algorithm)
        spec = feature_spec if isinstance(feature_spec, Mapping) else feature_spec.to_dict()
        with self._locked() as index:
            parent_id = None if parent is None else self._resolve(index, parent).id
            staging = self.root / f".adding-{secrets.token_hex(6)}"
            staging.mkdir()
            try:
                draft = ModelRecord(
                    id="staging", path=staging, algorithm=algo, symbol=symbol,
                    timeframe=timeframe, feature_spec=dict(spec), env_config=dict(env_config or {}),
                    hyperparameters=dict(hyperparameters or {}), data=dict(data or {}),
                    metrics=dict(metrics or {}), seed=model.seed if seed is None else seed,
                    versions=dict(versions or _versions()), created=_iso(self.clock.now_ns()),
                    parent=parent_id, files=_stage(staging, model, files or {}),
                )  # fmt: skip
                ident = _make_id(draft)
                record = dataclasses.replace(draft, id=ident, path=self.root / ident)
                if ident in index.models:
                    return _same_or_clash(index.models[ident], record, self.index_path)
                if record.path.exists():
                    raise ModelRegistryError(
                        f"{record.path}: exists but is not in {self.index_path} (left by an "
                        "interrupted add?); delete that folder and add the model again"
                    )
                atomic_write_bytes(staging / META_FILE, _dump(_stored(record)))
                os.rename(staging, record.path)
            finally:
                shutil.rmtree(staging, ignore_errors=True)  # gone after the rename
            try:
                index.models[ident] = record
                self._write(index)
            except BaseException:
                _discard(record.path)
                raise
        return record

    def get(self, ref: str | os.PathLike[str] | ModelRecord) -> ModelRecord:
        """Return the record of a model given its id, its record, or its folder (or model.zip)."""
        return self._resolve(self._read(), ref)

    def list(
        self, symbol: str | None = None, timeframe: str | None = None
    ) -> builtins.list[ModelRecord]:
        """Return the records, newest first, optionally of one symbol and/or timeframe.

        Models whose folder has vanished stay listed (`verify` reports them; `load` refuses).
        """
        ordered = reversed(list(self._read().models.values()))  # later additions first on ties
        chosen = [
            r
            for r in ordered
            if (symbol is None or r.symbol == symbol)
            and (timeframe is None or r.timeframe == timeframe)
        ]
        return sorted(chosen, key=lambda r: _parse_time(r.created), reverse=True)

    def load(
        self,
        ref: str | os.PathLike[str] | ModelRecord,
        env: GymEnv | None = None,
        custom_objects: dict[str, Any] | None = None,
    ) -> BaseAlgorithm:
        """Return the model as its Stable-Baselines3 class on the CPU, after checking its files.

        `env` and `custom_objects` are passed to SB3's `load` (the latter replaces saved objects
        that cannot be unpickled, e.g. a learning-rate schedule from another Python version).
        A `TradingEnv` with other features or another bar length is refused.
        """
        record = self.get(ref)
        if env is not None:
            _check_env(record, env)
        self._check_folder(record)
        cls = algorithm_classes()[record.algorithm]
        return cls.load(
            record.path / MODEL_FILE, env=env, device="cpu", custom_objects=custom_objects
        )

    def remove(self, ref: str | os.PathLike[str] | ModelRecord) -> ModelRecord:
        """Delete a model's folder and its entry; a champion slot it held becomes empty."""
        with self._locked() as index:
            record = self._resolve(index, ref)
            del index.models[record.id]
            index.champions = {k: v for k, v in index.champions.items() if v != record.id}
            self._write(index)
            _discard(record.path)
        return record

    def check_compatible(
        self,
        ref: str | os.PathLike[str] | ModelRecord,
        *,
        feature_fingerprint: str,
        timeframe: str,
    ) -> ModelRecord:
        """Return the record if the model fits these features and bars, else raise a mismatch."""
        record = self.get(ref)
        require_compatible(record, feature_fingerprint=feature_fingerprint, timeframe=timeframe)
        return record

    def champion(self, symbol: str, timeframe: str) -> ModelRecord | None:
        """Return the champion for a symbol and timeframe, or None."""
        index = self._read()
        ident = index.champions.get((symbol, timeframe))
        return None if ident is None else index.models[ident]

    def promote(
        self,
        ref: str | os.PathLike[str] | ModelRecord,
        metric: str = "validation_sharpe",
        *,
        higher_is_better: bool = True,
    ) -> Promotion:
        """Make the model its symbol's and timeframe's champion if it beats the current one.

        A missing or NaN figure never wins; a tie keeps the champion. Every decision is
        appended to `history()`, promoted or not.
        """
        with self._locked() as index:
            challenger = self._resolve(index, ref)
            self._check_folder(challenger)  # a champion must be loadable
            key = (challenger.symbol, challenger.timeframe)
            current = index.champions.get(key)
            held = None if current is None else index.models[current].metric(metric)
            value = challenger.metric(metric)
            promoted, reason = _decide(challenger, current, value, held, metric, higher_is_better)
            return self._settle(index, challenger, current, metric, value, held, promoted, reason,
                                higher_is_better)  # fmt: skip

    def crown(
        self,
        ref: str | os.PathLike[str] | ModelRecord,
        *,
        champion: str | None,
        metric: str,
        challenger_value: float,
        champion_value: float | None,
        reason: str,
    ) -> Promotion:
        """Make the model the champion on a verdict reached elsewhere (a retrain's walk-forward).

        `champion` is the champion the verdict was reached against (None: there was none); if
        the slot has changed since, nothing is changed and `ModelRegistryError` says so.
        """
        with self._locked() as index:
            challenger = self._resolve(index, ref)
            self._check_folder(challenger)
            current = index.champions.get((challenger.symbol, challenger.timeframe))
            if current != champion:
                raise ModelRegistryError(
                    f"the champion for {challenger.symbol} {challenger.timeframe} is now "
                    f"{current or 'none'}, not {champion or 'none'} as when {challenger.id} was "
                    "judged; judge it again against the new champion"
                )
            return self._settle(index, challenger, current, metric, challenger_value,
                                champion_value, True, reason, True)  # fmt: skip

    def _settle(
        self,
        index: _Index,
        challenger: ModelRecord,
        current: str | None,
        metric: str,
        value: float,
        held: float | None,
        promoted: bool,
        reason: str,
        higher_is_better: bool,
    ) -> Promotion:
        """Append a decision to the history (and crown the challenger if promoted); write."""
        key = (challenger.symbol, challenger.timeframe)
        decision = Promotion(
            challenger=challenger.id, champion=current, symbol=key[0], timeframe=key[1],
            metric=metric, challenger_value=value, champion_value=held, promoted=promoted,
            reason=reason, time=_iso(self.clock.now_ns()), higher_is_better=higher_is_better,
        )  # fmt: skip
        index.history.append(decision)
        if promoted:
            index.champions[key] = challenger.id
        self._write(index)
        return decision

    def history(
        self, symbol: str | None = None, timeframe: str | None = None
    ) -> builtins.list[Promotion]:
        """Return every promotion decision, oldest first, optionally of one symbol/timeframe."""
        return [
            p
            for p in self._read().history
            if (symbol is None or p.symbol == symbol)
            and (timeframe is None or p.timeframe == timeframe)
        ]

    def verify(self) -> builtins.list[str]:
        """Return a line per problem: vanished or altered model folders, unindexed folders."""
        index = self._read()
        problems = []
        for record in index.models.values():
            try:
                self._check_folder(record)
            except ModelRegistryError as exc:
                problems.append(str(exc))
        if self.root.is_dir():
            for entry in sorted(self.root.iterdir()):
                if entry.is_dir() and entry.name.startswith((".adding-", ".removing-")):
                    problems.append(f"{entry}: left by an interrupted add/remove; safe to delete")
                elif entry.is_dir() and entry.name not in index.models:
                    problems.append(f"{entry}: a folder not in {self.index_path}")
        return problems

    # -- internals ------------------------------------------------------------------------------

    def _resolve(self, index: _Index, ref: str | os.PathLike[str] | ModelRecord) -> ModelRecord:
        if isinstance(ref, ModelRecord):
            ref = ref.id
        if isinstance(ref, str) and ref in index.models:
            return index.models[ref]
        path = Path(ref)
        if isinstance(ref, str) and len(path.parts) == 1 and path.suffix != ".zip":
            close = difflib.get_close_matches(ref, list(index.models), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ModelRegistryError(f"no model {ref!r} in {self.index_path}{hint}")
        folder = path.parent if path.name == MODEL_FILE else path
        inside = folder.resolve().parent == self.root.resolve()
        if inside and folder.name in index.models:  # even when the folder has vanished
            return index.models[folder.name]
        if not folder.is_dir():
            raise ModelRegistryError(f"{path}: no such model folder")
        if not inside:
            raise ModelRegistryError(f"{path}: not a model folder of the registry in {self.root}")
        raise ModelRegistryError(f"{folder}: holds no model listed in {self.index_path}")

    def _check_folder(self, record: ModelRecord) -> None:
        advice = f"restore it, or drop the model with remove({record.id!r})"
        if not record.path.is_dir():
            raise ModelRegistryError(
                f"model {record.id}: its folder {record.path} is gone; {advice}"
            )
        meta = record.path / META_FILE
        if not meta.is_file():
            raise ModelRegistryError(f"model {record.id}: {meta} is missing; {advice}")
        if ModelRecord.from_json(meta.read_bytes(), source=str(meta)).id != record.id:
            raise ModelRegistryError(f"{meta}: describes another model than {record.id}; {advice}")
        for name, digest in record.files.items():
            file = record.path / name
            if not file.is_file():
                raise ModelRegistryError(f"model {record.id}: {file} is missing; {advice}")
            if _sha256(file) != digest:
                raise ModelRegistryError(
                    f"model {record.id}: {file} differs from the file registered (changed or "
                    f"corrupted since); {advice}"
                )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[_Index]:
        """Hold the registry's write lock and yield the index as it is now."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "a") as handle:  # "a": create, never truncate
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield self._read()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> _Index:
        path = self.index_path
        if not path.exists():
            return _Index()
        raw = _load_json(path.read_bytes(), str(path))
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ModelRegistryError(
                f"{path}: not a registry index of format {FORMAT}; restore it from a backup "
                "(each model folder's meta.json holds that model's record)"
            )
        try:
            index = _Index()
            for i, item in enumerate(raw["models"]):
                record = ModelRecord.from_dict(item, source=f"{path}: models[{i}]")
                if record.id in index.models:
                    raise ModelRegistryError(f"{path}: model {record.id} is listed twice")
                index.models[record.id] = dataclasses.replace(record, path=self.root / record.id)
            for slot in raw["champions"]:
                if slot["id"] not in index.models:
                    raise ModelRegistryError(f"{path}: champion {slot['id']} is not a listed model")
                index.champions[(slot["symbol"], slot["timeframe"])] = slot["id"]
            index.history = [
                Promotion.from_dict(p, source=f"{path}: history[{i}]")
                for i, p in enumerate(raw["history"])
            ]
        except (KeyError, TypeError) as exc:
            raise ModelRegistryError(f"{path}: malformed registry index ({exc!r})") from None
        return index

    def _write(self, index: _Index) -> None:
        document = {
            "format": FORMAT,
            "models": [_stored(r) for r in index.models.values()],
            "champions": [
                {"symbol": s, "timeframe": t, "id": i} for (s, t), i in index.champions.items()
            ],
            "history": [p.to_dict() for p in index.history],
        }
        atomic_write_bytes(self.index_path, _dump(document))


def require_compatible(record: ModelRecord, *, feature_fingerprint: str, timeframe: str) -> None:
    """Raise `ModelMismatchError` unless the model was trained on these features and bars."""
    problems = []
    if record.feature_fingerprint != feature_fingerprint:
        version = record.feature_spec.get("version", "?")
        problems.append(
            f"it was trained on features {record.feature_fingerprint} (spec version "
            f"{version}) but is being applied to features {feature_fingerprint}: retrain it "
            "on the current feature spec, or compute the features with the spec it was "
            "trained on"
        )
    if record.timeframe != timeframe:
        problems.append(
            f"it was trained on {record.timeframe} bars but is being applied to {timeframe} "
            f"bars: resample the data to {record.timeframe}, or retrain on {timeframe}"
        )
    if problems:
        raise ModelMismatchError(
            f"model {record.id} ({record.symbol}) cannot be used here: " + "; ".join(problems)
        )


def _check_env(record: ModelRecord, env: GymEnv) -> None:
    """Refuse an environment (or vector of them) whose features or bars the model does not fit."""
    inner = getattr(env, "unwrapped", env)
    features = getattr(inner, "features", None)
    bars = getattr(inner, "bars", None)
    tf = getattr(bars, "timeframe", None)
    if features is None or not hasattr(features, "fingerprint"):
        return  # not a TradingEnv: SB3 checks the spaces
    timeframe = tf.text if tf is not None else record.timeframe
    require_compatible(record, feature_fingerprint=features.fingerprint(), timeframe=timeframe)


def _decide(
    challenger: ModelRecord,
    current: str | None,
    value: float,
    held: float | None,
    metric: str,
    higher_is_better: bool,
) -> tuple[bool, str]:
    """Return (promoted, reason) for a challenger against the current champion."""
    who = f"{challenger.id} ({metric} = {value:.6g})"
    slot = f"{challenger.symbol} {challenger.timeframe}"
    if current == challenger.id:
        return False, f"{challenger.id} is already the champion for {slot}"
    if not math.isfinite(value):
        return False, f"{challenger.id} has no finite {metric}; a missing figure never wins"
    if current is None or held is None:
        return True, f"{who} becomes the first champion for {slot}"
    if not math.isfinite(held):
        return True, f"{who} replaces {current}, which has no finite {metric}, as champion"
    if value > held if higher_is_better else value < held:
        return True, f"{who} beats {current} ({held:.6g}) and becomes the champion for {slot}"
    return False, f"{who} does not beat the champion {current} ({held:.6g}), which stays"


def _algorithm_of(model: BaseAlgorithm, algorithm: str | None) -> str:
    classes = algorithm_classes()
    found = next((name for name, cls in classes.items() if isinstance(model, cls)), None)
    if found is None:
        names = ", ".join(cls.__name__ for cls in classes.values())
        raise ModelRegistryError(f"{type(model).__name__} is not one of {names}")
    if algorithm is not None and algorithm.lower() != found:
        raise ModelRegistryError(
            f"algorithm {algorithm!r} given for a {type(model).__name__} model"
        )
    return found


def _stage(
    folder: Path, model: BaseAlgorithm, files: Mapping[str, str | os.PathLike[str] | bytes]
) -> dict[str, str]:
    """Write the model and extra files into `folder`; return name -> SHA-256."""
    with atomic_path(folder / MODEL_FILE) as temp:
        model.save(temp)
    for name, source in files.items():
        if not _ID.fullmatch(name) or name in (MODEL_FILE, META_FILE):
            raise ModelRegistryError(f"extra file name {name!r} must be a plain, unused file name")
        if isinstance(source, bytes):
            atomic_write_bytes(folder / name, source)
            continue
        if not Path(source).is_file():
            raise ModelRegistryError(f"extra file {name!r}: {source} does not exist")
        with atomic_path(folder / name) as temp:
            shutil.copyfile(source, temp)
    return {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}


def _make_id(draft: ModelRecord) -> str:
    """Return `{algorithm}-{symbol}-{timeframe}-{8 hex}`, hashing the record and file checksums."""
    content = {k: v for k, v in draft.to_dict().items() if k not in ("id", "path")}
    digest = hashlib.sha256(_dump(content)).hexdigest()[:8]
    return f"{draft.algorithm}-{_safe(draft.symbol)}-{_safe(draft.timeframe)}-{digest}"


def _same_or_clash(existing: ModelRecord, record: ModelRecord, index: Path) -> ModelRecord:
    """Return `existing` when `record` is the very same model; refuse a hash clash."""
    if _stored(existing) == _stored(record):
        return existing
    raise ModelRegistryError(f"{index}: id {record.id} is taken by different content; add again")


def _safe(text: str) -> str:
    """Return `text` as a folder-name fragment (case kept: 1m and 1M differ)."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-.") or "x"


def _stored(record: ModelRecord) -> dict[str, Any]:
    """Return the record as written to disk: its path relative to the registry root."""
    return record.to_dict() | {"path": record.id}


def _canonical(name: str, value: Any) -> dict[str, Any]:
    try:
        data = json.loads(_dump(dict(value), indent=None))
    except (TypeError, ValueError) as exc:
        raise ModelRegistryError(f"{name} must be JSON-able with finite numbers ({exc})") from None
    return dict(data)


def _figure(name: object, value: Any) -> float:
    if value is None or isinstance(value, bool):
        raise ModelRegistryError(f"metric {name!r} must be a number, got {value!r}")
    try:
        figure = float(value)
    except (TypeError, ValueError):
        raise ModelRegistryError(f"metric {name!r} must be a number, got {value!r}") from None
    return figure if math.isfinite(figure) else math.nan  # one NaN object: records compare equal


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _dump(data: Any, indent: int | None = 2) -> bytes:
    def plain(value: Any) -> Any:
        if hasattr(value, "item"):  # numpy scalars and 0-d arrays
            return value.item()
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise TypeError(f"{type(value).__name__} is not JSON-able")

    text = json.dumps(data, indent=indent, allow_nan=False, ensure_ascii=False, default=plain)
    return text.encode()


def _load_json(text: str | bytes, source: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelRegistryError(
            f"{source}: not valid JSON ({exc}); restore it from a backup or fix it by hand"
        ) from None


def _iso(ns: int) -> str:
    seconds, rest = divmod(int(ns), 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1000)
    return stamp.isoformat(timespec="microseconds")


def _parse_time(text: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        stamp = None
    offset = None if stamp is None else stamp.utcoffset()
    if stamp is None or offset is None or offset.total_seconds() != 0:
        raise ModelRegistryError(f"created {text!r} is not an ISO time in UTC")
    return stamp


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _discard(folder: Path) -> None:
    """Delete a model folder: renamed aside first, so no half-deleted folder keeps its name."""
    if not folder.exists():
        return
    aside = folder.with_name(f".removing-{folder.name}-{secrets.token_hex(4)}")
    os.rename(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)


def _versions() -> dict[str, str]:
    """Return the versions of Python and the libraries a model depends on."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("numpy", "torch", "stable-baselines3", "gymnasium", "reinforcetrade"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    return found

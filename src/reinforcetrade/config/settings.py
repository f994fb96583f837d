"""The one validated, frozen settings tree, loaded from YAML, environment variables and `.env`.

Precedence, highest first: keyword arguments, environment variables (``RT_`` prefix, nested with
``__``: ``RT_RISK__STOP_LOSS=0.04``), the ``.env`` file, the YAML file, then the defaults.
"""

from __future__ import annotations

import contextvars
import difflib
import fnmatch
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final, get_args, get_origin

import yaml
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

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
from reinforcetrade.core.errors import ConfigError

ENV_PREFIX: Final[str] = "RT_"
DEFAULT_FILE: Final[str] = "reinforcetrade.yaml"
MASK: Final[str] = "**********"
_YAML: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "rt_yaml", default=None
)
_DOTENV: contextvars.ContextVar[Path | None] = contextvars.ContextVar("rt_dotenv", default=None)


class _YamlSource(PydanticBaseSettingsSource):
    """Feeds the YAML file's mapping (read by `load_settings`) into the settings."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        """Return one top-level value from the YAML mapping."""
        return (_YAML.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_YAML.get() or {})


class Settings(BaseSettings):
    """Every setting of ReinforceTrade, one section per package."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=None,
        case_sensitive=False,
        env_ignore_empty=True,  # `RT_X=` (as in .env.example) means unset
        validate_default=True,
    )

    data: DataConfig = DataConfig()
    agents: AgentsConfig = AgentsConfig()
    tower: TowerConfig = TowerConfig()
    risk: RiskConfig = RiskConfig()
    costs: CostsConfig = CostsConfig()
    backtest: BacktestConfig = BacktestConfig()
    rl: RLConfig = RLConfig()
    optimization: OptimizationConfig = OptimizationConfig()
    retrain: RetrainConfig = RetrainConfig()
    routing: RoutingConfig = RoutingConfig()
    execution: ExecutionConfig = ExecutionConfig()
    trading: TradingConfig = TradingConfig()
    storage: StorageConfig = StorageConfig()
    web: WebConfig = WebConfig()
    alerts: AlertsConfig = AlertsConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order the sources: arguments, env vars, .env, YAML file, defaults."""
        from pydantic_settings import DotEnvSettingsSource

        dotenv = DotEnvSettingsSource(
            settings_cls, env_file=_DOTENV.get(), dotenv_filtering="match_prefix"
        )
        return init_settings, env_settings, dotenv, _YamlSource(settings_cls)

    def with_updates(self, section: str, **fields: Any) -> Settings:
        """Return a copy with some fields of one section replaced (validated like the file).

        >>> Settings().with_updates("rl", window=8).rl.window
        8
        """
        current = getattr(self, section, None)
        if not isinstance(current, BaseModel):
            raise ConfigError(f"no settings section {section!r}")
        try:
            updated = type(current).model_validate(current.model_dump() | fields)
        except ValidationError as exc:
            raise ConfigError(f"bad {section} settings: {exc}") from None
        return self.model_copy(update={section: updated})

    def with_params(self, params: Mapping[str, Any]) -> Settings:
        """Return a copy with fields replaced by dotted path ("risk.stop_loss": 0.04), validated.

        >>> tuned = Settings().with_params({"agents.trend.fast_ma": 20, "risk.stop_loss": 0.03})
        >>> tuned.agents.trend.fast_ma, tuned.risk.stop_loss
        (20, 0.03)
        """
        by_section: dict[str, dict[str, Any]] = {}
        for path, value in params.items():
            section, _, rest = str(path).partition(".")
            if not rest or not isinstance(getattr(self, section, None), BaseModel):
                raise ConfigError(f"{path!r} is not a setting: write it as section.field")
            tree = by_section.setdefault(section, getattr(self, section).model_dump())
            *parents, leaf = rest.split(".")
            node = tree
            for name in parents:
                child = node.get(name) if isinstance(node, dict) else None
                if not isinstance(child, dict):
                    raise ConfigError(f"{path!r} is not a setting ({name!r} has no fields)")
                node = child
            if leaf not in node:
                close = difflib.get_close_matches(leaf, list(node), n=1)
                near = ".".join([section, *parents, close[0]]) if close else ""
                hint = f"; did you mean {near!r}?" if close else ""
                raise ConfigError(f"{path!r} is not a setting{hint}")
            node[leaf] = value
        updated = {}
        for section, tree in by_section.items():
            try:
                updated[section] = type(getattr(self, section)).model_validate(tree)
            except ValidationError as exc:
                shown = {k: v for k, v in params.items() if str(k).startswith(section + ".")}
                raise ConfigError(f"bad {section} settings {shown}: {_errors(exc)}") from None
        return self.model_copy(update=updated)

    def public_dict(self) -> dict[str, Any]:
        """Return the settings as plain JSON-able data with every secret masked."""
        masked: dict[str, Any] = _mask(self.model_dump(mode="python"))
        return masked

    def config_hash(self) -> str:
        """Return a short, stable hash of every non-secret setting, stored with each result."""
        text = json.dumps(self.public_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        """Return the effective settings as YAML, secrets masked."""
        return yaml.safe_dump(self.public_dict(), sort_keys=False, allow_unicode=True)


def _errors(exc: ValidationError) -> str:
    """Return a validation error's problems on one line."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
    )


def _mask(value: Any) -> Any:
    """Return `value` with secrets replaced by a mask (unset secrets stay null)."""
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, BaseModel):
        return _mask(value.model_dump(mode="python"))
    if isinstance(value, Mapping):
        return {str(k): _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def secret_fields(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[str]:
    """Yield the dotted path of every secret field in the tree (`*`: any key of a mapping)."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        path = f"{prefix}{name}"
        values = get_args(annotation)[-1] if get_origin(annotation) is dict else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from secret_fields(annotation, f"{path}.")
        elif isinstance(values, type) and issubclass(values, BaseModel):
            yield from secret_fields(values, f"{path}.*.")  # e.g. routing.venues.*.api_key
        elif "SecretStr" in str(annotation):
            yield path


def _read_yaml(path: Path) -> dict[str, Any]:
    """Return the mapping in a YAML config file, or raise ConfigError saying what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections, not {type(loaded).__name__}"
        )
    return loaded


def _lookup(tree: Mapping[str, Any], path: tuple[str | int, ...]) -> tuple[bool, Any]:
    """Return whether a dotted path exists in a nested mapping, and its value."""
    node: Any = tree
    for key in path:
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        else:
            return False, None
    return True, node


def _suggest(path: tuple[str | int, ...]) -> str:
    """Return ' (did you mean …?)' for a misspelt field, or ''."""
    node: Any = Settings
    for key in path[:-1]:
        fields = getattr(node, "model_fields", {})
        if key not in fields:
            return ""
        node = fields[key].annotation
    fields = getattr(node, "model_fields", None)
    if not fields:
        return ""
    close = difflib.get_close_matches(str(path[-1]), list(fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else " (allowed: " + ", ".join(fields) + ")"


def _describe(exc: ValidationError, yaml_tree: Mapping[str, Any], yaml_path: Path | None) -> str:
    """Return one line per bad field: path, value, what is allowed and where it came from."""
    lines = []
    secrets = set(secret_fields())
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        dotted = ".".join(str(p) for p in loc) or "(root)"
        value = error.get("input")
        if any(fnmatch.fnmatchcase(dotted, secret) for secret in secrets):
            value = MASK
        env_name = ENV_PREFIX + "__".join(str(p) for p in loc).upper()
        in_yaml, _ = _lookup(yaml_tree, loc)
        origin = ""
        if env_name in os.environ:
            origin = f" [from environment {env_name}]"
        elif in_yaml and yaml_path is not None:
            origin = f" [from {yaml_path}]"
        if error["type"] == "extra_forbidden":
            lines.append(f"{dotted}: unknown setting{_suggest(loc)}{origin}")
            continue
        shown = "" if isinstance(value, Mapping) else f" = {value!r}"
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{dotted}{shown}: {message}{origin}")
    return "\n  ".join(lines)


def load_settings(
    path: str | Path | None = None,
    *,
    env_file: str | Path | None = ".env",
    **overrides: Any,
) -> Settings:
    """Return the validated settings from `path` (or ./reinforcetrade.yaml), env vars and `.env`.

    Raises ConfigError listing every bad field, its value and what is allowed.
    """
    yaml_path: Path | None = Path(path) if path is not None else None
    if yaml_path is None and Path(DEFAULT_FILE).is_file():
        yaml_path = Path(DEFAULT_FILE)
    if yaml_path is not None and not yaml_path.is_file():
        raise ConfigError(f"config file {yaml_path} does not exist")
    tree = _read_yaml(yaml_path) if yaml_path is not None else {}
    dotenv = Path(env_file) if env_file is not None and Path(env_file).is_file() else None
    yaml_token = _YAML.set(tree)
    env_token = _DOTENV.set(dotenv)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        count = exc.error_count()
        head = f"invalid configuration: {count} bad setting{'s' if count != 1 else ''}"
        raise ConfigError(f"{head}\n  {_describe(exc, tree, yaml_path)}") from None
    finally:
        _YAML.reset(yaml_token)
        _DOTENV.reset(env_token)


def settings_schema() -> dict[str, Any]:
    """Return the JSON schema of the settings tree."""
    return Settings.model_json_schema()

"""Search spaces: which settings to tune and over what values.

Ranges are declared beside the settings they tune (`config.sections.search`), so
`SearchSpace.declared()` is a ready space, and a SPACE.yaml picks and narrows:

```yaml
tower.entry_confidence: {low: 0.5, high: 0.8, step: 0.05}
risk.stop_loss: {low: 0.02, high: 0.1, log: true}
agents.short_term.rsi_period: [7, 14, 21]      # choices
risk.take_profit: declared                      # the range declared beside the field
```
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import BaseModel

from reinforcetrade.config import Settings
from reinforcetrade.core.errors import ConfigError, UserInputError

#: grid points of a continuous range given neither step nor choices
DEFAULT_POINTS = 5
MAX_GRID = 1_000_000

Value = float | int | str | bool


@dataclass(frozen=True)
class Param:
    """One tuned setting: a range (low, high, optional step, log scale) or a list of choices."""

    path: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Value, ...] | None = None
    integer: bool = False
    points: int | None = None  # grid points of a continuous range without a step

    def __post_init__(self) -> None:
        where = f"search space: {self.path}"
        if self.choices is not None:
            if not self.choices:
                raise UserInputError(f"{where}: choices must not be empty")
            return
        if self.low is None or self.high is None:
            raise UserInputError(f"{where}: give low and high, or choices")
        if not self.low < self.high:
            raise UserInputError(f"{where}: low ({self.low}) must be below high ({self.high})")
        if self.step is not None and not self.step > 0:
            raise UserInputError(f"{where}: step must be positive, got {self.step}")
        if self.log and not self.low > 0:
            raise UserInputError(f"{where}: a log scale needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise UserInputError(f"{where}: give a step or a log scale, not both")
        if self.integer and any(
            v is not None and float(v) != int(v) for v in (self.low, self.high, self.step)
        ):
            raise UserInputError(f"{where}: an integer setting needs integer low, high and step")

    def _range(self) -> tuple[float, float]:
        """Return (low, high) of a range parameter (checked in __post_init__)."""
        if self.low is None or self.high is None:
            raise ValueError(f"{self.path} is a list of choices, not a range")
        return float(self.low), float(self.high)

    def values(self) -> tuple[Value, ...]:
        """Return the grid values: the choices, the range by its step, or evenly spaced points."""
        if self.choices is not None:
            return self.choices
        low, high = self._range()
        if self.step is not None:
            count = math.floor((high - low) / self.step + 1e-9) + 1
            raw = [low + i * self.step for i in range(count)]
        else:
            n = self.points or DEFAULT_POINTS
            space = np.geomspace if self.log else np.linspace
            raw = space(low, high, n).tolist()
        if self.integer:
            return tuple(dict.fromkeys(round(v) for v in raw))
        return tuple(round(v, 12) for v in raw)

    def distribution(self) -> BaseDistribution:
        """Return the Optuna distribution sampled by genetic, TPE and random search."""
        if self.choices is not None:
            return CategoricalDistribution(self.choices)
        low, high = self._range()
        if self.integer:
            step = int(self.step or 1)
            high = int(low) + (int(high) - int(low)) // step * step
            return IntDistribution(int(low), high, log=self.log, step=step)
        if self.step is not None:
            count = math.floor((high - low) / self.step + 1e-9)
            high = round(low + count * self.step, 12)
            return FloatDistribution(low, high, step=self.step)
        return FloatDistribution(low, high, log=self.log)

    def clean(self, value: Any) -> Value:
        """Return a sampled value as the setting takes it (ints as int, floats to 12 digits)."""
        if self.choices is not None:
            plain = value.item() if isinstance(value, np.generic) else value
            return plain  # type: ignore[no-any-return]
        if self.integer:
            return round(float(value))
        return round(float(value), 12)

    def describe(self) -> dict[str, Any]:
        """Return the parameter as plain data (for results and the report)."""
        if self.choices is not None:
            return {"path": self.path, "choices": list(self.choices)}
        spec: dict[str, Any] = {"path": self.path, "low": self.low, "high": self.high}
        if self.step is not None:
            spec["step"] = self.step
        if self.log:
            spec["log"] = True
        if self.integer:
            spec["integer"] = True
        return spec

    def normalise(self, value: Any) -> float:
        """Return where a value sits in the range, 0 to 1 (log scale if log; index for choices)."""
        if self.choices is not None:
            index = self.choices.index(value) if value in self.choices else 0
            return index / max(1, len(self.choices) - 1)
        low, high = self._range()
        if self.log:
            return math.log(float(value) / low) / math.log(high / low)
        return (float(value) - low) / (high - low)


@dataclass(frozen=True)
class SearchSpace:
    """The tuned settings, each with its range; an ordered, validated collection of `Param`."""

    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        if not self.params:
            raise UserInputError("the search space is empty: name at least one setting to tune")
        seen = [p.path for p in self.params]
        doubled = sorted({p for p in seen if seen.count(p) > 1})
        if doubled:
            raise UserInputError(f"search space: {', '.join(doubled)} given twice")

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    @property
    def paths(self) -> tuple[str, ...]:
        """Return the tuned settings' dotted paths."""
        return tuple(p.path for p in self.params)

    @classmethod
    def declared(cls, *prefixes: str) -> SearchSpace:
        """Return every setting with a declared range (those under `prefixes`, if given)."""
        found = [
            param
            for param in _declared(Settings)
            if not prefixes or any(param.path.startswith(p) for p in prefixes)
        ]
        if not found:
            raise UserInputError(f"no declared search ranges under {', '.join(prefixes)}")
        return cls(tuple(found))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, source: str = "") -> SearchSpace:
        """Return the space a mapping describes (see the module docstring), checked."""
        where = f"{source}: " if source else ""
        body = mapping.get("parameters", mapping) if isinstance(mapping, Mapping) else None
        if not isinstance(body, Mapping):
            raise UserInputError(f"{where}a search space is a mapping of setting → range")
        declared = {p.path: p for p in _declared(Settings)}
        params = []
        for path, spec in body.items():
            field = _field_info(str(path), where)
            integer = field is int
            if spec in ("declared", "default", None):
                if path not in declared:
                    raise UserInputError(f"{where}{path} has no declared range; give one")
                params.append(declared[path])
            elif isinstance(spec, list | tuple):
                params.append(Param(str(path), choices=tuple(spec), integer=integer))
            elif isinstance(spec, Mapping):
                unknown = set(spec) - {"low", "high", "step", "log", "choices", "points"}
                if unknown:
                    raise UserInputError(f"{where}{path}: unknown keys {sorted(unknown)}")
                choices = spec.get("choices")
                params.append(
                    Param(
                        str(path),
                        low=spec.get("low"),
                        high=spec.get("high"),
                        step=spec.get("step"),
                        log=bool(spec.get("log", False)),
                        choices=tuple(choices) if choices is not None else None,
                        integer=integer,
                        points=spec.get("points"),
                    )
                )
            else:
                raise UserInputError(
                    f"{where}{path}: give {{low, high[, step | log]}}, a list of choices or "
                    f"'declared', not {spec!r}"
                )
        space = cls(tuple(params))
        space.check(Settings(), where)
        return space

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        """Return the space a SPACE.yaml file describes."""
        file = Path(path)
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserInputError(f"{file}: no such search-space file") from None
        except yaml.YAMLError as exc:
            raise UserInputError(f"{file}: not valid YAML ({exc})") from None
        return cls.from_mapping(loaded or {}, source=str(file))

    def check(self, settings: Settings, where: str = "") -> None:
        """Raise a clear error if a range's ends are not valid values of its setting."""
        for param in self.params:
            ends = param.choices if param.choices is not None else (param.low, param.high)
            for value in ends:
                try:
                    settings.with_params({param.path: value})
                except ConfigError as exc:
                    if "must be shorter" in str(exc) or "cannot exceed" in str(exc):
                        continue  # a rule across fields: some combinations are invalid trials
                    raise UserInputError(
                        f"{where}{param.path}: {value!r} is refused: {exc}"
                    ) from None

    def grid(self) -> list[dict[str, Value]]:
        """Return every combination of the parameters' grid values, in a fixed order."""
        axes = [p.values() for p in self.params]
        size = math.prod(len(a) for a in axes)
        if size > MAX_GRID:
            raise UserInputError(
                f"the grid has {size:,} points (more than {MAX_GRID:,}); "
                "narrow the ranges, coarsen the steps, or use genetic or TPE search"
            )
        return [dict(zip(self.paths, combo, strict=True)) for combo in itertools.product(*axes)]

    def distributions(self) -> dict[str, BaseDistribution]:
        """Return the Optuna distributions by path."""
        return {p.path: p.distribution() for p in self.params}

    def describe(self) -> list[dict[str, Any]]:
        """Return the space as plain data."""
        return [p.describe() for p in self.params]


def _declared(model: type[BaseModel], prefix: str = "") -> Iterator[Param]:
    """Yield a `Param` for every field of the settings tree that declares a search range."""
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _declared(annotation, path + ".")
            continue
        extra = info.json_schema_extra
        spec = extra.get("search") if isinstance(extra, dict) else None
        if isinstance(spec, dict):
            choices = spec.get("choices")
            yield Param(
                path,
                low=_number(spec.get("low")),
                high=_number(spec.get("high")),
                step=_number(spec.get("step")),
                log=bool(spec.get("log", False)),
                choices=_choices(choices),
                integer=annotation is int,
            )


def _choices(value: Any) -> tuple[Value, ...] | None:
    return tuple(value) if isinstance(value, list | tuple) else None


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _field_info(path: str, where: str) -> Any:
    """Return the annotation of the setting at a dotted path, or a clear error."""
    model: type[BaseModel] = Settings
    parts = path.split(".")
    for i, name in enumerate(parts):
        fields = model.model_fields
        if name not in fields:
            import difflib

            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f"; did you mean {'.'.join([*parts[:i], close[0]])!r}?" if close else ""
            raise UserInputError(f"{where}{path!r} is not a setting{hint}")
        annotation = fields[name].annotation
        if i == len(parts) - 1:
            return annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return None  # a dict-valued setting (e.g. tower.weights.trending.trend)
    return None

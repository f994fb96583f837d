"""What the deployment tests share: the files' paths and readers of the Compose file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DEPLOY = REPO / "deploy"
ENV_EXAMPLE = DEPLOY / ".env.example"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "reinforcetrade.json"
WEB_DOC = REPO / "docs" / "web.md"

REQUIRED_VAR = re.compile(r"^\$\{([A-Z][A-Z0-9_]*):\?[^}]+\}$")  # ${VAR:?message}


def load_yaml(path: Path) -> Any:
    """Return a YAML file's content."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose() -> dict[str, Any]:
    """Return docker-compose.yml as written (nothing interpolated)."""
    return dict(load_yaml(COMPOSE))


def service(name: str) -> dict[str, Any]:
    """Return one service of docker-compose.yml."""
    return dict(compose()["services"][name])


def environment(spec: dict[str, Any]) -> dict[str, str]:
    """Return a service's environment, written as a mapping or as a list of NAME=value."""
    env = spec.get("environment") or {}
    if isinstance(env, list):
        return dict(str(item).partition("=")[::2] for item in env)
    return {str(k): str(v) for k, v in env.items()}


def volume_sources(spec: dict[str, Any]) -> dict[str, str]:
    """Return a service's bind mounts as {container path: host path} (short syntax)."""
    mounts: dict[str, str] = {}
    for entry in spec.get("volumes", []):
        source, target, *_ = str(entry).split(":")
        mounts[target] = source
    return mounts


def compose_variables(*, required_only: bool = False) -> set[str]:
    """Return the variables docker-compose.yml interpolates (only the `${VAR:?…}` ones)."""
    pattern = r"\$\{([A-Z][A-Z0-9_]*):\?" if required_only else r"\$\{([A-Z][A-Z0-9_]*)"
    lines = COMPOSE.read_text(encoding="utf-8").splitlines()
    code = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    return set(re.findall(pattern, code))

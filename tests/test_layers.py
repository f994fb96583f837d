"""DESIGN.md's one-way flow: a package imports only the packages above it in the layout table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "reinforcetrade"
ORDER = [
    "core", "config", "data", "storage", "features", "simulation", "risk", "environments",
    "agents", "ml", "strategies", "backtesting", "trading", "optimization", "reports", "web", "cli",
]  # fmt: skip
RANK = {name: i for i, name in enumerate(ORDER)}
MODULES = sorted(p for p in SRC.rglob("*.py") if p.parent != SRC)


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "reinforcetrade" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_package_has_its_place() -> None:
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(ORDER), packages - set(ORDER)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
def test_imports_point_down_the_layers(path: Path) -> None:
    own = path.relative_to(SRC).parts[0]
    upward = {pkg for pkg in _imported_packages(path) if RANK.get(pkg, -1) > RANK[own]}
    assert not upward, f"{path.relative_to(SRC)} ({own}) imports higher layers {sorted(upward)}"

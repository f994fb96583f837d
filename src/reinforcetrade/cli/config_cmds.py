"""`reinforcetrade config …`: show the effective settings and their schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reinforcetrade.cli.console import out
from reinforcetrade.cli.state import state
from reinforcetrade.config import settings_schema

config_app = typer.Typer(help="Inspect the settings tree.", no_args_is_help=True)


@config_app.command("show")
def show(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file.", dir_okay=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
) -> None:
    """Print the effective settings (file + environment + .env), secrets masked."""
    settings = state.settings(config)
    if as_json:
        out.print_json(json.dumps(settings.public_dict(), default=str))
    else:
        out.print(f"# config hash: {settings.config_hash()}", markup=False)
        out.print(settings.to_yaml(), markup=False, end="")


@config_app.command("schema")
def schema() -> None:
    """Print the JSON schema of the settings tree."""
    out.print_json(json.dumps(settings_schema()))

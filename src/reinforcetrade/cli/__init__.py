"""The `reinforcetrade` command line (typer + rich)."""

from reinforcetrade.cli.main import app, run

__all__ = ["app", "run"]

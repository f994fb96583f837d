"""Options shared by every command (`--config`, `--debug`), set once by the root callback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reinforcetrade.config import Settings, load_settings


@dataclass
class CliState:
    """What the root command was told."""

    config_path: Path | None = None
    debug: bool = False

    def settings(self, override: Path | None = None) -> Settings:
        """Return the validated settings from `override`, `--config`, or the working directory."""
        return load_settings(override or self.config_path)


state = CliState()

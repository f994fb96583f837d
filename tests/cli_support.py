"""Shared helper of the command-line tests."""

from __future__ import annotations

import pytest

from reinforcetrade.cli import run


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `reinforcetrade ARGS` in this process; return (exit code, stdout, stderr)."""
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err

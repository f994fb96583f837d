"""End to end: `reinforcetrade train`, `models list|show|promote`, `backtest --rl/--model`, demo."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli_support import cli

FAST_YAML = """\
data:
  synthetic:
    bars: 1500
rl:
  window: 8
  episode_bars: 256
  eval_every: 256
  hyperparameters:
    ppo: {n_steps: 128, batch_size: 64, n_epochs: 2}
"""


@pytest.fixture(autouse=True)
def _isolated(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    (clean_env / "reinforcetrade.yaml").write_text(FAST_YAML)


def trained_id(out: str) -> str:
    found = re.search(r"trained (\S+)", out)
    assert found, out
    return found.group(1)


def test_train_list_show_promote_and_backtest_with_the_champion(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ("train", "--synthetic", "--symbol", "BTC/USDT", "--timesteps", "256")
    code, out, err = cli(capsys, *args, "--seed", "1", "--promote")
    assert code == 0, err
    first = trained_id(out)
    assert "validation_sharpe" in out
    assert "becomes the first champion for BTC/USDT 1h" in out
    assert (tmp_path / "models" / first / "model.zip").is_file()

    code, out, _ = cli(capsys, *args, "--seed", "2")
    second = trained_id(out)
    assert second != first

    code, out, _ = cli(capsys, "models", "list")
    assert code == 0
    rows = {line.split("│")[2].strip(): line for line in out.splitlines() if "ppo-" in line}
    assert set(rows) == {first, second}
    assert "★" in rows[first]
    assert "★" not in rows[second]

    code, out, _ = cli(capsys, "models", "show", second, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == second
    assert shown["seed"] == 2
    assert shown["feature_spec"]["fingerprint"]

    code, out, _ = cli(capsys, "models", "promote", second)
    assert code == 0
    assert second in out
    assert first in out
    assert "validation_sharpe" in out

    code, out, err = cli(capsys, "backtest", "--symbol", "BTC/USDT", "--rl", "--out", "bt")
    assert code == 0, err
    assert "result written to bt" in out
    import pandas as pd

    decisions = pd.read_parquet(tmp_path / "bt" / "decisions.parquet")
    assert {"signal_rl", "confidence_rl"} <= set(decisions.columns)

    code, out, err = cli(capsys, "backtest", "--symbol", "BTC/USDT", "--model", second)
    assert code == 0, err


def test_rl_commands_without_models_exit_2_saying_what_to_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = cli(capsys, "backtest", "--rl")
    assert code == 2
    assert "no RL models in models" in err
    assert "reinforcetrade train" in err
    code, _, err = cli(capsys, "models", "show", "ppo-nothing-1h-00000000")
    assert code == 2
    assert "ppo-nothing-1h-00000000" in err
    code, _, err = cli(capsys, "train", "--algo", "td3", "--synthetic")
    assert code == 2
    assert "td3" in err
    assert "ppo, a2c, dqn, sac" in err
    code, _, err = cli(capsys, "train", "--synthetic")
    assert code == 2
    assert "several symbols (BTC/USDT, ETH/USDT); pick one with --symbol" in err
    code, _, err = cli(capsys, "train", "--exchange", "binance")
    assert code == 2
    assert "--exchange needs --symbol" in err


def test_train_on_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = cli(capsys, "data", "generate", "--bars", "1200", "--out", "data")
    assert code == 0
    files = sorted((tmp_path / "data").iterdir())
    code, out, err = cli(capsys, "train", "--data", str(files[0]), "--timesteps", "128")
    assert code == 0, err
    assert "trained ppo-" in out

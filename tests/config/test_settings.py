"""The settings tree: promised defaults, sources and precedence, secrets, one message for all errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from reinforcetrade.config import Settings, load_settings, secret_fields, settings_schema
from reinforcetrade.core.errors import ConfigError

SECTIONS = {
    "data", "agents", "tower", "risk", "costs", "backtest", "rl", "optimization", "retrain", "routing",
    "execution", "trading",
    "storage", "web", "alerts",
}  # fmt: skip


@pytest.fixture(autouse=True)
def _isolated(clean_env: Path) -> None:
    """Run every test in an empty folder with no RT_ variables set."""


def test_sections_are_all_there() -> None:
    assert set(Settings.model_fields) == SECTIONS


def test_promised_thresholds_have_their_defaults() -> None:
    s = load_settings()
    assert s.tower.entry_confidence == 0.60
    assert (s.tower.consensus_agents, s.tower.signal_agents) == (2, 3)
    assert s.risk.stop_loss == 0.05
    assert s.risk.stop_loss_high_volatility == 0.075
    assert s.risk.take_profit == 0.10
    assert s.risk.max_trade_fraction == 0.10
    assert s.risk.max_symbol_exposure == 0.20
    assert s.risk.loss_streak_limit == 3
    assert s.risk.max_drawdown_halt == 0.20
    assert s.risk.circuit_breaker is True
    assert s.web.host == "127.0.0.1"


def test_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValidationError):
        s.risk.stop_loss = 0.5  # type: ignore[misc]


def test_yaml_file_env_and_dotenv_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "reinforcetrade.yaml").write_text(
        "risk:\n  stop_loss: 0.03\n  take_profit: 0.2\ntower:\n  entry_confidence: 0.7\n"
    )
    (tmp_path / ".env").write_text("RT_RISK__TAKE_PROFIT=0.15\nUNRELATED=1\n")
    monkeypatch.setenv("RT_TOWER__ENTRY_CONFIDENCE", "0.8")
    s = load_settings()  # ./reinforcetrade.yaml is picked up by default
    assert s.risk.stop_loss == 0.03  # from the file
    assert s.risk.take_profit == 0.15  # .env beats the file
    assert s.tower.entry_confidence == 0.8  # the environment beats .env
    assert load_settings(risk={"stop_loss": 0.01}).risk.stop_loss == 0.01  # arguments beat all


def test_explicit_config_path(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("backtest:\n  initial_cash: 5000\n")
    assert load_settings(path).backtest.initial_cash == 5000
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")


def test_env_var_sets_exchange_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RT_TRADING__API_KEY", "key-123")
    monkeypatch.setenv("RT_TRADING__API_SECRET", "sec-456")
    s = load_settings()
    assert s.trading.api_key is not None
    assert s.trading.api_key.get_secret_value() == "key-123"


def test_secrets_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RT_TRADING__API_KEY", "key-123")
    monkeypatch.setenv("RT_WEB__PASSWORD", "hunter2")
    s = load_settings()
    for text in (s.to_yaml(), json.dumps(s.public_dict()), repr(s), str(s)):
        assert "key-123" not in text
        assert "hunter2" not in text
    assert s.public_dict()["trading"]["api_key"] == "**********"
    assert s.public_dict()["trading"]["api_secret"] is None  # unset stays visibly unset


def test_hash_is_stable_and_ignores_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    base = load_settings().config_hash()
    assert base == load_settings().config_hash()
    monkeypatch.setenv("RT_TRADING__API_KEY", "one")
    with_key = load_settings().config_hash()
    monkeypatch.setenv("RT_TRADING__API_KEY", "two")
    assert load_settings().config_hash() == with_key
    assert load_settings(risk={"stop_loss": 0.04}).config_hash() != base


def test_one_message_lists_every_bad_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "risk:\n  stop_loss: 1.5\n  max_trade_fration: 0.2\n"
        "tower:\n  entry_confidence: 2\n"
        "data:\n  timeframe: 7x\n  gap_policy: ignore\n"
        "trading:\n  api_secret: [1, 2]\n"
    )
    monkeypatch.setenv("RT_BACKTEST__INITIAL_CASH", "-5")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    text = str(caught.value)
    assert text.startswith("invalid configuration: 7 bad settings")
    expected = [
        "risk.stop_loss = 1.5: Input should be less than 1 [from",
        "risk.max_trade_fration: unknown setting (did you mean 'max_trade_fraction'?)",
        "tower.entry_confidence = 2: Input should be less than or equal to 1",
        "data.timeframe = '7x': timeframe '7x' is not understood",
        "data.gap_policy = 'ignore': Input should be 'raise', 'keep' or 'fill'",
        "backtest.initial_cash = '-5': Input should be greater than 0 [from environment RT_BACKTEST__INITIAL_CASH]",
        "trading.api_secret = '**********'",
    ]
    for line in expected:
        assert line in text, line
    assert "[1, 2]" not in text  # even a bad secret's value is never printed


def test_cross_field_rules() -> None:
    with pytest.raises(ConfigError, match=r"fast_ma .* must be shorter than slow_ma"):
        load_settings(agents={"trend": {"fast_ma": 200, "slow_ma": 50}})
    with pytest.raises(ConfigError, match=r"consensus_agents .* cannot exceed"):
        load_settings(tower={"consensus_agents": 4})
    with pytest.raises(ConfigError, match="weights for 'ranging' must be non-negative"):
        load_settings(tower={"weights": {"ranging": {"trend": -1.0}}})


def test_bad_yaml_is_located(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("risk:\n  stop_loss: [0.1\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML at line \d+"):
        load_settings(path)
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(path)


def test_unknown_prefixed_dotenv_entry_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RT_RISK__STOP_LOS=0.03\n")
    with pytest.raises(ConfigError, match="did you mean 'stop_loss'"):
        load_settings()


def test_secret_fields_are_found() -> None:
    found = set(secret_fields())
    assert {
        "trading.api_key",
        "trading.api_secret",
        "web.password",
        "alerts.smtp_password",
    } <= found
    assert "trading.exchange" not in found
    assert "routing.venues.*.api_secret" in found  # a venue's keys, whatever its name


def test_a_bad_venue_secret_is_never_printed() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(routing={"venues": {"kraken": {"broker": "ccxt:kraken",
                                                     "api_secret": ["s3cr3t-value"]}}})  # fmt: skip
    text = str(caught.value)
    assert "routing.venues.kraken.api_secret = '**********'" in text
    assert "s3cr3t-value" not in text


def test_schema_is_json_with_every_section() -> None:
    schema = settings_schema()
    json.dumps(schema)
    assert SECTIONS <= set(schema["properties"])


def test_env_example_documents_every_secret() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for dotted in secret_fields():
        name = "RT_" + dotted.replace(".", "__").upper()
        assert name in example, name

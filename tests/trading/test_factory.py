"""`BrokerFactory`: the configured venue, or one clear error naming the missing setting."""

from __future__ import annotations

import pytest

from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.trading.ccxt_broker import CcxtBroker
from reinforcetrade.trading.factory import BrokerFactory
from reinforcetrade.trading.paper import PaperBroker
from reinforcetrade.trading.venues import RoutedBroker


def test_the_default_venue_is_paper() -> None:
    assert isinstance(BrokerFactory(Settings()).build(), PaperBroker)


def test_a_ccxt_venue_needs_its_keys_from_the_settings() -> None:
    with pytest.raises(UserInputError, match=r"trading\.api_key and trading\.api_secret"):
        BrokerFactory(Settings()).build("ccxt:binance")
    keys = {"api_key": "k-123456", "api_secret": "s-123456", "broker": "ccxt:kraken"}
    broker = BrokerFactory(Settings(trading=keys)).build()
    assert isinstance(broker, CcxtBroker)
    assert broker.name == "kraken"
    assert broker.exchange.apiKey == "k-123456"
    with pytest.raises(UserInputError, match="not-an-exchange"):
        BrokerFactory(Settings(trading=keys)).build("ccxt:not-an-exchange")


def test_oanda_names_what_is_missing_and_unknown_venues_are_refused() -> None:
    with pytest.raises(UserInputError, match=r"trading\.oanda_account_id and trading\.oanda_token"):
        BrokerFactory(Settings()).build("oanda")
    with pytest.raises(UserInputError, match=r"trading\.oanda_token"):
        BrokerFactory(Settings(trading={"oanda_account_id": "101-1"})).build("oanda")
    with pytest.raises(UserInputError, match="not a venue"):
        BrokerFactory(Settings()).build("nyse")
    ib = BrokerFactory(Settings(trading={"ib_port": 4002, "ib_client_id": 3})).build("ib")
    assert ib.name == "ib"  # connects on its first call, not here


def test_routed_builds_each_venue_with_its_own_keys_and_fee() -> None:
    venues = {
        "fast": {"broker": "ccxt:binance", "api_key": "k-a-1234", "api_secret": "s-a-1234",
                 "fee_bps": 2.5},
        "slow": {"broker": "ccxt:kraken", "api_key": "k-b-1234", "api_secret": "s-b-1234"},
    }  # fmt: skip
    settings = Settings(trading={"broker": "routed"}, routing={"venues": venues})
    broker = BrokerFactory(settings).build()
    assert isinstance(broker, RoutedBroker)
    assert broker.name == "routed:fast,slow"
    fast, slow = broker.venues["fast"], broker.venues["slow"]
    assert isinstance(fast, CcxtBroker)
    assert isinstance(slow, CcxtBroker)
    assert (fast.exchange.id, fast.exchange.apiKey, fast.fee_bps) == ("binance", "k-a-1234", 2.5)
    assert (slow.exchange.id, slow.exchange.apiKey, slow.fee_bps) == ("kraken", "k-b-1234", None)
    assert "k-a-1234" not in str(settings.public_dict())  # venue keys are secrets too


def test_routed_names_what_is_missing() -> None:
    with pytest.raises(UserInputError, match=r"routing\.venues"):
        BrokerFactory(Settings()).build("routed")
    keyless = Settings(routing={"venues": {"a": {"broker": "ccxt:binance"}}})
    with pytest.raises(UserInputError, match=r"routing\.venues\.a\.api_key"):
        BrokerFactory(keyless).build("routed")
    oanda = Settings(routing={"venues": {"fx": {"broker": "oanda"}}})
    with pytest.raises(UserInputError, match=r"routing\.venues\.fx\.broker 'oanda'"):
        BrokerFactory(oanda).build("routed")

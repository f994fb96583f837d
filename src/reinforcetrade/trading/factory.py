"""`BrokerFactory`: the venue adapter the config names, built with its credentials.

`trading.broker` (or the name given) picks it: ``paper`` (the shared simulator),
``ccxt:<exchange>`` (any ccxt exchange: `trading.api_key`, `api_secret`, `api_password`),
``oanda`` (`trading.oanda_account_id`, `oanda_token`, `oanda_environment`) or ``ib``
(Interactive Brokers through TWS / IB Gateway at `trading.ib_host`:`ib_port`, `ib_client_id`,
`ib_account`). A missing or
wrong setting is one clear error naming it; credentials come only from secret settings.
"""

from __future__ import annotations

from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.trading.broker import Broker

VENUES = ("paper", "ccxt:<exchange>", "oanda", "ib")


class BrokerFactory:
    """Builds brokers from one set of settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def build(self, name: str | None = None) -> Broker:
        """Return the broker named (default `trading.broker`)."""
        wanted = (name or self.settings.trading.broker).strip()
        if wanted == "paper":
            from reinforcetrade.trading.paper import PaperBroker

            return PaperBroker()
        if wanted.startswith("ccxt:") and wanted[5:]:
            return self.ccxt(wanted[5:])
        if wanted == "oanda":
            return self.oanda()
        if wanted == "ib":
            return self.ib()
        raise UserInputError(
            f"trading.broker {wanted!r} is not a venue; use one of {', '.join(VENUES)}"
        )

    def ccxt(self, exchange: str) -> Broker:
        """Return a ccxt exchange's broker with `trading.api_key`/`api_secret` (required)."""
        from reinforcetrade.data.history import build_exchange
        from reinforcetrade.trading.ccxt_broker import CcxtBroker

        cfg = self.settings.trading
        if cfg.api_key is None or cfg.api_secret is None:
            raise UserInputError(
                f"trading.broker ccxt:{exchange} needs trading.api_key and trading.api_secret in "
                "the config (or RT_TRADING__API_KEY / RT_TRADING__API_SECRET in the environment)"
            )
        keys = {
            "apiKey": cfg.api_key.get_secret_value(),
            "secret": cfg.api_secret.get_secret_value(),
        }
        if cfg.api_password is not None:
            keys["password"] = cfg.api_password.get_secret_value()
        venue = build_exchange(self.settings.data, exchange, keys)
        if cfg.sandbox:
            venue.set_sandbox_mode(True)
        return CcxtBroker(venue)

    def oanda(self) -> Broker:
        """Return the OANDA v20 broker (`trading.oanda_account_id` and `oanda_token` required)."""
        cfg = self.settings.trading
        missing = [
            f"trading.{name}"
            for name, value in (
                ("oanda_account_id", cfg.oanda_account_id),
                ("oanda_token", cfg.oanda_token),
            )
            if not value
        ]
        if missing or cfg.oanda_token is None or cfg.oanda_account_id is None:
            raise UserInputError(f"trading.broker oanda needs {' and '.join(missing)}")
        from reinforcetrade.trading.oanda import OandaBroker

        return OandaBroker(
            cfg.oanda_account_id,
            cfg.oanda_token,
            environment=cfg.oanda_environment,
            base_url=cfg.oanda_api_url,
            stream_url=cfg.oanda_stream_url,
        )

    def ib(self) -> Broker:
        """Return the Interactive Brokers broker (TWS / IB Gateway at `ib_host`:`ib_port`)."""
        from reinforcetrade.trading.ib import IbBroker

        cfg = self.settings.trading
        return IbBroker(cfg.ib_host, cfg.ib_port, cfg.ib_client_id, account=cfg.ib_account)

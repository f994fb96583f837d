"""`BrokerFactory`: the venue adapter the config names, built with its credentials.

`trading.broker` (or the name given) picks it: ``paper`` (the shared simulator),
``ccxt:<exchange>`` (any ccxt exchange: `trading.api_key`, `api_secret`, `api_password`),
``oanda`` (`trading.oanda_account_id`, `oanda_token`, `oanda_environment`) or ``ib``
(Interactive Brokers through TWS / IB Gateway at `trading.ib_host`:`ib_port`, `ib_client_id`,
`ib_account`), or ``routed``: several ccxt venues (`routing.venues`, each with its own
credentials and optional `fee_bps`) behind the Execution Agent's router. A missing or
wrong setting is one clear error naming it; credentials come only from secret settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reinforcetrade.config import Settings
from reinforcetrade.config.sections import VenueConfig
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.trading.broker import Broker

if TYPE_CHECKING:
    from reinforcetrade.trading.ccxt_broker import CcxtBroker

VENUES = ("paper", "ccxt:<exchange>", "oanda", "ib", "routed")


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
        if wanted == "routed":
            return self.routed()
        raise UserInputError(
            f"trading.broker {wanted!r} is not a venue; use one of {', '.join(VENUES)}"
        )

    def ccxt(
        self, exchange: str, venue: VenueConfig | None = None, name: str | None = None
    ) -> CcxtBroker:
        """Return a ccxt exchange's broker with `trading.api_key`/`api_secret` (required).

        With `venue` (one of `routing.venues`, named `name`), its own credentials and fee.
        """
        from reinforcetrade.data.history import build_exchange
        from reinforcetrade.trading.ccxt_broker import CcxtBroker

        cfg = venue or self.settings.trading
        where = "trading" if venue is None else f"routing.venues.{name}"
        if cfg.api_key is None or cfg.api_secret is None:
            env = "RT_" + where.replace(".", "__").upper()
            raise UserInputError(
                f"{where}.broker ccxt:{exchange} needs {where}.api_key and {where}.api_secret in "
                f"the config (or {env}__API_KEY / {env}__API_SECRET in the environment)"
            )
        keys = {
            "apiKey": cfg.api_key.get_secret_value(),
            "secret": cfg.api_secret.get_secret_value(),
        }
        if cfg.api_password is not None:
            keys["password"] = cfg.api_password.get_secret_value()
        data = self.settings.data
        if venue is not None and venue.api_urls:
            data = data.model_copy(update={"api_urls": venue.api_urls})
        client = build_exchange(data, exchange, keys)
        if cfg.sandbox:
            client.set_sandbox_mode(True)
        return CcxtBroker(client, name=name, fee_bps=None if venue is None else venue.fee_bps)

    def routed(self) -> Broker:
        """Return the venues of `routing.venues` behind the Execution Agent's router."""
        from reinforcetrade.agents.execution import Router
        from reinforcetrade.trading.venues import RoutedBroker

        routing = self.settings.routing
        if not routing.venues:
            raise UserInputError(
                "trading.broker routed needs routing.venues: one entry per venue, e.g. "
                "routing.venues.binance.broker: ccxt:binance (with its api_key and api_secret)"
            )
        venues = []
        for name, venue in routing.venues.items():
            kind = venue.broker.strip()
            if not (kind.startswith("ccxt:") and kind[5:]):
                raise UserInputError(
                    f"routing.venues.{name}.broker {kind!r}: only ccxt:<exchange> venues can be "
                    "routed across (the router reads their order books)"
                )
            venues.append(self.ccxt(kind[5:], venue, name))
        return RoutedBroker(venues, Router(routing), stale_quote_s=routing.stale_quote_s)

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

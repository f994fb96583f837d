"""`reinforcetrade serve`: the web API and dashboard, with the engine or over the journal alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from reinforcetrade.cli.console import out
from reinforcetrade.cli.state import state
from reinforcetrade.cli.trade_cmds import (
    BrokerOpt,
    ConfigOpt,
    ExchangeOpt,
    JournalOpt,
    LiveOpt,
    MaxBarsOpt,
    ModelOpt,
    NameOpt,
    PaperOpt,
    ReplayOpt,
    RlOpt,
    SpeedOpt,
    SymbolOpt,
    TimeframeOpt,
    trade_parts,
)
from reinforcetrade.core.errors import UserInputError

serve_app = typer.Typer(
    help="The web API, WebSocket stream and dashboard (see docs/web.md).",
    invoke_without_command=True,
    no_args_is_help=False,
)


@serve_app.callback()
def serve(
    ctx: typer.Context,
    paper: PaperOpt = False,
    live: LiveOpt = False,
    replay: ReplayOpt = None,
    speed: SpeedOpt = "max",
    exchange: ExchangeOpt = None,
    broker_name: BrokerOpt = None,
    symbol: SymbolOpt = None,
    timeframe: TimeframeOpt = None,
    name: NameOpt = None,
    journal: JournalOpt = None,
    max_bars: MaxBarsOpt = None,
    config: ConfigOpt = None,
    rl: RlOpt = False,
    model: ModelOpt = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default: web.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65_535, help="Port (default: web.port).")
    ] = None,
    allow_public_bind: Annotated[
        bool,
        typer.Option("--allow-public-bind", help="Allow binding a non-loopback address."),
    ] = False,
    idle: Annotated[
        bool, typer.Option("--idle", help="Build the engine but wait for a start from the API.")
    ] = False,
) -> None:
    """Serve the API and dashboard; with --paper or --live also run the engine.

    Without trading options it serves the journal alone (read-only). The settings must name a
    user with a strong password (web.password_hash or RT_WEB__PASSWORD) and a token secret;
    the server refuses weak ones. Ctrl-C or SIGTERM stops the engine, then the server.
    """
    if ctx.invoked_subcommand is not None:
        return
    from reinforcetrade.storage import Journal
    from reinforcetrade.trading.alerts import AlertRouter
    from reinforcetrade.trading.engine import LiveEngine, Mode, journal_url
    from reinforcetrade.trading.monitor import TradeMonitor
    from reinforcetrade.web.server import WebServer

    settings = state.settings(config)
    cfg = settings.web
    if allow_public_bind:
        cfg = cfg.model_copy(update={"allow_public_bind": True})
    trading = paper or live or bool(replay or exchange or broker_name)
    mode: Mode = "live" if live else "paper"
    url = journal or journal_url(settings, mode)

    def build(book: Journal, observer: Any) -> LiveEngine:
        mode_, feed, strategy, broker = trade_parts(
            settings, paper, live, replay, speed, exchange, broker_name, symbol, timeframe, rl,
            model,
        )  # fmt: skip
        return LiveEngine(strategy, feed, broker, book, mode=mode_, name=name or mode_,
                          observer=observer)  # fmt: skip

    router = AlertRouter.from_settings(settings.alerts)
    monitor = TradeMonitor(router.publish, name=name or mode)
    with router, Journal(url, password=settings.storage.password) as book:
        server = WebServer.build(
            cfg, book, builder=build if trading else None, journal_url=url,
            journal_password=settings.storage.password, bind=host, port=port,
            max_bars=max_bars, also=monitor,
        )  # fmt: skip
        if trading and not idle:
            status = server.host.start()
            out.print(f"{mode} engine running as run {status['run_id']} of {book.name}",
                      markup=False)  # fmt: skip
        elif not trading:
            out.print(f"serving the journal {book.name} (no engine: read-only)", markup=False)
        out.print(f"dashboard and API on {server.url} (Ctrl-C stops)", markup=False)
        server.serve()
        router.flush(timeout=10.0)
    summary = server.host.summary
    if summary is not None:
        out.print(f"engine stopped: {summary.stopped} after {summary.bars:,} bars", markup=False)


@serve_app.command("hash-password")
def hash_password_cmd(
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Print an scrypt hash of a password for web.password_hash (RT_WEB__PASSWORD_HASH)."""
    from reinforcetrade.web.auth import MIN_PASSWORD, hash_password

    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise UserInputError(f"the password is shorter than {MIN_PASSWORD} characters")
    print(hash_password(password))


@serve_app.command("openapi")
def openapi_cmd(
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file.", dir_okay=False)
    ] = None,
) -> None:
    """Print (or write) the API's OpenAPI schema without starting a server."""
    from reinforcetrade.web.app import openapi_schema

    text = json.dumps(openapi_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        print(text, end="")
    else:
        from reinforcetrade.core.files import atomic_write_bytes

        atomic_write_bytes(output, text.encode())
        out.print(f"OpenAPI schema written to {output}", markup=False)

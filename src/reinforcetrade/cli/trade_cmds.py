"""`reinforcetrade trade`: paper trading on replayed or exchange bars, and `trade resume`."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from reinforcetrade.cli.backtest_cmd import load_backtest_data
from reinforcetrade.cli.console import out
from reinforcetrade.cli.state import state
from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.formatting import figure
from reinforcetrade.strategies import MultiAgentStrategy

if TYPE_CHECKING:
    from reinforcetrade.trading.engine import Mode

trade_app = typer.Typer(
    help="Paper and live trading: the backtester's agents on bars as they close.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _feed(
    settings: Settings,
    replay: list[Path] | None,
    speed: str,
    exchange: str | None,
    symbols: list[str] | None,
    timeframe: str | None,
    venue_broker: Any = None,
) -> object:
    """Return the bar feed the options ask for (the bundled synthetic market by default).

    `venue_broker`: an OANDA or IB broker whose closed bars to trade on.
    """
    from reinforcetrade.trading.feeds import (
        CcxtPollingFeed,
        CcxtStreamFeed,
        ChainFeed,
        ReplayFeed,
        parse_speed,
    )

    if replay and (exchange or venue_broker is not None):
        raise UserInputError("give either --replay FILE or a venue's bars, not both")
    if venue_broker is not None:  # the venue's closed bars, from `history_bars` back
        cfg = settings.trading
        tf = timeframe or cfg.timeframe
        step = pd.Timedelta(tf).value
        start = (pd.Timestamp.now(tz="UTC").value // step - cfg.history_bars) * step
        wanted = tuple(symbols or cfg.symbols)
        if venue_broker.name == "ib":
            from reinforcetrade.trading.ib_feeds import IbBarFeed

            return IbBarFeed(venue_broker, wanted, tf, start_ns=start,
                             poll_seconds=cfg.poll_seconds)  # fmt: skip
        from reinforcetrade.trading.oanda_feeds import OandaCandleFeed

        return OandaCandleFeed(venue_broker, wanted, tf, start_ns=start,
                               poll_seconds=cfg.poll_seconds)  # fmt: skip
    if exchange:
        from reinforcetrade.data.history import CcxtHistory

        cfg = settings.trading
        tf = timeframe or cfg.timeframe
        wanted = tuple(symbols or cfg.symbols)
        history = CcxtHistory(settings.data)
        venue = history.exchange(exchange)
        step = pd.Timedelta(tf).value
        start = (pd.Timestamp.now(tz="UTC").value // step - cfg.history_bars) * step
        if cfg.feed == "stream":  # the history over REST first, then the websocket's bars
            import ccxt.pro

            frames = {
                s: history.fetch(
                    s, timeframe=tf, since=start // 1_000_000, limit=None, exchange=venue
                )
                for s in wanted
            }
            resume = max(int(f.index[-1].value) for f in frames.values() if len(f)) + step
            streamer = getattr(ccxt.pro, exchange)({"urls": venue.urls})
            return ChainFeed(
                ReplayFeed(frames), CcxtStreamFeed(streamer, wanted, tf, start_ns=resume)
            )
        return CcxtPollingFeed(
            history, venue, wanted, tf, start_ns=start, poll_seconds=cfg.poll_seconds
        )
    one = symbols[0] if symbols and len(symbols) == 1 else None
    frames = load_backtest_data(settings, replay, not replay, one, timeframe, None, None)
    return ReplayFeed(frames, speed=parse_speed(speed))


def trade_parts(
    settings: Settings,
    paper: bool,
    live: bool,
    replay: list[Path] | None,
    speed: str,
    exchange: str | None,
    broker_name: str | None,
    symbol: list[str] | None,
    timeframe: str | None,
    rl: bool,
    model: str | None,
) -> tuple[Mode, Any, MultiAgentStrategy, Any]:
    """Return the mode, feed, strategy and broker the trading options ask for."""
    from reinforcetrade.trading.factory import BrokerFactory
    from reinforcetrade.trading.paper import PaperBroker

    if paper and live:
        raise UserInputError("give --paper or --live, not both")
    mode: Mode = "live" if live else "paper"
    venue = broker_name or settings.trading.broker
    if venue.startswith("ccxt:"):
        exchange = exchange or venue[5:]
    elif venue == "routed":
        exchange = exchange or settings.trading.exchange  # where the bars come from
    elif exchange:
        venue = f"ccxt:{exchange}"
    if live and (replay or venue == "paper"):
        raise UserInputError(
            "--live trades a venue's bars: give --exchange NAME or --broker ccxt:NAME|oanda"
        )
    if replay and venue != "paper" and not live:
        venue = "paper"  # a replay's bars, the simulator's fills
    factory = BrokerFactory(settings)
    venue_broker = factory.build(venue) if venue in ("oanda", "ib") and not replay else None
    feed = _feed(settings, replay, speed, exchange, symbol, timeframe, venue_broker)
    strategy = MultiAgentStrategy(use_rl=rl, model=model, settings=settings)
    broker = (venue_broker or factory.build(venue)) if live else PaperBroker()
    return mode, feed, strategy, broker


# the options `trade` and `serve` share
PaperOpt = Annotated[
    bool, typer.Option("--paper", help="Paper trading: the simulator fills (the default).")
]
LiveOpt = Annotated[
    bool,
    typer.Option("--live", help="Real orders on --exchange with the config's keys (explicit)."),
]
ReplayOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--replay", help="Play this OHLCV file's bars (repeat for symbols).", dir_okay=False
    ),
]
SpeedOpt = Annotated[str, typer.Option("--speed", help="Replay speed: 100x, 1x … or max.")]
ExchangeOpt = Annotated[
    str | None, typer.Option("--exchange", "-e", help="Trade this ccxt exchange's bars.")
]
BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker",
        help="Venue: paper, ccxt:<exchange>, oanda, ib, or routed (routing.venues, bars from "
        "trading.exchange) (default: trading.broker); ccxt:X is --exchange X. With --paper "
        "only its bars are used.",
    ),
]
SymbolOpt = Annotated[
    list[str] | None, typer.Option("--symbol", "-s", help="Symbol (repeat for several).")
]
TimeframeOpt = Annotated[
    str | None, typer.Option("--timeframe", "-t", help="Bar length (exchange feeds).")
]
NameOpt = Annotated[
    str | None, typer.Option("--name", help="Session name (its risk state follows it).")
]
JournalOpt = Annotated[
    str | None, typer.Option("--journal", help="Journal URL (default: per mode).")
]
MaxBarsOpt = Annotated[
    int | None, typer.Option("--max-bars", min=1, help="Stop after this many bars.")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file.", dir_okay=False)
]
RlOpt = Annotated[bool, typer.Option("--rl", help="Add the registry's champion RL agent.")]
ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="Add this registered RL model.")
]


@trade_app.callback()
def trade(
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
) -> None:
    """Trade the multi-agent strategy on closed bars; Ctrl-C or SIGTERM stops it cleanly.

    With no feed option it replays the bundled synthetic market. Entries stop first, open entry
    orders follow `trading.open_orders_on_stop`, and everything is in the journal.
    """
    if ctx.invoked_subcommand is not None:
        return
    from reinforcetrade.storage import Journal
    from reinforcetrade.trading.alerts import AlertRouter
    from reinforcetrade.trading.engine import LiveEngine, journal_url
    from reinforcetrade.trading.monitor import TradeMonitor

    settings = state.settings(config)
    mode, feed, strategy, broker = trade_parts(
        settings, paper, live, replay, speed, exchange, broker_name, symbol, timeframe, rl, model
    )
    url = journal or journal_url(settings, mode)
    router = AlertRouter.from_settings(settings.alerts)
    monitor = TradeMonitor(router.publish, name=name or mode)
    with router, Journal(url, password=settings.storage.password) as book:
        engine = LiveEngine(
            strategy, feed, broker, book, mode=mode, name=name or mode, observer=monitor
        )
        run_id = engine.start()
        out.print(f"{mode} trading as run {run_id} of {book.name} (Ctrl-C stops)", markup=False)
        summary = engine.run(max_bars=max_bars)
        where = book.name
        router.flush(timeout=10.0)
    table = Table(title=f"{mode} session {run_id}")
    table.add_column("")
    table.add_column("value", justify="right")
    lat = summary.latencies_ms
    for label, value in (
        ("bars", f"{summary.bars:,}"),
        ("decisions", f"{summary.decisions:,}"),
        ("orders", f"{summary.orders:,}"),
        ("fills", f"{summary.fills:,}"),
        ("risk state", summary.state),
        ("alerts", f"{len(summary.alerts):,}"),
        ("stopped by", summary.stopped),
        ("latency p50", f"{figure(float(pd.Series(lat).quantile(0.5)), 'fixed')} ms"),
        ("latency p99", f"{figure(float(pd.Series(lat).quantile(0.99)), 'fixed')} ms"),
    ):
        table.add_row(label, value)
    out.print(table)
    out.print(f"journal: {where} (run {run_id})", markup=False)


@trade_app.command("resume")
def resume(
    name: Annotated[str, typer.Option("--name", help="The halted session's name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why trading may resume (recorded).")],
    live: Annotated[bool, typer.Option("--live", help="A live session (default: paper).")] = False,
    journal: Annotated[
        str | None, typer.Option("--journal", help="Journal URL (default: per mode).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file.", dir_okay=False)
    ] = None,
) -> None:
    """Lift a session's HALTED risk state: an explicit, recorded command."""
    from reinforcetrade.storage import Journal
    from reinforcetrade.trading.engine import LiveEngine, journal_url

    settings = state.settings(config)
    mode: Mode = "live" if live else "paper"
    with Journal(journal or journal_url(settings, mode), password=settings.storage.password) as j:
        event = LiveEngine.resume(j, name, reason=reason, actor=getpass.getuser(), mode=mode)
    out.print(f"{name!r} may trade again (risk event {event}); restart it to resume", markup=False)


alerts_app = typer.Typer(help="Alert channels (settings: alerts.*).", no_args_is_help=True)


@alerts_app.command("test")
def alerts_test(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file.", dir_okay=False)
    ] = None,
) -> None:
    """Send a test alert through every configured channel; exit 1 if any fails."""
    from reinforcetrade.trading.alerts import AlertRouter, send_test_alert

    settings = state.settings(config)
    if not settings.alerts.enabled:
        raise UserInputError("alerts are off: set alerts.enabled: true and alerts.channels")
    with AlertRouter.from_settings(settings.alerts) as router:
        results = send_test_alert(router)
    table = Table(title="test alert")
    table.add_column("channel")
    table.add_column("result")
    for channel, result in results.items():
        table.add_row(channel, result)
    out.print(table)
    if any(result != "ok" for result in results.values()):
        raise typer.Exit(1)

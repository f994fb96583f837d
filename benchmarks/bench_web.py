"""Benchmark the web server under load: WebSocket fan-out and REST at once; prints one JSON line.

The server is the one `reinforcetrade serve --paper` runs (uvicorn on 127.0.0.1, one process, a
paper engine on its own thread, a SQLite journal in a temporary folder). Its feed replays the
synthetic market (seed 4): the first 860 bars as fast as they come (so the journal has history to
serve), then it holds while the clients connect, then delivers one bar every 100 ms (10 Hz) for
`--seconds`, then holds again. Each bar sends several hub messages to every client: the bar, the
equity, the positions, its decisions, and orders and fills when it trades.

The load runs in two other processes so that it does not share the server's interpreter (and
GIL): 100 WebSocket clients (`websockets`, asyncio; each draws its own one-time ticket with a
token and sends it as its first message), and an open-loop REST generator (a lean HTTP/1.1
client on 64 keep-alive connections: httpx would spend more CPU than the server) issuing 200
requests/s round-robin over GET /status, /positions, /orders, /decisions?limit=20 and
/equity?limit=500. Both run on uvloop when it is installed, as uvicorn does. `--seconds`,
`--clients` and `--rest-rps` change the load (e.g. `--rest-rps 0` for the WebSocket side alone).

- WebSocket latency: receive time minus the message's `time` field (when the engine emitted the
  event, wall clock), for every message every client receives.
- Dropped: the hub's count of messages published during the window (the feed holds before and
  after it, so the count is exact) times the clients, minus what they received once the late
  ones are in (`ws_drain_s`: how long that took after the last bar; None: not within 60 s);
  also the server's own count, `rt_ws_dropped_total` from /metrics.
- REST latency: from when the request was due (open loop: the schedule does not wait for
  answers, so a stall shows as latency) to the answer's last byte; errors are non-200 answers
  and failed requests. `rest_server_p50/p99_ms_le`: the same quantiles inside the server, from
  its own `rt_api_request_seconds` histogram (the upper bound of the bucket; None: > 2.5 s).
- `cpu_s_in_window`: CPU seconds each process spent during the window (the server's is bound
  to about one core by the GIL); `server_exceptions`: tracebacks uvicorn logged, by type.

Targets: no message dropped, no REST error, WebSocket and REST p99 ≤ 100 ms (`meets_target`).
Missing them is reported, not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing as mp
import os
import platform
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import machine  # benchmarks/common.py

T = TypeVar("T")
WARM = 860  # bars replayed before the clients connect (the position opens on bar 865)
CLIENTS = 100
RATE_HZ = 10.0
REST_RPS = 200.0
TARGET_P99_MS = 100.0
DRAIN = 60.0  # seconds the clients may take, after the last bar, to receive what is in flight
CONNECTIONS = 64  # keep-alive connections of the REST load
REST_PATHS = (
    "/api/v1/status",
    "/api/v1/positions",
    "/api/v1/orders",
    "/api/v1/decisions?limit=20",
    "/api/v1/equity?limit=500",
)


class PacedFeed:
    """A replay that plays `warm` bars at once, then one per 1/hz seconds while let go."""

    realtime = False

    def __init__(self, frames: Mapping[str, Any], warm: int, hz: float) -> None:
        from reinforcetrade.trading.feeds import ReplayFeed

        self.replay = ReplayFeed(frames)
        self.warm, self.period = warm, 1.0 / hz
        self.delivered = 0
        self._going = threading.Event()
        self._due = 0.0

    symbols = property(lambda self: self.replay.symbols)
    timeframe = property(lambda self: self.replay.timeframe)
    finished = property(lambda self: self.replay.finished)

    def go(self) -> None:
        """Deliver a bar now and one every period from here."""
        self._due = time.monotonic()
        self._going.set()

    def hold(self) -> None:
        """Deliver nothing more (after the bar in hand)."""
        self._going.clear()

    def next_bars(self, timeout: float) -> Any:
        if self.delivered >= self.warm:
            if not self._going.wait(min(timeout, 0.05)):
                return None
            wait = self._due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not self._going.is_set():
                return None
            self._due += self.period
        bars = self.replay.next_bars(timeout)
        if bars is not None:
            self.delivered += 1
        return bars

    def close(self) -> None:
        self.replay.close()


# -- the clients (run in their own processes) ----------------------------------------------
def _login(base: str) -> dict[str, str]:
    import httpx

    from web_support import PASSWORD, USER

    answer = httpx.post(f"{base}/api/v1/auth/login", json={"username": USER, "password": PASSWORD})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def _wait(event: Event) -> None:
    while not event.is_set():
        await asyncio.sleep(0.01)


async def _ws_clients(
    base: str, n: int, events: tuple[Event, Event, Event, Event], tally: Any
) -> dict[str, Any]:
    """Connect n clients, read until `done`, return what each received and the latencies.

    `tally.value` follows how many messages they have received in all (for the drain wait).
    """
    import httpx
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    ready, go, stop, done = events
    headers = _login(base)
    url = base.replace("http", "ws", 1) + "/api/v1/stream"
    counts = [0] * n
    latencies: list[list[float]] = [[] for _ in range(n)]
    sockets: list[Any] = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:

        async def client(i: int) -> None:
            ticket = (await http.post("/api/v1/auth/ticket")).json()["ticket"]
            ws = await connect(url, max_queue=None, ping_interval=None)
            sockets.append(ws)
            await ws.send(json.dumps({"ticket": ticket}))
            hello = json.loads(await ws.recv())
            if hello["type"] != "hello":
                raise RuntimeError(f"no hello: {hello}")
            return

        async def read(i: int, ws: Any) -> None:
            mine = latencies[i]
            with contextlib.suppress(ConnectionClosed):
                async for raw in ws:
                    now = time.time()
                    counts[i] += 1
                    mine.append(now - json.loads(raw)["time"])

        await asyncio.gather(*(client(i) for i in range(n)))
        readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(sockets)]

        async def report() -> None:
            while True:
                tally.value = sum(counts)
                await asyncio.sleep(0.05)

        reporter = asyncio.create_task(report())
        ready.set()
        await _wait(go)
        cpu0 = time.process_time()
        await _wait(stop)
        cpu = time.process_time() - cpu0
        await _wait(done)
        reporter.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets))
        await asyncio.gather(*readers)
    return {"counts": counts, "latencies": [x for c in latencies for x in c], "cpu_s": cpu}


async def _rest_load(base: str, rps: float, go: Event, stop: Event) -> dict[str, Any]:
    """Issue `rps` requests per second (open loop) between `go` and `stop`.

    A lean HTTP/1.1 client on keep-alive connections (a general client such as httpx spends
    milliseconds of CPU per request, and at 200 requests/s on two cores it, not the server,
    would be measured).
    """
    headers = _login(base)
    host, port = base.removeprefix("http://").rsplit(":", 1)
    latencies: list[float] = []
    errors: list[str] = []
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(await asyncio.open_connection(host, int(port)))
    auth = headers["Authorization"]

    async def get(path: str) -> int:
        reader, writer = await pool.get()
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\r\n"
                         .encode())  # fmt: skip
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            if length is None:
                raise ValueError(f"no content-length in {head[:200]!r}")
            await reader.readexactly(int(length.group(1)))
            return int(head[9:12])
        finally:
            pool.put_nowait((reader, writer))

    async def one(path: str, due: float) -> None:
        try:
            status = await get(path)
            if status != 200:
                errors.append(f"{path}: {status}")
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            errors.append(f"{path}: {exc!r}")
        latencies.append(time.perf_counter() - due)

    for path in REST_PATHS:
        await get(path)  # connections up (and answers cached once) before the clock starts
    await _wait(go)
    cpu0 = time.process_time()
    start = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()
    i = 0
    while rps <= 0 and not stop.is_set():  # no REST load: wait out the window
        await asyncio.sleep(0.05)
    while not stop.is_set():
        due = start + i / rps
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(REST_PATHS[i % len(REST_PATHS)], due))
        pending.add(task)
        task.add_done_callback(pending.discard)
        i += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    await asyncio.gather(*pending)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return {"latencies": latencies, "errors": errors, "sent": i, "elapsed": elapsed, "cpu_s": cpu}


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop where installed (uvicorn serves on it too), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _ws_process(
    base: str, n: int, events: tuple[Event, Event, Event, Event], tally: Any, out: Any
) -> None:
    out.put(("ws", _run(_ws_clients(base, n, events, tally))))


def _rest_process(base: str, rps: float, go: Event, stop: Event, out: Any) -> None:
    out.put(("rest", _run(_rest_load(base, rps, go, stop))))


# -- the server and the run --------------------------------------------------------------
def _server(folder: Path, seconds: float) -> tuple[Any, PacedFeed, Any]:
    from reinforcetrade.config import Settings
    from reinforcetrade.storage import Journal
    from reinforcetrade.strategies import MultiAgentStrategy
    from reinforcetrade.trading.engine import LiveEngine
    from reinforcetrade.trading.paper import PaperBroker
    from reinforcetrade.web.server import WebServer
    from web_support import market, web_config

    frames = market(WARM + int(seconds * RATE_HZ * 2) + 200)
    feed = PacedFeed(frames, WARM, RATE_HZ)
    url = f"sqlite:///{folder / 'paper.db'}"
    journal = Journal(url).open()

    def build(engine_journal: Any, observer: Any) -> Any:
        strategy = MultiAgentStrategy(settings=Settings())
        return LiveEngine(strategy, feed, PaperBroker(), engine_journal, name="bench",
                          observer=observer)  # fmt: skip

    server = WebServer.build(web_config(), journal, builder=build, journal_url=url, port=0)
    return server, feed, journal


class _Counted(logging.Filter):
    """Count (and keep off the screen) the tracebacks uvicorn logs for the app's exceptions."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None:
            name = record.exc_info[0].__name__
            self.seen[name] = self.seen.get(name, 0) + 1
            return False
        return True


def _scrape(base: str) -> tuple[float, dict[float, float]]:
    """Return rt_ws_dropped_total and the REST load's rt_api_request_seconds buckets (le: n)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from web_support import METRICS_TOKEN

    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    routes = {path.partition("?")[0] for path in REST_PATHS}
    dropped, buckets = 0.0, dict[float, float]()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "rt_ws_dropped_total":
                dropped = float(sample.value)
            elif sample.name == "rt_api_request_seconds_bucket":
                if sample.labels["method"] == "GET" and sample.labels["route"] in routes:
                    le = float(sample.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + float(sample.value)
    return dropped, buckets


def _bucket_ms(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """Return the upper bound (ms) of the histogram bucket holding quantile q of the window."""
    window = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = window[-1][1] if window else 0.0
    for le, count in window:
        if total and count >= q * total:
            return le * 1e3 if le != float("inf") else None
    return None


def _drain(missing: Callable[[], int], base: str, dropped: float) -> float | None:
    """Wait until the clients have every message the server did not drop; return the wait.

    None if that takes more than DRAIN seconds.
    """
    started = last_scrape = time.perf_counter()
    lost = 0.0
    while (now := time.perf_counter()) - started < DRAIN:
        if now - last_scrape > 1.0:
            lost, last_scrape = _scrape(base)[0] - dropped, now
        if missing() <= lost:
            return now - started
        time.sleep(0.05)
    return None


def _wait_steady(engine: Any, timeout: float = 30.0) -> int:
    """Wait until the engine has handled every bar delivered; return how many it has."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        now = int(engine.stepper.t)
        if now == last:
            return now
        last = now
        time.sleep(0.3)
    raise RuntimeError("the engine did not settle")


def _ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1e3, 2) if values else None


def run(seconds: float, clients: int, rest_rps: float) -> dict[str, Any]:
    """Serve, load, measure; return the figures."""
    ctx = mp.get_context("spawn")
    errors = _Counted()
    logging.getLogger("uvicorn.error").addFilter(errors)
    with tempfile.TemporaryDirectory() as tmp:
        server, feed, journal = _server(Path(tmp), seconds)
        server.host.start()
        server.start_in_thread()
        engine = server.host.engine
        try:
            while feed.delivered < WARM or engine.stepper.t < WARM:
                if server.host.state != "running":
                    raise RuntimeError(f"the engine stopped: {server.host.error}")
                time.sleep(0.05)
            ready, go, stop, done = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
            out, tally = ctx.Queue(), ctx.Value("q", 0)
            events = (ready, go, stop, done)
            procs = [
                ctx.Process(target=_ws_process, args=(server.url, clients, events, tally, out)),
                ctx.Process(target=_rest_process, args=(server.url, rest_rps, go, stop, out)),
            ]
            for p in procs:
                p.start()
            if not ready.wait(120):
                raise RuntimeError("the WebSocket clients did not all connect")
            hub = server.host.hub
            bars0 = _wait_steady(engine)
            published0, (dropped0, buckets0) = hub.published, _scrape(server.url)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            go.set()
            feed.go()
            time.sleep(seconds)
            feed.hold()
            stop.set()
            wall = time.perf_counter() - wall0
            server_cpu = time.process_time() - cpu0
            bars = _wait_steady(engine) - bars0
            published = hub.published - published0
            drain = _drain(lambda: published * clients - tally.value, server.url, dropped0)
            dropped1, buckets1 = _scrape(server.url)
            done.set()
            results = dict(out.get(timeout=120) for _ in procs)
            for p in procs:
                p.join(30)
                if p.exitcode != 0:
                    raise RuntimeError(f"a client process failed ({p.exitcode})")
        finally:
            server.stop()
            journal.close()
    ws, rest = results["ws"], results["rest"]
    received = sum(ws["counts"])
    return {
        "bench": "web",
        "seconds": round(wall, 2),
        "ws_clients": clients,
        "ws_rate_hz": round(bars / wall, 2),
        "ws_messages": published,
        "ws_messages_per_bar": round(published / bars, 2) if bars else None,
        "ws_received": received,
        "ws_dropped": published * clients - received,
        "ws_dropped_metric": dropped1 - dropped0,
        "ws_drain_s": None if drain is None else round(drain, 2),
        "ws_p50_ms": _ms(ws["latencies"], 50),
        "ws_p99_ms": _ms(ws["latencies"], 99),
        "ws_max_ms": _ms(ws["latencies"], 100),
        "rest_rps_target": rest_rps,
        "rest_rps": round(rest["sent"] / rest["elapsed"], 1),
        "rest_p50_ms": _ms(rest["latencies"], 50),
        "rest_p99_ms": _ms(rest["latencies"], 99),
        "rest_errors": len(rest["errors"]),
        "rest_error_samples": rest["errors"][:3],
        # inside the server (its own histogram, from the app's middleware): the bucket bounds
        "rest_server_p50_ms_le": _bucket_ms(buckets0, buckets1, 0.5),
        "rest_server_p99_ms_le": _bucket_ms(buckets0, buckets1, 0.99),
        "server_exceptions": errors.seen,
        "target_p99_ms": TARGET_P99_MS,  # both sides; and none dropped, no REST errors
        "meets_target": published * clients == received
        and not rest["errors"]
        and (_ms(ws["latencies"], 99) or 0.0) <= TARGET_P99_MS
        and (_ms(rest["latencies"], 99) or 0.0) <= TARGET_P99_MS,
        "cpu_s_in_window": {
            "server": round(server_cpu, 2),
            "ws_clients": round(ws["cpu_s"], 2),
            "rest_client": round(rest["cpu_s"], 2),
        },
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="steady-state seconds")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="WebSocket clients")
    parser.add_argument("--rest-rps", type=float, default=REST_RPS, help="REST requests/s")
    args = parser.parse_args()
    figures = run(args.seconds, args.clients, args.rest_rps)
    figures["machine"] = machine()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

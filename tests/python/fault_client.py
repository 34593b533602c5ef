"""Clients of the official MCP Python SDK under faults: the driver of
tests/tests/official_clients*.rs (issue 10, "faults as real clients feel
them").

Usage: python fault_client.py <mode> <mcp url> [--clients N] [options]

Works with the SDK 1.x (`mcp.ClientSession` over `streamable_http_client`)
and 2.x (`mcp.Client`: in its default mode it speaks 2026-07-28, without a
session, to a server that offers it; `--sdk-mode legacy` gives it a
session). Every client is a
separate SDK session with the SDK's DEFAULT options: its own default HTTP
client, the standalone GET stream on, no cookies. The only bounds this
script adds are per call (`read_timeout_seconds`), as an application would.

Every client first opens a session and calls `counter` (which says which
replica answered); with `--spread R`, a client whose replica already has
its share of this driver's clients leaves that session and opens another
(bounded), so that every one of R replicas gets some (set-up, not part of
any scenario). Once all clients are placed, the script prints `ready` and
waits for commands, one a line, on stdin:

- `go`: start the mode's work.
    loop  `counter` in a loop; after an error, the client leaves its session
          and opens a new one (as an application would), and goes on.
    long  one `long_task` call with a progress callback.
    ping  `ping` in a loop.
- `fresh K` (long mode): open K new sessions and call `counter` once in each.
- `stop`: end the loops, close every session, print `done`, exit.

Output: one JSON object a line on stdout, each with `event`, `t` (Unix
time in ms), and, for a client's events, `client` and `gen` (the number of
the client's session: 0, then 1 after the first reconnection...):

    {"event":"session","client":0,"gen":0,"t":...}
    {"event":"ok","client":0,"gen":0,"t":...,"op":"counter","count":3,"replica":"r2","session":"r2.ab.."}
    {"event":"error","client":0,"gen":0,"t":...,"op":"counter","error":"..."}
    {"event":"progress","client":0,"gen":0,"t":...,"progress":1.0,"total":10.0}
    {"event":"result","client":0,"gen":0,"t":...,"is_error":false,"text":"finished 10 steps"}
    {"event":"transport_error","client":0,"t":...,"error":"..."}   (the SDK's log of a failed stream)
    {"event":"closed","client":0,"gen":0,"t":...}   (loop mode: done leaving a session after an error)
    {"event":"fresh","t":...,"replica":"r1","session":"r1.cd..","count":1} / {"event":"fresh_error",...}
    {"event":"ready"} / {"event":"done","sdk":"python","version":"1.30.0"}

The script reports; the Rust tests judge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import importlib.metadata
import json
import logging
import sys
import threading
import time
import warnings
from datetime import timedelta

SDK_VERSION = importlib.metadata.version("mcp")
SDK_MAJOR = int(SDK_VERSION.split(".")[0])

# Which client's SDK code is running, for the log handler below.
CURRENT_CLIENT: contextvars.ContextVar[int | None] = contextvars.ContextVar("client", default=None)


def now_ms() -> float:
    return time.time() * 1000.0


def emit(event: str, **fields) -> None:
    fields = {"event": event, "t": now_ms(), **fields}
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class StreamErrors(logging.Handler):
    """Reports the SDK's own log of a failed stream (the GET stream that
    got an error status or was cut, a resumption that failed): the SDK logs
    these and goes on, so an application never sees them as errors of its
    calls, but they are what a client felt."""

    MARKERS = ("GET stream error", "Reconnection failed", "Max reconnection", "max reconnection")

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if not any(m in msg for m in self.MARKERS):
            return
        if record.exc_info and record.exc_info[1] is not None:
            msg = f"{msg}: {record.exc_info[1]!r}"
        emit("transport_error", client=CURRENT_CLIENT.get(), error=msg[:500])


def watch_sdk_logs() -> None:
    log = logging.getLogger("mcp.client.streamable_http")
    log.setLevel(logging.DEBUG)
    log.addHandler(StreamErrors())
    log.propagate = False


def describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


# --- the two SDK generations behind one small interface --------------------


class Sdk1:
    """SDK 1.x: `ClientSession` over `streamable_http_client(url)`."""

    def __init__(self, url: str, call_timeout: float) -> None:
        self.url = url
        self.timeout = timedelta(seconds=call_timeout)

    @contextlib.asynccontextmanager
    async def open(self):
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        async with streamable_http_client(self.url) as (read, write, _session_id):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield Session1(session, self.timeout)


class Session1:
    def __init__(self, session, timeout: timedelta) -> None:
        self.s = session
        self.timeout = timeout

    async def counter(self) -> dict:
        r = await self.s.call_tool("counter", {}, read_timeout_seconds=self.timeout)
        if r.isError:
            raise RuntimeError(f"tool error: {r.content}")
        return r.structuredContent or {}

    async def long_task(self, steps: int, step_ms: int, on_progress, timeout: float):
        r = await self.s.call_tool(
            "long_task",
            {"steps": steps, "step_ms": step_ms},
            read_timeout_seconds=timedelta(seconds=timeout),
            progress_callback=on_progress,
        )
        return bool(r.isError), text_of(r.content)

    async def ping(self) -> None:
        await self.s.send_ping()


class Sdk2:
    """SDK 2.x: `mcp.Client(url)`. Its default mode, "auto", discovers
    first and speaks 2026-07-28 without a session wherever the server
    offers it (tether does); "legacy" (`--sdk-mode legacy`) takes the
    initialize handshake and a session, as every client before 2026-07-28."""

    def __init__(self, url: str, call_timeout: float, mode: str) -> None:
        self.url = url
        self.timeout = call_timeout
        self.mode = mode

    @contextlib.asynccontextmanager
    async def open(self):
        from mcp import Client

        # The default mode is passed by leaving it out, as a user would.
        options = {} if self.mode == "auto" else {"mode": self.mode}
        async with Client(self.url, **options) as client:
            yield Session2(client, self.timeout)


class Session2:
    def __init__(self, client, timeout: float) -> None:
        self.c = client
        self.timeout = timeout

    async def counter(self) -> dict:
        r = await self.c.call_tool("counter", {}, read_timeout_seconds=self.timeout)
        if r.is_error:
            raise RuntimeError(f"tool error: {r.content}")
        return r.structured_content or {}

    async def long_task(self, steps: int, step_ms: int, on_progress, timeout: float):
        r = await self.c.call_tool(
            "long_task",
            {"steps": steps, "step_ms": step_ms},
            read_timeout_seconds=timeout,
            progress_callback=on_progress,
        )
        return bool(r.is_error), text_of(r.content)

    async def ping(self) -> None:
        # Deprecated for 2026-07-28 connections only; this one is a
        # handshake-era session.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            await self.c.send_ping()


def text_of(content) -> str:
    return "".join(getattr(c, "text", "") for c in content)


# --- the driver ----------------------------------------------------------


class Commands:
    """Lines from stdin, read by a thread (portable, and never blocks the
    event loop), fanned out to whoever waits for them."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.go = asyncio.Event()
        self.stop = asyncio.Event()
        self.fresh: asyncio.Queue[int] = asyncio.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            self.loop.call_soon_threadsafe(self._handle, line.strip())
        self.loop.call_soon_threadsafe(self._handle, "stop")

    def _handle(self, line: str) -> None:
        word, _, arg = line.partition(" ")
        if word == "go":
            self.go.set()
        elif word == "stop":
            self.go.set()
            self.stop.set()
        elif word == "fresh":
            self.fresh.put_nowait(int(arg or "1"))


async def sleep_or_stop(cmd: Commands, secs: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(cmd.stop.wait(), secs)


# Sessions a client may open and leave while the driver spreads its clients.
SPREAD_ATTEMPTS = 20


async def run_client(
    i: int, args, sdk, cmd: Commands, placed: asyncio.Event, ready: list, claims: dict
) -> None:
    CURRENT_CLIENT.set(i)
    gen = 0
    announced = False

    def mark_placed() -> None:
        nonlocal announced
        if not announced:
            announced = True
            ready.append(i)
            if len(ready) == args.clients:
                placed.set()

    spread_attempts = 0
    while not cmd.stop.is_set():
        try:
            async with sdk.open() as s:
                # A failure here ends up as this session's `session_error`.
                first = await s.counter()
                if not announced and args.spread:
                    # Set-up, not the scenario: spread this driver's clients
                    # over the replicas, so each replica has some of every SDK.
                    quota = -(-args.clients // args.spread)
                    replica = first.get("replica")
                    if claims.get(replica, 0) >= quota and spread_attempts < SPREAD_ATTEMPTS:
                        spread_attempts += 1
                        continue
                    claims[replica] = claims.get(replica, 0) + 1
                emit("session", client=i, gen=gen)
                emit("ok", client=i, gen=gen, op="counter", **first)
                mark_placed()
                await cmd.go.wait()
                if await work(i, gen, args, s, cmd):
                    return
        except Exception as e:  # noqa: BLE001
            emit("session_error", client=i, gen=gen, error=describe(e))
            if args.mode != "loop" or cmd.stop.is_set():
                mark_placed()
                return
            await sleep_or_stop(cmd, 0.05)
        else:
            # Left the session (after an error, in loop mode): when the SDK
            # was done closing it (its DELETE, to a replica that may be gone).
            emit("closed", client=i, gen=gen)
        gen += 1


async def work(i: int, gen: int, args, s, cmd: Commands) -> bool:
    """The mode's work in an open session; True when the client is done,
    False to open a new session."""
    if args.mode == "long":
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            emit("progress", client=i, gen=gen, progress=progress, total=total)

        try:
            is_error, text = await s.long_task(args.steps, args.step_ms, on_progress, args.long_timeout)
            emit("result", client=i, gen=gen, is_error=is_error, text=text)
        except Exception as e:  # noqa: BLE001
            emit("error", client=i, gen=gen, op="long_task", error=describe(e))
        await cmd.stop.wait()
        return True
    op = "counter" if args.mode == "loop" else "ping"
    while not cmd.stop.is_set():
        try:
            if op == "counter":
                emit("ok", client=i, gen=gen, op=op, **(await s.counter()))
            else:
                await s.ping()
                emit("ok", client=i, gen=gen, op=op)
        except Exception as e:  # noqa: BLE001
            emit("error", client=i, gen=gen, op=op, error=describe(e))
            if args.mode == "loop":
                return False  # leave this session; the caller opens a new one
        await sleep_or_stop(cmd, args.interval_ms / 1000.0)
    return True


async def fresh_sessions(sdk, cmd: Commands) -> None:
    while True:
        k = await cmd.fresh.get()

        async def one() -> None:
            try:
                async with sdk.open() as s:
                    emit("fresh", **(await s.counter()))
            except Exception as e:  # noqa: BLE001
                emit("fresh_error", error=describe(e))

        await asyncio.gather(*(one() for _ in range(k)))


async def main_async(args) -> None:
    watch_sdk_logs()
    cmd = Commands()
    if SDK_MAJOR < 2:
        sdk = Sdk1(args.url, args.call_timeout)
    else:
        sdk = Sdk2(args.url, args.call_timeout, args.sdk_mode)
    placed = asyncio.Event()
    ready: list[int] = []
    claims: dict[str, int] = {}
    clients = [
        asyncio.create_task(run_client(i, args, sdk, cmd, placed, ready, claims)) for i in range(args.clients)
    ]
    fresh = asyncio.create_task(fresh_sessions(sdk, cmd))
    await placed.wait()
    emit("ready", sdk="python", version=SDK_VERSION)
    await cmd.stop.wait()
    # Leaving a session sends DELETE; bounded, since its replica may be gone.
    _, pending = await asyncio.wait(clients, timeout=args.close_timeout)
    fresh.cancel()
    emit("done", sdk="python", version=SDK_VERSION, unclosed=len(pending))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["loop", "long", "ping"])
    p.add_argument("url")
    p.add_argument("--clients", type=int, default=3)
    p.add_argument(
        "--sdk-mode",
        choices=["auto", "legacy"],
        default="auto",
        help="SDK 2.x: mcp.Client's mode (1.x has sessions only)",
    )
    p.add_argument(
        "--spread", type=int, default=0, help="spread the clients over this many replicas (0: wherever they land)"
    )
    p.add_argument("--interval-ms", type=float, default=50)
    p.add_argument("--call-timeout", type=float, default=5.0, help="bound on each call, seconds")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--step-ms", type=int, default=200)
    p.add_argument("--long-timeout", type=float, default=20.0)
    p.add_argument("--close-timeout", type=float, default=3.0)
    p.add_argument("--max-secs", type=float, default=60.0, help="bound on the whole run")
    args = p.parse_args()
    try:
        asyncio.run(asyncio.wait_for(main_async(args), args.max_secs))
    except asyncio.TimeoutError:
        emit("timeout", secs=args.max_secs)
        sys.exit(3)
    # Streams of sessions that did not close in time may still hold the loop.
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Official MCP Python SDK (1.x) clients whose sessions outlive their
replica: the driver of tests/tests/shared_sessions.rs (sessions in Redis).

Usage: python survivor_client.py <mcp url> --target ROUTE [--clients N]

Every client is an SDK session with the SDK's DEFAULT options
(`streamable_http_client(url)`, its own default HTTP client, the standalone
GET stream on, no cookies). Each opens sessions until one lands on replica
ROUTE (by what `counter` answers; the others stay open and idle: set-up,
not part of the scenario), subscribes to `demo://note`, and calls `counter` until it
says 3. Then the script prints `ready` and takes commands, one a line, on
stdin:

- `inflight`: every client starts a long `long_task` call; the script
  prints `inflight_started` for each once its first progress arrived. How
  each call ends is printed when it does: `inflight_result` or
  `inflight_error` (with the time).
- `go`: every client calls `counter` once more (printing `ok` or `error`).
- `stop`: closes every session, prints `done`, exits.

Whatever the clients hear of `demo://note` is printed as `updated`, and
what the SDK logs of a failed stream as `transport_error`. Every event is
one JSON object a line with `event`, `t` (Unix ms) and `client`. The script
reports; the Rust test judges.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from datetime import timedelta

import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

NOTE = "demo://note"
# Per call, as an application bounds its calls; the Rust side bounds the
# whole process.
CALL_TIMEOUT = timedelta(seconds=30)
PLACEMENT_ATTEMPTS = 40


def emit(event: str, **fields) -> None:
    sys.stdout.write(json.dumps({"event": event, "t": time.time() * 1000.0, **fields}) + "\n")
    sys.stdout.flush()


class StreamErrors(logging.Handler):
    """The SDK's own log of a failed stream: it logs these and goes on, so an
    application never sees them as errors of its calls, but a client felt
    them."""

    MARKERS = ("GET stream error", "Reconnection failed", "Max reconnection", "max reconnection")

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if any(m in msg for m in self.MARKERS):
            emit("transport_error", error=msg[:500])


def describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"[:500]


async def counter(session: ClientSession) -> dict:
    r = await session.call_tool("counter", {}, read_timeout_seconds=CALL_TIMEOUT)
    if r.isError:
        raise RuntimeError(f"tool error: {r.content}")
    return r.structuredContent or {}


class Client:
    def __init__(self, index: int, url: str, target: str) -> None:
        self.index = index
        self.url = url
        self.target = target
        self.session: ClientSession | None = None
        self.session_id = None
        self.inflight: asyncio.Task | None = None

    async def on_message(self, message) -> None:
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ResourceUpdatedNotification
        ):
            emit("updated", client=self.index, uri=str(message.root.params.uri))

    async def place(self, stack: contextlib.AsyncExitStack) -> None:
        """Opens sessions (on `stack`, which closes them all in the reverse
        order at the end, as the SDK's task groups need) until one is on
        the target replica. The others stay open, idle: a balancer that
        sends new sessions to the replica with the fewest connections
        (HAProxy's leastconn) then turns to the target."""
        for _ in range(PLACEMENT_ATTEMPTS):
            read, write, session_id = await stack.enter_async_context(streamable_http_client(self.url))
            session = await stack.enter_async_context(
                ClientSession(read, write, message_handler=self.on_message)
            )
            await session.initialize()
            first = await counter(session)
            if first.get("replica") == self.target:
                self.session, self.session_id = session, session_id
                await session.subscribe_resource(NOTE)
                while (await counter(session)).get("count", 0) < 3:
                    pass
                emit("placed", client=self.index, session=session_id(), replica=self.target)
                return
        raise RuntimeError(f"no session landed on {self.target} in {PLACEMENT_ATTEMPTS} tries")

    async def start_inflight(self, started: asyncio.Event) -> None:
        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            started.set()

        async def call() -> None:
            try:
                r = await self.session.call_tool(
                    "long_task",
                    {"steps": 300, "step_ms": 100},
                    read_timeout_seconds=CALL_TIMEOUT,
                    progress_callback=on_progress,
                )
                emit("inflight_result", client=self.index, is_error=bool(r.isError))
            except Exception as e:  # noqa: BLE001 - reported, judged by the test
                emit("inflight_error", client=self.index, error=describe(e))

        self.inflight = asyncio.create_task(call())
        await started.wait()
        emit("inflight_started", client=self.index)

    async def go(self) -> None:
        try:
            c = await counter(self.session)
            emit("ok", client=self.index, count=c.get("count"), replica=c.get("replica"),
                 session=c.get("session"), sdk_session=self.session_id())
        except Exception as e:  # noqa: BLE001
            emit("error", client=self.index, error=describe(e))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--target", required=True)
    parser.add_argument("--clients", type=int, default=3)
    args = parser.parse_args()
    log = logging.getLogger("mcp.client.streamable_http")
    log.setLevel(logging.DEBUG)
    log.addHandler(StreamErrors())
    log.propagate = False

    clients = [Client(i, args.url, args.target) for i in range(args.clients)]
    stack = contextlib.AsyncExitStack()
    for c in clients:
        await c.place(stack)
    emit("ready")
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        command = line.strip()
        if command == "inflight":
            await asyncio.gather(*(c.start_inflight(asyncio.Event()) for c in clients))
        elif command == "go":
            await asyncio.gather(*(c.go() for c in clients))
        elif command in ("stop", ""):
            break
    for c in clients:
        if c.inflight is not None:
            c.inflight.cancel()
    with contextlib.suppress(BaseException):
        await stack.aclose()
    emit("done")


if __name__ == "__main__":
    asyncio.run(main())

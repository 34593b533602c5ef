"""One MCP session run by the official Python SDK (PyPI `mcp`, pinned in
tests/requirements.txt) over the old HTTP+SSE transport of 2024-11-05
(`GET /sse`, then `POST /messages?sessionId=...`) against a tether replica
or a balancer in front of several.

Usage: python legacy_sse_session.py <sse url>

It connects with the SDK's `sse_client`, initializes, lists the tools,
calls `counter` twice (a second call that reached another replica, or
another session, would count from 1 again) and `long_task` with a progress
callback (progress and the result both come as `event: message` on the one
GET stream), then prints one JSON summary line on stdout, with every HTTP
request the SDK made (method and path), so that the Rust test
`tests/tests/legacy_sse.rs` can check that the old transport, and nothing
else, carried the session. This script only reports what it saw.
"""

import asyncio
import importlib.metadata
import json
import sys

import httpx
import mcp.types as types
from mcp import ClientSession
from mcp.client.sse import sse_client
from tool_results import structured, text_of

# Every wait of the session together; the Rust side bounds the process too.
LIMIT_SECS = 30


async def run(url: str) -> dict:
    progress: list[dict] = []
    requests: list[str] = []
    session_ids: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append({"progress": value, "total": total, "message": message})

    async def record(request: httpx.Request) -> None:
        requests.append(f"{request.method} {request.url.path}")

    def http_client(headers=None, timeout=None, auth=None) -> httpx.AsyncClient:
        # The SDK's own factory, plus a record of every request; no proxies
        # from the environment: everything here is on loopback.
        return httpx.AsyncClient(
            headers=headers,
            timeout=timeout,
            auth=auth,
            trust_env=False,
            event_hooks={"request": [record]},
        )

    async with sse_client(
        url,
        timeout=10,
        sse_read_timeout=60,
        httpx_client_factory=http_client,
        on_session_created=session_ids.append,
    ) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            first = structured(await session.call_tool("counter", {}))
            second = structured(await session.call_tool("counter", {}))
            task = await session.call_tool(
                "long_task", {"steps": 5, "step_ms": 20}, progress_callback=on_progress
            )
            return {
                "sdk_version": importlib.metadata.version("mcp"),
                "requested_version": types.LATEST_PROTOCOL_VERSION,
                "protocol_version": init.protocolVersion,
                "server_name": init.serverInfo.name,
                "session_ids": session_ids,
                "tools": sorted(t.name for t in tools.tools),
                "counter": [first, second],
                "long_task": {"is_error": bool(task.isError), "text": text_of(task)},
                "progress": progress,
                "requests": requests,
            }


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: legacy_sse_session.py <sse url>")
    summary = asyncio.run(asyncio.wait_for(run(sys.argv[1]), LIMIT_SECS))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

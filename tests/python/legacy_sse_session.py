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

import httpx
import mcp.types as types
from mcp import ClientSession
from mcp.client.sse import sse_client
from sdk_common import common_steps, main


async def run(url: str) -> dict:
    requests: list[str] = []
    session_ids: list[str] = []

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
            return await common_steps(session) | {
                "requested_version": types.LATEST_PROTOCOL_VERSION,
                "session_ids": session_ids,
                "requests": requests,
            }


if __name__ == "__main__":
    main(run, "legacy_sse_session.py <sse url>")

"""One MCP session run by the official Python SDK (PyPI `mcp`, pinned in
tests/requirements.txt) against a tether endpoint, usually a balancer in
front of several replicas.

Usage: python mcp_session.py <mcp url>

It connects with the SDK's Streamable HTTP client, initializes, lists the
tools, calls `counter` twice (a second call on another replica would count
from 1 again), calls `long_task` with a progress callback and `ask_model`
with a sampling callback (a server-to-client request on the call's stream),
then prints one JSON summary line on stdout. The Rust test
`tests/tests/python_sdk.rs` asserts on that summary; this script only
reports what it saw, so that a failed assertion shows the whole picture.
"""

import asyncio
import importlib.metadata
import json
import sys

import httpx
import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from tool_results import structured, text_of

# Every wait of the session together; the Rust side bounds the process too.
LIMIT_SECS = 30
SAMPLED_ANSWER = "four, said the python client"


async def run(url: str) -> dict:
    progress: list[dict] = []
    sampled: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append({"progress": value, "total": total, "message": message})

    async def on_sampling(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        content = params.messages[0].content
        sampled.append(content.text if isinstance(content, types.TextContent) else str(content))
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=SAMPLED_ANSWER),
            model="python-sdk-test",
            stopReason="endTurn",
        )

    # No proxies from the environment: everything here is on loopback.
    http = httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(10.0, read=60.0))
    async with http, streamable_http_client(url, http_client=http) as (read, write, session_id):
        async with ClientSession(read, write, sampling_callback=on_sampling) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            first = structured(await session.call_tool("counter", {}))
            second = structured(await session.call_tool("counter", {}))
            task = await session.call_tool(
                "long_task", {"steps": 5, "step_ms": 20}, progress_callback=on_progress
            )
            asked = await session.call_tool("ask_model", {"question": "What is 2+2?"})
            return {
                "sdk_version": importlib.metadata.version("mcp"),
                "protocol_version": init.protocolVersion,
                "server_name": init.serverInfo.name,
                "session_id": session_id(),
                "tools": sorted(t.name for t in tools.tools),
                "counter": [first, second],
                "long_task": {"is_error": bool(task.isError), "text": text_of(task)},
                "progress": progress,
                "ask_model": {"is_error": bool(asked.isError), "text": text_of(asked)},
                "sampled_questions": sampled,
            }


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: mcp_session.py <mcp url>")
    summary = asyncio.run(asyncio.wait_for(run(sys.argv[1]), LIMIT_SECS))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

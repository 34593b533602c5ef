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

import httpx
import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from sdk_common import common_steps, main, text_of

SAMPLED_ANSWER = "four, said the python client"


async def run(url: str) -> dict:
    sampled: list[str] = []

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
            summary = await common_steps(session)
            asked = await session.call_tool("ask_model", {"question": "What is 2+2?"})
            return summary | {
                "session_id": session_id(),
                "ask_model": {"is_error": bool(asked.isError), "text": text_of(asked)},
                "sampled_questions": sampled,
            }


if __name__ == "__main__":
    main(run, "mcp_session.py <mcp url>")

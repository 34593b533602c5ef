"""The official Python SDK (PyPI `mcp` 1.x, pinned in tests/requirements.txt)
against a `--stateless` tether endpoint (issue 13), with the SDK's default
options.

Usage: python stateless_session.py <mcp url>

It initializes (and is given no session), lists the tools, calls `echo`,
`counter` and `long_task` with a progress callback, then asks for what a
request without a session cannot have: `ask_model` (sampling, though the
client offers it) and a resource subscription. It prints one JSON summary
line; the Rust tests (`sessionless_clients.rs`) judge it.
"""

import httpx
import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError
from mcp.shared.session import RequestResponder
from pydantic import AnyUrl
from sdk_common import common_steps, main, text_of


async def run(url: str) -> dict:
    errors: list[str] = []
    sampled: list[str] = []

    async def on_sampling(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        sampled.append(str(params.messages[0].content))
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="never asked"),
            model="python-sdk-test",
        )

    async def on_message(
        message: RequestResponder[types.ServerRequest, types.ClientResult] | types.ServerNotification | Exception,
    ) -> None:
        if isinstance(message, Exception):
            errors.append(repr(message))

    async def refused(call) -> dict:
        try:
            await call
        except McpError as e:
            return {"code": e.error.code, "message": e.error.message}
        return {"code": None, "message": "answered"}

    http = httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(10.0, read=60.0))
    async with http, streamable_http_client(url, http_client=http) as (read, write, session_id):
        async with ClientSession(
            read, write, sampling_callback=on_sampling, message_handler=on_message
        ) as session:
            summary = await common_steps(session)
            echoed = await session.call_tool("echo", {"text": "stateless"})
            sampling = await refused(session.call_tool("ask_model", {"question": "What is 2+2?"}))
            subscribe = await refused(session.subscribe_resource(AnyUrl("demo://note")))
            return summary | {
                "session_id": session_id(),
                "echo": text_of(echoed),
                "sampling": sampling,
                "sampled_questions": sampled,
                "subscribe": subscribe,
                "errors": errors,
            }


if __name__ == "__main__":
    main(run, "stateless_session.py <mcp url>")

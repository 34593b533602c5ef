"""One MCP session run by the official Python SDK (PyPI `mcp`, pinned in
tests/requirements.txt) against a tether endpoint, usually a balancer in
front of several replicas.

Usage: python mcp_session.py <mcp url>

It connects with the SDK's Streamable HTTP client and its default options,
initializes, lists the tools, calls `counter` twice (a second call on
another replica would count from 1 again), `long_task` with a progress
callback, `ask_model` with a sampling callback and `test_elicitation` with
an elicitation callback (server-to-client requests on the call's stream,
answered by POSTs of their own), subscribes to `demo://note` and sets it
(the update comes on the session's GET stream), and calls
`test_reconnection`, whose stream the server closes mid-call so that the
SDK resumes it with `Last-Event-ID`. It then prints one JSON summary line
on stdout, errors the SDK reported included. The Rust tests
(`python_sdk.rs`, `cluster_forwarding.rs`) assert on that summary; this
script only reports what it saw, so that a failed assertion shows the whole
picture.
"""

import asyncio

import httpx
import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.session import RequestResponder
from pydantic import AnyUrl
from sdk_common import common_steps, main, text_of

SAMPLED_ANSWER = "four, said the python client"
ELICITED = {"username": "ada", "email": "ada@example.com"}
NOTE_URI = "demo://note"
# Bound on the resource update's arrival on the GET stream.
UPDATE_SECS = 10


async def run(url: str) -> dict:
    sampled: list[str] = []
    elicited: list[str] = []
    updates: list[str] = []
    errors: list[str] = []
    updated = asyncio.Event()

    async def on_sampling(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        content = params.messages[0].content
        sampled.append(content.text if isinstance(content, types.TextContent) else str(content))
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=SAMPLED_ANSWER),
            model="python-sdk-test",
            stopReason="endTurn",
        )

    async def on_elicitation(context, params: types.ElicitRequestParams) -> types.ElicitResult:
        elicited.append(params.message)
        return types.ElicitResult(action="accept", content=ELICITED)

    async def on_message(
        message: RequestResponder[types.ServerRequest, types.ClientResult] | types.ServerNotification | Exception,
    ) -> None:
        if isinstance(message, Exception):
            errors.append(repr(message))
        elif isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ResourceUpdatedNotification
        ):
            updates.append(str(message.root.params.uri))
            updated.set()

    # No proxies from the environment: everything here is on loopback.
    http = httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(10.0, read=60.0))
    async with http, streamable_http_client(url, http_client=http) as (read, write, session_id):
        async with ClientSession(
            read,
            write,
            sampling_callback=on_sampling,
            elicitation_callback=on_elicitation,
            message_handler=on_message,
        ) as session:
            summary = await common_steps(session)
            asked = await session.call_tool("ask_model", {"question": "What is 2+2?"})
            elicit = await session.call_tool("test_elicitation", {"message": "Who are you?"})
            await session.subscribe_resource(AnyUrl(NOTE_URI))
            await session.call_tool("set_note", {"text": "from the python client"})
            await asyncio.wait_for(updated.wait(), UPDATE_SECS)
            note = await session.read_resource(AnyUrl(NOTE_URI))
            reconnected = await session.call_tool("test_reconnection", {})
            return summary | {
                "session_id": session_id(),
                "ask_model": {"is_error": bool(asked.isError), "text": text_of(asked)},
                "sampled_questions": sampled,
                "elicitation": {"is_error": bool(elicit.isError), "text": text_of(elicit)},
                "elicited_messages": elicited,
                "updates": updates,
                "note": [c.text for c in note.contents if isinstance(c, types.TextResourceContents)],
                "reconnection": {"is_error": bool(reconnected.isError), "text": text_of(reconnected)},
                "errors": errors,
            }


if __name__ == "__main__":
    main(run, "mcp_session.py <mcp url>")

"""The official Python SDK 2.x (PyPI `mcp` 2.3.0, pinned in
tests/requirements-mcp2.txt) against a tether endpoint that serves MCP
2026-07-28: its `mcp.Client` with the default options (`mode="auto"`:
`server/discover` first, then the era it offers) lists the tools, calls
`echo`, `long_task` with a progress callback, and `ask_model` and
`test_input_required_result_elicitation`, whose questions (sampling,
elicitation) come back as `input_required` results that the SDK answers
and retries. It prints one JSON summary line; the Rust test
(`tests/tests/new_era_clients.rs`) judges it.

Usage: python mcp2_stateless_session.py <mcp url>
"""

import asyncio
import importlib.metadata
import json
import sys

import mcp.types as types
from mcp import Client

LIMIT_SECS = 30


def texts(result) -> list[str]:
    return [c.text for c in result.content if isinstance(c, types.TextContent)]


async def run(url: str) -> dict:
    sampled: list[str] = []
    elicited: list[str] = []
    progress: list[float] = []

    async def on_sampling(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        content = params.messages[0].content
        sampled.append(content.text if isinstance(content, types.TextContent) else str(content))
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="four, said the python client"),
            model="python-sdk-test",
            stopReason="endTurn",
        )

    async def on_elicitation(context, params) -> types.ElicitResult:
        elicited.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with Client(url, sampling_callback=on_sampling, elicitation_callback=on_elicitation) as client:
        tools = await client.list_tools()
        echo = await client.call_tool("echo", {"text": "hi"})
        long = await client.call_tool("long_task", {"steps": 3, "step_ms": 10}, progress_callback=on_progress)
        asked = await client.call_tool("ask_model", {"question": "What is 2+2?"})
        elicit = await client.call_tool("test_input_required_result_elicitation", {})
        return {
            "sdk_version": importlib.metadata.version("mcp"),
            "protocol_version": str(client.protocol_version),
            "tools": sorted(t.name for t in tools.tools),
            "echo": texts(echo),
            "long_task": texts(long),
            "progress": progress,
            "ask_model": texts(asked),
            "sampled": sampled,
            "elicitation": texts(elicit),
            "elicited": elicited,
        }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: mcp2_stateless_session.py <mcp url>")
    print(json.dumps(asyncio.run(asyncio.wait_for(run(sys.argv[1]), LIMIT_SECS))))

"""What the tests' Python SDK session scripts share (imported by the scripts
beside this file): the steps every session runs, what they read off a tool
result, and the script's entry point. The Rust side checks the steps'
summary with `sdk::assert_common_steps` (tests/tests/common/sdk.rs)."""

import asyncio
import importlib.metadata
import json
import sys

import mcp.types as types
from mcp import ClientSession

# Every wait of the session together; the Rust side bounds the process too.
LIMIT_SECS = 30


def structured(result: types.CallToolResult) -> dict:
    """The structured content of a successful call (a tool error raises)."""
    if result.isError:
        raise RuntimeError(f"tool error: {result.content}")
    return result.structuredContent or {}


def text_of(result: types.CallToolResult) -> str:
    """The text of a call's content blocks, joined."""
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def common_steps(session: ClientSession) -> dict:
    """Initializes, lists the tools, calls `counter` twice (a second call on
    another replica would count from 1 again) and `long_task` with a
    progress callback; returns what it saw."""
    progress: list[dict] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append({"progress": value, "total": total, "message": message})

    init = await session.initialize()
    tools = await session.list_tools()
    first = structured(await session.call_tool("counter", {}))
    second = structured(await session.call_tool("counter", {}))
    task = await session.call_tool(
        "long_task", {"steps": 5, "step_ms": 20}, progress_callback=on_progress
    )
    return {
        "sdk_version": importlib.metadata.version("mcp"),
        "protocol_version": init.protocolVersion,
        "server_name": init.serverInfo.name,
        "tools": sorted(t.name for t in tools.tools),
        "counter": [first, second],
        "long_task": {"is_error": bool(task.isError), "text": text_of(task)},
        "progress": progress,
    }


def main(run, usage: str) -> None:
    """Runs `run(url)` within LIMIT_SECS and prints its summary as one JSON
    line on stdout."""
    if len(sys.argv) != 2:
        sys.exit(f"usage: {usage}")
    summary = asyncio.run(asyncio.wait_for(run(sys.argv[1]), LIMIT_SECS))
    print(json.dumps(summary))

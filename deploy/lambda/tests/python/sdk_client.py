"""The official MCP Python SDK's client (default options) against one URL.

Usage: sdk_client.py URL

Initializes, lists the tools, calls long_task with a progress callback,
and prints one JSON object: the negotiated revision, the session id the
client holds (none from a stateless server), the tool names, the progress
seen (with when it arrived, relative to the call's start) and the result.
"""

import asyncio
import json
import sys
import time

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


async def main(url: str) -> None:
    out = {}
    async with streamablehttp_client(url) as (read, write, get_session_id):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["protocolVersion"] = init.protocolVersion
            out["serverName"] = init.serverInfo.name
            out["sessionId"] = get_session_id()
            tools = await session.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            progress = []
            start = time.monotonic()

            async def on_progress(p, total, message):
                progress.append(
                    {"progress": p, "total": total, "at": time.monotonic() - start}
                )

            result = await session.call_tool(
                "long_task",
                {"steps": 3, "step_ms": 300},
                progress_callback=on_progress,
            )
            out["resultAt"] = time.monotonic() - start
            out["progress"] = progress
            out["result"] = [c.text for c in result.content if c.type == "text"]
            out["isError"] = result.isError
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), timeout=60))

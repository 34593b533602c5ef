"""What each feature does for a client of the official Python SDK (PyPI `mcp`
1.x, default options) against one tether configuration (issue 13: stateful
or stateless, SSE or JSON answers; one replica or several behind nginx).

Usage: python configuration_probe.py <mcp url>

It initializes, then tries each feature on its own, bounded, and reports
its outcome: `works` (what a user wants came back), `refused` (the
documented JSON-RPC error of a server without sessions, `-32000`), or
`failed` (anything else: another error, a wrong answer, nothing in time).
It prints one JSON line; the Rust test (`configurations.rs`) holds the
expected table, which the README shows.
"""

import asyncio

import httpx
import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError
from mcp.shared.session import RequestResponder
from pydantic import AnyUrl
from sdk_common import main, text_of

SAMPLED = "four, said the probe"
ROOT = "file:///probe"
# Bound on each feature's outcome.
FEATURE_SECS = 10
# Bound on a resource update's arrival after the change.
UPDATE_SECS = 5
# Calls that say which replica answered.
SPREAD_CALLS = 6


async def run(url: str) -> dict:
    errors: list[str] = []
    logs: list[str] = []
    updated = asyncio.Event()
    asked: dict[str, int] = {"sampling": 0, "elicitation": 0, "roots": 0}

    async def on_sampling(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked["sampling"] += 1
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=SAMPLED), model="probe"
        )

    async def on_elicitation(context, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked["elicitation"] += 1
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    async def on_roots(context) -> types.ListRootsResult:
        asked["roots"] += 1
        return types.ListRootsResult(roots=[types.Root(uri=ROOT, name="probe")])

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(str(params.data))

    async def on_message(
        message: RequestResponder[types.ServerRequest, types.ClientResult] | types.ServerNotification | Exception,
    ) -> None:
        if isinstance(message, Exception):
            errors.append(repr(message))
        elif isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ResourceUpdatedNotification
        ):
            updated.set()

    features: dict[str, dict] = {}

    async def probe(name: str, attempt) -> None:
        try:
            ok, detail = await asyncio.wait_for(attempt(), FEATURE_SECS)
            features[name] = {"outcome": "works" if ok else "failed", "detail": detail}
        except McpError as e:
            outcome = "refused" if e.error.code == -32000 else "failed"
            features[name] = {"outcome": outcome, "detail": f"{e.error.code} {e.error.message}"}
        except Exception as e:  # noqa: BLE001 (reported, judged by the test)
            features[name] = {"outcome": "failed", "detail": repr(e)}

    http = httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(10.0, read=30.0))
    async with http, streamable_http_client(url, http_client=http) as (read, write, session_id):
        async with ClientSession(
            read,
            write,
            sampling_callback=on_sampling,
            elicitation_callback=on_elicitation,
            list_roots_callback=on_roots,
            logging_callback=on_log,
            message_handler=on_message,
        ) as session:
            await session.initialize()

            async def tools():
                r = await session.call_tool("echo", {"text": "probe"})
                return text_of(r) == "probe", text_of(r)

            progress: list[float] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(value)

            async def progress_and_logs():
                r = await session.call_tool(
                    "long_task", {"steps": 3, "step_ms": 10}, progress_callback=on_progress
                )
                return text_of(r) == "finished 3 steps" and progress == [1.0, 2.0, 3.0], str(progress)

            async def logs_seen():
                return len(logs) > 0, f"{len(logs)} log messages"

            async def sampling():
                r = await session.call_tool("ask_model", {"question": "2+2?"})
                return SAMPLED in text_of(r) and asked["sampling"] == 1, text_of(r)

            async def elicitation():
                r = await session.call_tool("test_elicitation", {"message": "Who?"})
                return not r.isError and asked["elicitation"] == 1, text_of(r)

            async def roots():
                r = await session.call_tool("test_input_required_result_list_roots", {})
                return text_of(r) == "Found 1 root(s)", text_of(r)

            async def state():
                counts = []
                for _ in range(2):
                    r = await session.call_tool("counter", {})
                    counts.append((r.structuredContent or {}).get("count"))
                if counts == [None, None]:
                    raise McpError(types.ErrorData(code=-32000, message="counter: no session to count in"))
                return counts == [1, 2], str(counts)

            async def subscriptions():
                await session.subscribe_resource(AnyUrl("demo://note"))
                await session.call_tool("set_note", {"text": "probed"})
                await asyncio.wait_for(updated.wait(), UPDATE_SECS)
                return True, "updated"

            async def closed_stream():
                r = await session.call_tool("test_reconnection", {})
                return "completed" in text_of(r), text_of(r)

            await probe("tools", tools)
            await probe("progress", progress_and_logs)
            await probe("logs", logs_seen)
            await probe("sampling", sampling)
            await probe("elicitation", elicitation)
            await probe("roots", roots)
            await probe("session_state", state)
            await probe("subscriptions", subscriptions)
            await probe("closed_stream", closed_stream)

            replicas = []
            for _ in range(SPREAD_CALLS):
                r = await session.call_tool("counter", {})
                replicas.append((r.structuredContent or {}).get("replica"))
            return {
                "session": session_id() is not None,
                "features": features,
                "replicas": replicas,
                "errors": errors,
            }


if __name__ == "__main__":
    main(run, "configuration_probe.py <mcp url>")

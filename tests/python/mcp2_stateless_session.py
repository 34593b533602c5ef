"""The official Python SDK 2.x (PyPI `mcp` 2.3.0, pinned in
tests/requirements-mcp2.txt) against a tether endpoint that serves MCP
2026-07-28: its `mcp.Client` with the default options (`mode="auto"`:
`server/discover` first, then the era it offers) lists the tools, calls
`echo`, `long_task` with a progress callback, and `ask_model` and
`test_input_required_result_elicitation`, whose questions (sampling,
elicitation) come back as `input_required` results that the SDK answers
and retries, and `test_header_param`, whose argument the SDK mirrors in
an `Mcp-Param-Region` header. Then resources (a static one, a binary one,
one from a template, completion of the template's `{id}`), prompts (a plain
one, one with arguments and their completion, one that asks through
`input_required`) and a subscription: the era's `Client.listen()` on
`demo://note` and on the tool list, where the update of the note made by
the `set_note` tool, and the change of the tool list announced by
`test_trigger_tool_change`, must reach the listener (after which the tools
are listed again).

With `--mode legacy` the same client is told to take the initialize
handshake (a session): the same steps, where the subscription is the old
`resources/subscribe` with the updates on the session's stream, plus two
`counter` calls that only count within one session.

It prints one JSON summary line; the Rust test
(`tests/tests/new_era_clients.rs`) judges it.

Usage: python mcp2_stateless_session.py <mcp url> [--mode auto|legacy]
"""

import argparse
import asyncio
import base64
import importlib.metadata
import json
import warnings

import mcp.types as types
from mcp import Client
from mcp.client.subscriptions import ResourceUpdated, ToolsListChanged

LIMIT_SECS = 30
UPDATE_SECS = 10
NOTE_URI = "demo://note"
TEMPLATE_URI = "test://template/42/data"
# Values of a tool argument that 2026-07-28 clients mirror in a header
# (`Mcp-Param-Region`): plain, and one the client must encode.
REGIONS = ["eu-west-1", "Zürich"]


def texts(result) -> list[str]:
    return [c.text for c in result.content if isinstance(c, types.TextContent)]


def resource_texts(result) -> list[str]:
    return [c.text for c in result.contents if isinstance(c, types.TextResourceContents)]


def prompt_texts(result) -> list[str]:
    return [m.content.text for m in result.messages if isinstance(m.content, types.TextContent)]


async def run(url: str, mode: str) -> dict:
    sampled: list[str] = []
    elicited: list[str] = []
    progress: list[float] = []
    errors: list[str] = []
    updates: list[str] = []
    listened: list[str] = []
    list_changes: list[str] = []
    updated = asyncio.Event()
    tools_changed = asyncio.Event()

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
        if "context" in params.message:
            return types.ElicitResult(action="accept", content={"context": "from the python client"})
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async def on_message(message) -> None:
        # A session's updates, and (the SDK passes them on here too) those
        # of the era's listen streams.
        if isinstance(message, Exception):
            errors.append(repr(message))
        elif isinstance(message, types.ResourceUpdatedNotification):
            updates.append(message.params.uri)
            updated.set()
        elif isinstance(message, types.ToolListChangedNotification):
            list_changes.append(message.method)
            tools_changed.set()

    async with Client(
        url,
        mode=mode,
        sampling_callback=on_sampling,
        elicitation_callback=on_elicitation,
        message_handler=on_message,
    ) as client:
        tools = await client.list_tools()
        echo = await client.call_tool("echo", {"text": "hi"})
        long = await client.call_tool("long_task", {"steps": 3, "step_ms": 10}, progress_callback=on_progress)
        asked = await client.call_tool("ask_model", {"question": "What is 2+2?"})
        elicit = await client.call_tool("test_input_required_result_elicitation", {})
        regions = [
            texts(await client.call_tool("test_header_param", {"region": region})) for region in REGIONS
        ]
        resources = await client.list_resources()
        templates = await client.list_resource_templates()
        static = await client.read_resource("test://static-text")
        templated = await client.read_resource(TEMPLATE_URI)
        binary = await client.read_resource("test://static-binary")
        completed_template = await client.complete(
            types.ResourceTemplateReference(type="ref/resource", uri="test://template/{id}/data"),
            {"name": "id", "value": "4"},
        )
        prompts = await client.list_prompts()
        simple = await client.get_prompt("test_simple_prompt")
        with_args = await client.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
        asking_prompt = await client.get_prompt("test_input_required_result_prompt")
        completed_prompt = await client.complete(
            types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments"),
            {"name": "arg1", "value": "te"},
        )
        before = await client.read_resource(NOTE_URI)
        note = f"from the python client ({mode})"
        counts: list[dict] = []
        if mode == "legacy":
            for _ in range(2):
                counts += [json.loads(t) for t in texts(await client.call_tool("counter", {}))]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await client.subscribe_resource(NOTE_URI)
            set_note = await client.call_tool("set_note", {"text": note})
            await asyncio.wait_for(updated.wait(), UPDATE_SECS)
            await client.call_tool("test_trigger_tool_change", {})
            await asyncio.wait_for(tools_changed.wait(), UPDATE_SECS)
            honored: list[str] = []
            honored_tools = False
        else:
            async with client.listen(tools_list_changed=True, resource_subscriptions=[NOTE_URI]) as sub:
                honored = list(sub.honored.resource_subscriptions or [])
                honored_tools = bool(sub.honored.tools_list_changed)
                set_note = await client.call_tool("set_note", {"text": note})
                event = await asyncio.wait_for(anext(sub), UPDATE_SECS)
                listened.append(event.uri if isinstance(event, ResourceUpdated) else repr(event))
                await client.call_tool("test_trigger_tool_change", {})
                event = await asyncio.wait_for(anext(sub), UPDATE_SECS)
                listened.append("tools/list_changed" if isinstance(event, ToolsListChanged) else repr(event))
        tools_again = await client.list_tools()
        after = await client.read_resource(NOTE_URI)
        return {
            "sdk_version": importlib.metadata.version("mcp"),
            "mode": mode,
            "protocol_version": str(client.protocol_version),
            "server_name": client.server_info.name if client.server_info else None,
            "tools": sorted(t.name for t in tools.tools),
            "echo": texts(echo),
            "long_task": texts(long),
            "progress": progress,
            "ask_model": texts(asked),
            "sampled": sampled,
            "elicitation": texts(elicit),
            "elicited": elicited,
            "regions": regions,
            "counter": counts,
            "resources": sorted(r.uri for r in resources.resources),
            "templates": sorted(t.uri_template for t in templates.resource_templates),
            "static_text": resource_texts(static),
            "template_read": [json.loads(t) for t in resource_texts(templated)],
            "binary": [
                {"mime_type": c.mime_type, "bytes": len(base64.b64decode(c.blob))}
                for c in binary.contents
                if isinstance(c, types.BlobResourceContents)
            ],
            "template_completion": completed_template.completion.values,
            "prompt_completion": completed_prompt.completion.values,
            "prompts": sorted(p.name for p in prompts.prompts),
            "simple_prompt": prompt_texts(simple),
            "prompt_with_arguments": prompt_texts(with_args),
            "input_required_prompt": prompt_texts(asking_prompt),
            "note_before": resource_texts(before),
            "set_note": texts(set_note),
            "honored": honored,
            "honored_tools_list_changed": honored_tools,
            "list_changes": list_changes,
            "tools_again": len(tools_again.tools),
            "updates": updates,
            "listened": listened,
            "note_after": resource_texts(after),
            "note_set": note,
            "errors": errors,
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--mode", choices=["auto", "legacy"], default="auto")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(asyncio.wait_for(run(args.url, args.mode), LIMIT_SECS))))

"""What the tests' Python SDK sessions read off a tool result, in one place
(imported by the session scripts beside this file)."""

import mcp.types as types


def structured(result: types.CallToolResult) -> dict:
    """The structured content of a successful call (a tool error raises)."""
    if result.isError:
        raise RuntimeError(f"tool error: {result.content}")
    return result.structuredContent or {}


def text_of(result: types.CallToolResult) -> str:
    """The text of a call's content blocks, joined."""
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))

"""`agentty mcp` driven by the official SDK's client over stdio."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any, TextIO

import pytest

from tests.helpers.cli import AGENTTY, agentty_json

mcp = pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402


def _payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        data = result.structured_content
        return dict(data.get("result", data))
    return dict(json.loads(result.content[0].text))


payload = _payload


@contextlib.asynccontextmanager
async def mcp_client(
    env: dict[str, str] | None = None, errlog: TextIO | None = None
) -> AsyncIterator[ClientSession]:
    """`agentty mcp` as an agent's MCP client runs it: a child over stdio, initialized."""
    params = StdioServerParameters(command=AGENTTY, args=["mcp"], env=env or dict(os.environ))
    opened = stdio_client(params) if errlog is None else stdio_client(params, errlog=errlog)
    async with opened as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def test_mcp_drives_a_python_repl_to_an_answer() -> None:
    params = StdioServerParameters(command=AGENTTY, args=["mcp"], env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert {
            "start",
            "list",
            "get",
            "type_text",
            "press_keys",
            "paste",
            "wait",
            "resize",
            "signal",
            "kill",
            "logs",
        } <= set(tools)
        get_hints, kill_hints = tools["get"].annotations, tools["kill"].annotations
        assert get_hints is not None and get_hints.read_only_hint is True
        assert kill_hints is not None and kill_hints.destructive_hint is True

        started = _payload(await session.call_tool("start", {"argv": [sys.executable, "-q"]}))
        sid = started["id"]
        ready = _payload(await session.call_tool("wait", {"text": ">>>", "timeout": 20}))
        assert ready["fired"] == "text"
        sent = _payload(await session.call_tool("type_text", {"text": "6*7", "enter": True}))
        answer = _payload(
            await session.call_tool(
                "wait", {"regex": "^42$", "changed_since": sent["seq"], "timeout": 20}
            )
        )
        assert answer["fired"] in ("regex", "changed")
        answer = _payload(await session.call_tool("wait", {"regex": "^42$", "timeout": 20}))
        assert "42" in answer["screen"].splitlines()
        timed_out = _payload(await session.call_tool("wait", {"text": "never", "timeout": 0.2}))
        assert timed_out["timedOut"] is True and ">>>" in timed_out["screen"]
        listed = _payload(await session.call_tool("list", {}))
        assert [s["id"] for s in listed["sessions"]] == [sid]
        bad = await session.call_tool("press_keys", {"keys": ["Nope"]})
        assert bad.is_error and "unknown key" in str(bad.content)
        killed = _payload(await session.call_tool("kill", {"session": sid}))
        assert killed["id"] == sid
    assert agentty_json("status")["sessions"][0]["status"] == "exited"


async def test_a_screen_says_its_size_title_alternate_screen_and_modes() -> None:
    """What `get --json` says of the terminal, a model reads too: a full-screen program's
    own screen, the title it set, whether a paste arrives bracketed."""
    from mcp.types import TextContent

    script = "printf '\\033]2;build: 3/7\\007\\033[?1049h\\033[?2004hfull'; exec sleep 30"
    async with mcp_client() as session:
        argv = ["sh", "-c", script]
        sid = _payload(await session.call_tool("start", {"argv": argv, "cols": 100}))["id"]
        try:
            shown = _payload(await session.call_tool("wait", {"text": "full", "timeout": 20}))
            assert shown["size"] == {"cols": 100, "rows": 24}
            assert (shown["altScreen"], shown["title"]) == (True, "build: 3/7")
            assert shown["modes"]["bracketedPaste"] is True
            assert shown["modes"]["mouse"] is False
            block = (await session.call_tool("get", {})).content[1]
            assert isinstance(block, TextContent)
            meta = json.loads(block.text)  # (what a model reads)
            assert meta["altScreen"] is True and meta["title"] == "build: 3/7"
        finally:
            _payload(await session.call_tool("kill", {"session": sid}))
        plain = _payload(await session.call_tool("start", {"argv": ["sh", "-c", "exec sleep 30"]}))
        try:
            seen = _payload(await session.call_tool("get", {}))
            assert seen["altScreen"] is False and "title" not in seen  # (none set: not said)
        finally:
            _payload(await session.call_tool("kill", {"session": plain["id"]}))


async def test_mcp_wait_changed_since_zero() -> None:
    """0 is a fresh session's seq: a wait on it is a wait, not "wait needs a condition"."""
    params = StdioServerParameters(command=AGENTTY, args=["mcp"], env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        argv = ["sh", "-c", "echo ready; exec sleep 30"]
        sid = _payload(await session.call_tool("start", {"argv": argv}))["id"]
        try:
            answer = _payload(await session.call_tool("wait", {"changed_since": 0, "timeout": 20}))
            assert answer["fired"] == "changed"
            bad = await session.call_tool("wait", {"timeout": 1})
            assert bad.is_error and "needs a condition" in str(bad.content)
        finally:
            _payload(await session.call_tool("kill", {"session": sid}))


async def test_text_blocks_escape_what_is_not_printable() -> None:
    """A program's argv (the `command` field), as a model reads the JSON block: JSON escapes
    C0 controls itself, but C1 controls (U+009B is CSI) and bidi overrides (U+202E) came
    through as they were; they are escaped now, and the block decodes to the same value."""
    from mcp.types import TextContent

    hostile = "\u009b2J\u202eevil"
    async with mcp_client() as session:
        started = await session.call_tool("start", {"argv": ["sh", "-c", "sleep 30", hostile]})
        listed = await session.call_tool("list", {})
        for result in (started, listed):
            texts = [block.text for block in result.content if isinstance(block, TextContent)]
            assert all("\u009b" not in t and "\u202e" not in t for t in texts), texts
            assert any("\\u009b2J\\u202eevil" in t for t in texts), texts
        first = started.content[0]
        assert isinstance(first, TextContent)
        decoded = json.loads(first.text)
        assert hostile in json.dumps(decoded, ensure_ascii=False)
        await session.call_tool("kill", {})

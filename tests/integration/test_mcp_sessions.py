"""Default sessions per MCP connection, the screen block, and the CLI's options over MCP."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

pytest.importorskip("mcp")

from mcp_types import TextContent

from tests.helpers.cli import agentty_json
from tests.integration.test_mcp import mcp_client, payload


async def test_two_clients_keep_separate_default_sessions() -> None:
    """Client A's type_text without `session` goes to A's session, whoever started one since;
    the home's active pointer (the CLI's) is never moved."""
    before = agentty_json("status")["active"]
    async with mcp_client() as a, mcp_client() as b:
        sid_a = payload(await a.call_tool("start", {"argv": ["cat"]}))["id"]
        sid_b = payload(await b.call_tool("start", {"argv": ["cat"]}))["id"]
        payload(await a.call_tool("type_text", {"text": "from-a", "enter": True}))
        payload(await b.call_tool("type_text", {"text": "from-b", "enter": True}))
        seen_a = payload(await a.call_tool("wait", {"text": "from-a", "timeout": 20}))
        seen_b = payload(await b.call_tool("wait", {"text": "from-b", "timeout": 20}))
        assert seen_a["id"] == sid_a and "from-b" not in seen_a["screen"]
        assert seen_b["id"] == sid_b and "from-a" not in seen_b["screen"]
        listed = payload(await a.call_tool("list", {}))
        assert listed["default"] == sid_a
        assert {s["id"]: s["default"] for s in listed["sessions"]} == {sid_a: True, sid_b: False}
        assert agentty_json("status")["active"] == before
        # attach adopts another session for this connection only.
        payload(await a.call_tool("attach", {"session": sid_b}))
        assert payload(await a.call_tool("get", {}))["id"] == sid_b
        assert payload(await b.call_tool("get", {}))["id"] == sid_b
        assert agentty_json("status")["active"] == before


async def test_the_screen_is_a_plain_text_block_next_to_a_json_block() -> None:
    async with mcp_client() as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        for tool in tools.values():
            for name, prop in tool.input_schema.get("properties", {}).items():
                assert prop.get("description"), (tool.name, name)
            assert tool.output_schema and tool.output_schema.get("properties"), tool.name
            assert "\n    " not in (tool.description or ""), tool.name  # no docstring indent
        assert tools["start"].input_schema["properties"]["argv"]["minItems"] == 1
        assert tools["press_keys"].input_schema["properties"]["keys"]["minItems"] == 1
        signal_names = json.dumps(tools["signal"].input_schema)
        assert '"enum"' in signal_names and '"KILL"' in signal_names
        assert "Ctrl+A..Ctrl+Z" in json.dumps(tools["press_keys"].input_schema)
        get_output = tools["get"].output_schema or {}
        assert set(get_output["properties"]) >= {"screen", "seq", "cursor"}

        art = "printf '+----+\\n|  a |\\n|  b |\\n+----+\\n'; exec cat"
        payload(await session.call_tool("start", {"shell": art}))
        result = await session.call_tool("wait", {"text": "+----+", "timeout": 20})
        result = await session.call_tool("wait", {"stable_ms": 100, "timeout": 20})
        text_block, meta_block = result.content
        assert isinstance(text_block, TextContent) and isinstance(meta_block, TextContent)
        screen, meta = text_block.text, json.loads(meta_block.text)
        assert screen.splitlines()[:4] == ["+----+", "|  a |", "|  b |", "+----+"]
        assert "screen" not in meta and {"seq", "cursor", "input", "exited"} <= set(meta)
        assert meta["input"]["state"] in ("reading", "busy")


async def test_start_get_list_record_signal_resize_logs(tmp_path: Any) -> None:
    async with mcp_client() as session:
        script = (
            "import os; print(os.environ['GREETING'], os.getcwd())\n"
            "for i in range(300): print(f'row{i}')\n"
            "input()"
        )
        args = {
            "argv": [sys.executable, "-c", script],
            "env": {"GREETING": "hello-env"},
            "cwd": str(tmp_path),
            "cols": 100,
            "rows": 30,
            "record": True,
        }
        sid = payload(await session.call_tool("start", args))["id"]
        payload(await session.call_tool("wait", {"text": "row299", "timeout": 20}))
        first = payload(
            await session.call_tool("get", {"scrollback": True, "offset": 0, "limit": 3})
        )
        assert first["screen"].splitlines() == [f"hello-env {tmp_path}", "row0", "row1"]
        assert first["firstLine"] == 0 and first["totalLines"] == 301
        last = payload(await session.call_tool("get", {"scrollback": True, "limit": 2}))
        assert last["screen"].splitlines() == ["row298", "row299"] and last["firstLine"] == 299
        found = payload(await session.call_tool("get", {"search": "row15"}))
        assert [m["text"] for m in found["matches"]] == ["row15"] + [f"row15{i}" for i in range(10)]
        tail = payload(await session.call_tool("get", {"lines": 2}))
        assert tail["screen"].splitlines() == ["row298", "row299"]
        assert (tail["firstLine"], tail["totalLines"]) == (299, 301)
        # With `lines`, lines keep their place in the history (0 = the oldest): they were
        # numbered from the first of the last N, which no `offset` names.
        both = payload(await session.call_tool("get", {"lines": 3, "scrollback": True}))
        assert both["screen"].splitlines() == ["row297", "row298", "row299"]
        assert (both["firstLine"], both["totalLines"]) == (298, 301)
        near = payload(await session.call_tool("get", {"lines": 50, "search": "row25"}))
        assert [(m["line"], m["text"]) for m in near["matches"]] == [
            (i + 1, f"row{i}") for i in range(250, 260)
        ]
        assert near["screen"].splitlines()[0] == "251: row250"
        again = payload(await session.call_tool("get", {"scrollback": True, "offset": 251}))
        assert again["screen"].splitlines()[0] == "row250"  # the number names the line
        inside = payload(await session.call_tool("get", {"lines": 3, "offset": 0, "limit": 1}))
        assert inside["screen"] == "row297" and inside["firstLine"] == 298  # (within the 3)
        full = payload(await session.call_tool("get", {}))
        assert len(full["screen"].splitlines()) <= 30

        listed = payload(await session.call_tool("list", {}))["sessions"]
        assert listed[0]["input"]["state"] == "reading" and listed[0]["lastActiveAt"]
        resized = payload(await session.call_tool("resize", {"cols": 90, "rows": 20}))
        assert (resized["cols"], resized["rows"]) == (90, 20)
        stopped = payload(await session.call_tool("record", {"on": False}))
        assert stopped["recording"] is False and stopped["path"].endswith(".cast")
        logs = payload(await session.call_tool("logs", {}))
        assert logs["path"].endswith(f"{sid}.log")
        sent = payload(await session.call_tool("signal", {"name": "INT"}))
        assert sent["signal"] == "SIGINT"
        ended = payload(await session.call_tool("wait", {"exit": True, "timeout": 20}))
        assert ended["exited"] is True


async def test_kill_takes_the_grace_per_step_as_the_cli_does() -> None:
    """`timeout`: the seconds each step (HUP, TERM) is given, as `kill --timeout` (the tool
    took none: a program ignoring both took 4 s to end, whatever the agent wanted)."""
    import time

    async with mcp_client() as session:
        argv = ["sh", "-c", "trap '' HUP TERM; echo up; while :; do sleep 1; done"]
        payload(await session.call_tool("start", {"argv": argv}))
        payload(await session.call_tool("wait", {"text": "up", "timeout": 30}))
        refused = await session.call_tool("kill", {"timeout": 61.0})
        assert (
            refused.is_error and refused.structured_content["error"]["code"] == "invalid_argument"
        )
        began = time.monotonic()
        killed = payload(await session.call_tool("kill", {"timeout": 0.2}))
        assert killed["escalated"] == ["SIGHUP", "SIGTERM", "SIGKILL"], killed
        assert time.monotonic() - began < 3.0  # the default grace alone is 2 s a step


async def test_list_can_leave_out_the_ended_sessions() -> None:
    """`list` gave every session since the last gc: 231 records, 46 kB, each call (an
    outside round with 200 short sessions); `running` lists only the live ones."""
    async with mcp_client() as session:
        for _ in range(3):
            done = payload(await session.call_tool("start", {"argv": ["true"]}))["id"]
            payload(await session.call_tool("wait", {"session": done, "exit": True}))
        live = payload(await session.call_tool("start", {"argv": ["cat"]}))["id"]
        every = payload(await session.call_tool("list", {}))["sessions"]
        assert len(every) == 4
        running = payload(await session.call_tool("list", {"running": True}))["sessions"]
        assert [r["id"] for r in running] == [live], running
        payload(await session.call_tool("kill", {}))


async def test_a_long_wait_reports_progress_to_a_client_that_asks() -> None:
    """A wait of minutes sent no progress: a client that times requests out (and counts
    again on progress) failed a long build's wait as a transport error (an outside
    round). One that asks hears how long the wait has gone on, every 5 s."""
    heard: list[tuple[float, float | None, str | None]] = []

    async def hear(progress: float, total: float | None, message: str | None) -> None:
        heard.append((progress, total, message))

    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": ["cat"]}))
        long_wait: dict[str, Any] = {"text": "NEVER", "timeout": 6}
        waited = await session.call_tool("wait", long_wait, progress_callback=hear)
        assert payload(waited)["timedOut"] is True
        assert heard and heard[0][1] == 6 and 4.5 <= heard[0][0] <= 6, heard
        said = str(heard[0][2])
        assert said.startswith("waiting: ") and said.endswith(" s of at most 6"), heard
        quiet = await session.call_tool("wait", {"text": "NEVER", "timeout": 0.2})
        assert payload(quiet)["timedOut"] is True  # (no progress asked: none sent)
        payload(await session.call_tool("kill", {}))


async def test_a_wait_that_fires_as_the_program_ends_does_not_contradict_itself() -> None:
    """The program was gone (its input state `exited`) before its SIGCHLD was handled: the
    answer said `exited: false`, `exitCode: null` beside it, in 3 of 20 such waits."""
    async with mcp_client() as session:
        for _ in range(40):
            payload(await session.call_tool("start", {"shell": "sleep 0.05; echo DONE"}))
            said = payload(
                await session.call_tool("wait", {"regex": "^DONE$", "exit": True, "timeout": 20})
            )
            if said["input"]["state"] == "exited":
                assert said["exited"] is True and said["exitCode"] == 0, said

"""MCP: typed text and named keys in one call (`send`), and input with its wait in one call."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from mcp_types import TextContent

from tests.integration.test_mcp import mcp_client, payload


def _text(block: object) -> str:
    assert isinstance(block, TextContent), block
    return block.text


async def test_type_text_with_its_wait_returns_the_answer() -> None:
    """The wait counts only output after the input: the screen that fired holds the answer,
    and a regex anchored to the whole answer line is not satisfied by the echoed command."""
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": [sys.executable, "-q"]}))
        payload(await session.call_tool("wait", {"text": ">>>", "timeout": 30}))
        result = await session.call_tool(
            "type_text",
            {"text": "print(6 * 7)", "enter": True, "wait": {"regex": "^42$", "timeout": 30}},
        )
        sent = payload(result)
        assert isinstance(sent["seq"], int)
        waited = sent["waited"]
        assert waited["fired"] == "regex", waited
        assert "42" in waited["screen"].splitlines()
        assert _text(result.content[0]) == waited["screen"]  # the screen is its own text block
        payload(await session.call_tool("kill", {}))


async def test_type_text_with_its_wait_is_not_satisfied_by_the_echo() -> None:
    """The typed line holds the text waited for; the program prints it 0.5 s later. The echo
    is masked, so the screen that fired holds the output line."""
    typed = "x = 'MCP-OK'; import time; time.sleep(0.5); print(x)"
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": [sys.executable, "-q"]}))
        payload(await session.call_tool("wait", {"text": ">>>", "timeout": 30}))
        result = await session.call_tool(
            "type_text",
            {"text": typed, "enter": True, "wait": {"text": "MCP-OK", "timeout": 30}},
        )
        waited = payload(result)["waited"]
        assert waited["fired"] == "text", waited
        assert waited["screen"].splitlines()[:2] == [">>> " + typed, "MCP-OK"], waited
        payload(await session.call_tool("kill", {}))


async def test_a_wait_after_input_passes_over_the_last_result_and_says_where_it_matched() -> None:
    """An outside round: the last command's result still on screen fired the wait for the
    next one's at once, and the result did not say where it matched (the worker knew)."""
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": [sys.executable, "-q"]}))
        payload(await session.call_tool("wait", {"text": ">>>", "timeout": 30}))
        first = {"text": "print('RESULT: 1')", "enter": True, "wait": {"input": True}}
        payload(await session.call_tool("type_text", first))
        typed = "import time; time.sleep(0.5); print('RESULT: 2')"
        then = {"regex": "^RESULT: .*", "timeout": 30}
        result = await session.call_tool("type_text", {"text": typed, "enter": True, "wait": then})
        waited = payload(result)["waited"]
        assert waited["fired"] == "regex", waited
        row = waited["match"]["row"]
        assert waited["screen"].splitlines()[row] == "RESULT: 2", waited
        assert waited["match"]["col"] == 0
        payload(await session.call_tool("kill", {}))


async def test_send_edits_a_file_in_vim_in_one_call(tmp_path: Path) -> None:
    if not Path("/usr/bin/vim").exists():
        pytest.skip("vim is not installed")
    target = tmp_path / "notes.txt"
    async with mcp_client() as session:
        argv = ["vim", "-Nu", "NONE", "-i", "NONE", str(target)]
        payload(await session.call_tool("start", {"argv": argv}))
        payload(await session.call_tool("wait", {"input": True, "timeout": 30}))
        sent = payload(
            await session.call_tool(
                "send",
                {
                    "args": ["i", "hello from send", "Esc", ":wq", "Enter"],
                    "wait": {"exit": True, "timeout": 30},
                },
            )
        )
        assert sent["waited"]["fired"] == "exit", sent
    assert target.read_text() == "hello from send\n"


async def test_send_refuses_a_key_that_names_none_and_sends_nothing() -> None:
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": ["cat"]}))
        bad = await session.call_tool("send", {"args": ["typed", "Ctrl+Banana"]})
        assert bad.is_error
        assert "Ctrl+Banana" in _text(bad.content[0])
        screen = payload(await session.call_tool("get", {}))
        assert "typed" not in screen["screen"]
        payload(await session.call_tool("kill", {}))


async def test_input_with_a_bad_wait_is_refused_before_anything_is_typed() -> None:
    """A usage error means nothing was sent: a model that retries must not type twice."""
    bad_waits: list[tuple[str, dict[str, Any]]] = [
        ("type_text", {"text": "T1", "enter": True, "wait": {"regex": "(["}}),
        ("press_keys", {"keys": ["K", "2", "Enter"], "wait": {"text": "q", "timeout": -3}}),
        ("send", {"args": ["S3", "Enter"], "wait": {}}),
        ("paste", {"text": "P4\n", "wait": {"stable_ms": 0}}),
        ("type_text", {"text": "T5", "enter": True, "wait": {"text": "x", "timout": 1}}),
    ]
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": ["cat"]}))
        for tool, arguments in bad_waits:
            bad = await session.call_tool(tool, arguments)
            assert bad.is_error, (tool, arguments)
            message, code = _text(bad.content[0]).splitlines()  # one line, and its code
            assert message.startswith("agentty: error: ") and code.startswith("code: ")
        assert "timout" in _text(bad.content[0])
        screen = payload(await session.call_tool("get", {}))
        assert screen["screen"].strip() == "", screen["screen"]
        payload(await session.call_tool("kill", {}))


async def test_wait_takes_the_seq_an_input_returned_as_after() -> None:
    """`seq` says "pass to wait(after=seq)": the wait tool takes it."""
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": [sys.executable, "-q"]}))
        payload(await session.call_tool("wait", {"text": ">>>", "timeout": 30}))
        seq = payload(await session.call_tool("type_text", {"text": "6 * 7", "enter": True}))
        waited = payload(
            await session.call_tool("wait", {"after": seq["seq"], "regex": "^42$", "timeout": 30})
        )
        assert waited["fired"] == "regex", waited
        payload(await session.call_tool("kill", {}))


async def test_get_ansi_is_the_rows_shown_in_a_block_of_their_own() -> None:
    """`ansi` held the screen's last `limit` rows whatever was asked (with scrollback and
    an offset, lines 99..101 beside a page of lines 1..3), and no text block carried it."""
    script = "for i in $(seq 1 100); do printf '\\033[31mline %d\\033[0m\\n' $i; done; sleep 30"
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": ["sh", "-c", script]}))
        payload(await session.call_tool("wait", {"text": "line 100", "timeout": 30}))
        result = await session.call_tool("get", {"ansi": True, "limit": 3})
        shown = payload(result)
        assert shown["screen"].splitlines() == ["line 98", "line 99", "line 100"]
        assert _text(result.content[1]) == shown["ansi"]
        rows = shown["ansi"].splitlines()
        assert rows == [f"\x1b[0;31mline {n}\x1b[0m" for n in (98, 99, 100)], rows
        bad = await session.call_tool("get", {"ansi": True, "scrollback": True, "offset": 0})
        assert bad.is_error and "ansi" in _text(bad.content[0])
        payload(await session.call_tool("kill", {}))


async def test_a_wait_that_fails_after_the_input_says_the_input_was_sent() -> None:
    """The wait is checked before anything is sent, but it can still fail once the input is
    out (a regex that runs out of time on the new screen, the program ending): the error
    says the input was sent, with its seq, or a caller that fixes the wait sends it twice."""
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": ["cat"]}))
        catastrophic = {"regex": "(a+)+$", "timeout": 10}
        typed = "a" * 40 + "!"  # (said back by cat: new output, which the regex reads)
        result = await session.call_tool(
            "type_text", {"text": typed, "enter": True, "wait": catastrophic}
        )
        assert result.is_error
        error = result.structured_content["error"]
        assert error["code"] == "regex_timeout" and error["inputSent"] is True, error
        assert isinstance(error["seq"], int)
        lines = _text(result.content[0]).splitlines()
        assert lines[1] == "code: regex_timeout"
        assert lines[2].startswith(f"the input was sent (seq {error['seq']})"), lines
        screen = payload(await session.call_tool("get", {}))
        assert screen["screen"].splitlines()[:2] == [typed, typed]  # it was typed
        payload(await session.call_tool("kill", {}))

        argv = ["sh", "-c", "read x; exit 3"]
        payload(await session.call_tool("start", {"argv": argv}))
        payload(await session.call_tool("wait", {"input": True, "timeout": 30}))
        never = {"text": "NEVER", "timeout": 30}
        result = await session.call_tool("type_text", {"text": "hi", "enter": True, "wait": never})
        waited = payload(result)["waited"]  # (its end made the wait impossible: the last screen)
        assert waited["exited"] is True and waited["exitCode"] == 3, waited
        assert waited["screen"].splitlines()[-1] == "hi" and "exited (code 3)" in waited["message"]


async def test_the_text_block_of_an_input_with_its_wait_keeps_the_seq_from_before() -> None:
    """Each input tool returns the seq from before its input; its wait's screen has its own,
    in `waited` (it overwrote the first in the text block a model reads)."""
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": ["cat"]}))
        result = await session.call_tool(
            "type_text", {"text": "hello", "enter": True, "wait": {"text": "hello"}}
        )
        data = result.structured_content
        meta = json.loads(_text(result.content[1]))
        assert meta["seq"] == data["seq"] and meta["waited"]["seq"] == data["waited"]["seq"]
        assert meta["waited"]["seq"] > meta["seq"]
        payload(await session.call_tool("kill", {}))


async def test_get_ansi_is_bounded_as_the_screen_is() -> None:
    """The screen block's rows are cut at MAX_LINE_CHARS; the ansi block's were not (an
    attack round: a 1000x1000 screen of cells coloured each its own way came to 4 MB).
    They are cut alike now, and past MAX_ANSI_CHARS the rows go without their colours."""
    from agentty_core.cli.mcp.schemas import MAX_LINES
    from agentty_core.cli.mcp.view import MAX_ANSI_CHARS

    script = (
        "import sys\n"
        "for r in range(210):\n"
        "    sys.stdout.write(''.join(f'\\033[38;5;{c % 256};48;5;{(c + r) % 256}m#'"
        " for c in range(600)) + '\\033[0m\\r\\n')\n"
        "print('DONE', flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    async with mcp_client() as session:
        argv = [sys.executable, "-c", script]
        payload(await session.call_tool("start", {"argv": argv, "cols": 700, "rows": 220}))
        payload(await session.call_tool("wait", {"text": "DONE", "timeout": 60}))
        shown = payload(await session.call_tool("get", {"ansi": True}))
        screen, rows = shown["screen"].split("\n"), shown["ansi"].split("\n")
        assert len(rows) == len(screen) == MAX_LINES
        assert [_without_sgr(row) for row in rows] == screen
        assert len(shown["ansi"]) <= MAX_ANSI_CHARS + len(shown["screen"]), len(shown["ansi"])
        styled = [row for row in rows if "\x1b" in row]
        assert styled and all(row.endswith("\x1b[0m") for row in styled)
        assert rows[-1] == screen[-1] == "DONE"
        assert "colours left out from row" in shown["note"], shown["note"]
        payload(await session.call_tool("kill", {}))


def _without_sgr(row: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;:]*m", "", row)


async def test_a_wait_the_end_made_impossible_answers_with_the_last_screen() -> None:
    """The CLI prints the last screen (`--json`: fired null, exited true); the tool gave a
    bare not_running error, and a model needed another call to see why."""
    async with mcp_client() as session:
        argv = ["sh", "-c", "echo bye; sleep 0.3; exit 3"]
        payload(await session.call_tool("start", {"argv": argv}))
        result = await session.call_tool("wait", {"text": "NEVER", "timeout": 20})
        waited = payload(result)
        assert not result.is_error
        assert waited["screen"].splitlines()[0] == "bye"
        assert (waited["exited"], waited["exitCode"], waited.get("fired")) == (True, 3, None)
        assert not waited["timedOut"] and "exited (code 3)" in waited["message"], waited
        assert _text(result.content[0]) == waited["screen"]


async def test_a_send_cut_short_by_the_end_says_part_of_it_was_sent() -> None:
    """Each text or key run of `send` goes as a request of its own: one refused after
    others went out said only "exited", and a caller would send them all again."""
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": ["sh", "-c", "read -r x; exit 0"]}))
        payload(await session.call_tool("wait", {"input": True, "timeout": 20}))
        args = ["x", "Enter", *(["more", "Enter"] * 50)]
        result = await session.call_tool("send", {"args": args})
        assert result.is_error
        error = result.structured_content["error"]
        assert error["code"] == "not_running" and error["inputSent"] is True, error
        assert error["partly"] is True, error
        assert "part of the input was sent" in _text(result.content[0]), _text(result.content[0])


PART_READER = (
    "import os, sys, tty; tty.setraw(0); n = 0\n"
    "print('READY', flush=True)\n"
    "while n < 700_000: n += len(os.read(0, 65536))\n"
)


async def test_a_text_cut_short_in_its_parts_says_part_of_it_was_sent() -> None:
    """A text over one request goes in parts: one whose program ended after some of them
    went out said so in its message only ("N of M bytes were sent"), and a program reading
    the structured error would type all of it again (a review)."""
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": [sys.executable, "-c", PART_READER]}))
        first = payload(await session.call_tool("wait", {"text": "READY", "timeout": 20}))
        result = await session.call_tool("type_text", {"text": "x" * 3_000_000})
        assert result.is_error, result
        error = result.structured_content["error"]
        assert error["code"] == "not_running" and "bytes were sent" in error["message"], error
        assert error["inputSent"] is True and error["partly"] is True, error
        assert error["seq"] >= first["seq"], (error, first)
        assert "part of the input was sent" in _text(result.content[0])


async def test_concurrent_sends_to_one_session_do_not_interleave() -> None:
    """Each `send` is several requests; sends made at once by one client went in between
    each other's (one call's Enter after another's text)."""
    async with mcp_client() as session:
        argv = ["sh", "-c", "cat >/dev/null"]  # (the echo alone: no output in between)
        start = {"argv": argv, "cols": 200, "rows": 40, "name": "sink"}
        sid = payload(await session.call_tool("start", start))["id"]
        payload(await session.call_tool("wait", {"input": True, "timeout": 20}))
        names: list[dict[str, str]] = [{}, {"session": sid}, {"session": "sink"}]
        names.append({"session": sid[:5]})  # (however a call names it: one session)
        calls = [
            session.call_tool(
                "send", {"args": [f"<{n:02}", "a", f"{n:02}>", "Enter"], **names[n % 4]}
            )
            for n in range(30)
        ]
        for result in await asyncio.gather(*calls):
            payload(result)
        payload(await session.call_tool("wait", {"stable_ms": 500, "timeout": 20}))
        screen = payload(await session.call_tool("get", {"scrollback": True}))["screen"]
        lines = [line for line in screen.splitlines() if line]
        assert len(lines) == 30, screen
        assert all(line[1:3] == line[4:6] and len(line) == 7 for line in lines), lines
        payload(await session.call_tool("kill", {}))

"""The MCP `run` tool, driven by the official SDK's stdio client: a program run to its end
in a session of its own, its prompts answered, nothing left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.helpers.cli import agentty_json, wait_until
from tests.helpers.spawner import gone
from tests.integration.test_mcp import mcp_client, payload

mcp = pytest.importorskip("mcp")

INSTALLER = r"""
import getpass
name = input("Name: ")
secret = getpass.getpass("Password: ")
sure = input("Continue? [y/n] ")
print(f"hello {name}, {len(secret)} characters, {sure}")
raise SystemExit(7)
"""


def left() -> list[dict[str, Any]]:
    return list(agentty_json("status")["sessions"])


def error_code(result: Any) -> str:
    assert result.is_error, result.content
    return str(result.structured_content["error"]["code"])


async def test_an_installer_is_answered_and_its_session_removed() -> None:
    answers = [
        {"expect": "Name:", "input": "Ada"},
        {"expect": "Password:", "input": "hunter2"},
        {"expect": "Continue?", "keys": ["y", "Enter"]},
    ]
    async with mcp_client() as session:
        argv = [sys.executable, "-c", INSTALLER]
        ran = await session.call_tool("run", {"argv": argv, "answers": answers, "timeout": 30})
        result = payload(ran)
        assert result["screen"].splitlines()[-1] == "hello Ada, 7 characters, y"
        assert "hunter2" not in result["screen"]
        assert (result["exited"], result["exitCode"], result["timedOut"]) == (True, 7, False)
        assert result["elapsedMs"] > 0 and "input" not in result and "message" not in result
        assert left() == []  # removed: nothing to kill, nothing for gc


async def test_a_run_past_its_timeout_is_ended_and_removed() -> None:
    async with mcp_client() as session:
        argv = ["sh", "-c", "echo working; exec sleep 100"]
        result = payload(await session.call_tool("run", {"argv": argv, "timeout": 0.5}))
        assert result["timedOut"] is True and "working" in result["screen"]
        assert result["message"] == "run timed out after 0.5s waiting for the program to exit"
        assert (result["exited"], result["signal"]) == (True, "SIGHUP")  # how it was ended
        assert left() == []  # (and the shared fixture finds no sleep left running)


async def test_a_program_that_ends_before_its_prompt_leaves_answers_unanswered() -> None:
    async with mcp_client() as session:
        answers = [{"input": "x"}, {"expect": "never", "input": "y"}]
        argv = ["sh", "-c", "read a; echo got $a; exit 3"]
        result = payload(await session.call_tool("run", {"argv": argv, "answers": answers}))
        assert (result["exitCode"], result["unanswered"]) == (3, 1)
        assert result["message"] == (
            "the program ended while run waited for answer 2's expect 'never': "
            "1 answer(s) not given"
        )
        assert "got x" in result["screen"]


async def test_wrong_answers_are_refused_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    argv = ["touch", str(marker)]
    async with mcp_client() as session:
        for answers, code in [
            ([{"input": "x", "keys": ["Enter"]}], "invalid_argument"),
            ([{"expect": "ok"}], "invalid_argument"),
            ([{"keys": ["Ctrl+Banana"]}], "invalid_key"),
            ([{"text": ""}], "invalid_argument"),
            ([{"expect": "", "input": "x"}], "invalid_argument"),
            ([{"expect": "two\nrows", "input": "x"}], "invalid_argument"),
            ([{"expect": "N" * 5000, "input": "x"}], "invalid_argument"),
        ]:
            result = await session.call_tool("run", {"argv": argv, "answers": answers})
            assert error_code(result) == code, answers
        bad = await session.call_tool("run", {"argv": argv, "timeout": -1})
        assert error_code(bad) == "invalid_argument"
    assert not marker.exists() and left() == []


async def test_a_server_killed_mid_run_leaves_no_program_running() -> None:
    """The run holds its session: the server killed outright (no clean-up of its own can
    run), the worker ends the program; the ended session is left for gc."""
    async with mcp_client() as session:
        argv = ["sh", "-c", "echo started; exec sleep 100"]
        pending = asyncio.ensure_future(session.call_tool("run", {"argv": argv, "timeout": 60}))
        running = lambda: [r for r in left() if r.get("pid")]  # noqa: E731
        (rec,) = await asyncio.to_thread(wait_until, running, 20)
        server = _server_of_this_test()
        server.send_signal(signal.SIGKILL)
        await asyncio.to_thread(wait_until, lambda: left()[0]["status"] != "running", 20)
        pending.cancel()
    assert left()[0]["id"] == rec["id"]
    assert gone(rec["pid"])


def _server_of_this_test() -> psutil.Process:
    (server,) = [
        child for child in psutil.Process(os.getpid()).children() if child.cmdline()[-1:] == ["mcp"]
    ]
    return server


async def test_a_program_that_cannot_start_leaves_no_session(tmp_path: Path) -> None:
    """Its interpreter missing, the program fails once its session exists: the failed
    session goes too (`start` leaves it, to be read; `run` never does)."""
    script = tmp_path / "script"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    async with mcp_client() as session:
        result = await session.call_tool("run", {"argv": [str(script)]})
        assert result.is_error and "bad interpreter" in str(result.content)
    assert left() == []


async def test_a_cancelled_run_ends_its_program_and_leaves_no_session() -> None:
    """The client gives up on the call (its own timeout): the server ends the program and
    removes the session all the same (an error or a cancel left the ended record, which
    `gc` keeps while the server, its holder, runs)."""
    import anyio

    async with mcp_client() as session:
        argv = ["sh", "-c", "echo started; exec sleep 100"]
        with anyio.move_on_after(1.5):
            await session.call_tool("run", {"argv": argv, "timeout": 60})
        await asyncio.to_thread(wait_until, lambda: left() == [], 20)


async def test_keys_are_pressed_as_given_a_space_too() -> None:
    """Keys travel as a list: a space, or Alt+ followed by one, was split away from its
    words and failed once the program was running."""
    argv = ["bash", "-c", 'IFS= read -r -n1 c; echo "[$c]"']
    async with mcp_client() as session:
        answers = [{"keys": [" "]}]
        result = payload(await session.call_tool("run", {"argv": argv, "answers": answers}))
        assert "[ ]" in result["screen"] and result["exitCode"] == 0


async def test_a_client_leaving_mid_run_leaves_no_session() -> None:
    """The client closes the connection while a run is under way: the server ends the
    program and removes the session before it leaves (it left at once, the record stayed)."""
    async with mcp_client() as session:
        argv = ["sh", "-c", "echo started; exec sleep 100"]
        call = asyncio.ensure_future(session.call_tool("run", {"argv": argv, "timeout": 60}))
        running = lambda: [r for r in left() if r.get("pid")]  # noqa: E731
        await asyncio.to_thread(wait_until, running, 20)
    await asyncio.to_thread(wait_until, lambda: left() == [], 20)
    assert call.done()  # (ended with its connection)

"""Every agentty error over MCP: the CLI's one line and a stable code, through the SDK client.

Before, each of these reached the model as a bare "Error executing tool ..." (any exception
that is not a ToolError is hidden by mcp 2.x), with a traceback on the server's stderr."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.integration.test_mcp import mcp_client, payload

pytest.importorskip("mcp")


def error_of(result: Any) -> tuple[str, str]:
    """(text, code) of an error result; the text's first line is what the CLI prints."""
    assert result.is_error, result.content
    text = result.content[0].text
    first, _, code_line = text.partition("\n")
    assert first.startswith("agentty: error: ")
    assert code_line.startswith("code: ")
    code = code_line.removeprefix("code: ")
    assert result.structured_content["error"]["code"] == code
    return first, code


async def test_each_bad_input_answers_its_message_and_code() -> None:
    async with mcp_client() as session:
        text, code = error_of(await session.call_tool("get", {"session": "nope"}))
        assert (text, code) == ("agentty: error: no such session: nope", "session_not_found")
        text, code = error_of(await session.call_tool("get", {}))
        assert code == "no_default_session" and "start or attach one" in text

        sid = payload(await session.call_tool("start", {"argv": ["cat"], "name": "cat1"}))["id"]
        text, code = error_of(await session.call_tool("press_keys", {"keys": ["Ctrl+Banana"]}))
        assert code == "invalid_key" and "unknown key 'Ctrl+Banana'" in text
        text, code = error_of(await session.call_tool("wait", {"regex": "(", "timeout": 5}))
        assert code == "bad_regex" and "invalid regex '('" in text
        deep = "(" * 2000 + ")" * 2000  # `re` cannot compile it: a RecursionError, not re.error
        for tool, deep_args in (
            ("wait", {"regex": deep}),
            ("send", {"args": ["x"], "wait": {"regex": deep}}),
        ):
            text, code = error_of(await session.call_tool(tool, deep_args))
            assert code == "bad_regex" and "nested too deeply" in text, text
        text, code = error_of(await session.call_tool("wait", {"text": "x", "timeout": -1}))
        assert code == "invalid_argument" and "timeout must be a number of seconds" in text
        text, code = error_of(await session.call_tool("wait", {"timeout": 1}))
        assert code == "no_wait_condition"
        dup = {"argv": ["cat"], "name": "cat1"}
        text, code = error_of(await session.call_tool("start", dup))
        assert (text, code) == (
            "agentty: error: a running session is already named 'cat1'",
            "name_taken",
        )
        text, code = error_of(await session.call_tool("start", {"argv": ["/no/such/prog"]}))
        assert code == "program_not_found"

        payload(await session.call_tool("kill", {"session": sid}))
        for name, args in (
            ("type_text", {"text": "hi"}),
            ("press_keys", {"keys": ["Enter"]}),
            ("paste", {"text": "hi"}),
            ("resize", {"cols": 90, "rows": 30}),
            ("signal", {"name": "INT"}),
            ("kill", {}),
        ):
            text, code = error_of(await session.call_tool(name, args))
            assert code == "not_running", (name, text)
            assert f"session {sid}" in text and "exited" in text, (name, text)


async def test_an_error_is_answered_in_milliseconds_without_a_traceback(tmp_path: Any) -> None:
    """The answer does not go through the SDK's exception logging (a traceback per call)."""
    errlog = tmp_path / "stderr.txt"
    with errlog.open("w") as stderr:
        async with mcp_client(errlog=stderr) as session:
            for _ in range(5):
                error_of(await session.call_tool("get", {"session": "nope"}))
            error_of(await session.call_tool("press_keys", {"keys": ["Nope"], "session": "x"}))
    assert "Traceback" not in errlog.read_text()


async def test_a_call_after_the_program_exited() -> None:
    async with mcp_client() as session:
        argv = [sys.executable, "-c", "print('bye')"]
        sid = payload(await session.call_tool("start", {"argv": argv}))["id"]
        done = payload(await session.call_tool("wait", {"exit": True, "timeout": 20}))
        assert done["fired"] == "exit" and done["exitCode"] == 0
        text, code = error_of(await session.call_tool("type_text", {"text": "x"}))
        assert code == "not_running" and text.startswith(f"agentty: error: session {sid} exited")
        last = payload(await session.call_tool("get", {}))  # an ended session's last screen
        assert "bye" in last["screen"] and last["exited"] is True


async def test_waits_queued_behind_others_answer_the_end_as_the_cli_does() -> None:
    """More waits than a session's slots: the ones that connect after the program ended
    (its socket gone) get the ended session's answer, not 'socket missing'."""
    import asyncio

    import psutil

    from agentty_core.client import Client

    async with mcp_client() as session:
        sid = payload(await session.call_tool("start", {"argv": ["cat"]}))["id"]
        never = [
            session.call_tool("wait", {"session": sid, "text": "NEVER", "timeout": 30})
            for _ in range(40)
        ]
        waits = [asyncio.ensure_future(call) for call in never]
        exit_wait = asyncio.ensure_future(
            session.call_tool("wait", {"session": sid, "exit": True, "timeout": 30})
        )
        # Every slot of the session taken (a connection to its worker each): the rest queue.
        worker_pid = Client().resolve(sid)["workerPid"]
        assert isinstance(worker_pid, int)
        worker = psutil.Process(worker_pid)
        for _ in range(1000):  # 20 s at most
            if len(worker.net_connections(kind="unix")) >= 32 + 1:  # + its listening socket
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the waits never filled the session's slots")
        payload(await session.call_tool("kill", {"session": sid}))
        ended = await exit_wait
        assert not ended.is_error, ended.content
        assert payload(ended)["fired"] == "exit"
        for result in await asyncio.gather(*waits):
            if result.is_error:
                text, code = error_of(result)
                assert code != "worker_unreachable", text


async def test_a_call_after_the_worker_died_says_the_session_is_lost() -> None:
    import os
    import signal

    async with mcp_client() as session:
        from agentty_core.client import Client

        started = payload(await session.call_tool("start", {"argv": ["sleep", "100"]}))
        worker = Client().resolve(started["id"])["workerPid"]
        assert isinstance(worker, int)
        os.kill(worker, signal.SIGKILL)
        text, code = error_of(await session.call_tool("type_text", {"text": "x"}))
        assert code != "worker_unreachable", text
        assert "lost" in text


async def test_an_argument_a_tool_does_not_take_or_of_the_wrong_type_is_refused() -> None:
    """A misspelt argument is refused, not dropped (`timout` would wait the default 30 s,
    `nmae` would start an unnamed session), and a wrong type answers like any other error:
    the CLI's line and `invalid_argument`. Nothing is done."""
    from agentty_core.client import Client

    async with mcp_client() as session:
        text, code = error_of(
            await session.call_tool("start", {"argv": ["sleep", "100"], "nmae": "x"})
        )
        assert code == "invalid_argument", text
        assert "start takes no argument 'nmae'" in text and "name" in text
        assert Client().sessions() == []  # nothing was started
        sid = payload(await session.call_tool("start", {"argv": ["cat"]}))["id"]
        text, code = error_of(await session.call_tool("wait", {"text": "x", "timout": 0.1}))
        assert code == "invalid_argument" and "wait takes no argument 'timout'" in text
        text, code = error_of(await session.call_tool("type_text", {"text": 5}))
        assert code == "invalid_argument" and "text" in text, text
        assert "\n" not in text
        many = {f"k{i}": 1 for i in range(2000)} | {"x" * 5000: 1, "text": "hi"}
        text, code = error_of(await session.call_tool("type_text", many))
        assert code == "invalid_argument" and "and 1991 more" in text and len(text) < 1000
        text, code = error_of(await session.call_tool("no\x1b]0;pwned\x07tool\nx", {}))
        assert code == "invalid_argument" and text.startswith("agentty: error: no such tool:")
        assert "\x1b" not in text and "\x07" not in text and "\n" not in text
        payload(await session.call_tool("kill", {"session": sid}))


async def test_a_wait_pending_when_its_session_is_killed_answers_the_end() -> None:
    """Answered "exited" by the worker, the wait asked again with a timeout of 0 and could
    be told it timed out after 0 s (exited and timedOut at once): it reads the end now, and
    answers with the last screen, as the CLI does."""
    import asyncio

    async with mcp_client() as session:
        for delay in (0.5, 0.05, 0.2, 0.05, 0.3):
            sid = payload(await session.call_tool("start", {"argv": ["cat"]}))["id"]
            pending = asyncio.ensure_future(
                session.call_tool("wait", {"session": sid, "text": "RELEASE", "timeout": 20})
            )
            await asyncio.sleep(delay)
            payload(await session.call_tool("kill", {"session": sid}))
            ended = payload(await pending)  # (the end made it impossible: the last screen)
            assert ended["exited"] is True and ended["timedOut"] is False, ended
            assert "exited (signal SIGHUP)" in ended["message"], ended


async def test_start_refuses_what_exec_would_before_writing_anything() -> None:
    """Bad environment names or values and an argument list too long for exec: refused as
    the CLI refuses them (exit 2's code), with no failed record left (one held a 10 MB argv
    and made every list take seconds); a long command line is listed cut short."""
    async with mcp_client() as session:
        for arguments in (
            {"argv": ["cat"], "env": {"": "x"}},
            {"argv": ["cat"], "env": {"A=B": "x"}},
            {"argv": ["cat"], "env": {"X": "a\u0000b"}},
            {"argv": ["true", *["a" * 100] * 30000]},
            {"argv": ["true", "a" * 200_000]},
        ):
            text, code = error_of(await session.call_tool("start", arguments))
            assert code == "invalid_argument", (arguments.keys(), text)
        assert payload(await session.call_tool("list", {}))["sessions"] == []
        long = ["sh", "-c", "sleep 300", "x", *["b" * 1000] * 20]
        started = payload(await session.call_tool("start", {"argv": long}))
        assert len(started["command"]) < 600 and started["command"].endswith("more characters)")
        listed = payload(await session.call_tool("list", {}))["sessions"]
        assert [len(s["command"]) < 600 for s in listed] == [True]
        payload(await session.call_tool("kill", {}))


async def test_a_host_slow_to_connect_holds_up_no_other_call(tmp_path: Any) -> None:
    """The wait for a host's ssh master ran on the server's event loop: every other call,
    to this machine's sessions too, waited behind it (8 s with a 3 s connect timeout)."""
    import asyncio
    import os

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ssh").write_text("#!/bin/sh\nexec sleep 30\n")
    (fake / "ssh").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "AGENTTY_CONNECT_TIMEOUT": "3"}
    async with mcp_client(env=env) as session:
        far = asyncio.ensure_future(
            session.call_tool("get", {"host": "slow.invalid", "session": "0123abcd"})
        )
        await asyncio.sleep(0.3)
        here = asyncio.ensure_future(session.call_tool("list", {}))
        done, _ = await asyncio.wait({far, here}, return_when=asyncio.FIRST_COMPLETED)
        assert here in done and far not in done  # this machine's answer came first
        assert not (await here).is_error
        text, code = error_of(await far)
        assert code == "transport_error", text


async def test_loosely_typed_values_are_refused_not_taken_for_others() -> None:
    """pydantic's lax mode took `true` for a timeout of 1 s and "yes" for input=true: a
    model's slip became a different call. A whole number is still a number of seconds."""
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": ["cat"]}))
        for tool, args in (
            ("wait", {"text": "$", "timeout": True}),
            ("wait", {"input": "yes", "timeout": 0}),
            ("wait", {"text": "x", "stable_ms": 5.5}),
            ("resize", {"cols": "90", "rows": 30}),
            ("type_text", {"text": "x", "enter": 1}),
            ("send", {"args": ["x"], "wait": {"input": "yes"}}),
            ("get", {"scrollback": "true"}),
        ):
            text, code = error_of(await session.call_tool(tool, args))
            assert code == "invalid_argument", (tool, args, text)
        waited = payload(await session.call_tool("wait", {"text": "never", "timeout": 0}))
        assert waited["timedOut"] is True
        # A whole number sent as a float is that number, as JSON means it.
        payload(await session.call_tool("resize", {"cols": 90.0, "rows": 30.0}))
        shown = payload(await session.call_tool("get", {"lines": 3.0}))
        assert "screen" in shown
        text, code = error_of(await session.call_tool("resize", {"cols": 90.5, "rows": 30}))
        assert code == "invalid_argument", text
        payload(await session.call_tool("kill", {}))


async def test_an_error_echoes_a_huge_value_cut_short() -> None:
    """A 1 MB key name, `Ctrl+` one (echoed twice) or cwd came back whole in the error:
    2 MB of text for a model to read."""
    big = "Q" * 1_000_000
    async with mcp_client() as session:
        payload(await session.call_tool("start", {"argv": ["cat"]}))
        for tool, arguments in (
            ("press_keys", {"keys": [big]}),
            ("send", {"args": ["Ctrl+" + big]}),
            ("start", {"argv": ["cat"], "cwd": "/x" + big}),
        ):
            text, code = error_of(await session.call_tool(tool, arguments))
            assert len(text) < 1000, (tool, code, len(text), text[:200])
            assert "QQQ" in text and "..." in text, text
        payload(await session.call_tool("kill", {}))


async def test_every_number_a_tool_takes_advertises_the_range_it_checks() -> None:
    """schemas.py: "Ranges are advertised in the schema and checked by the tools"; offset,
    stable_ms, changed_since and after were checked against limits no schema gave, and the
    texts to type had no maxLength for their 64 MiB."""
    from agentty_core.input_steps import MAX_INPUT

    unbounded: list[str] = []
    async with mcp_client() as session:
        for tool in (await session.list_tools()).tools:
            schema = tool.input_schema
            _unbounded_numbers(schema["properties"], schema.get("$defs", {}), tool.name, unbounded)
            if tool.name in ("type_text", "paste"):
                assert schema["properties"]["text"]["maxLength"] == MAX_INPUT
    assert unbounded == [], unbounded


def _unbounded_numbers(
    properties: dict[str, Any], defs: dict[str, Any], where: str, found: list[str]
) -> None:
    """Add to `found` each number among `properties` (and the objects they refer to) that
    advertises no maximum."""
    for name, prop in properties.items():
        kinds = [prop, *prop.get("anyOf", [])]
        for ref in [k["$ref"] for k in kinds if "$ref" in k]:
            nested = defs[ref.rsplit("/", 1)[1]]["properties"]
            _unbounded_numbers(nested, defs, f"{where}.{name}", found)
        numbers = [k for k in kinds if k.get("type") in ("integer", "number")]
        if numbers and not all("maximum" in k or "maximum" in prop for k in numbers):
            found.append(f"{where}.{name}")


async def test_errors_say_what_the_tools_take_and_timeouts_say_the_time_asked() -> None:
    """An outside round: errors named the command line's options (`send --literal`,
    `-- PROGRAM ARGS`), which no tool takes; a wait of 1 s said "timed out after 0.99998s"
    (the worker was given the time left after taking a wait slot)."""
    async with mcp_client() as session:
        text, code = error_of(await session.call_tool("start", {}))
        assert code == "invalid_argument" and "argv (a program and its arguments) or shell" in (
            text
        ), text
        both = {"argv": ["cat"], "shell": "cat"}
        text, code = error_of(await session.call_tool("start", both))
        assert "give either shell or argv" in text and "--shell" not in text, text
        payload(await session.call_tool("start", {"argv": ["cat"]}))
        text, code = error_of(await session.call_tool("send", {"args": ["Ctrl+Banana"]}))
        assert code == "invalid_key" and "send with literal: true, or type_text" in text, text
        said = payload(await session.call_tool("wait", {"text": "NEVER", "timeout": 1}))
        assert said["timedOut"] and said["message"].startswith("timed out after 1s "), said
        payload(await session.call_tool("kill", {}))

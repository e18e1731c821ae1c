"""The MCP tools' optional `host`: the same tools, on the sessions of another machine.

Driven through the official SDK's stdio client against the real sshd of `conftest.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import agentty, wait_until
from tests.integration.test_mcp import mcp_client, payload
from tests.remote.conftest import HOST, Link

mcp = pytest.importorskip("mcp")

# Every tool that addresses sessions takes `host`.
HOSTED = (
    "start", "run", "attach", "list", "get", "screenshot", "type_text", "press_keys", "paste",
    "send", "wait", "resize", "signal", "kill", "record", "logs",
)  # fmt: skip


def remote_status(link: Link) -> dict[str, Any]:
    env = {**os.environ, "AGENTTY_HOME": str(link.remote_home)}
    return dict(json.loads(agentty("status", "--json", env=env, check=True).stdout))


def error_of(result: Any) -> dict[str, Any]:
    assert result.is_error, result.content
    text = result.content[0].text
    assert text.startswith("agentty: error: ") and len(text.splitlines()) == 2, text
    error = dict(result.structured_content["error"])
    assert text.splitlines()[1] == f"code: {error['code']}"
    return error


async def test_mcp_tools_on_a_host(link: Link) -> None:
    async with mcp_client() as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        for name in HOSTED:
            described = tools[name].input_schema["properties"]["host"]
            assert "hosts.toml" in json.dumps(described), name
        on = {"host": HOST}
        started = payload(
            await session.call_tool("start", {"argv": [sys.executable, "-q"], "name": "m", **on})
        )
        assert started["host"] == HOST
        ready = payload(await session.call_tool("wait", {"text": ">>>", "timeout": 30, **on}))
        assert ready["fired"] == "text" and ready["input"]["state"] in ("reading", "busy")
        payload(await session.call_tool("type_text", {"text": "6*7", "enter": True, **on}))
        answer = payload(await session.call_tool("wait", {"regex": "^42$", "timeout": 30, **on}))
        assert answer["fired"] == "regex"
        screen = payload(await session.call_tool("get", on))
        assert screen["id"] == started["id"] and "42" in screen["screen"].splitlines()
        listed = payload(await session.call_tool("list", on))
        assert listed["host"] == HOST
        assert [(s["id"], s["default"]) for s in listed["sessions"]] == [(started["id"], True)]
        assert payload(await session.call_tool("list", {}))["sessions"] == []  # not here
        logs = payload(await session.call_tool("logs", on))
        assert logs["host"] == HOST and logs["log"]
        killed = payload(await session.call_tool("kill", on))
        assert killed["id"] == started["id"]
        # An ended remote session's last screen still reads (the remote command line's get).
        last = payload(await session.call_tool("get", on))
        assert last["exited"] is True and "42" in last["screen"]
        # A wait the end made impossible answers with that screen, as here (a review: a
        # bare not_running error on a host).
        never = payload(await session.call_tool("wait", {"text": "NEVER", "timeout": 5, **on}))
        assert never["exited"] is True and "42" in never["screen"], never
    assert remote_status(link)["sessions"][0]["status"] == "exited"


async def test_a_run_on_a_host_answers_and_leaves_nothing_there(link: Link) -> None:
    """`run` with `host`: the same plan carried out through relays, the session held by
    one of them, then removed there (`gc --session`)."""
    script = "read -r -p 'Name: ' n; echo \"hi $n\"; exit 4"
    async with mcp_client() as session:
        on = {"host": HOST}
        answers = [{"expect": "Name:", "input": "Ada"}]
        call = {"argv": ["bash", "-c", script], "answers": answers, "timeout": 60, **on}
        result = payload(await session.call_tool("run", call))
        assert (result["exitCode"], result["timedOut"]) == (4, False)
        assert "hi Ada" in result["screen"]
        late = {"argv": ["sh", "-c", "exec sleep 100"], "timeout": 1, **on}
        timed_out = payload(await session.call_tool("run", late))
        assert timed_out["timedOut"] is True
    assert remote_status(link)["sessions"] == []  # (and no sleep left running there)


async def test_runs_on_a_host_at_once_leave_get_answering(link: Link) -> None:
    """Six runs at once on one host: each holds its session through a relay outside the
    pool (taken from it, six holds left no relay for the runs' own waits: all hung, and a
    `get` with them), two held and the rest not (MAX_HOLDS)."""
    async with mcp_client() as session:
        on = {"host": HOST}
        other = payload(await session.call_tool("start", {"argv": ["cat"], **on}))["id"]
        call = {"argv": ["sh", "-c", "sleep 1; exit 3"], "timeout": 60, **on}
        runs = [asyncio.ensure_future(session.call_tool("run", call)) for _ in range(6)]
        # The get comes while runs hold their relays: once one of their sessions runs there.
        runs_there = lambda: len(remote_status(link)["sessions"]) >= 2  # noqa: E731
        await asyncio.to_thread(wait_until, runs_there, 30)
        seen = payload(await session.call_tool("get", {"session": other, **on}))
        assert seen["id"] == other
        results = [payload(result) for result in await asyncio.gather(*runs)]
        assert [r["exitCode"] for r in results] == [3] * 6
        payload(await session.call_tool("kill", {"session": other, **on}))
    assert [s["id"] for s in remote_status(link)["sessions"]] == [other]


async def test_the_default_session_keeps_its_host(link: Link) -> None:
    """Started on the host, the default is addressed there without `host`; its id names it
    there too, and a local session of the same connection is addressed here."""
    async with mcp_client() as session:
        started = payload(
            await session.call_tool("start", {"argv": [sys.executable, "-q"], "host": HOST})
        )
        then = {"regex": "^42$", "timeout": 30}
        payload(await session.call_tool("wait", {"text": ">>>", "timeout": 30}))
        sent = payload(await session.call_tool("send", {"args": ["6*7", "Enter"], "wait": then}))
        assert sent["waited"]["fired"] == "regex" and sent["waited"]["id"] == started["id"]
        by_id = payload(await session.call_tool("get", {"session": started["id"]}))
        assert "42" in by_id["screen"].splitlines()
        resized = payload(await session.call_tool("resize", {"cols": 100, "rows": 30}))
        assert (resized["cols"], resized["rows"]) == (100, 30)
        # A local session becomes the default; the remote one is still reachable by host.
        local = payload(await session.call_tool("start", {"argv": ["cat"], "name": "here"}))
        assert local.get("host") is None
        assert payload(await session.call_tool("get", {}))["id"] == local["id"]
        no_default = error_of(await session.call_tool("get", {"host": HOST}))
        assert no_default["code"] == "no_default_session"
        on_host = payload(
            await session.call_tool("get", {"session": started["id"][:8], **{"host": HOST}})
        )
        assert on_host["id"] == started["id"]
        payload(await session.call_tool("attach", {"session": started["id"], "host": HOST}))
        payload(await session.call_tool("signal", {"name": "INT"}))
        payload(await session.call_tool("kill", {}))
        payload(await session.call_tool("kill", {"session": "here"}))
    assert remote_status(link)["sessions"][0]["status"] == "exited"


async def test_waits_on_a_host_leave_get_answering(link: Link) -> None:
    """Pending waits hold relays, bounded per host: more waits than channels queue, and a
    get (and input) still finds room; each wait fires when the screen matches."""
    async with mcp_client() as session:
        on = {"host": HOST}
        payload(await session.call_tool("start", {"argv": ["cat"], "name": "c", **on}))
        waits = [
            asyncio.ensure_future(
                session.call_tool("wait", {"text": f"go{i}", "timeout": 60, **on})
            )
            for i in range(8)
        ]
        for _ in range(3):
            assert payload(await session.call_tool("get", on))["screen"] == ""
        payload(
            await session.call_tool(
                "type_text", {"text": " ".join(f"go{i}" for i in range(8)), **on}
            )
        )
        fired = [payload(await w)["fired"] for w in waits]
        assert fired == ["text"] * 8
        payload(await session.call_tool("kill", on))


async def test_a_bad_host_is_a_coded_error(link: Link) -> None:
    async with mcp_client() as session:
        option = error_of(await session.call_tool("get", {"host": "-oProxyCommand=x"}))
        assert option["code"] == "invalid_host" and "never an ssh option" in option["message"]
        spaced = error_of(await session.call_tool("list", {"host": "a b"}))
        assert spaced["code"] == "invalid_host"
        nowhere = error_of(await session.call_tool("list", {"host": "ssh://nobody@127.0.0.1:1"}))
        assert nowhere["code"] == "transport_error" and nowhere["reason"] == "unreachable"
        assert "cannot connect" in nowhere["message"]
        unknown = error_of(await session.call_tool("get", {"session": "nosuch", "host": HOST}))
        assert unknown["code"] == "session_not_found"
        typed = error_of(
            await session.call_tool("type_text", {"text": "x", "session": "nosuch", "host": HOST})
        )
        assert typed["code"] == "session_not_found"


async def test_sshd_down_is_a_transport_error(link: Link) -> None:
    async with mcp_client() as session:
        on = {"host": HOST}
        payload(await session.call_tool("start", {"argv": [sys.executable, "-q"], **on}))
        payload(await session.call_tool("wait", {"text": ">>>", "timeout": 30}))
        link.sshd.stop()  # the listener and the master's connection go
        for tool, args in (
            ("get", {}),
            ("type_text", {"text": "1"}),
            ("wait", {"text": "x", "timeout": 5}),
            ("list", on),
            ("kill", {}),
        ):
            error = error_of(await session.call_tool(tool, args))
            assert error["code"] == "transport_error", (tool, error)
            assert error["host"] == HOST and f"{HOST}: " in error["message"]
        link.sshd.start()  # back: the same session answers again
        payload(await session.call_tool("type_text", {"text": "6*7", "enter": True}))
        assert (
            payload(await session.call_tool("wait", {"regex": "^42$", "timeout": 30}))["fired"]
            == "regex"
        )
        payload(await session.call_tool("kill", {}))


async def test_a_cancelled_remote_wait_ends_its_relay_there(link: Link) -> None:
    """A wait cancelled here (the MCP client went away) closes its ssh channel; the relay on
    the host sees its stdout's reader gone and closes the worker connection at once, so the
    worker drops the wait then, not at its timeout (a day, at most)."""
    from agentty_core.paths import Home
    from agentty_core.remote.aio_relay import AsyncRelay
    from agentty_core.remote.client import RemoteClient

    with RemoteClient(HOST, home=Home.resolve()) as remote:
        sid = str(remote.start(["cat"])["id"])
        relay = await AsyncRelay.open(remote.host, sid, Home.resolve().root)
        pending = asyncio.ensure_future(
            relay.call("wait", {"text": "never", "timeout": 3600}, timeout=3700)
        )
        assert (await _relays_there(sid, present=True)) != []
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        assert await _relays_there(sid, present=False) == []
        remote.kill(sid)


async def test_the_server_leaving_ends_its_remote_waits(link: Link) -> None:
    """The MCP client goes away with a wait pending on a host: the server's relay children
    end with it, and so does the relay on the host (no wait left behind for an hour)."""
    async with mcp_client() as session:
        on = {"host": HOST}
        sid = payload(await session.call_tool("start", {"argv": ["cat"], **on}))["id"]
        pending = asyncio.ensure_future(
            session.call_tool("wait", {"text": "never", "timeout": 3600, **on})
        )
        assert (await _relays_there(sid, present=True)) != []
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
    assert await _relays_there(sid, present=False) == []
    assert agentty("--host", HOST, "kill", "-s", sid, timeout=60).returncode == 0


async def _relays_there(sid: str, *, present: bool) -> list[int]:
    """The pids of `agentty relay SID` processes, once there are some (or none left)."""
    import psutil

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if "relay" in cmdline and sid in cmdline:
                found.append(proc.pid)
        if bool(found) == present or loop.time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_a_relay_line_over_the_read_limit_is_a_transport_error(
    link: Link, tmp_path: Path
) -> None:
    """The host's relay sends one line longer than the reader's limit (a wrapper there
    prints 70 MiB before agentty runs): `get` and `wait` crashed with the asyncio reader's
    ValueError ("Error executing tool get", no code; an attack round). It is the link's
    failure, in one line with its code, as the CLI and the API say it."""
    from tests.remote.test_api_relay import wrapped_host

    junk = 'case "$1" in relay) head -c 73400320 /dev/zero | tr "\\0" x; echo;; esac'
    wrapped_host(link, tmp_path, junk)
    async with mcp_client() as session:
        on = {"host": HOST}
        started = payload(await session.call_tool("start", {"argv": ["cat"], **on}))
        for tool, args in (("get", on), ("wait", {"text": "never", "timeout": 30, **on})):
            error = error_of(await session.call_tool(tool, args))
            assert error["code"] == "transport_error", (tool, error)
            assert error["message"] == f"{HOST}: its answer is over 64 MiB", (tool, error)
        payload(await session.call_tool("kill", {"session": started["id"], **on}))

"""The MCP server's lifecycle: it ends with its client, and waits hold no thread each.

Before, a server with a wait in flight outlived a killed client for the whole wait timeout
(up to a day), each wait held one of the SDK's worker threads, and sixty of them made a `get`
queue behind them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import psutil
import pytest

from tests.helpers.cli import AGENTTY
from tests.integration.test_mcp import mcp_client, payload

pytest.importorskip("mcp")

CLIENT = """
import asyncio, os, sys
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

async def main():
    params = StdioServerParameters(command=sys.argv[1], args=["mcp"], env=dict(os.environ))
    async with stdio_client(params) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        await s.call_tool("start", {"argv": ["cat"]})
        print("started", flush=True)
        await s.call_tool("wait", {"text": "never", "timeout": 3600})

asyncio.run(main())
"""


def _until(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def _gone(proc: psutil.Process) -> bool:
    """Exited: a zombie counts (its reaping is up to whoever inherited it)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _stopped(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_STOPPED
    except psutil.NoSuchProcess:
        return False


def _unix_sockets(proc: psutil.Process) -> int:
    try:
        return len(proc.net_connections(kind="unix"))
    except psutil.NoSuchProcess:
        return 0


def test_killing_the_client_ends_the_server_with_a_wait_pending() -> None:
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, AGENTTY],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "started"
        server = psutil.Process(client.pid).children()[0]
        # The wait is pending once the server holds a socket to the worker for it.
        _until(lambda: _unix_sockets(server) > 0, 20, "the wait to reach the worker")
        client.send_signal(signal.SIGKILL)
        client.wait(10)
        _until(lambda: _gone(server), 1.0, "the server to exit after its client died")
    finally:
        client.kill()
        client.wait(10)


# A client speaking to `agentty mcp` by hand (no SDK: the test controls every byte and
# where the server's stdin goes), initialized; each script below goes on from here.
RAW_CLIENT = """
import json, os, subprocess, sys
from mcp_types import LATEST_PROTOCOL_VERSION

server = subprocess.Popen([sys.argv[1], "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

def send(message):
    server.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\\n")
    server.stdin.flush()

def answer(i):
    while True:
        message = json.loads(server.stdout.readline())
        if message.get("id") == i:
            return message

info = {"name": "t", "version": "1"}
params = {"protocolVersion": LATEST_PROTOCOL_VERSION, "capabilities": {}, "clientInfo": info}
send({"id": 1, "method": "initialize", "params": params})
answer(1)
send({"method": "notifications/initialized"})
"""

HELD_STDIN_CLIENT = (
    RAW_CLIENT
    + """
send({"id": 2, "method": "tools/call", "params": {"name": "start", "arguments": {"argv": ["cat"]}}})
answer(2)
wait = {"text": "never", "timeout": 3600}
send({"id": 3, "method": "tools/call", "params": {"name": "wait", "arguments": wait}})
# A process the client leaves behind holds the server's stdin open.
holder = subprocess.Popen(["sleep", "60"], pass_fds=(server.stdin.fileno(),))
print(server.pid, holder.pid, flush=True)
server.wait()
"""
)


@contextlib.contextmanager
def raw_client(script: str) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """Run `script` (`RAW_CLIENT` and its steps) as the server's client: the pids it prints
    first (its server's, then the process holding the server's stdin, ...). The client and
    that holder are killed at the end."""
    client = subprocess.Popen(
        [sys.executable, "-c", script, AGENTTY],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    holder: psutil.Process | None = None
    try:
        assert client.stdout is not None
        pids = [int(word) for word in client.stdout.readline().split()]
        holder = psutil.Process(pids[1])
        yield client, pids
    finally:
        client.kill()
        client.wait(10)
        if holder is not None:
            holder.kill()
            holder.wait(10)


def test_the_server_ends_with_its_client_while_another_process_holds_its_stdin() -> None:
    """The client dies; its stdin is no EOF yet (a process it started holds the pipe): the
    server still ends, the wait's connection closed (it stayed until that process ended,
    with the SDK's reader thread blocked on stdin)."""
    with raw_client(HELD_STDIN_CLIENT) as (client, (server_pid, holder_pid)):
        server, holder = psutil.Process(server_pid), psutil.Process(holder_pid)
        _until(lambda: _unix_sockets(server) > 0, 20, "the wait to reach the worker")
        client.send_signal(signal.SIGKILL)
        client.wait(10)
        _until(lambda: _gone(server), 5.0, "the server to exit after its client died")
        assert holder.is_running()  # stdin was still open all along


async def test_two_hundred_pending_waits_leave_get_answering() -> None:
    async with mcp_client() as session:
        sid = payload(await session.call_tool("start", {"argv": ["cat"]}))["id"]
        server = next(p for p in psutil.Process().children() if "mcp" in " ".join(p.cmdline()))
        threads_before = server.num_threads()
        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(session.call_tool, "wait", {"text": "never", "timeout": 120})
            # 32 of them pending at the worker (the rest queue for a slot, on no thread).
            deadline = time.monotonic() + 30
            while _unix_sockets(server) < 32:
                assert time.monotonic() < deadline, "the waits never reached the worker"
                await anyio.sleep(0.02)
            screen = payload(await session.call_tool("get", {}))
            assert screen["id"] == sid
            assert server.num_threads() < threads_before + 10  # not a thread per wait
            # A queued wait still times out on time, as a result rather than an error.
            late = payload(await session.call_tool("wait", {"text": "never", "timeout": 0.2}))
            assert late["timedOut"] is True
            payload(await session.call_tool("type_text", {"text": "still-typing\n"}))
            seen = payload(await session.call_tool("get", {}))
            assert "still-typing" in seen["screen"]
            tg.cancel_scope.cancel()
        payload(await session.call_tool("kill", {"session": sid}))


KILLING_CLIENT = (
    RAW_CLIENT
    + """argv = ["sh", "-c", "trap '' HUP TERM; exec sleep 1027"]
send({"id": 2, "method": "tools/call", "params": {"name": "start", "arguments": {"argv": argv}}})
started = answer(2)["result"]["structuredContent"]
with open(os.path.join(os.environ["AGENTTY_HOME"], "sessions.json")) as f:
    (record,) = [r for r in json.load(f)["sessions"] if r["id"] == started["id"]]
os.kill(record["workerPid"], 19)  # SIGSTOP: the server runs the kill's ladder itself
send({"id": 3, "method": "tools/call", "params": {"name": "kill", "arguments": {"timeout": 1}}})
holder = subprocess.Popen(["sleep", "60"], pass_fds=(server.stdin.fileno(),))
print(server.pid, holder.pid, started["pid"], record["workerPid"], flush=True)
server.wait()
"""
)


def test_a_kill_the_server_runs_itself_ends_even_when_its_client_dies() -> None:
    """A `kill` the server runs itself (its worker stopped: SIGHUP, SIGTERM, each given its
    time, then SIGKILL) is finished before the server leaves, its client dead meanwhile: a
    program that ignores SIGHUP and SIGTERM is ended. (The server left a second after its
    client, and the program was ended only when the ladder's SIGTERM, which makes the
    continued worker end its session, had come first: CI, loaded, saw it left running.)"""
    with raw_client(KILLING_CLIENT) as (client, (server_pid, _, program_pid, worker_pid)):
        server, program = psutil.Process(server_pid), psutil.Process(program_pid)
        worker = psutil.Process(worker_pid)
        # The kill under way: its first step continued the worker (SIGCONT with SIGHUP).
        _until(lambda: not _stopped(worker), 20, "the kill's first step")
        client.send_signal(signal.SIGKILL)
        client.wait(10)
        _until(lambda: _gone(server), 30.0, "the server to exit after its client died")
        # (its worker's own kill: HUP and TERM given a second each, then KILL; loaded, slower)
        _until(lambda: _gone(program), 20.0, "the program to be ended by the kill")


def test_an_unusable_home_is_one_line_and_the_cli_s_exit_code(tmp_path: Path) -> None:
    """The server printed a traceback (an attack round): an MCP client's log should hold
    the line `agentty status` prints for the same home."""
    unsafe = tmp_path / "home"
    unsafe.mkdir(mode=0o755)
    unsafe.chmod(0o755)
    env = {**os.environ, "AGENTTY_HOME": str(unsafe)}
    served = subprocess.run(
        [AGENTTY, "mcp"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    status = subprocess.run(
        [AGENTTY, "status"], capture_output=True, text=True, env=env, timeout=60
    )
    assert (served.returncode, served.stderr) == (status.returncode, status.stderr), served
    assert served.stderr.count("\n") == 1 and "unsafe permissions 0755" in served.stderr

"""The caller's side of the spawner's protocol (`spawning.send_request`, `read_answer`),
against real sockets and real processes in the states a spawner or spare can be in."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from agentty_core import spawning


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        yield ours, theirs


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process that makes no progress: a spawner blocked elsewhere, or a stopped one."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


ANSWERS_LATE = """
import os, sys, time
time.sleep(1)
os.write(int(sys.argv[1]), b'{"ok": true, "pid": 7}\\n')
"""


def line(message: object) -> bytes:
    return json.dumps(message).encode() + b"\n"


def test_a_request_sent_whole_sends_nothing_more(pair: tuple[socket.socket, socket.socket]) -> None:
    # A send of nothing after the request fails with EPIPE once the spawner answered and
    # closed, and its refusal was lost with it ("upgraded": no successor was launched).
    ours, _ = pair
    sends: list[bytes] = []

    class Counting(socket.socket):
        def sendall(self, data: bytes, flags: int = 0) -> None:  # type: ignore[override]
            sends.append(bytes(data))
            super().sendall(data, flags)

    counting = Counting(fileno=os.dup(ours.fileno()))
    with counting:
        spawning.send_request(counting, b'{"v": 1}\n', [])
        assert sends == []
        big = b"x" * 10_000 + b"\n"
        spawning.send_request(counting, big, [])
        assert sends == [big[4096:]]  # the rest after the first 4096 bytes


def test_taken_then_answered(
    pair: tuple[socket.socket, socket.socket], sleeper: subprocess.Popen[bytes]
) -> None:
    ours, theirs = pair
    pidfd = os.pidfd_open(os.getpid())
    try:
        theirs.sendall(line({"taken": None}))
        theirs.sendmsg(
            [line({"ok": True, "pid": 42})],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, pidfd.to_bytes(4, sys.byteorder))],
        )
    finally:
        os.close(pidfd)
    now = time.monotonic()
    reply, fd = spawning.read_answer(ours, sleeper.pid, now + 1, now + 1, json.loads)
    assert reply == {"ok": True, "pid": 42}
    assert fd >= 0
    os.close(fd)


def test_a_refusal_is_read(
    pair: tuple[socket.socket, socket.socket], sleeper: subprocess.Popen[bytes]
) -> None:
    ours, theirs = pair
    theirs.sendall(line({"ok": False, "reason": "upgraded"}))
    theirs.close()
    now = time.monotonic()
    reply, fd = spawning.read_answer(ours, sleeper.pid, now + 1, now + 1, json.loads)
    assert reply == {"ok": False, "reason": "upgraded"} and fd == -1


def test_a_spawner_that_makes_no_progress_costs_one_wait(
    pair: tuple[socket.socket, socket.socket], sleeper: subprocess.Popen[bytes]
) -> None:
    ours, _ = pair
    began = time.monotonic()
    reply, fd = spawning.read_answer(ours, sleeper.pid, began + 5, began + 5, json.loads)
    assert (reply, fd) == (None, -1)
    assert time.monotonic() - began < 2  # one WAIT (0.25 s), not the 5 s allowed


def test_once_taken_an_idle_spawner_is_not_given_up_on(
    pair: tuple[socket.socket, socket.socket], sleeper: subprocess.Popen[bytes]
) -> None:
    # The spawner (here: a process that sleeps) handed the request on; the answer comes
    # after several WAITs, from the process that took it.
    ours, theirs = pair
    theirs.sendall(line({"taken": None}))
    answerer = subprocess.Popen(
        [sys.executable, "-c", ANSWERS_LATE, str(theirs.fileno())], pass_fds=[theirs.fileno()]
    )
    theirs.close()
    try:
        now = time.monotonic()
        reply, fd = spawning.read_answer(ours, sleeper.pid, now + 0.3, now + 10, json.loads)
        assert reply == {"ok": True, "pid": 7} and fd == -1
    finally:
        answerer.wait()


def test_a_stopped_answerer_is_given_up_on_and_killed_only_if_it_is_the_spawner_s(
    pair: tuple[socket.socket, socket.socket], sleeper: subprocess.Popen[bytes]
) -> None:
    # Given up on at once; killed only if it is named as the spawner's own (a spare, a
    # middle): its pid may have gone to another process since, as this sleeper's.
    ours, theirs = pair
    os.kill(sleeper.pid, signal.SIGSTOP)
    theirs.sendall(line({"taken": sleeper.pid}))
    began = time.monotonic()
    reply, fd = spawning.read_answer(ours, os.getpid(), began + 5, began + 5, json.loads)
    assert (reply, fd) == (None, -1)
    assert time.monotonic() - began < 2
    assert sleeper.poll() is None


def test_an_answerer_that_answered_and_exited_is_not_given_up_on(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    # The intermediate process named to answer sends its answer and exits at once: gone (a
    # zombie, or reaped) when the caller next looks, it is not "stopped"; its answer, still
    # unread then, is the caller's.
    ours, theirs = pair
    answerer = subprocess.Popen([sys.executable, "-c", "pass"])
    while spawning._proc_stat(answerer.pid)[0] != "Z":  # type: ignore[index]
        time.sleep(0.01)
    try:
        theirs.sendall(line({"taken": answerer.pid}))
        began = time.monotonic()
        late = threading.Timer(0.6, lambda: theirs.sendall(line({"ok": True, "pid": 7})))
        late.start()
        reply, fd = spawning.read_answer(ours, os.getpid(), began + 5, began + 5, json.loads)
        late.join()
        assert reply == {"ok": True, "pid": 7} and fd == -1
    finally:
        answerer.wait()

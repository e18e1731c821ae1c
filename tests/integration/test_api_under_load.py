"""The Python API as an agent's script strains it (an attack round): many threads waiting on
one `Session`, an `AsyncSession` taken from one event loop to another, megabytes typed,
sessions opened and closed in a loop, a wait on an ended session whose regex cannot run."""

from __future__ import annotations

import asyncio
import sys
import threading

import psutil
import pytest

from agentty_core import AsyncSession, Session, wait_slots
from agentty_core.client import Client
from agentty_core.client_calls import WAIT_SLOTS
from agentty_core.errors import SessionNotRunning
from tests.helpers.cli import agentty_json, wait_until

PY = sys.executable


def test_threads_waiting_past_the_worker_s_connections_leave_room_for_input() -> None:
    """70 threads waiting on one `Session`: the 64th took the worker's last connection,
    and `text` then failed ("too many connections") while every wait timed out. Past 32
    they queue in the process, as an AsyncSession's do."""
    with Session.start(["cat"]) as s:
        fired: list[str | None] = []

        def wait() -> None:
            fired.append(s.wait(text="GO-GO", timeout=30).fired)

        threads = [threading.Thread(target=wait) for _ in range(70)]
        for thread in threads:
            thread.start()
        # Until 32 waits hold a connection each (a wait here would queue too): the rest are
        # queued in the process, or (before) took the worker's last connections.
        worker = psutil.Process(int(str(s.info.record["workerPid"])))
        wait_until(lambda: len(worker.net_connections(kind="unix")) > 32, timeout=30)
        s.text("GO-GO", enter=True)
        for thread in threads:
            thread.join(timeout=60)
        assert fired == ["text"] * 70, fired


def test_threads_waiting_for_the_exit_queue_as_other_waits_do() -> None:
    """`wait(exit=True)` took a worker connection outside the wait slots: 70 threads
    waiting for the exit took all 64, and `text` failed ("too many connections")."""
    with Session.start(["cat"]) as s:
        fired: list[str | None] = []

        def wait() -> None:
            fired.append(s.wait(exit=True, timeout=30).fired)

        threads = [threading.Thread(target=wait) for _ in range(70)]
        for thread in threads:
            thread.start()
        assert isinstance(s.client, Client)
        slots = wait_slots.for_threads(str(s.client.home.socket_path(s.id)))
        queued = slots._cond._waiters  # type: ignore[attr-defined]  # (CPython's)
        wait_until(lambda: len(queued) == 70 - WAIT_SLOTS, timeout=30)
        s.text("hello", enter=True)
        s.kill()
        for thread in threads:
            thread.join(timeout=60)
        assert fired == ["exit"] * 70, fired


def test_an_async_session_taken_to_another_event_loop_still_kills() -> None:
    """A connection kept from a loop since closed was reused: RuntimeError ("Event loop is
    closed") from every call, and `async with` left its session running."""
    session = asyncio.run(AsyncSession.start(["sleep", "300"]))
    asyncio.run(session.get())  # the first loop keeps a connection

    async def use() -> None:
        async with session:
            assert (await session.get()).seq >= 0

    asyncio.run(use())
    listed = {rec["id"]: rec for rec in agentty_json("status")["sessions"]}
    assert listed[session.id]["status"] == "exited", listed[session.id]


@pytest.mark.parametrize("way", ["sync", "async"])
def test_text_of_megabytes_goes_in_parts(way: str) -> None:
    """`Client.text` sends a large input in parts; `Session.text` and `AsyncSession.text`
    sent it in one request, refused over 1 MiB ("request line too long")."""
    size = 3_000_000
    reader = (
        "import os, tty; tty.setraw(0); n = 0\n"
        f"while n < {size}: n += len(os.read(0, 65536))\n"
        "print('GOT', n, flush=True); import time; time.sleep(60)\n"
    )
    with Session.start([PY, "-c", reader]) as s:
        s.wait(input=True, timeout=20)
        if way == "sync":
            s.text("x" * size)
        else:
            asyncio.run(AsyncSession(s.id, s.client).text("x" * size))
        assert s.wait(text=f"GOT {size}", timeout=60).fired == "text"


def test_close_lets_go_of_the_session_s_connections() -> None:
    """`kill` then `close` left the connection `kill` used open, one a session: a script
    starting sessions in a loop kept a socket per session, to a worker long gone."""
    me = psutil.Process()
    before = len(me.net_connections(kind="unix"))
    for _ in range(10):
        s = Session.start(["cat"])
        s.text("x")
        s.kill()
        s.close()
    assert len(me.net_connections(kind="unix")) == before


def test_exit_fires_on_an_ended_session_before_a_regex_that_cannot_run() -> None:
    """Ended: `exit` holds, whatever the regex. A catastrophic one was tried first and
    raised regex_timeout."""
    with Session.start(["sh", "-c", "echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"]) as s:
        s.wait(exit=True, timeout=20)
        assert s.wait(regex=r"(a+)+$", exit=True, timeout=5).fired == "exit"
        with pytest.raises(SessionNotRunning):
            s.text("late")


def test_an_input_in_parts_cut_short_by_the_end_says_what_was_taken() -> None:
    """The error of an input in parts says how much the worker took (`input_sent`: send
    only the rest); `Session.text` made a new SessionNotRunning without it (a review)."""
    reader = (
        "import os, tty; tty.setraw(0); n = 0\n"
        "while n < 700000: n += len(os.read(0, 65536))\n"
        "import time; time.sleep(0.3)\n"
    )
    with Session.start([PY, "-c", reader]) as s:
        s.wait(input=True, timeout=20)
        with pytest.raises(SessionNotRunning) as ended:
            s.text("z" * 2_000_000)
        assert isinstance(ended.value.input_sent, int) and ended.value.input_sent > 0


def test_the_wait_slots_of_sessions_waited_on_are_not_kept() -> None:
    """A long-lived script waiting on many sessions kept a count per session for ever (a
    review): each is kept while a wait holds or queues on it."""
    for _ in range(3):
        with Session.start(["cat"]) as s:
            s.text("x", enter=True)
            assert s.wait(text="x", timeout=10).fired == "text"

            async def waited(ref: str = s.id) -> None:
                a = AsyncSession(ref)
                await a.wait(text="x", timeout=10)
                assert not any(wait_slots._loops.values())  # (the loop's, once it is done)

            asyncio.run(waited())
    assert len(wait_slots._threads) == 0

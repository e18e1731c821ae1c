"""Input a worker took and then stopped before answering (SIGSTOP between the typing and
its answer): the Python API asked again the long way once the answer did not come in time,
and a worker resumed within that second ask typed the input twice (a review)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from agentty_core import AsyncSession, Session
from agentty_core.client import Client
from agentty_core.errors import WorkerUnreachable
from agentty_core.protocol import str_list
from tests.helpers.cli import wait_until


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")


def _type_x(api: str, sid: str, client: Client) -> None:
    """`text("x")` through the blocking API or the async one."""
    if api == "sync":
        Session(sid, client).text("x")
    else:
        asyncio.run(AsyncSession(sid, client).text("x"))


@pytest.mark.parametrize("api", ["sync", "async"])
def test_input_whose_answer_came_late_is_not_typed_twice(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    monkeypatch.setenv("AGENTTY_FAILPOINTS", "worker.answering_text=sigstop")
    rec = Client().start(["cat"])  # (its worker has the failpoint: stopped after it types)
    monkeypatch.delenv("AGENTTY_FAILPOINTS")
    sid, worker = str(rec["id"]), int(str(rec["workerPid"]))
    client = Client(timeout=1.0)
    client.wait(sid, input=True, timeout=10)

    def resume_within_a_second_ask() -> None:
        wait_until(lambda: _stopped(worker), timeout=10)
        time.sleep(1.4)  # (the first ask gave up at 1 s: a second would be waiting now)
        os.kill(worker, signal.SIGCONT)

    resumer = threading.Thread(target=resume_within_a_second_ask)
    resumer.start()
    try:
        with pytest.raises(WorkerUnreachable):
            _type_x(api, sid, client)
    finally:
        resumer.join()
        os.kill(worker, signal.SIGCONT)
    wait_until(lambda: not _stopped(worker), timeout=10)
    time.sleep(0.5)  # (a second typing, and its echo, would be on the screen by now)
    os.kill(worker, signal.SIGCONT)  # (stopped again by a second typing)
    assert str_list(Client().get(sid)["lines"])[0] == "x"
    Client().kill(sid)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_input_a_stopped_worker_never_read_is_asked_again_and_typed_once(
    agentty_home: Path, api: str
) -> None:
    """The worker stopped before it read the request: it is still queued when the answer's
    wait runs out (`unread`), so asking again cannot type it twice, and the call goes on
    the long way. The async API took every timed-out typing for one that may have been
    done and failed it, where the blocking one asked again (a review)."""
    rec = Client().start(["cat"])
    sid, worker = str(rec["id"]), int(str(rec["workerPid"]))
    client = Client(timeout=1.0)
    client.wait(sid, input=True, timeout=10)
    os.kill(worker, signal.SIGSTOP)
    resumer = threading.Timer(1.4, os.kill, (worker, signal.SIGCONT))
    resumer.start()
    try:
        _type_x(api, sid, client)
    finally:
        resumer.join()
        os.kill(worker, signal.SIGCONT)
    # Typed after it, a mark: the worker serves its requests in turn, so a second typing
    # of the x would stand before it.
    Client().text(sid, "-end", enter=True)
    screen = Client().wait(sid, text="x-end", timeout=10)
    assert str_list(screen["lines"])[0] == "x-end"
    Client().kill(sid)

"""A writer waiting for the state lock has it once the holder lets go (`store.wait_until`).

The holder is another process holding a real `flock` on the home's lock file.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentty_core.paths import Home
from agentty_core.state import records, store
from agentty_core.state.store import StateStore

HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
os.close(fd)  # the only descriptor: the lock is let go
print("let go", flush=True)
sys.stdin.readline()
"""


class Holder:
    def __init__(self, lock_file: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(lock_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._said() == "held"

    def _said(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def let_go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self._said() == "let go"

    def end(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def holder(agentty_home: Path) -> Iterator[Holder]:
    held = Holder(Home.resolve().lock_file)
    try:
        yield held
    finally:
        held.end()


def _add_in_a_thread(lean: bool, sid: str) -> tuple[threading.Thread, list[str]]:
    outcome: list[str] = []

    def add() -> None:
        try:
            StateStore(Home.resolve(), timeout=30, lean=lean).add({"id": sid, "status": "exited"})
            outcome.append("added")
        except Exception as exc:  # said in the assertion
            outcome.append(repr(exc))

    thread = threading.Thread(target=add)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("lean", [True, False], ids=["worker", "caller"])
def test_a_waiter_has_the_lock_once_the_holder_lets_go(holder: Holder, lean: bool) -> None:
    thread, outcome = _add_in_a_thread(lean, "0000000a")
    thread.join(0.5)
    assert thread.is_alive() and not outcome  # it waits: the lock is held
    holder.let_go()
    thread.join(20)
    assert outcome == ["added"]
    assert [r["id"] for r in records.records(Home.resolve())] == ["0000000a"]


@pytest.mark.parametrize("lean", [True, False], ids=["worker", "caller"])
def test_a_waiter_has_the_lock_once_the_holder_dies(holder: Holder, lean: bool) -> None:
    thread, outcome = _add_in_a_thread(lean, "0000000b")
    thread.join(0.5)
    assert thread.is_alive()
    holder.proc.send_signal(signal.SIGKILL)  # the kernel closes its descriptors
    thread.join(20)
    assert outcome == ["added"]


def test_a_waiter_tries_again_soon_then_less_often(monkeypatch: pytest.MonkeyPatch) -> None:
    """A holder is almost always a writer about to finish: the first pauses are short."""
    pauses: list[float] = []
    monkeypatch.setattr(time, "sleep", pauses.append)
    answers = iter([False] * 60 + [True])
    assert store.wait_until(lambda: next(answers), 10)
    assert len(pauses) == 59  # none after the first try, none after the last
    assert pauses[:8] == [0.0005] * 8
    assert pauses == sorted(pauses) and pauses[-1] == store.RETRY


def test_a_free_lock_is_not_waited_for_and_no_timeout_is_one_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail("slept"))
    assert store.wait_until(lambda: True, 10)
    tries: list[int] = []

    def held() -> bool:
        tries.append(1)
        return False

    assert not store.wait_until(held, 0)
    assert tries == [1]

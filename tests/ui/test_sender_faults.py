"""The dashboard's input (`sender.Senders`) under faults: input held for a stopped worker
is sent once it runs, however the asks meanwhile failed, as long as the worker surely did
not act on them; any other failure is said, and the session's later input still goes (a
review found each dropped or lost)."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentty_core.client import Client
from agentty_core.errors import WorkerUnreachable
from agentty_core.ipc.client import Connection, Late, unsent, unwrap
from agentty_core.protocol import JSONObject, str_list
from agentty_ui.fleet import Fleet
from agentty_ui.sender import Senders
from tests.helpers.cli import wait_until
from tests.helpers.sockets import fill_backlog

# A program that counts the bytes it reads (raw: nothing of it echoed or buffered by lines).
COUNTER = (
    "import os, sys, tty; tty.setraw(0); n = 0\n"
    "while True:\n"
    "    n += len(os.read(0, 65536))\n"
    "    open(sys.argv[1], 'w').write(str(n))\n"
)


class Said:
    """What a `Senders` said: input dropped (`failed`), input held (`held`)."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.held: list[str] = []

    def senders(self, fleet: object, idle: float = 30.0) -> Senders:
        return Senders(
            fleet,  # type: ignore[arg-type]
            lambda _key, said: self.failed.append(said),
            idle,
            held=lambda _key, said: self.held.append(said),
        )


class Counted(Fleet):
    """A real fleet that counts its input requests, and how each failed."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.tries = 0
        self.errors: list[BaseException] = []

    def text(self, key: str, data: str, *, enter: bool = False) -> JSONObject:
        self.tries += 1
        try:
            return super().text(key, data, enter=enter)
        except BaseException as exc:
            self.errors.append(exc)
            raise

    def paste(self, key: str, data: str) -> JSONObject:
        self.tries += 1
        try:
            return super().paste(key, data)
        except BaseException as exc:
            self.errors.append(exc)
            raise


@pytest.fixture
def cat(client: Client) -> Iterator[tuple[str, int]]:
    """A `cat` session reading input: its id and its worker's pid (run again afterwards,
    whatever the test left it)."""
    rec = client.start(["cat"], cols=200)
    sid, worker = str(rec["id"]), int(str(rec["workerPid"]))
    client.wait(sid, input=True, timeout=10)
    yield sid, worker
    os.kill(worker, signal.SIGCONT)


def _first_line(client: Client, sid: str) -> str:
    return str_list(client.get(sid)["lines"])[0].rstrip()


# -- a late refusal ---------------------------------------------------------------------


class LateOnce(Counted):
    """The first `text` is read by the worker after its `until` (as by a worker resumed in
    the last 0.1 s of its caller's wait): its real refusal, `late`, is what the call
    raises."""

    def text(self, key: str, data: str, *, enter: bool = False) -> JSONObject:
        if self.tries:
            return super().text(key, data, enter=enter)
        self.tries += 1
        assert self.local is not None
        path = str(self.local.home.socket_path(key))
        with Connection(path, timeout=10) as conn:
            conn.send("text", {"data": data}, until=time.monotonic() - 1.0)
            unwrap(conn.read_message(time.monotonic() + 10))
        raise AssertionError("the worker took a request after its until")


def test_input_the_worker_refused_as_late_is_sent_again_once(
    client: Client, cat: tuple[str, int]
) -> None:
    """A `late` refusal (nothing done) became a timeout with the request read, "maybe
    typed": the held input was dropped. It is asked again, and typed once."""
    sid, _ = cat
    said = Said()
    fleet = LateOnce(client)
    senders = said.senders(fleet)
    senders.send(sid, "text", "HELD-TEXT")
    wait_until(lambda: _first_line(client, sid) == "HELD-TEXT", timeout=20)
    senders.close()
    assert fleet.tries == 2 and said.failed == [], (fleet.tries, said.failed)
    assert len(said.held) == 1, said.held


def test_input_held_survives_a_resume_just_before_the_ask_s_until(
    client: Client, cat: tuple[str, int]
) -> None:
    """The worker stopped, then continued 60 ms before the pending ask's `until`: it reads
    the ask then and refuses it (`late`), and the input was dropped. It comes now (asked
    again), once."""
    sid, worker = cat
    timeout = 1.0
    said = Said()
    starts: list[float] = []

    class Timed(Counted):
        def text(self, key: str, data: str, *, enter: bool = False) -> JSONObject:
            starts.append(time.monotonic())
            return super().text(key, data, enter=enter)

    senders = said.senders(Timed(Client(timeout=timeout)))
    os.kill(worker, signal.SIGSTOP)
    try:
        senders.send(sid, "text", "HELD-TEXT")
        wait_until(lambda: len(starts) >= 2, timeout=10)  # the second ask is out
        time.sleep(max(0.0, starts[1] + timeout - 0.06 - time.monotonic()))
    finally:
        os.kill(worker, signal.SIGCONT)
    wait_until(lambda: _first_line(client, sid) == "HELD-TEXT", timeout=20)
    senders.close()
    assert said.failed == [], said.failed


# -- a stopped worker's full backlog ----------------------------------------------------


def test_input_held_while_the_stopped_worker_s_backlog_is_full_is_sent_once_it_runs(
    cat: tuple[str, int], client: Client
) -> None:
    """Each ask of a stopped worker leaves a connection in its listen backlog; once that is
    full, a connect fails at once ("connect_failed", EAGAIN), and the held input was
    dropped after ~65 asks. Nothing was sent then: asked again, with a pause between."""
    sid, worker = cat
    said = Said()
    fleet = Counted(Client(timeout=3.0))
    senders = said.senders(fleet)
    os.kill(worker, signal.SIGSTOP)
    fillers = fill_backlog(str(client.home.socket_path(sid)))
    try:
        senders.send(sid, "text", "HELD-TEXT")
        wait_until(lambda: fleet.tries >= 3, timeout=20)  # asked again after connects failed
    finally:
        for filler in fillers:
            filler.close()
        os.kill(worker, signal.SIGCONT)
    wait_until(lambda: _first_line(client, sid) == "HELD-TEXT", timeout=20)
    senders.close()
    reasons = {exc.reason for exc in fleet.errors if isinstance(exc, WorkerUnreachable)}
    assert "connect_failed" in reasons, fleet.errors
    assert said.failed == [] and len(said.held) == 1, (said.failed, said.held)


# -- a paste larger than a socket buffer ------------------------------------------------


def test_a_large_paste_for_a_stopped_worker_is_held_and_typed_once(
    client: Client, tmp_path: Path
) -> None:
    """One request over the socket's buffer: sendall ran out of time (SO_SNDTIMEO) before
    the line's end, which was not asked whether the worker read it, and the paste was
    dropped. A line never sent whole is never a request: asked again once it runs."""
    count = tmp_path / "count"
    rec = client.start([sys.executable, "-c", COUNTER, str(count)])
    sid, worker = str(rec["id"]), int(str(rec["workerPid"]))
    client.wait(sid, input=True, timeout=10)
    said = Said()
    fleet = Counted(Client(timeout=3.0))
    senders = said.senders(fleet)
    data = "\u65e5" * 80_000  # one request (at most 87381 characters), 240 kB as UTF-8
    os.kill(worker, signal.SIGSTOP)
    try:
        senders.send(sid, "paste", data)
        wait_until(lambda: said.held or said.failed, timeout=30)
    finally:
        os.kill(worker, signal.SIGCONT)
    sent = len(data.encode())
    wait_until(lambda: _read(count) >= sent, timeout=30)
    client.text(sid, "Z")  # after it: what the worker took of the asks given up came before
    wait_until(lambda: _read(count) > sent, timeout=30)
    senders.close()
    assert said.failed == [] and said.held, (said.failed, said.held)
    assert any(isinstance(e, WorkerUnreachable) and e.unread for e in fleet.errors)
    assert _read(count) - 1 in (sent, sent + len("\x1b[200~\x1b[201~")), _read(count)


def _read(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


# -- failures that are no AgenttyError, and asks that do not end ----------------------


class Scripted:
    """A fleet whose `text` raises what it is given, in turn, then takes the input."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.sent: list[str] = []
        self.tries = 0

    def text(self, key: str, data: str, *, enter: bool = False) -> JSONObject:
        self.tries += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(data)
        return {"seq": 1}


def _sender_threads(key: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"agentty-ui-send-{key}"]


def test_a_failure_that_is_no_agentty_error_is_said_and_later_input_goes() -> None:
    """An OSError (out of descriptors: `socket.socket` in the client) ended the session's
    thread without a word, its queue still registered: every later key was queued for
    ever."""
    fleet = Scripted(OSError(errno.EMFILE, "Too many open files"))
    said = Said()
    senders = said.senders(fleet)
    senders.send("s1", "text", "first")
    wait_until(lambda: said.failed, timeout=10)
    senders.send("s1", "text", "second")
    wait_until(lambda: fleet.sent, timeout=10)
    senders.close()
    assert fleet.sent == ["second"], fleet.sent
    assert len(said.failed) == 1 and "Too many open files" in said.failed[0], said.failed


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_sender_thread_that_dies_leaves_no_queue_behind() -> None:
    """A thread ended by what it cannot say (its own callback failing) took its queue's
    later input with it; the next input now starts a fresh thread."""
    fleet = Scripted(OSError(errno.EMFILE, "Too many open files"))
    calls: list[str] = []

    def failing(_key: str, said: str) -> None:
        calls.append(said)
        raise RuntimeError("the toast could not be shown")

    senders = Senders(fleet, failing)  # type: ignore[arg-type]
    senders.send("s1", "text", "first")
    wait_until(lambda: calls and not _sender_threads("s1"), timeout=10)
    senders.send("s1", "text", "second")
    wait_until(lambda: fleet.sent, timeout=10)
    senders.close()
    assert fleet.sent == ["second"], fleet.sent


def test_only_what_the_worker_surely_did_not_act_on_is_asked_again() -> None:
    """Unread, not sent whole, no connection, refused as late: asked again, held once.
    Read and not answered in time: maybe typed, so said and not asked again."""
    surely_not = (
        unsent("cannot connect: Resource temporarily unavailable", "connect_failed"),
        unsent("worker stopped answering", "timeout"),
        Late("worker did not answer in time", "timeout"),
    )
    fleet = Scripted(*surely_not)
    said = Said()
    senders = said.senders(fleet)
    senders.send("s1", "text", "held")
    wait_until(lambda: fleet.sent, timeout=20)
    assert fleet.tries == 4 and said.failed == [] and len(said.held) == 1, (fleet.tries, said)
    fleet.failures.append(WorkerUnreachable("worker did not answer in time", "timeout"))
    senders.send("s1", "text", "maybe")
    wait_until(lambda: said.failed, timeout=10)
    senders.close()
    assert fleet.sent == ["held"] and fleet.tries == 5, (fleet.sent, fleet.tries)


def test_closing_ends_the_asks_of_a_worker_that_never_takes_the_input() -> None:
    """Closed while it waits between asks, a sender is not left asking: its thread ends,
    saying what was not sent."""

    class Never(Scripted):
        def text(self, key: str, data: str, *, enter: bool = False) -> JSONObject:
            self.tries += 1
            raise unsent("cannot connect: Resource temporarily unavailable", "connect_failed")

    fleet = Never()
    said = Said()
    senders = said.senders(fleet)
    senders.send("s1", "text", "never")
    wait_until(lambda: fleet.tries >= 3, timeout=20)
    senders.close()
    wait_until(lambda: not _sender_threads("s1"), timeout=10)
    assert len(said.failed) == 1 and "not sent" in said.failed[0], said.failed


# -- what waiting does not mend ----------------------------------------------------------


def test_input_for_a_socket_another_process_serves_is_said_not_held(
    client: Client, cat: tuple[str, int]
) -> None:
    """Another process listens where the worker's socket was (the worker lives on): no
    wait mends that, and the input was held for ever, said "(stopped?)" (a review). It is
    dropped and said, as every failure but a stopped worker's."""
    sid, _ = cat
    path = client.home.socket_path(sid)
    impostor = socket.socket(socket.AF_UNIX)
    impostor.bind(f"{path}.other")
    impostor.listen(8)
    os.replace(f"{path}.other", path)
    said = Said()
    senders = said.senders(Counted(Client(timeout=3.0)))  # (no connection kept from before)
    try:
        senders.send(sid, "text", "abc")
        wait_until(lambda: said.failed, timeout=30)
    finally:
        senders.close()
        impostor.close()
        os.unlink(path)
    assert said.held == [] and "unexpected process" in said.failed[0], said.failed

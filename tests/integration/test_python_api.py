"""The Python API, through the pytest plugin's `agentty_session` fixture."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentty_core import Screen, Session, SessionInfo
from agentty_core.errors import RemoteError, SessionNotRunning, WaitTimeout

Factory = Callable[..., Session]


def test_repl_round_trip(agentty_session: Factory) -> None:
    py = agentty_session([sys.executable, "-q"], name="py")
    assert py.wait(text=">>>").fired == "text"
    seq = py.text("6*7", enter=True)
    result = py.wait(regex=r"^42$", timeout=10)
    assert result.fired == "regex" and result.match == (1, 0)
    assert result.screen.seq > seq and "42" in result.screen.lines
    assert result.screen.input.state == "unknown"  # a wait probes input only when asked to
    assert py.wait(input=True).screen.input.state == "reading"
    assert py.get().input.state == "reading"
    assert Session.find("py").id == py.id
    assert [info.name for info in Session.list()] == ["py"]


def test_screen_dataclass_and_exit(agentty_session: Factory) -> None:
    sh = agentty_session(["sh", "-c", "printf 'a\\nb\\n'; exit 4"], size=(40, 10))
    result = sh.wait(exit=True, timeout=10)
    assert result.fired == "exit"
    screen = sh.get()
    assert screen.text == "a\nb" and (screen.cols, screen.rows) == (40, 10)
    assert screen.exited and screen.exit_code == 4
    assert isinstance(sh.info, SessionInfo) and sh.info.status == "exited"
    with pytest.raises(SessionNotRunning):
        sh.text("late")


def test_timeout_carries_the_screen(agentty_session: Factory) -> None:
    s = agentty_session(["sh", "-c", "echo waiting; sleep 30"])
    s.wait(text="waiting")
    with pytest.raises(WaitTimeout) as info:
        s.wait(text="never", timeout=0.2)
    assert info.value.exit_code == 3
    assert isinstance(info.value.screen, Screen)  # a Screen from Session, as from get()
    assert info.value.screen.lines[0] == "waiting"


def test_context_manager_kills_on_exit(agentty_home_path: Path) -> None:
    with Session.start(["sleep", "60"]) as s:
        assert s.info.status == "running"
    assert s.info.status == "exited"


def test_subscribe_pushes_changed_rows_and_closes_from_another_thread(
    agentty_session: Factory,
) -> None:
    import threading

    cat = agentty_session(["cat"])
    subscription = cat.client.subscribe(cat.id)
    events = subscription.events()
    first = next(events)
    assert first["event"] == "screen" and len(first["rows"]) == 24  # type: ignore[arg-type]
    cat.text("pushed\r")
    changed = next(events)
    rows = changed["rows"]
    assert isinstance(rows, dict) and any(run[0].startswith("pushed") for run in rows["0"])
    threading.Timer(0.2, subscription.close).start()
    list(events)  # returns, instead of blocking on the idle session, once closed
    assert subscription.closed and not subscription.ended


@pytest.mark.parametrize("api", ["session", "client"])
def test_a_forked_child_opens_connections_of_its_own(agentty_session: Factory, api: str) -> None:
    """A connection kept open by the parent was taken by a child forked from it too: on
    the one socket each read the other's answer (an attack round: 1 in 300 waits fired
    with the other process's condition). Here the parent's wait is pending on its kept
    connection, unread until the child is done, when the child asks for the screen: the
    child read the wait's answer (a timeout) as its own."""
    import os

    from agentty_core.client import Client
    from agentty_core.ipc.client import unwrap
    from agentty_core.protocol import str_list

    session = agentty_session(["sh", "-c", "echo ready; exec cat"])
    session.wait(text="ready")
    client = session.client
    assert isinstance(client, Client)
    if api == "session":  # the session's pool keeps the connection its wait used
        pool = session._pool
        assert pool is not None
        kept = pool._idle[-1]
        ask: Callable[[], bool] = lambda: session.wait(text="ready", timeout=5).fired == "text"  # noqa: E731
    else:
        client.get(session.id)  # the client keeps its connection
        kept = client._idle[session.id]
        ask = lambda: "ready" in str_list(client.get(session.id).get("lines"))[0]  # noqa: E731
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child asks once the parent's wait is out
        try:
            os.read(read, 1)
            os._exit(0 if ask() else 3)
        except BaseException:
            os._exit(4)
    try:
        kept.send("wait", {"text": "never", "timeout": 1})
        os.write(write, b"x")
        _, status = os.waitpid(pid, 0)
        with pytest.raises(RemoteError) as answered:  # read once the child is done
            unwrap(kept.read_message(None))
        assert answered.value.code == "timeout"
    finally:
        os.close(read)
        os.close(write)
    assert os.waitstatus_to_exitcode(status) == 0, "the child read an answer not its own"


def test_a_with_block_s_own_exception_is_the_one_raised(agentty_home_path: Path) -> None:
    """A session removed during the block (`agentty gc` once it ended) made its end raise
    SessionNotFound, hiding the block's own exception (an attack round)."""
    import subprocess

    with pytest.raises(ValueError, match="the block's own"), Session.start(["true"]) as s:
        s.wait(exit=True, timeout=20)
        subprocess.run([sys.executable, "-m", "agentty_core", "gc"], check=True)
        raise ValueError("the block's own")
    with Session.start(["true"]) as s:  # and without one: nothing to kill, no error
        s.wait(exit=True, timeout=20)
        subprocess.run([sys.executable, "-m", "agentty_core", "gc"], check=True)


@pytest.mark.parametrize("grace", [1e300, float("nan"), -1.0, None, "2"])
def test_kill_refuses_a_grace_out_of_range_in_agentty_s_words(
    agentty_session: Factory, grace: object
) -> None:
    """1e300 was a struct.error, NaN a ValueError, None a TypeError, -1 the worker's
    RemoteError; the session ran on after each (an attack round)."""
    from agentty_core.errors import UsageError

    s = agentty_session(["cat"])
    with pytest.raises(UsageError, match=r"grace must be a number of seconds in 0\.\.60"):
        s.kill(grace=grace)  # type: ignore[arg-type]  # the point is the bad value
    assert s.info.status == "running"


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"argv": "cat"}, "argv is a list of words"),
        ({"argv": []}, "argv is a non-empty list"),
        ({"argv": ["cat", 1]}, "argv holds strings only, not int 1"),
        ({"argv": ["cat"], "name": 5}, "name is a string"),
        ({"argv": ["cat"], "cwd": 3}, "cwd is a path"),
        ({"argv": ["cat"], "size": (80.5, 24)}, "size is (cols, rows), two integers"),
        ({"argv": ["cat"], "size": None}, "size is (cols, rows), two integers"),
        ({"argv": ["cat"], "env": {"A": 1}}, "env maps names to values"),
        ({"argv": ["cat"], "env": ["A=B"]}, "env maps names to values"),
        ({"argv": [], "shell": True}, "argv is a non-empty list"),
    ],
)
def test_start_says_which_argument_is_wrong(
    agentty_home_path: Path, options: dict[str, object], said: str
) -> None:
    """A string for argv ran the program `c`; size=(80.5, 24) wrote 80.5 into the record;
    the others were a TypeError or an IndexError from deep inside (an attack round)."""
    from agentty_core.errors import UsageError

    with pytest.raises(UsageError) as refused:
        Session.start(**options)  # type: ignore[arg-type]  # the point is the bad value
    assert said in str(refused.value)
    assert Session.list() == []


def test_start_takes_a_path_for_cwd(agentty_home_path: Path) -> None:
    with Session.start(["pwd"], cwd=agentty_home_path) as s:
        assert s.wait(exit=True, timeout=20).screen.lines[0] == str(agentty_home_path)


def test_a_session_dropped_without_close_leaves_no_socket_open(agentty_home_path: Path) -> None:
    """Its pool's kept connections warned "unclosed socket" when it was collected (an
    attack round); a Client closes its own already."""
    import subprocess

    script = (
        "import gc; from agentty_core import Session\n"
        "s = Session.start(['cat']); s.text('x'); sid, client = s.id, s.client\n"
        "del s; gc.collect(); client.kill(sid)\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "ResourceWarning" not in done.stderr, done.stderr


def test_input_of_the_wrong_type_is_a_usage_error_and_nothing_is_sent(
    agentty_session: Factory,
) -> None:
    """text(None), key(['Enter']) and send(b'x') were AttributeErrors or TypeErrors from
    deep inside, text(5) and key() the worker's RemoteError (an attack round)."""
    from agentty_core.errors import UsageError

    s = agentty_session(["cat"])
    seq = s.get().seq
    bad: list[Callable[[], object]] = [
        lambda: s.text(None),  # type: ignore[call-overload]
        lambda: s.text(5),  # type: ignore[call-overload]
        lambda: s.text("x", enter="yes"),  # type: ignore[call-overload]
        lambda: s.key(None),  # type: ignore[call-overload]
        lambda: s.key(["Enter"]),  # type: ignore[call-overload]
        lambda: s.key(),
        lambda: s.send(None),  # type: ignore[call-overload]
        lambda: s.send(b"x"),  # type: ignore[call-overload]
        lambda: s.text("x", wait={"text": "x"}),  # type: ignore[call-overload]
        lambda: s.key("x", wait={"text": "x"}),  # type: ignore[call-overload]
    ]
    for call in bad:
        with pytest.raises(UsageError):
            call()
    assert s.get().seq == seq  # nothing reached the program


def test_a_forked_child_is_not_stuck_on_a_lock_a_thread_of_its_parent_held(
    agentty_session: Factory,
) -> None:
    """The child of a fork has only the thread that forked: a lock another thread held at
    that moment is never let go there (a review: `close` and `kill` hung in the child)."""
    import contextlib
    import os
    import signal
    import threading

    from tests.helpers.cli import wait_until

    session = agentty_session(["sh", "-c", "echo ready; exec cat"])
    session.wait(text="ready")
    pool = session._pool
    assert pool is not None
    held, release = threading.Event(), threading.Event()

    def hold_the_locks() -> None:
        with pool._lock, session._pool_lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_locks)
    holder.start()
    held.wait(30)
    pid = os.fork()
    if pid == 0:
        try:
            session.close()  # a hung child is killed by the parent's timeout below
            ok = session.wait(text="ready", timeout=5).fired == "text"
            os._exit(0 if ok else 3)
        except BaseException:
            os._exit(4)
    release.set()
    holder.join()
    try:
        reaped = wait_until(lambda: _reaped(pid), timeout=30)
        assert reaped is not None
        (status,) = reaped
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # (a child stuck on a lock)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _reaped(pid: int) -> tuple[int] | None:
    import os

    done, status = os.waitpid(pid, os.WNOHANG)
    return (status,) if done else None


def test_start_takes_argv_from_any_iterable_but_a_string(agentty_home_path: Path) -> None:
    """A tuple or a generator worked before the arguments were checked (a review)."""
    with Session.start(word for word in ["sh", "-c", "echo hi"]) as s:
        assert s.wait(exit=True, timeout=20).screen.lines[0] == "hi"
    with Session.start(("sh", "-c", "echo ho")) as s:
        assert s.wait(exit=True, timeout=20).screen.lines[0] == "ho"


def test_a_request_the_worker_refuses_as_bad_is_a_usage_error(agentty_session: Factory) -> None:
    """`wait` says it raises UsageError for a value out of range; a regex that does not
    compile or an `after` past any seq came back as a bare RemoteError. Still one (its
    `code` says which), and a UsageError too."""
    from agentty_core.errors import UsageError

    sh = agentty_session(["cat"])
    for bad in ({"regex": "("}, {"text": "x", "after": 2**62}):
        with pytest.raises(UsageError) as refused:
            sh.wait(timeout=5, **bad)
        assert isinstance(refused.value, RemoteError) and refused.value.exit_code == 2
        assert refused.value.code == "bad_request", refused.value.code


def test_a_session_reference_or_home_of_the_wrong_type_is_a_usage_error(
    agentty_session: Factory, tmp_path: Path
) -> None:
    """Session(123).get() and find(b'x') were TypeErrors from deep inside, find(None) and
    Session(None) quietly the active session, home='/tmp' an AttributeError, and
    screenshot(scale=2.5) a TypeError (an attack round). A home given as a path is taken."""
    import os

    from agentty_core.errors import UsageError

    s = agentty_session(["cat"])
    for bad in (
        lambda: Session(123).get(),  # type: ignore[arg-type]
        lambda: Session(None).get(),  # type: ignore[arg-type]
        lambda: Session.find(None),  # type: ignore[arg-type]
        lambda: Session.find(b"x"),  # type: ignore[arg-type]
        lambda: Session.start(["cat"], home=5),  # type: ignore[arg-type]
        lambda: s.screenshot(scale=2.5),  # type: ignore[arg-type]
        lambda: s.get(scrollback="yes"),  # type: ignore[arg-type]
        lambda: Session.start(["cat"], shell="yes"),  # type: ignore[arg-type]
        lambda: Session.start(["echo hi", "dropped"], shell=True),
    ):
        with pytest.raises(UsageError):
            bad()
    home = os.environ["AGENTTY_HOME"]
    assert Session.find(s.id, home=home).id == s.id  # type: ignore[arg-type]


def test_a_session_s_timeout_is_exported_with_its_screen_typed(agentty_session: Factory) -> None:
    """`except WaitTimeout as e: e.screen` is typed as Client's JSON; the one Session
    raises, whose `.screen` is a Screen, was not exported (mypy --strict refused it)."""
    from agentty_core import SessionWaitTimeout

    s = agentty_session(["cat"])
    with pytest.raises(SessionWaitTimeout) as timed_out:
        s.wait(text="never", timeout=0.2)
    screen: Screen = timed_out.value.screen
    assert isinstance(screen, Screen) and isinstance(timed_out.value, WaitTimeout)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_session_named_by_its_name_or_prefix_takes_every_call(
    agentty_home_path: Path, api: str
) -> None:
    """`Session(ref)` says it takes an id, a unique id prefix or a name: with a name or a
    prefix only `get` worked, `text` and `wait` failed "invalid session id" (a review)."""
    from agentty_core import AsyncSession
    from agentty_core.errors import SessionNotFound

    with Session.start(["cat"], name="named") as started:
        for ref in ("named", started.id[:4]):
            if api == "sync":
                s = Session(ref)
                assert s.id == started.id
                s.text(f"via {ref}", enter=True)
                assert s.wait(text=f"via {ref}", timeout=10).fired == "text"
            else:

                async def typed(ref: str = ref) -> str | None:
                    a = AsyncSession(ref)
                    assert a.id == started.id
                    await a.text(f"async {ref}", enter=True)
                    return (await a.wait(text=f"async {ref}", timeout=10)).fired

                assert asyncio.run(typed()) == "text"
        with pytest.raises(SessionNotFound):
            Session("no-such-name")
    with Session.start(["cat"], name="20261205") as like_an_id:  # (a name of 8 hex digits)
        assert Session("20261205").id == like_an_id.id != "20261205"


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_wait_the_end_made_impossible_raises_with_a_screen(
    agentty_home_path: Path, api: str
) -> None:
    """`SessionNotRunning.screen` from `wait` was the JSON where a timeout's is a `Screen`
    (an outside round): it is a `SessionEnded` now, a `SessionNotRunning` still."""
    from agentty_core import AsyncSession, SessionEnded
    from agentty_core.errors import SessionNotRunning

    with Session.start(["sh", "-c", "echo last words; exit 3"]) as s:
        s.wait(exit=True, timeout=10)
        with pytest.raises(SessionNotRunning) as ended:
            if api == "sync":
                s.wait(text="never said", timeout=10)
            else:
                asyncio.run(AsyncSession(s.id).wait(text="never said", timeout=10))
        assert isinstance(ended.value, SessionEnded), ended.value
        assert ended.value.screen.lines[0] == "last words"
        assert ended.value.screen.exit_code == 3 and ended.value.payload["exitCode"] == 3
        assert "exited (code 3)" in str(ended.value)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_session_records_from_python(agentty_home_path: Path, api: str) -> None:
    """The Python API had no way to record (only Client's undocumented calls, whose
    `record={"on": False}` recorded all the same: an outside round)."""
    import json

    from agentty_core import AsyncSession
    from agentty_core.errors import UsageError

    def cast_of(sid: str) -> Path:
        return agentty_home_path / "logs" / f"{sid}.cast"

    if api == "sync":
        s = Session.start(["cat"], record_markers=True)
        s.text("one", enter=True)
        s.wait(text="one", timeout=10)
        off = s.record(False)
        again = s.record(input=True)
        s.text("two", enter=True)
        s.wait(text="two", timeout=10)
        sid = s.id
        with pytest.raises(UsageError):
            s.record(on="yes")  # type: ignore[arg-type]
        s.kill()
    else:

        async def drive() -> tuple[str, dict[str, object], dict[str, object]]:
            a = await AsyncSession.start(["cat"], record_markers=True)
            await a.text("one", enter=True)
            await a.wait(text="one", timeout=10)
            off = await a.record(False)
            again = await a.record(input=True)
            await a.text("two", enter=True)
            await a.wait(text="two", timeout=10)
            await a.kill()
            return a.id, off, again

        sid, off, again = asyncio.run(drive())
    assert off["recording"] is False and again["recording"] is True and again["input"] is True
    events = [json.loads(line) for line in cast_of(sid).read_text().splitlines()[1:]]
    assert ["m", "text"] in [e[1:] for e in events]
    assert [e[2] for e in events if e[1] == "i"] == ["two\r"], events
    plain = Session.start(["true"])
    assert not cast_of(plain.id).exists()  # (not asked: no recording)


def test_a_session_started_or_found_is_not_looked_up_again(
    agentty_home_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Session(ref)` resolves a name; `start` and `find`, which have the id from its
    record, read the list again for it (a read-through)."""
    from agentty_core.client import Client

    looked: list[str | None] = []
    resolve = Client.resolve

    def counted(self: Client, ref: str | None) -> Any:
        looked.append(ref)
        return resolve(self, ref)

    monkeypatch.setattr(Client, "resolve", counted)
    with Session.start(["cat"], name="once") as s:
        assert looked == []
        assert Session.find("once").id == s.id and looked == ["once"]
        assert Session("once").id == s.id and looked == ["once", "once"]

"""The Python API: a typed handle on one session, safe to share between threads.

    from agentty_core import Session
    from agentty_core.waitspec import WaitConditions

    with Session.start(["python3", "-q"]) as py:
        py.wait(text=">>>")
        answer = py.text("6*7", enter=True, wait=WaitConditions(regex=r"^42$"))
        print(answer.screen.lines)

`Session` wraps `Client`, the same API the CLI and the dashboard use, so the semantics (and
the exception tree in `agentty_core.errors`) are identical. Used as a context manager, the
session is killed on exit. `AsyncSession` (`agentty_core.aio_session`) is the same for
asyncio code.

Threads: each call in flight has a connection of its own to the worker (taken from a small
pool, and given back when the answer is in), so a `wait` blocking in one thread never holds
up `text` from another, and answers never cross.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import overload

from agentty_core import wait_slots
from agentty_core.api_types import (
    Cursor,
    InputState,
    Screen,
    SessionEnded,
    SessionInfo,
    SessionWaitTimeout,
    WaitResult,
)
from agentty_core.client import Client
from agentty_core.client_calls import Patience, kept_call_failed, may_have_acted
from agentty_core.errors import (
    AgenttyError,
    RemoteError,
    SessionNotFound,
    SessionNotRunning,
    UsageError,
    WaitTimeout,
    WorkerUnreachable,
    echoed,
)
from agentty_core.input_steps import Step, in_one_request, key_steps, send_steps, text_steps
from agentty_core.ipc import forks
from agentty_core.ipc.pool import MAX_IDLE, Pool
from agentty_core.paths import Home
from agentty_core.protocol import JSONObject
from agentty_core.waitspec import WaitConditions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from agentty_core.remote.client import RemoteClient

__all__ = [
    "MAX_IDLE",
    "Cursor",
    "InputState",
    "Screen",
    "Session",
    "SessionInfo",
    "SessionWaitTimeout",
    "WaitConditions",
    "WaitResult",
]


# ---------------------------------------------------------------- shared with AsyncSession


def wait_conditions(
    *,
    text: str | None = None,
    regex: str | None = None,
    gone: str | None = None,
    stable: int | None = None,
    changed_since: int | None = None,
    after: int | None = None,
    input: bool = False,
    exit: bool = False,
    scrollback: bool = False,
    timeout: float = 30.0,
) -> WaitConditions:
    """`wait()`'s keywords as the one type every caller checks its values with."""
    return WaitConditions(
        text=text,
        regex=regex,
        gone=gone,
        stable_ms=stable,
        changed_since=changed_since,
        after=after,
        input=input,
        exit=exit,
        scrollback=scrollback,
        timeout=timeout,
    )


def checked_wait(wait: object) -> None:
    """An input method's `wait`: None or a WaitConditions (a dict was an AttributeError
    once the input had gone out)."""
    if wait is not None and not isinstance(wait, WaitConditions):
        kind = type(wait).__name__
        raise UsageError(f"wait takes WaitConditions(...), as WaitConditions(text='$'); not {kind}")


def after_input(spec: WaitConditions, seq: int) -> WaitConditions:
    """`spec`, counting only on output after the input that was sent at `seq`."""
    after = seq if spec.after is None else max(seq, spec.after)
    return dataclasses.replace(spec, after=after)


def not_running(session_id: str, exc: RemoteError) -> AgenttyError:
    """A worker's `exited` answer is SessionNotRunning, as from every other way of asking."""
    if exc.code != "exited":
        return exc
    detail = exc.message.removeprefix(f"session {session_id} ")
    ended = SessionNotRunning(session_id, detail)
    ended.input_sent = exc.input_sent  # (of an input in parts: send only the rest)
    return ended


def seq_of(result: JSONObject) -> int:
    seq = result.get("seq")
    return seq if isinstance(seq, int) else 0


class Session:
    """One background PTY session."""

    def __init__(self, session_id: str, client: Client | RemoteClient | None = None) -> None:
        self.client: Client | RemoteClient = client or Client()
        self.id = resolved_id(session_id, "a Session's id", self.client)
        self._pool: Pool | None = None
        self._pool_lock = threading.Lock()
        forks.reset_in_child(self, Session._unlocked)  # (its pool forgets the parent's own)

    def _unlocked(self) -> None:
        """In a forked child: the lock may have been held by a thread of the parent."""
        self._pool_lock = threading.Lock()

    def _open_pool(self) -> Pool | None:
        if not isinstance(self.client, Client):
            return None  # a remote session: its client keeps the relay
        with self._pool_lock:
            if self._pool is None:
                try:
                    rec = self.client.require_running(self.id)
                except AgenttyError:
                    return None
                pid = rec.get("workerPid")
                path = str(self.client.home.socket_path(self.id))
                self._pool = Pool(path, pid if isinstance(pid, int) else None, self.client.timeout)
            return self._pool

    def _fast(
        self, method: str, params: JSONObject, timeout: float | None = None
    ) -> JSONObject | None:
        """Ask the worker directly: no record lookup, liveness check or connect per call.
        None when the connection fails; the caller then goes the long way through `Client`,
        which tells a dead worker from an ended session. A remote session always goes
        through its client (which keeps its relay open)."""
        if not isinstance(self.client, Client):
            return None
        pool = self._pool or self._open_pool()
        if pool is None:
            return None
        waiting = Patience()
        while True:
            try:
                conn = pool.take()
            except WorkerUnreachable:
                self.close()
                return None
            try:
                result = conn.call(method, params, timeout=timeout)
            except BaseException as exc:
                failed = kept_call_failed(exc)
                if failed == "answered":
                    pool.give(conn)
                    raise
                conn.close()
                if failed == "lost":
                    self.close()
                    if may_have_acted(method, exc):
                        raise  # (not asked again: it would be typed twice)
                    return None
                if failed == "again" and (pause := waiting.next()) is not None:
                    time.sleep(pause)  # (every connection taken): asked again, a while
                    continue
                raise
            pool.give(conn)
            return result

    def _request(self, method: str, params: JSONObject) -> JSONObject:
        try:
            result = self._fast(method, params)
            if result is None:
                result = self.client._call_running(self.id, method, params)
        except RemoteError as exc:
            raise not_running(self.id, exc) from None
        return result

    def _send(self, steps: list[Step]) -> int:
        """Send the requests in order; the seq from before the first."""
        seqs = [seq_of(self._request(method, params)) for method, params in steps]
        return seqs[0]

    def close(self) -> None:
        """Drop the kept-open connections (the session itself runs on)."""
        if not isinstance(self.client, Client):
            self.client.close()  # a remote session's relay
        else:
            self.client.let_go(self.id)  # (the one its client keeps: `kill` used it)
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # ------------------------------------------------------------ finding and starting

    @classmethod
    def start(
        cls,
        argv: Iterable[str],
        *,
        name: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        size: tuple[int, int] = (80, 24),
        env: Mapping[str, str] | None = None,
        shell: bool = False,
        home: Home | None = None,
        host: str | None = None,
        record: bool = False,
        record_input: bool = False,
        record_markers: bool = False,
    ) -> Session:
        """Start `argv` (exactly, no shell; `shell=True` runs `argv[0]` with `$SHELL -lc`);
        on `host` (an ssh destination or a hosts.toml name) rather than here when given.
        `record`: an asciicast recording from the start (`record_input`: typed input too,
        it may hold secrets; `record_markers`: a marker for each input call; either one
        records), as `agentty start --record` makes."""
        argv, cwd, (cols, rows) = _start_args(argv, name, cwd, size, env)
        checked_flags(
            shell=shell, record=record, record_input=record_input, record_markers=record_markers
        )
        if shell and len(argv) > 1:  # (the rest were dropped without a word)
            raise UsageError("shell=True runs one command line: give it as argv's only word")
        client = _client(home, host)
        cast = None
        if record or record_input or record_markers:
            cast = {"input": record_input, "markers": record_markers}
        start = partial(client.start, name=name, cwd=cwd, cols=cols, rows=rows, env=env)
        rec = start(shell=argv[0], record=cast) if shell else start(argv, record=cast)
        return cls(Resolved(rec["id"]), client)

    @classmethod
    def find(cls, ref: str, *, home: Home | None = None, host: str | None = None) -> Session:
        """A session by id, unique id prefix or name (on `host` when given)."""
        client = _client(home, host)
        return cls(Resolved(client.resolve(session_ref(ref, "find's ref"))["id"]), client)

    @classmethod
    def list(
        cls, *, home: Home | None = None, host: str | None = None
    ) -> builtins.list[SessionInfo]:
        """Every session, each running one as its worker knows it (`status`: an exit it
        could not record yet, its input state)."""
        client = _client(home, host)
        return [SessionInfo.from_record(r) for r in client.sessions(live_info=True)]

    @property
    def info(self) -> SessionInfo:
        return SessionInfo.from_record(self.client.resolve(self.id))

    def __repr__(self) -> str:
        return f"Session({self.id!r})"

    # ------------------------------------------------------------ I/O

    def get(self, *, scrollback: bool = False) -> Screen:
        checked_flags(scrollback=scrollback)
        return Screen.from_json(self.client.get(self.id, scrollback=scrollback))

    def screenshot(self, *, scale: int = 1) -> bytes:
        """The screen as PNG bytes, with its colours, attributes and cursor: cols*8 x rows*16
        pixels times `scale` (1..4). Needs Pillow (`pip install 'agentty[png]'`)."""
        from agentty_core.render.png import png_bytes

        if type(scale) is not int or not 1 <= scale <= 4:
            raise UsageError(f"scale must be a whole number in 1..4, not {echoed(scale)}")
        return png_bytes(self.client.get(self.id, ansi=True), scale=scale)

    @overload
    def text(self, data: str | bytes, *, enter: bool = ..., wait: None = None) -> int: ...
    @overload
    def text(self, data: str | bytes, *, enter: bool = ..., wait: WaitConditions) -> WaitResult: ...
    def text(
        self, data: str | bytes, *, enter: bool = False, wait: WaitConditions | None = None
    ) -> int | WaitResult:
        """Type `data`. Returns the screen's seq from before (for `wait(after=...)`), or
        with `wait`, the wait's result, its conditions counted only on output after the
        input (the screen from before can never fire it, nor the echo of what was typed)."""
        return self._then(wait, lambda: self._typed(data, enter=enter))

    @overload
    def key(self, *names: str, wait: None = None) -> int: ...
    @overload
    def key(self, *names: str, wait: WaitConditions) -> WaitResult: ...
    def key(self, *names: str, wait: WaitConditions | None = None) -> int | WaitResult:
        """Press keys (see `agentty_core.keys`); the seq from before, or the wait's result."""
        return self._then(wait, lambda: self._send(key_steps(names)))

    @overload
    def paste(self, data: str | bytes, *, wait: None = None) -> int: ...
    @overload
    def paste(self, data: str | bytes, *, wait: WaitConditions) -> WaitResult: ...
    def paste(self, data: str | bytes, *, wait: WaitConditions | None = None) -> int | WaitResult:
        """Paste (bracketed when the program enabled it); the seq, or the wait's result."""
        return self._then(wait, lambda: self._typed(data, paste=True))

    def _typed(self, data: str | bytes, *, enter: bool = False, paste: bool = False) -> int:
        """Type `data`: in one request, or in parts as `Client.text` sends a large input
        (one request was refused over 1 MiB); the seq from before."""
        if in_one_request(data):
            return self._send(text_steps(data, enter=enter, paste=paste))
        try:
            return seq_of(self.client.text(self.id, data, enter=enter, paste=paste))
        except RemoteError as exc:
            raise not_running(self.id, exc) from None

    @overload
    def send(
        self, *args: str, literal: bool = ..., enter: bool = ..., wait: None = None
    ) -> int: ...
    @overload
    def send(
        self, *args: str, literal: bool = ..., enter: bool = ..., wait: WaitConditions
    ) -> WaitResult: ...
    def send(
        self,
        *args: str,
        literal: bool = False,
        enter: bool = False,
        wait: WaitConditions | None = None,
    ) -> int | WaitResult:
        """Mixed input, as `tmux send-keys`: each key name pressed, anything else typed
        (`send("i", "a line", "Esc", ":wq", "Enter")`); `literal` types every argument."""
        return self._then(wait, lambda: self._send(send_steps(args, literal=literal, enter=enter)))

    def _then(self, wait: WaitConditions | None, send: Callable[[], int]) -> int | WaitResult:
        """`send()` the input; then, with `wait` (checked first: nothing is sent for a bad
        one), wait for output after it."""
        checked_wait(wait)
        seq = send()
        return seq if wait is None else self._wait(after_input(wait, seq))

    def wait(
        self,
        *,
        text: str | None = None,
        regex: str | None = None,
        gone: str | None = None,
        stable: int | None = None,
        changed_since: int | None = None,
        after: int | None = None,
        input: bool = False,
        exit: bool = False,
        scrollback: bool = False,
        timeout: float = 30.0,
    ) -> WaitResult:
        """Block until any condition holds (checked by the worker as output arrives).

        `stable` is in milliseconds. `after` (a seq from `text`/`key`/`send`) counts every
        condition only on a screen newer than it, and `text`/`regex` then read the screen with
        the echo of typed input blanked. Raises `WaitTimeout` (its `.screen` a
        `Screen`) on timeout, `SessionNotRunning` when the program ended and no condition
        held on its last screen, and `UsageError` for a wait without a condition or a value
        out of range (nothing sent)."""
        return self._wait(
            wait_conditions(
                text=text,
                regex=regex,
                gone=gone,
                stable=stable,
                changed_since=changed_since,
                after=after,
                input=input,
                exit=exit,
                scrollback=scrollback,
                timeout=timeout,
            )
        )

    def _wait(self, spec: WaitConditions) -> WaitResult:
        if spec.exit:  # the exit and its final screen come from the record: the long way
            if not isinstance(self.client, Client):
                return WaitResult.from_json(self._long_wait(spec, spec.timeout))
            with self._wait_slot(spec.timeout) as left:  # (it holds a connection meanwhile)
                return WaitResult.from_json(self._long_wait(spec, left))
        result = self._wait_on_worker(spec)
        if result is None:  # an ended session is answered from its saved screen
            result = self._long_wait(spec, spec.timeout)
        return WaitResult.from_json(result)

    def _long_wait(self, spec: WaitConditions, timeout: float) -> JSONObject:
        try:
            return self.client.wait(self.id, timeout=timeout, **spec.conditions())
        except (SessionWaitTimeout, SessionEnded):
            raise
        except WaitTimeout as exc:
            raise SessionWaitTimeout(exc.message, exc.screen) from None
        except SessionNotRunning as exc:  # its last screen a Screen, as a timeout's is
            raise SessionEnded(exc) from None

    @contextlib.contextmanager
    def _wait_slot(self, timeout: float) -> Iterator[float]:
        """One of the session's wait slots (`wait_slots`), for a wait of `timeout` seconds:
        the time left of it once the slot is ours (all of it when none was queued for, so
        the worker's words say "after 30s"). Every wait that holds a worker connection takes
        one: 70 threads waiting for the exit took all 64 and input found none."""
        assert isinstance(self.client, Client)
        slots = wait_slots.for_threads(str(self.client.home.socket_path(self.id)))
        began = time.monotonic()
        queued = not slots.acquire(blocking=False)  # (at once, even with a timeout of 0)
        if queued and not slots.acquire(timeout=timeout):
            message = f"wait timed out after {timeout:g}s (the session's waits queued)"
            raise SessionWaitTimeout(message, self.client.get(self.id))
        try:
            yield max(0.0, timeout - (time.monotonic() - began)) if queued else timeout
        finally:
            slots.release()

    def _wait_on_worker(self, spec: WaitConditions) -> JSONObject | None:
        """The worker's answer, asked within one of the session's wait slots; None when the
        session ended or its worker cannot be asked."""
        if not isinstance(self.client, Client):
            return None  # (a remote session: its client keeps the relay)
        with self._wait_slot(spec.timeout) as left:
            params: JSONObject = {**spec.params(), "timeout": left}
            try:
                return self._fast("wait", params, timeout=left + 5.0)
            except RemoteError as exc:
                if exc.code == "timeout":
                    raise SessionWaitTimeout(exc.message, self.client.get(self.id)) from None
                if exc.code != "exited":
                    raise
                return None

    def record(self, on: bool = True, *, input: bool = False, markers: bool = False) -> JSONObject:
        """Start (`on`) or stop the session's asciicast recording, `logs/<id>.cast` in its
        home (`input`: typed input too; `markers`: a marker for each input call), as
        `agentty record on|off`; the answer says what it records (`recording`, `input`,
        `markers`, `path`), or `error` when it could not start (a full disk)."""
        return recorded(self.client, self.id, on, input=input, markers=markers)

    def resize(self, cols: int, rows: int) -> None:
        try:
            self.client.resize(self.id, cols, rows)
        except RemoteError as exc:
            raise not_running(self.id, exc) from None

    def signal(self, name: str, *, leader: bool = False) -> None:
        try:
            self.client.signal(self.id, name, leader=leader)
        except RemoteError as exc:
            raise not_running(self.id, exc) from None

    def kill(self, *, grace: float = 2.0) -> JSONObject:
        """End the whole process tree (confirmed). A session that already ended raises
        `SessionNotRunning`, as `agentty kill` and the MCP `kill` answer it."""
        self.close()
        return self.client.kill(self.id, grace=grace)

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.kill(grace=0.5)
        except GONE:
            pass
        except AgenttyError as failed:
            kill_failed(failed, exc)
        finally:
            self.close()  # (the connection `kill` used: to a worker that has ended)


def _start_args(
    argv: object, name: object, cwd: object, size: object, env: object
) -> tuple[list[str], str | None, tuple[int, int]]:
    """`start`'s arguments checked as the CLI's parser checks its words: a Python caller's
    mistake is a UsageError naming it, not a TypeError deep inside, nor (a string for
    argv) a program named after its first letter."""
    if isinstance(argv, (str, bytes)):
        raise UsageError(f"argv is a list of words, as ['ls', '-l']; not the string {argv!r}")
    if isinstance(argv, Iterable):
        argv = list(argv)  # (a tuple, a generator: as before)
    if not isinstance(argv, list) or not argv:
        raise UsageError("argv is a non-empty list of words: the program and its arguments")
    if not all(isinstance(word, str) for word in argv):
        bad = next(word for word in argv if not isinstance(word, str))
        raise UsageError(f"argv holds strings only, not {type(bad).__name__} {bad!r}")
    if name is not None and not isinstance(name, str):
        raise UsageError(f"name is a string, not {type(name).__name__}")
    if cwd is not None and not isinstance(cwd, (str, os.PathLike)):
        raise UsageError(f"cwd is a path, not {type(cwd).__name__}")
    cells = list(size) if isinstance(size, (tuple, list)) else []
    if len(cells) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) for n in cells):
        raise UsageError(f"size is (cols, rows), two integers: not {size!r}")
    if env is not None and not (
        isinstance(env, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    ):
        raise UsageError("env maps names to values, both strings")
    path = None if cwd is None else os.fspath(cwd)
    return argv, path, (cells[0], cells[1])


# What a `with` block's kill at its end finds: nothing to kill (it ended by itself, or
# was removed meanwhile: `agentty gc`).
GONE = (SessionNotRunning, SessionNotFound)


def kill_failed(failed: AgenttyError, raised: BaseException | None) -> None:
    """A `with` block's kill failed: raised, unless the block's own exception is on its
    way out, which it must not hide (noted on it instead)."""
    if raised is None:
        raise failed
    if hasattr(raised, "add_note"):  # (3.11)
        raised.add_note(f"agentty: the session could not be killed: {failed}")


def recorded(
    client: Client | RemoteClient, session_id: str, on: bool, *, input: bool, markers: bool
) -> JSONObject:
    """`Session.record` and `AsyncSession.record`'s call."""
    checked_flags(on=on, input=input, markers=markers)
    try:
        return client.record(session_id, on, input=input, markers=markers)
    except RemoteError as exc:
        raise not_running(session_id, exc) from None


def session_ref(ref: object, what: str) -> str:
    """A session id, prefix or name as a caller gave it: a str (None took the active
    session without a word, a number failed deep inside)."""
    if not isinstance(ref, str):
        raise UsageError(
            f"{what} is a session id, unique id prefix or name (a str), not {echoed(ref)}"
        )
    return ref


class Resolved(str):
    """A session's id as its record gave it just now (`start`, `find`): not looked up again."""


def resolved_id(ref: object, what: str, client: Client | RemoteClient) -> str:
    """The id of the session `ref` names (`session_ref`). A name or prefix is resolved
    here, once, to the session it names now (it was taken for an id: `get` found it, every
    other call failed "invalid session id"); another host resolves it on each call."""
    if isinstance(ref, Resolved):
        return str(ref)
    ref = session_ref(ref, what)
    if isinstance(client, Client):  # (a name may look like an id: `20261205`)
        return str(client.resolve(ref)["id"])
    return ref


def checked_flags(**flags: object) -> None:
    """Each flag a True or False (a "yes" was taken for True, a 0 for False)."""
    for what, flag in flags.items():
        if type(flag) is not bool:
            raise UsageError(f"{what} is True or False, not {echoed(flag)}")


def _home(home: object) -> Home | None:
    """`home=` as a Home, or a path to one (a str was an AttributeError deep inside)."""
    if home is None or isinstance(home, Home):
        return home
    if isinstance(home, (str, os.PathLike)):
        return Home.resolve(Path(home))
    raise UsageError(f"home is a Home or a path to one, not {echoed(home)}")


def _client(home: Home | None, host: str | None) -> Client | RemoteClient:
    home = _home(home)
    if host is None:
        return Client(home)
    from agentty_core.remote.client import RemoteClient

    return RemoteClient(host, home=home)

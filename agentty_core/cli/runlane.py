"""The `run` fast lane: a plain `agentty run` with the home's spawner warm.

The full path imports argparse, the Client and the state store before it starts anything:
`run` cost twice a `start`, most of it imports, for a command that is often one step of an
agent's task (an installer answered in one call). Here the session starts as the `start`
lane starts one (`startlane.launch`, not made the active session), and `run`'s steps go over
one connection to its worker on the interpreter's C modules: each wait, each answer, and at
the end `forget`, which has the worker remove the session it has just ended (the record and
its files: what the full path's `gc_session` removes).

The driving, the output and every ending are `cli/run.finish`'s, the full path's own. What
the lane cannot settle is asked of the full path's Client: a wait again (it changes
nothing), input where none was sent, the removal where the worker could not do it (a
program that ended before the lane reached its worker, one that exits at once, ends that
way: its final screen is in the files, its record needs the state store). Plain means
`--timeout`, `--expect`, `--input`, `--text`, `--key`, `--cols`, `--rows`, `--cwd`, `--json`
and the program after `--`; anything else (a key name the full path would refuse, say), and
every `run` without a warm spawner, goes the full way.
"""

from __future__ import annotations

import _socket
import os
import sys
import time

from agentty_core import spawning
from agentty_core.cli import hotread
from agentty_core.cli.fast import options_before_program, plain_seconds, whole_number
from agentty_core.cli.lane import (
    NOTHING_HAPPENED,
    TIMEOUT,
    has_ended,
    request_line,
    set_deadline,
)
from agentty_core.errors import (
    NO_ANSWER,
    AgenttyError,
    RemoteError,
    WaitTimeout,
    WorkerUnreachable,
    no_answer,
)
from agentty_core.screen_text import row_text_problem

TYPE_CHECKING = False  # without importing typing: this module is the hot path
if TYPE_CHECKING:
    from _socket import socket
    from collections.abc import Callable

    from agentty_core.client import Client
    from agentty_core.protocol import JSONObject

# run's options that take a value, by the attribute argparse gives each (`parser._run`).
VALUED = {"--timeout": "timeout", "--expect": "expect", "--input": "input", "--key": "key"}
ANSWERS = frozenset({"expect", "input", "text", "key"})  # repeatable (argparse's append)
VALUED.update({"--text": "text", "--cwd": "cwd", "--cols": "cols", "--rows": "rows"})


class Options:
    """`run`'s command line as argparse reads it (`cli/run.Options`)."""

    def __init__(self) -> None:
        self.argv: list[str] = []
        self.expect: list[str] = []
        self.answers: list[tuple[str, str]] = []
        self.timeout = 60.0
        self.cols = 80
        self.rows = 24
        self.cwd: str | None = None
        self.json = False


def parse(words: list[str]) -> Options | None:
    """`run`'s plain forms, as argparse and `cli/run.program` read them; None for the rest
    (argparse decides, and says what is wrong)."""
    if words[:1] != ["run"]:
        return None
    opts = Options()
    scanned = options_before_program(words[1:], VALUED, ANSWERS)
    if scanned is None:
        return None
    pairs, opts.json, argv = scanned
    for attr, value in pairs:
        if not value and attr != "input":
            return None  # argparse's reading (an empty --input is an Enter)
        if attr in ("cols", "rows"):
            number = whole_number(value)
            if number is None:
                return None
            setattr(opts, attr, number)
        elif attr == "timeout":
            timeout = plain_seconds(value)
            if timeout is None:
                return None
            opts.timeout = timeout
        elif attr == "cwd":
            opts.cwd = value
        elif attr == "expect":
            if row_text_problem("--expect", value):
                return None  # the full path refuses it, with its message
            opts.expect.append(value)
        elif attr == "key" and not _keys_known(value):
            return None  # the full path refuses it, with its message
        else:
            opts.answers.append((attr, value))
    if not argv or argv[0] == "--" or len(opts.expect) > len(opts.answers):
        return None  # the full path's reading, or its message
    opts.argv = argv
    return opts


def _keys_known(value: str) -> bool:
    """Keys `cli/run.program` takes (the full path refuses the others, with its message)."""
    from agentty_core.cli.run import check_keys
    from agentty_core.errors import UsageError

    try:
        check_keys(value)
    except UsageError:
        return False
    return True


def run(words: list[str]) -> int | None:
    """The command's exit code, or None: the full path must handle it."""
    args = parse(words)
    if args is None:
        return None
    from agentty_core.cli import startlane
    from agentty_core.cli.run import Signals, finish, stopped_before_start

    deadline = time.monotonic() + args.timeout
    start: dict[str, object] = {"argv": args.argv, "cwd": args.cwd, "cols": args.cols}
    start.update(rows=args.rows, shell=None, name=None, env={})
    with Signals() as signals:
        started = startlane.launch(start, activate=False, keep_failed=False, held=True)
        if started is None and signals.pending is not None:
            # Noted while the spawner was asked, and nothing started: the full path, which
            # would start the program anyway, is not asked (it was dropped with this lane's
            # handlers, and the program ran until --timeout).
            return stopped_before_start(signals.pending)
        if not isinstance(started, tuple):
            return started
        home, sid, worker_pid = started
        lane = Lane(home, sid, worker_pid)
        try:
            return finish(lane, sid, args, deadline, signals, lane.full)
        except AgenttyError as exc:  # as `cli.main` reports it
            hotread.error(str(exc))
            return exc.exit_code
        finally:
            lane.close()


HOLD = b'{"v":1,"method":"hold","params":{}}\n'  # `Requests._hold`
LOOK_AFTER_END = 0.25  # after a wait's own end: the wait before a look for a stopped worker


class Lane:
    """`run`'s calls to its session (`cli/run.Driver`) on one connection to its worker, a
    peer of our uid and the pid the spawner named. After a lost answer the connection is
    out of step: it is dropped, and the Client takes the calls from there."""

    def __init__(self, home: str, sid: str, worker_pid: int) -> None:
        self.home = home
        self.sid = sid
        self.path = os.path.join(home, "sockets", sid + ".sock")
        self.worker_pid = worker_pid
        self.sock: socket | None = None
        self.broken = False
        self.client: Client | None = None
        self.forgotten = False  # the worker removed the session at its end, as asked
        self.silent: str | None = None  # the session, once its worker failed to answer

    def full(self) -> Client:
        """The full path's Client, for what the lane leaves to it."""
        if self.client is None:
            from agentty_core.client import Client

            self.client = Client()
        return self.client

    def wait(self, ref: str, *, timeout: float = 30.0, **conditions: object) -> JSONObject:
        """A wait for the exit alone is `run`'s last: the worker is asked to remove the
        session at the end instead of recording it (`gc_session` then has nothing to do)."""
        params: dict[str, object] = {
            name: value
            for name, value in conditions.items()
            if value is not None and value is not False  # 0 is a value (`wait_params`)
        }
        if params == {"exit": True}:
            params["forget"] = True
        params["timeout"] = timeout
        began = time.monotonic()
        _, reply = self._ask("wait", params, timeout + 5.0, look_at=timeout)
        if reply is not None:
            if reply["ok"] is True:
                result = _result(reply)
                self.forgotten = result.pop("forgotten", None) is True
                return result
            error = _error(reply)
            if error.get("code") == "timeout":
                raise WaitTimeout(str(error.get("message")), self._screen(ref))
        # Ended (its final screen is in the files), lost, refused: the full path knows.
        left = max(0.0, timeout - (time.monotonic() - began))
        return self.full().wait(ref, timeout=left, **conditions)

    def text(self, ref: str, data: str, *, enter: bool = False) -> JSONObject:
        params = {"enter": enter, "paste": False, "data": data}
        return self._input(ref, "text", params, lambda: self.full().text(ref, data, enter=enter))

    def key(self, ref: str, names: list[str]) -> JSONObject:
        return self._input(ref, "key", {"keys": names}, lambda: self.full().key(ref, names))

    def _input(
        self, ref: str, method: str, params: dict[str, object], full: Callable[[], JSONObject]
    ) -> JSONObject:
        """Send input; `full` sends it the full way where the lane cannot tell."""
        sent, reply = self._ask(method, params, TIMEOUT)
        if not sent or (reply is None and has_ended(self.home, ref)):
            # Not sent, or dropped by a worker that was ending: the full path refuses input
            # to an ended session in the record's words (as `lane` does) or sends it.
            return full()
        if reply is None:  # (slow: its `until` passes as this wait does, and it is not done)
            raise WorkerUnreachable(NO_ANSWER, "timeout")
        if reply["ok"] is True:
            return _result(reply)
        error = _error(reply)
        if error.get("code") in NOTHING_HAPPENED:  # (ended, say): the full path's words
            return full()
        if error.get("code") == "late":  # read after its `until`: not done
            raise WorkerUnreachable(NO_ANSWER, "timeout")
        exit_code = error.get("exit_code")
        raise RemoteError(
            str(error.get("message", "worker error")),
            code=str(error.get("code")),
            exit_code=exit_code if isinstance(exit_code, int) and exit_code > 0 else 1,
        )

    def gc_session(self, session_id: str) -> None:
        if self.forgotten:
            return
        _, reply = self._ask("forget", {}, TIMEOUT)
        if reply is None or reply["ok"] is not True:
            self.full().gc_session(session_id)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _screen(self, ref: str) -> JSONObject:
        """The screen as it is now, for a wait that timed out (`Client.wait`)."""
        _, reply = self._ask("get", {}, TIMEOUT)
        if reply is not None and reply["ok"] is True:
            return _result(reply)
        return self.full().get(ref)

    def _ask(
        self,
        method: str,
        params: dict[str, object],
        within: float,
        look_at: float | None = None,
    ) -> tuple[bool, dict[str, object] | None]:
        """Whether the request went out, and the answer (None: none came, or not one of
        ours; the connection is dropped then). `look_at`: when (seconds from now) to look
        whether the worker is stopped, before `within` is waited out (a wait's own end:
        `run --timeout 5` with its worker stopped ended after 10.5 s)."""
        line = request_line(method, params, within)
        sock = None if line is None else self._connection()
        if sock is None or line is None:
            return False, None
        began = time.monotonic()
        first = within if look_at is None else min(within, look_at + LOOK_AFTER_END)
        set_deadline(sock, _socket.SO_RCVTIMEO, first)
        try:
            sock.sendall(line)
        except OSError:  # a line is read whole or not at all: nothing was done
            self._drop()
            return False, None
        rest = bytearray()
        reply = hotread.read_reply(sock, silent=hotread.SILENT, rest=rest)
        left = within - (time.monotonic() - began)
        if reply is hotread.SILENT and left > 0 and not spawning.stopped(self.worker_pid):
            set_deadline(sock, _socket.SO_RCVTIMEO, left)  # slow, not stopped: the rest
            reply = hotread.read_reply(sock, silent=hotread.SILENT, rest=rest)
        if reply is hotread.SILENT and not spawning.stopped(self.worker_pid):
            reply = None  # slow (a loaded machine), not stopped: input fails (a timeout)
        if reply is hotread.SILENT:
            # Alive but not answering within the full path's own wait (stopped, say): it
            # would wait as long again to say so. Ended from outside (`_end`), as it does.
            self._drop()
            self.silent = self.sid
            raise WorkerUnreachable(no_answer(self.worker_pid), "timeout")
        if reply is None or reply.get("v") != 1 or not isinstance(reply.get("ok"), bool):
            self._drop()
            return True, None
        return True, reply

    def hold(self, ref: str) -> socket | None:
        """A connection of its own that holds the session (`Client.hold`); None if the
        worker cannot be reached (then the next call says what is wrong)."""
        held = self._connect()
        if held is None:
            return None
        try:
            held.sendall(HOLD)
        except OSError:
            held.close()
            return None
        return held

    def _connection(self) -> socket | None:
        if self.sock is None and not self.broken:
            self.sock = self._connect()
            self.broken = self.sock is None  # the full path's checks, and its message
        return self.sock

    def _connect(self) -> socket | None:
        """A connection to our worker: a peer of our uid with the pid the spawner named."""
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        try:
            set_deadline(sock, _socket.SO_SNDTIMEO, TIMEOUT)
            sock.connect(self.path)
            cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        except OSError:
            sock.close()
            return None
        pid = int.from_bytes(cred[0:4], sys.byteorder)
        uid = int.from_bytes(cred[4:8], sys.byteorder)
        if uid != os.getuid() or pid != self.worker_pid:
            sock.close()
            return None
        return sock

    def _drop(self) -> None:
        self.close()
        self.broken = True


def _result(reply: dict[str, object]) -> JSONObject:
    result = reply.get("result")
    return result if isinstance(result, dict) else {}


def _error(reply: dict[str, object]) -> dict[str, object]:
    error = reply.get("error")
    return error if isinstance(error, dict) else {}

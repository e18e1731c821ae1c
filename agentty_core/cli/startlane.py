"""The `start` fast lane: a plain `agentty start` handed to the home's warm spawner.

The full path imports argparse, the state store, filelock and the launcher, and writes the
intent record itself: ~7x the interpreter's own start. With the spawner warm, none of that
is needed here: this module reads the command line, sends the request with what the worker
must inherit (environment, cwd, umask, rlimits, signal mask, as `spawner_client` sends it)
on the spawner's socket (a peer of our uid, checked), and the worker the spawner forks does
the full path's part itself (`worker.forked.start_session`: the same checks and one-line
errors, name uniqueness under the state lock, the record, the active pointer) before it
answers on the status pipe. Only the interpreter's C modules are imported.

Plain means: `--name`, `--cwd`, `--cols`, `--rows`, `--env` (repeated), `--shell`, `--json`
and the program after `--`. Anything else (a recording, help, an option argparse might read
otherwise) goes the full way, and so does every start when the spawner is not running,
answers late (stopped, wedged, busy) or refuses: nothing was written then, and the full
path starts the session (and the spawner). Once the spawner answered, the worker is told
to go ahead; until then it writes nothing, so a late answer never makes a second session.
"""

from __future__ import annotations

import os
import sys

from agentty_core import spawning
from agentty_core._version import __version__
from agentty_core.cli import hotread
from agentty_core.cli.fast import options_before_program, whole_number
from agentty_core.spawning import caller_context

TYPE_CHECKING = False  # without importing typing: this module is the hot path
if TYPE_CHECKING:
    from collections.abc import Callable

    from agentty_core.cli.hotpath import OutputFailed

# How long the lane waits for the spawner's answer (`spawning.read_answer`). A spawner that
# makes no progress (stopped, dead, blocked) is given up on within `spawning.WAIT`; a busy one
# (20 starts at once on a loaded machine queue behind each other), or the worker it took the
# request for, is waited for up to BUSY_WAIT: a start that goes the full way costs more.
BUSY_WAIT = spawning.ANSWER_WAIT
# The worker does the full path's part too: the intent record, under the state lock (up to
# store.LOCK_TIMEOUT, 10 s, when another process holds it), before the ready wait the full
# path allows (launcher.READY_TIMEOUT: the running record's lock wait, 10 s, and 10 s more).
# Waited for as long, a held lock ends the start with the worker's own words (the lock timed
# out), as the full path's, not with ours.
READY_TIMEOUT = 10.0 + 10.0 + 10.0
MARK_LOCK_WAIT = 1.0  # a failed start's record: a held lock must not hold up the message
SIGTERM, SIGKILL = 15, 9
_VALUED = {"--name": "name", "--cwd": "cwd", "--shell": "shell", "--cols": "cols"}
_VALUED.update({"--rows": "rows", "--env": "env"})

# Why the lane handed over, for the full path (`hotpath`): "" nothing was asked; "asked" the
# spawner was asked and did not serve (asking again would only wait again); "upgraded" it
# stepped down (an upgrade, or a context of its own that cannot serve us: "outgrown"), and
# the full path launches its successor.
handed_over = ""


def parse(words: list[str]) -> dict[str, object] | None:
    """`start`'s plain forms, as argparse and `cmd_start` read them; None for the rest."""
    if words[:1] != ["start"]:
        return None
    opts: dict[str, object] = {"json": False, "name": None, "cwd": None, "shell": None}
    opts.update(cols=80, rows=24, env={})
    env: dict[str, str] = {}
    scanned = options_before_program(words[1:], _VALUED, frozenset({"env"}))
    if scanned is None:
        return None
    pairs, opts["json"], argv = scanned
    for attr, value in pairs:
        if not value:
            return None  # argparse's reading
        if attr in ("cols", "rows"):
            opts[attr] = number = whole_number(value)
            if number is None:
                return None
        elif attr == "env":
            key, sep, val = value.partition("=")
            if not sep or not key:
                return None  # argparse's own error
            env[key] = val
        else:
            opts[attr] = value
    if argv[:1] == ["--"]:
        return None  # `-- -- PROG`: cmd_start's reading, left to it
    if not argv and opts["shell"] is None:
        return None  # the full path's own message
    opts["argv"] = argv
    opts["env"] = env
    return opts


def start(words: list[str]) -> int | None:
    """The command's exit code, or None: the full path must handle it."""
    opts = parse(words)
    if opts is None:
        return None
    here = hotread.home()
    previous = hotread.active(here) if here is not None else None
    from agentty_core.cli.hotpath import let_finish

    before = previous if isinstance(previous, str) else None
    started = launch(opts, previous=before, on_ready=let_finish)
    if not isinstance(started, tuple):
        return started
    home, sid, _ = started
    from agentty_core.cli.hotpath import OutputFailed

    try:
        if sys.stdout is None:  # started with it closed: the id is not asked for
            return 0
        code = _started(home, sid, opts["json"] is True)
        sys.stdout.flush()  # (its failure is ours to handle, not the exit's)
        return code
    except OutputFailed as exc:
        raise unannounced(sid, previous if isinstance(previous, str) else None, exc) from None


def unannounced(sid: str, previous: str | None, failed: OutputFailed) -> OutputFailed:
    """A started session whose id could not be printed: no one can be told of it, so it is
    ended and removed, and the active pointer goes back to the session it named before."""
    from contextlib import suppress

    from agentty_core.cli.hotpath import OutputFailed
    from agentty_core.client import Client
    from agentty_core.errors import AgenttyError
    from agentty_core.launch.launcher import discard

    client = Client()
    with suppress(AgenttyError):  # (it may have ended already)
        client.kill(sid)
    with suppress(AgenttyError):  # (not removed: its record says it ended; nobody can be told)
        discard(client.home, sid, previous)  # as an interrupted start: nothing of it stays
    return OutputFailed(failed.error, "the session was ended")


def launch(
    opts: dict[str, object],
    *,
    activate: bool = True,
    keep_failed: bool = True,
    held: bool = False,
    previous: str | None = None,
    on_ready: Callable[[], None] | None = None,
) -> tuple[str, str, int] | int | None:
    """Start the session `opts` describes (`parse`'s keys) through the warm spawner: the
    home, the session's id and its worker's pid once the program runs. Else the exit code
    after the full path's message, or None: the full path must start it (nothing was
    written). With `activate` False the session does not become the active one, and with
    `keep_failed` False a session whose program did not start is removed (both: `run`).
    Interrupted (Ctrl-C) before `on_ready` is called (once the program runs), nothing of
    the session stays, and `previous` is active again."""
    home = hotread.home()
    if home is None or ".." in home.split(os.sep):
        return None
    path = os.path.join(home, "sockets", "spawner.sock")
    if not os.path.exists(path):
        return None  # none runs: the full path launches it
    import time

    deadline = time.monotonic() + BUSY_WAIT
    sid = os.urandom(4).hex()
    try:
        request = _request(opts, sid, deadline, activate, held)
    except OSError:
        return None
    asked = _ask(path, request, deadline)
    if asked is None:
        return None
    pid, pidfd, spec_w, status_r = asked
    try:
        try:
            try:
                os.write(spec_w, b"go")  # from here on the session is ours to report
            except OSError:
                pass  # it died: its status pipe says so
            finally:
                os.close(spec_w)  # the worker reads up to EOF
            answer = _status(status_r)
            if on_ready is not None and answer is not None and answer.get("ok") is True:
                on_ready()  # (`start`: from here on, Ctrl-C lets it finish)
                if os.environ.get("AGENTTY_FAILPOINTS"):
                    from agentty_core import failpoints

                    failpoints.hit("start.ready")
        except BaseException as exc:  # interrupted (Ctrl-C): nothing of it may run on
            if on_ready is not None and not isinstance(exc, Exception):
                on_ready()  # (a second signal must not cut the undo short)
            _end(pidfd)
            if not isinstance(exc, Exception):  # nor stay: `previous` is active again
                from agentty_core.errors import AgenttyError
                from agentty_core.launch.launcher import discard
                from agentty_core.paths import Home

                try:
                    discard(Home.resolve(), sid, previous)
                except AgenttyError as undone:  # (a full disk): said, as the full path says it
                    hotread.error(str(undone))
                    return 1
                raise
            _mark_failed(home, sid, "start was interrupted", previous)
            hotread.error(f"start failed: {exc}")
            return 1
        if answer is None or answer.get("ok") is not True:
            return _failed(home, sid, pidfd, answer, keep_failed, previous)
        return home, sid, pid
    finally:
        os.close(status_r)
        os.close(pidfd)


def _request(
    opts: dict[str, object], sid: str, deadline: float, activate: bool, held: bool
) -> bytes:
    """`spawner_client._request`'s context, and the start itself."""
    env = dict(os.environ)
    env.pop("AGENTTY_SESSION_ID", None)  # only the program carries its session's marker
    env.pop("AGENTTY_STATUS_FD", None)
    request = {
        "v": 1,
        "deadline": deadline,
        "env": env,
        **caller_context(__version__),
        "start": {
            "id": sid,
            "argv": opts["argv"],
            "shell": opts["shell"],
            "name": opts["name"],
            "cwd": opts["cwd"],
            "cols": opts["cols"],
            "rows": opts["rows"],
            "env": opts["env"],
            "activate": activate,
            "held": held,
            "holder": os.getpid() if held else None,  # named in the record: `gc` skips it
        },
    }
    try:
        text = hotread.dumps(request, ascii_only=True)
    except (TypeError, ValueError) as exc:
        raise OSError(str(exc)) from None
    return (text + "\n").encode("ascii")


def _ask(path: str, request: bytes, deadline: float) -> tuple[int, int, int, int] | None:
    """The forked worker's pid and pidfd, and our ends of its spec and status pipes; None
    when the spawner does not serve the request in time (nothing was written)."""
    global handed_over
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    ours: list[int] = []
    pidfd = -1
    try:
        sock.settimeout(spawning.WAIT)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return None  # none runs (or it died): the full path launches one
        except TimeoutError:
            handed_over = "asked"  # its backlog is full: stopped, say
            return None
        handed_over = "asked"  # it may be stopped or busy: the full path does not wait again
        cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
            return None
        spawner = int.from_bytes(cred[0:4], sys.byteorder)
        spec_r, spec_w = os.pipe()
        ours += [spec_r, spec_w]
        status_r, status_w = os.pipe()
        ours += [status_r, status_w]
        spawning.send_request(sock, request, [spec_r, status_w])
        for fd in (spec_r, status_w):  # the worker has them now; EOF must mean it is gone
            os.close(fd)
            ours.remove(fd)
        reply, pidfd = spawning.read_answer(sock, spawner, deadline, deadline, hotread.loads)
        if reply is None or reply.get("ok") is not True:
            if reply is not None and reply.get("reason") in spawning.STEPPED_DOWN:
                handed_over = "upgraded"  # (or outgrown: either way, stepped down)
            return None
        pid = reply.get("pid")
        if pidfd < 0 or not isinstance(pid, int):
            return None
        ours.clear()
        found, pidfd = (pid, pidfd, spec_w, status_r), -1
        return found
    except (OSError, ValueError, UnicodeDecodeError):
        return None  # a timeout among them: the spawner is stopped, wedged or too busy
    finally:
        sock.close()
        if pidfd >= 0:
            os.close(pidfd)
        for fd in ours:  # a worker forked late for this request reads EOF and exits
            os.close(fd)


def _status(fd: int) -> dict[str, object] | None:
    """The worker's status line (`launcher._read_status`); None if it died without one."""
    import select
    import time

    deadline = time.monotonic() + READY_TIMEOUT
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return {"ok": False, "error": f"the worker was not ready within {READY_TIMEOUT:g}s"}
        if not select.select([fd], [], [], remaining)[0]:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf += chunk
    try:
        value = hotread.loads(buf.split(b"\n", 1)[0].decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _started(home: str, sid: str, as_json: bool) -> int:
    """What `cmd_start` prints: the id, or (--json) the record as `sessions.json` has it."""
    if not as_json:
        sys.stdout.write(sid + "\n")
        return 0
    recs = hotread.records(home)
    rec = next((r for r in recs if r["id"] == sid), None) if recs is not None else None
    if rec is None:  # unreadable just now: the full path's reader (it recovers or says why)
        from agentty_core.client import Client

        found = [r for r in Client().sessions() if r.get("id") == sid]
        hotread.emit(found[0] if found else {"id": sid})
        return 0
    hotread.emit(rec)
    return 0


def _failed(
    home: str,
    sid: str,
    pidfd: int,
    answer: dict[str, object] | None,
    keep: bool = True,
    previous: str | None = None,
) -> int | None:
    """A start that did not come up: the worker ended (nothing of the session runs on),
    and the full path's message and exit code (`launcher._hand_over`); the active pointer
    names `previous` again. Not `keep`: the failed session's record and files are removed
    (`run`'s full path does the same)."""
    _end(pidfd)
    if answer is not None and answer.get("fallback") is True:
        return None  # nothing was written: the full path starts it
    code = answer.get("exit_code") if answer is not None else None
    if answer is not None and answer.get("as_is") is True:  # refused before anything ran
        hotread.error(str(answer.get("error")))
        return code if isinstance(code, int) and code > 0 else 1
    message = "worker died during startup" if answer is None else str(answer.get("error"))
    _mark_failed(home, sid, message, previous)
    if keep:
        hotread.error(f"{message} (see {os.path.join(home, 'logs', sid + '.log')})")
    else:
        from agentty_core.cli.run import forget_failed
        from agentty_core.client import Client

        forget_failed(Client(), sid)
        hotread.error(message)
    return code if isinstance(code, int) and code not in (0, 2) else 1


def _end(pidfd: int) -> None:
    """`launcher._kill_worker`: SIGTERM, then SIGKILL after 3 s; returns once it is gone."""
    import select

    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal

    for sig in (SIGTERM, SIGKILL):
        try:  # noqa: SIM105  (contextlib stays off the lane)
            _signal.pidfd_send_signal(pidfd, sig)
        except OSError:
            pass  # gone already
        if select.select([pidfd], [], [], 3.0)[0]:
            return


def _mark_failed(home: str, sid: str, message: str, previous: str | None) -> None:
    """The record says why, and the active pointer, if the worker set it, names `previous`
    again, as the full path leaves them (`StateStore.fail`); a worker that died before its
    intent record left none (rare: the full machinery is imported for it)."""
    from contextlib import suppress

    from agentty_core.ipc.client import remove_stale_socket
    from agentty_core.paths import Home
    from agentty_core.state.store import StateStore

    with suppress(Exception):  # (not written: the record names a dead worker, a lost start)
        StateStore(Home.resolve(), timeout=MARK_LOCK_WAIT).fail(sid, message, previous=previous)
    with suppress(OSError):
        remove_stale_socket(Home.resolve().socket_path(sid))

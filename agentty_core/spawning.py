"""What the caller's side of starting a worker (`launch/`) and the worker's side
(`worker/main`, `worker/spawner`, `worker/forked`) agree on, apart from both: the status
descriptor, the warm spawner's files, and the settings a forked worker must share with the
caller. Standard library only: `start` imports this before anything else.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable

    Loads = Callable[[str], object]

STATUS_FD = 3  # where the worker finds its status pipe

SOCKET_NAME = "spawner.sock"  # in the home's sockets directory
INFO_NAME = "spawner.json"  # in the home: pid, start time, since, ready
LOCK_NAME = "spawner.lock"  # in the home: held by the spawner for its life (one per home)
# The lock, taken by the process that launches the spawner and handed to it on this
# descriptor (named in this variable): held from the launch on, not only once the spawner
# has imported what it needs, so that two starts in a row launch one spawner, not two.
LOCK_FD, LOCK_FD_ENV = 3, "AGENTTY_SPAWNER_LOCK_FD"
LOG_NAME = "spawner.log"
# The command names of the spawner's own short-lived processes (`ps`; a stopped one left
# behind is found by its name and state: `spare.end_stopped_leftovers`). 15 bytes at most.
SPARE_NAME = "agentty-spare"  # a worker forked in advance (`worker/spare.py`)
MIDDLE_NAME = "agentty-middle"  # the intermediate process of the double fork
# A spawner's refusals that mean it is stepping down: the caller launches its successor.
# "upgraded": its code changed on disk; "outgrown": its own context (a higher nice value, a
# lower hard limit, inherited from the caller that launched it) cannot serve this caller.
STEPPED_DOWN = ("upgraded", "outgrown")

# How agentty runs a module detached (a worker, the warm spawner, a host's link), in a
# session of its own: `python -m` would put the working directory first on sys.path (a
# `logging.py`, or a hostile `agentty_core/`, in the directory `start` runs in would be
# imported); `-c` puts it there as '' and the first line takes it out (-P does that only
# from 3.11 on). A worker's walk of its descendants tells such processes by their command
# line (`detached_argv`, `proc.killtree`): another session's, or the home's, not its own to
# end.
DETACHED_MARK = "runpy.run_module('agentty_core."
DETACHED_MODULES = ("worker.main", "worker.spawner", "remote.linkd")


def detached_boot(module: str) -> str:
    """The `-c` program that runs `agentty_core.<module>` as `__main__`."""
    return (
        "import sys\n"
        "if sys.path and sys.path[0] == '':\n"
        "    del sys.path[0]\n"
        "import runpy\n"
        f"{DETACHED_MARK}{module}', run_name='__main__', alter_sys=True)\n"
    )


def detached_argv(cmdline: bytes) -> bool:
    """Whether a command line (/proc/PID/cmdline) is one agentty runs detached: `-c` and the
    very program `detached_boot` writes for one of DETACHED_MODULES. The mark alone, found
    anywhere, could be put in a program's own argv (`sh -c '... runpy.run_module(...'`): a
    daemon so named was spared when `run` or `kill` ended its session."""
    parts = cmdline.split(b"\0")
    if len(parts) < 3 or parts[1] != b"-c":
        return False
    return parts[2] in _DETACHED_BOOTS


# What a Python process reads from its environment at start-up: a worker forked from a
# spawner started under other values would not be the one `python -c` would have started.
INTERPRETER_ENV = ("LANG", "LC_ALL", "LC_CTYPE")


def home_root() -> str:
    """The home as `paths.Home.resolve` would name it (without importing pathlib)."""
    root = os.environ.get("AGENTTY_HOME") or os.path.join(os.path.expanduser("~"), ".agentty")
    root = os.path.expanduser(root)
    return root if os.path.isabs(root) else os.path.join(os.getcwd(), root)


def caller_context(version: str) -> dict[str, object]:
    """What a worker forked by the spawner must inherit from the caller, as `posix_spawn`
    would have given it (its environment apart): cwd, umask, rlimits, signal mask and
    dispositions, nice value, CPU affinity, and which Python and agentty it runs. C modules
    only, so the CLI's start lane can build it without importing `signal` or `json`.
    `version` is agentty's (`_version` is this module's sibling, not below it)."""
    if TYPE_CHECKING:
        import signal as _signal  # the C module's stubs are its wrapper's
    else:
        import _signal

    ignored = []
    for sig in _signal.valid_signals():
        try:
            if _signal.getsignal(sig) == _signal.SIG_IGN:
                ignored.append(int(sig))
        except (ValueError, OSError):
            pass
    return {
        "cwd": os.getcwd(),
        "umask": umask(),
        "rlimits": rlimits(),
        "sigmask": sorted(int(s) for s in _signal.pthread_sigmask(_signal.SIG_BLOCK, [])),
        "ignored": ignored,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "personality": personality(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "python": [sys.executable, sys.version],
        "agentty": [os.path.dirname(os.path.abspath(__file__)), version],  # agentty_core/
    }


# /proc/self/limits: a heading, then one row per limit in the kernel's order (its number),
# "NAME  SOFT  HARD  [UNITS]" with NAME in the first 26 columns; RLIM_INFINITY "unlimited".
LIMITS_NAME_WIDTH = 26
UNLIMITED = -1  # RLIM_INFINITY as `resource` gives it


def rlimits() -> list[list[int]]:
    """Every resource limit, `[number, soft, hard]`, read from /proc/self/limits: all of the
    kernel's (`resource` names all but RLIMIT_LOCKS), and without importing `resource`, a
    shared library that cost the start lane a third of a millisecond. Its own reading
    where that file cannot be read as expected."""
    found: list[list[int]] = []
    try:
        with open("/proc/self/limits", "rb") as f:
            rows = f.read().splitlines()[1:]
        for num, row in enumerate(rows):
            soft, hard = row[LIMITS_NAME_WIDTH:].split()[:2]
            found.append([num, _limit(soft), _limit(hard)])
    except (OSError, ValueError):
        found = []
    if len(found) < 16:  # (RLIMIT_RTTIME, 15, is Linux 2.6.25's)
        import resource

        numbers = {getattr(resource, n) for n in dir(resource) if n.startswith("RLIMIT_")}
        found = [[num, *resource.getrlimit(num)] for num in sorted(numbers)]
    return found


def _limit(word: bytes) -> int:
    return UNLIMITED if word == b"unlimited" else int(word)


def umask() -> int:
    """The umask, read without setting it (os.umask would race with other threads)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    raise OSError("cannot read the umask")


def personality() -> int:
    """The execution domain and its flags (`setarch -R`): read here, by the caller, as only
    it may read it freely (/proc/PID/personality needs ptrace rights over PID)."""
    try:
        with open("/proc/self/personality", "rb") as f:
            return int(f.read().strip(), 16)
    except (OSError, ValueError):
        return -1  # not compared where it cannot be read


# ------------------------------------------------------------- the spawner's answer

# A spawner that serves a request first says so, `{"taken": PID}` (PID: the process that will
# answer: the spare, or the intermediate process forked for it, which may answer before the
# spawner's own line is sent: the first line that is not `taken` is the answer), then that
# process answers `{"ok": true, "pid": N}` with a pidfd of the worker. A refusal is one
# line, `{"ok": false}`.
TAKEN = "taken"
WAIT = 0.25  # a spawner that makes no progress (stopped, wedged) for this long is given up on
ANSWER_WAIT = 3.0  # once it took the request: a loaded machine may delay the answer this long
MAX_REPLY = 4096
_NOT_RUNNING = ("T", "t", "Z", "X", "x")  # stopped, traced, dead


def send_request(sock: _socket.socket, request: bytes, fds: list[int]) -> None:
    """The request line, `fds` riding on its first bytes. Nothing more is sent once it is
    all out: even a send of nothing fails (EPIPE) when the spawner already answered and
    closed, and its answer (a refusal: "upgraded", say) would be lost."""
    import _socket

    rights = b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds)
    sent = sock.sendmsg([request[:4096]], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
    if sent < len(request):
        sock.sendall(request[sent:])


def read_answer(
    sock: _socket.socket, spawner: int, take_by: float, answer_by: float, loads: Loads
) -> tuple[dict[str, object] | None, int]:
    """The spawner's answer on `sock` and the pidfd that came with it (-1: none; the
    caller's to close); None for no answer in time, a malformed one, or end of file.

    Until the spawner has taken the request it must make progress (be running, or have used
    CPU) every `WAIT`, up to `take_by`: a stopped or wedged spawner costs a start one WAIT.
    Once it took it, the work is another process's: the answer may come up to `answer_by`
    (the machine may be loaded; a direct spawn would cost more), unless the process named to
    answer (the spare, or the intermediate one) is stopped. A process that dies closes its
    copy of the connection: end of file (one that answered and exited is not given up on:
    its answer may still be unread)."""
    import _socket
    import time

    buf = b""
    pidfd = -1
    taken = False
    watched = spawner  # whose progress is checked; 0: none
    ticks = cpu_ticks(spawner)
    check_at = time.monotonic() + WAIT
    try:
        while len(buf) <= MAX_REPLY:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                message = loads(line.decode("utf-8"))
                if not isinstance(message, dict):
                    break
                if TAKEN not in message:
                    return message, pidfd  # the pidfd is the caller's now
                taken = True
                who = message[TAKEN]
                watched = who if isinstance(who, int) and who > 0 else 0
            now = time.monotonic()
            limit = answer_by if taken else take_by
            if now >= limit:
                break
            if now >= check_at:
                if taken:
                    if watched and stopped(watched):
                        _end_stopped(watched)
                        break
                else:
                    was, ticks = ticks, cpu_ticks(watched) if watched else None
                    if watched and not _progressing(watched, was, ticks):
                        break
                check_at = now + WAIT
            sock.settimeout(max(0.001, min(check_at, limit) - now))
            try:
                data, ancillary, _, _ = sock.recvmsg(MAX_REPLY, _socket.CMSG_SPACE(4))
            except TimeoutError:
                continue
            for level, kind, payload in ancillary:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                    for i in range(0, len(payload) - len(payload) % 4, 4):
                        fd = int.from_bytes(payload[i : i + 4], sys.byteorder)
                        if pidfd < 0:
                            os.set_inheritable(fd, False)
                            pidfd = fd
                        else:
                            os.close(fd)
            if not data:
                break
            buf += data
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        pass
    if pidfd >= 0:
        os.close(pidfd)
    return None, -1


def _end_stopped(pid: int) -> None:
    """Kill the stopped spare or intermediate process we gave up on: it holds our request,
    will never be told to go on (nothing of the session was written), and stopped it cannot
    see that we left and would wait forever. Only while it is still stopped and named as
    one of those (not another process that took the pid of one that ended), through a
    pidfd taken first (the pid cannot go to another process meanwhile)."""
    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal

    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if stopped(pid) and _comm(pid) in (SPARE_NAME, MIDDLE_NAME):
            _signal.pidfd_send_signal(pidfd, 9)  # SIGKILL
    except OSError:
        pass
    finally:
        os.close(pidfd)


def stopped(pid: object) -> bool:
    """Is `pid` stopped (SIGSTOP, a debugger)? One that is only slow gets on later. (Any
    value: a record's pid field may be missing or hand-edited.)"""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    stat = _proc_stat(pid)
    return stat is not None and stat[0] in ("T", "t")


def cpu_ticks(pid: int) -> int | None:
    """The CPU time `pid` used so far, in clock ticks; None if it is stopped or gone."""
    stat = _proc_stat(pid)
    if stat is None or stat[0] in _NOT_RUNNING or len(stat) < 13:
        return None
    return int(stat[11]) + int(stat[12])


def _progressing(pid: int, was: int | None, ticks: int | None) -> bool:
    """Is the spawner `pid` getting on with the request (before it took it)? Running (on a
    CPU or waiting for one), or its CPU time grew."""
    if ticks is None:
        return False
    if ticks != was:
        return True
    stat = _proc_stat(pid)
    return stat is not None and stat[0] == "R"


def _comm(pid: int) -> str:
    """The command name of `pid` ("" if gone)."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n").decode("utf-8", "replace")
    except OSError:
        return ""


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first)."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        raw = os.read(fd, 4096).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)
    return raw[raw.rfind(")") + 2 :].split()


_DETACHED_BOOTS = frozenset(detached_boot(m).encode() for m in DETACHED_MODULES)


SETPRIV_PATHS = ("/usr/bin/setpriv", "/bin/setpriv")
_setpriv: str | bool | None = False  # False: not looked for yet


def setpriv() -> str | None:
    """util-linux's setpriv, if it has `--pdeathsig` (2.33, 2018): what starts a process
    that must not outlive its parent (a session's program; the ssh of a `--host` call);
    looked for once (the warm spawner's lookup is its workers')."""
    global _setpriv
    if _setpriv is False:
        _setpriv = None
        for path in SETPRIV_PATHS:
            try:
                with open(path, "rb") as f:
                    if os.access(path, os.X_OK) and b"pdeathsig" in f.read(1 << 20):
                        _setpriv = path
                        break
            except OSError:
                continue
    return _setpriv if isinstance(_setpriv, str) else None

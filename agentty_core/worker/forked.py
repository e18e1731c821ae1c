"""What the spawner checks before it forks a worker, and what the forked worker sets up first.

A worker forked by the spawner must be the worker `posix_spawn` would have started for the
caller. What can be given after a fork is: the environment, cwd, umask, rlimits (lowered,
or raised up to our hard limit), signal mask and ignored signals, the nice value (raised),
the CPU affinity and the stdio and status descriptors. What cannot (another cgroup or
namespace, other uids or groups, another I/O priority, OOM score adjustment or personality,
another interpreter, agentty, or interpreter settings from the environment) is refused,
and the caller spawns directly. A caller refused because of what the spawner inherited
from the caller that launched it (a higher nice value, a lower hard limit: `Outgrown`)
makes it step down, so that a spawner launched from that caller serves the next start.

An upgrade shows as changed files: the fingerprint is the (inode, size, mtime, ctime) of agentty's
own files and directories, of the directory of every module the spawner has loaded and of
the interpreter, taken after the imports and compared before every fork (taken again only
when inotify saw a change there: `worker/codewatch.py`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import sys
from collections.abc import Iterable, Mapping

from agentty_core._version import __version__
from agentty_core.spawning import INTERPRETER_ENV, STATUS_FD

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Fingerprint = dict[str, tuple[int, int, int, int] | None]
JSONMap = Mapping[str, object]


# ----------------------------------------------------------------- code on disk


def code_paths() -> list[str]:
    """The files and directories whose change means new code: agentty's files (all of
    them, loaded or not, edited in place or replaced), the directory of every loaded
    module, the interpreter and its site directory."""
    paths: set[str] = {os.path.realpath(sys.executable), PACKAGE_DIR}
    for dirpath, dirnames, filenames in os.walk(PACKAGE_DIR):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        paths.add(dirpath)
        paths.update(os.path.join(dirpath, f) for f in filenames if f.endswith((".py", ".so")))
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            # An install or upgrade replaces files (a new directory entry): the directory
            # says so, at a fraction of the cost of every file (~230 here).
            paths.add(os.path.dirname(path))
    import sysconfig

    paths.add(sysconfig.get_paths()["purelib"])  # where installs and upgrades land
    return sorted(paths)


def fingerprint(paths: Iterable[str]) -> Fingerprint:
    found: Fingerprint = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            found[path] = None
        else:
            found[path] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return found


# ----------------------------------------------------------------- the caller's context


def interpreter_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("PYTHON") or k in INTERPRETER_ENV}


def _proc(pid: int | str, name: str) -> str:
    with open(f"/proc/{pid}/{name}", encoding="utf-8", errors="replace") as f:
        return f.read()


def _status_lines(pid: int | str) -> dict[str, str]:
    lines = {}
    for line in _proc(pid, "status").splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "CapEff", "CapBnd"):
            lines[key] = " ".join(value.split())
    return lines


def _namespaces(pid: int | str) -> dict[str, str]:
    found = {}
    for name in os.listdir(f"/proc/{pid}/ns"):
        with contextlib.suppress(OSError):
            found[name] = os.readlink(f"/proc/{pid}/ns/{name}")
    return found


# ioprio_get(2), by architecture (none in the C library); IOPRIO_WHO_PROCESS.
_SYS_IOPRIO_GET = {"x86_64": 252, "aarch64": 31, "riscv64": 31}
_IOPRIO_WHO_PROCESS = 1


def _ioprio(pid: int) -> int | None:
    """The I/O priority of `pid` (0: our own), as `ionice` sets it; None where unknown."""
    number = _SYS_IOPRIO_GET.get(os.uname().machine)
    if number is None:
        return None
    from agentty_core import libc

    try:
        value = int(libc.function("syscall")(number, _IOPRIO_WHO_PROCESS, pid))
    except (OSError, AttributeError):
        return None
    return value if value >= 0 else None


def _priorities(pid: int | str) -> tuple[int | None, str, tuple[int, int]]:
    """What a process passes on to one it spawns, and a fork cannot set from a request:
    its I/O priority (`ionice`), OOM score adjustment (`choom`) and scheduling policy with
    its priority (`chrt`: a SCHED_IDLE caller's sessions ran SCHED_OTHER, and a spawner
    launched by one ran every later caller's SCHED_IDLE). (Its personality, `setarch`,
    only the process itself may read freely: the caller sends it.)"""
    number = 0 if pid == "self" else int(pid)
    policy = (os.sched_getscheduler(number), os.sched_getparam(number).sched_priority)
    return _ioprio(number), _proc(pid, "oom_score_adj").strip(), policy


Priorities = tuple[int | None, str, tuple[int, int]]
_own: tuple[dict[str, str], dict[str, str], Priorities, int] | None = None


def _own_context() -> tuple[dict[str, str], dict[str, str], Priorities, int]:
    """Our credentials, namespaces, priorities and personality, read once: only we could
    change them, and we do not."""
    global _own
    if _own is None:
        from agentty_core.spawning import personality

        _own = (_status_lines("self"), _namespaces("self"), _priorities("self"), personality())
    return _own


class Outgrown(str):
    """A reason to refuse that is ours, not the caller's: what we inherited from the caller
    that launched us (a higher nice value, a lower hard limit) and cannot undo for this one.
    The spawner steps down: its successor, launched by this caller, serves both."""


def cannot_reproduce(request: JSONMap, peer_pid: int, own_env: Mapping[str, str]) -> str | None:
    """Why a worker forked here would differ from one the caller would spawn (an `Outgrown`
    when it is our own context's doing); None if not."""
    if request.get("v") != 1:
        return "another protocol version"
    if request.get("python") != [sys.executable, sys.version]:
        return "another interpreter"
    if request.get("agentty") != [PACKAGE_DIR, __version__]:
        return "another agentty"
    env = request.get("env")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        return "no environment"
    if interpreter_env(env) != interpreter_env(own_env):
        return "other interpreter settings in the environment"
    if peer_pid <= 0:
        return "the caller is not visible here"
    try:
        own_status, own_namespaces, own_priorities, own_personality = _own_context()
        if _status_lines(peer_pid) != own_status:
            return "other credentials, groups or capabilities"
        if _proc(peer_pid, "cgroup") != _proc("self", "cgroup"):  # others can move us
            return "another cgroup"
        if _namespaces(peer_pid) != own_namespaces:
            return "other namespaces"
        ioprio, oom_score_adj, policy = _priorities(peer_pid)
        if own_priorities[0] is not None and ioprio != own_priorities[0]:
            return "another I/O priority"
        if oom_score_adj != own_priorities[1]:
            return "another OOM score adjustment"
        if policy != own_priorities[2]:
            if own_priorities[2] != (os.SCHED_OTHER, 0):  # ours is our launcher's
                return Outgrown("another scheduling policy (ours is not the default)")
            return "another scheduling policy"
    except OSError as exc:
        return f"cannot read the caller's context: {exc}"
    if request.get("personality") != own_personality:
        return "another personality"
    cwd = request.get("cwd")
    if not isinstance(cwd, str) or not os.path.isdir(cwd):
        return "no working directory"
    if not isinstance(request.get("umask"), int):
        return "no umask"
    nice = request.get("nice")
    if not isinstance(nice, int):
        return "no nice value"
    problem = _signals_problem(request) or _limits_problem(request.get("rlimits"))
    if problem is None and nice < os.getpriority(os.PRIO_PROCESS, 0):
        return Outgrown("a lower nice value")
    return problem


def _limits_problem(limits: object) -> str | None:
    import resource

    if not isinstance(limits, list):
        return "no rlimits"
    for item in limits:
        if not (
            isinstance(item, list) and len(item) == 3 and all(isinstance(x, int) for x in item)
        ):
            return "malformed rlimits"
        num, _soft, hard = item
        try:
            _, own_hard = resource.getrlimit(num)
        except (ValueError, OSError):
            return f"unknown rlimit {num}"
        if own_hard != resource.RLIM_INFINITY and (
            hard == resource.RLIM_INFINITY or hard > own_hard
        ):
            return Outgrown(f"a higher hard rlimit ({num})")
    return None


def _signals_problem(request: JSONMap) -> str | None:
    for key in ("sigmask", "ignored", "affinity"):
        value = request.get(key)
        if not isinstance(value, list) or not all(isinstance(x, int) for x in value):
            return f"malformed {key}"
    return None


# ----------------------------------------------------------------- in the forked worker


def become(request: JSONMap, fds: list[int], *, new_session: bool = True) -> None:
    """Turn this freshly forked process into what `posix_spawn` would have started for the
    caller: first its own session and descriptors, then the caller's process attributes,
    then fresh per-process state (random seeds, failpoints, logging, stdio objects). A
    spare (`worker/spare.py`) made its session when it was forked."""
    if new_session:
        os.setsid()
    _descriptors(fds)
    _signals(request)
    os.umask(_int(request["umask"]))
    os.chdir(str(request["cwd"]))
    _limits(request["rlimits"])
    nice = _int(request["nice"])
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    affinity = request["affinity"]
    assert isinstance(affinity, list)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, affinity)
    env = request["env"]
    assert isinstance(env, dict)
    _take_environment(env)
    _fresh_state(env)


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _take_environment(env: dict[str, str]) -> None:
    """Make our environment the caller's, in its order, by changing only what differs.

    It is usually the spawner's own (both come from the same shell) or nearly. Every
    variable set or unset writes C heap pages shared with the spawner: replaced whole, the
    environment cost each idle worker ~0.35 MiB of private memory."""
    for key in [key for key in os.environ if key not in env]:
        del os.environ[key]
    for key, value in env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
    if list(os.environ) != list(env):  # a new variable went last: the caller's order
        os.environ.clear()
        os.environ.update(env)


def _descriptors(fds: list[int]) -> None:
    """stdin = the spec pipe, stdout/stderr = the log (or /dev/null), 3 = the status pipe;
    every other descriptor (the spawner's socket, lock, log) closed."""
    import fcntl

    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]
    spec, status = high[0], high[1]
    out = high[2] if len(high) > 2 else os.open(os.devnull, os.O_WRONLY)
    os.dup2(spec, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.dup2(status, STATUS_FD)
    os.closerange(STATUS_FD + 1, max(65536, os.sysconf("SC_OPEN_MAX")))


def _signals(request: JSONMap) -> None:
    """The spawner's handlers gone, the caller's ignored signals ignored, its mask applied
    (a `python -c` started by posix_spawn keeps both)."""
    ignored = {int(s) for s in request["ignored"]}  # type: ignore[attr-defined]
    for sig in range(1, signal.NSIG):  # valid_signals() makes an enum of each: slow
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        if sig in ignored:
            action: object = signal.SIG_IGN
        elif sig == signal.SIGINT:
            action = signal.default_int_handler
        elif sig in (signal.SIGPIPE, getattr(signal, "SIGXFSZ", None)):
            action = signal.SIG_IGN  # what the interpreter sets at start-up
        else:
            action = signal.SIG_DFL
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, action)  # type: ignore[arg-type]  # one of the three above
    signal.pthread_sigmask(signal.SIG_SETMASK, {int(s) for s in request["sigmask"]})  # type: ignore[attr-defined]


def _limits(limits: object) -> None:
    import resource

    assert isinstance(limits, list)
    for num, soft, hard in limits:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(num, (soft, hard))


def _fresh_state(env: Mapping[str, str]) -> None:
    from agentty_core import failpoints

    failpoints._POINTS = failpoints._parse(env.get("AGENTTY_FAILPOINTS", ""))
    random.seed()  # also reseeded by `random`'s own at-fork hook; said here for clarity
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115


# ----------------------------------------------------------------- the `start` fast lane


def preload() -> None:
    """Import what `start_session` needs, in the spawner (shared by every worker, and not
    paid by the caller waiting for one)."""
    import shlex  # noqa: F401  (intent's)

    _own_context()  # read before the heap is frozen, and not on a caller's time

    import agentty_core.ipc.unlisted
    import agentty_core.proc.command
    import agentty_core.state.intent  # noqa: F401


def start_session(params: object) -> int:
    """The `start` fast lane's worker (`cli/startlane.py`): it does the caller's part of
    the full path itself (`launch.launcher.start`: the same checks and messages, the intent
    record under the state lock, its own pids in it at once), then runs the session. Every
    answer goes on the status pipe; the caller prints it. Nothing is written until the
    caller says go on the spec pipe: a caller that stopped waiting (it went the full way)
    closes it, and this worker exits without a trace."""
    from functools import partial

    from agentty_core.errors import AgenttyError
    from agentty_core.ipc.unlisted import running_names
    from agentty_core.paths import Home
    from agentty_core.proc import identity
    from agentty_core.proc.command import resolve_command, validate_cwd
    from agentty_core.state import intent
    from agentty_core.state.store import StateStore
    from agentty_core.worker import main as worker_main

    if not isinstance(params, dict) or not _plain_start(params):
        return _answer({"ok": False, "fallback": True})  # the full path, untouched
    holder = params.get("holder")
    try:
        home = Home.resolve()
        planned = intent.plan(
            home,
            params["argv"] or None,
            session_id=params["id"],
            environ=os.environ,
            check_cwd=validate_cwd,
            resolve=resolve_command,
            shell=params["shell"],
            name=params["name"],
            cwd=params["cwd"],
            cols=params["cols"],
            rows=params["rows"],
            env=params["env"],
            activate=params.get("activate", True) is True,
            held=params.get("held") is True,
            holder=identity.holder_fields(holder) if type(holder) is int else None,  # `run`
        )
    except AgenttyError as exc:
        return _answer({"ok": False, "error": str(exc), "exit_code": exc.exit_code, "as_is": True})
    except Exception:  # nothing written yet: the full path runs it and says what is wrong
        return _answer({"ok": False, "fallback": True})
    if not _told_to_go():
        return 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        log_fd = os.open(planned.log_path, flags, 0o600)
    except OSError as exc:
        message = f"cannot open the session's log: {exc.strerror or exc}"
        return _answer({"ok": False, "error": message, "exit_code": 1, "as_is": True})
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    intent.name_worker(planned, identity.worker_fields(os.getpid()))
    try:
        intent.claim(StateStore(home, lean=True), planned, _alive, partial(running_names, home))
    except AgenttyError as exc:
        with contextlib.suppress(OSError):
            os.unlink(planned.log_path)
        return _answer({"ok": False, "error": str(exc), "exit_code": exc.exit_code, "as_is": True})
    return worker_main.serve(planned.spec, STATUS_FD)


def _plain_start(params: dict[str, object]) -> bool:
    """The fields the lane sends, of the types it sends them."""
    argv, env = params.get("argv"), params.get("env")
    return (
        isinstance(params.get("id"), str)
        and isinstance(argv, list)
        and all(isinstance(a, str) for a in argv)
        and isinstance(env, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        and all(isinstance(params.get(k), (str, type(None))) for k in ("shell", "name", "cwd"))
        and all(type(params.get(k)) is int for k in ("cols", "rows"))
        and isinstance(params.get("activate", True), bool)
        and isinstance(params.get("held", False), bool)
        and type(params.get("holder")) in (int, type(None))
    )


def _alive(record: JSONMap) -> bool:
    """`launcher._worker_alive`: a recorded worker still running (an intent record whose
    worker has not said its pid yet counts as live)."""
    from agentty_core.proc import identity

    pid = record.get("workerPid")
    if not isinstance(pid, int):
        return record.get("status") == "starting"
    token = record.get("workerStart")
    return identity.same_process(pid, token if isinstance(token, str) else None)


def _told_to_go() -> bool:
    """The caller's word on the spec pipe (stdin): "go", or EOF (it went the full way)."""
    said = b""
    while True:
        try:
            chunk = os.read(0, 16)
        except InterruptedError:
            continue
        except OSError:
            return False
        if not chunk:
            return said == b"go"
        said += chunk
        if len(said) > 16:
            return False


def _answer(message: dict[str, object]) -> int:
    """One status line for the caller (a refusal: nothing of the session exists)."""
    import json

    with contextlib.suppress(OSError):
        os.write(STATUS_FD, json.dumps(message).encode() + b"\n")
    return 0 if message.get("ok") else 1

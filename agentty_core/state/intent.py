"""A session's intent: what `start` checks and writes before any program runs.

Two places start sessions: the caller's side of the full path (`launch.launcher`) and a
worker the warm spawner forked for the `start` fast lane (`worker.forked`), which does the
caller's part itself. Both plan and claim here, so they refuse alike (the same one-line
errors and exit codes) and write the same intent record under the state lock. The checks
that look at processes and the file system (`proc.ptyhost`, `proc.identity`) are passed in:
this layer does not know about processes.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping, Sequence

from agentty_core.errors import SpawnError, UsageError, echoed
from agentty_core.paths import Home, validate_name
from agentty_core.state.records import Record, is_live
from agentty_core.state.store import StateStore, now_iso

MAX_SIZE = 1000


class Intent:
    """A checked session, not written yet: its record and the worker's spec. (A plain class:
    `dataclasses` would cost every `start` the import of `inspect`.)"""

    __slots__ = ("log_path", "name", "record", "session_id", "spec")

    def __init__(
        self,
        session_id: str,
        name: str | None,
        record: Record,
        spec: dict[str, object],
        log_path: str,
    ) -> None:
        self.session_id = session_id
        self.name = name
        self.record = record
        self.spec = spec
        self.log_path = log_path


def check_size(cols: int, rows: int) -> None:
    if not (2 <= cols <= MAX_SIZE and 2 <= rows <= MAX_SIZE):
        raise UsageError(f"terminal size must be 2..{MAX_SIZE} columns and rows")


# What one exec takes (Linux): a single argument or variable of at most MAX_ARG_STRLEN
# bytes, and all of them with their pointers within ARG_MAX (a quarter of the stack limit).
MAX_ARG_STRLEN = 32 * 4096
EXEC_MARGIN = 4096  # the pdeathsig helper's own words (`proc.ptyhost`), and some room


def check_exec(argv: Sequence[str], env: Mapping[str, str]) -> None:
    """What exec would refuse, refused before anything is written or spawned: a NUL in an
    argument or variable (its end, for exec), a variable name with '=' or none, and an
    argument list too long (E2BIG: it left a failed record holding all of it, 21 MB)."""
    for key, value in env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise UsageError(f"invalid environment variable {echoed(key)}: NAME=VALUE, no NUL")
    if any("\0" in arg for arg in argv):
        raise UsageError("an argument holds a NUL character (exec ends it there)")
    try:
        words = [arg.encode("utf-8", "surrogateescape") for arg in argv]
        words += [f"{k}={v}".encode("utf-8", "surrogateescape") for k, v in env.items()]
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        raise UsageError("an argument or variable is not text (a lone surrogate)") from None
    longest = max(len(word) for word in words)
    total = sum(len(word) + 1 + 8 for word in words) + EXEC_MARGIN
    limit = os.sysconf("SC_ARG_MAX")
    if longest >= MAX_ARG_STRLEN or total > limit:
        raise UsageError(
            f"the program's arguments and environment are too long to run ({total} bytes in "
            f"all, the longest {longest}; exec takes {limit} in all, {MAX_ARG_STRLEN - 1} in one)"
        )


def build_env(
    session_id: str, home: Home, overrides: Mapping[str, str], base: Mapping[str, str]
) -> dict[str, str]:
    env = dict(base)
    env.update(overrides)
    if "TERM" not in overrides:
        env["TERM"] = "xterm-256color"
    env["AGENTTY_SESSION_ID"] = session_id
    env["AGENTTY_HOME"] = str(home.root)
    env.pop("AGENTTY_STATUS_FD", None)
    return env


def plan(
    home: Home,
    argv: Sequence[str] | None,
    *,
    session_id: str,
    environ: Mapping[str, str],
    check_cwd: Callable[[str], None],
    resolve: Callable[[str, str | None, str], str],
    shell: str | None = None,
    name: str | None = None,
    cwd: str | None = None,
    cols: int = 80,
    rows: int = 24,
    env: Mapping[str, str] | None = None,
    activate: bool = True,
    record_cast: Mapping[str, bool] | None = None,
    held: bool = False,
    holder: Mapping[str, object] | None = None,
) -> Intent:
    """Check a start (UsageError, SpawnError) and build its record and spec. `environ` is
    the caller's environment, `check_cwd` and `resolve` are `proc.ptyhost`'s checks."""
    if shell is not None:
        if argv:
            raise UsageError("give either --shell CMDLINE or -- PROGRAM ARGS, not both")
        argv = [environ.get("SHELL") or "/bin/sh", "-lc", shell]
    if not argv:
        raise UsageError("start needs a program: agentty start -- PROGRAM [ARG...]")
    argv = list(argv)
    if name is not None:
        validate_name(name)
    check_size(cols, rows)
    try:
        workdir = os.path.abspath(cwd or os.getcwd())
    except FileNotFoundError:  # ours was removed: a relative --cwd has nothing to go by
        raise SpawnError("the current directory no longer exists (give --cwd DIR)") from None
    check_cwd(workdir)
    full_env = build_env(session_id, home, env or {}, environ)
    if cwd is not None and "PWD" not in (env or {}):
        # The directory as named, as tmux sets it: a shell keeps a PWD that names its
        # directory (through a symlink too) and shows the resolved path otherwise.
        full_env["PWD"] = workdir
    check_exec(argv, full_env)
    program = resolve(argv[0], full_env.get("PATH"), workdir)
    home.ensure_socket_dir()
    log_path = home.log_path(session_id)
    stamp = now_iso()
    record: Record = {
        "id": session_id,
        "name": name,
        "argv": argv,
        "command": shlex.join(argv),
        "program": program,
        "cwd": workdir,
        "pid": None,
        "workerPid": None,
        "cols": cols,
        "rows": rows,
        "startedAt": stamp,
        "lastActiveAt": stamp,
        "status": "starting",
        "exitCode": None,
        "signal": None,
        "socket": str(home.socket_path(session_id)),
        "log": str(log_path),
    }
    if holder is not None:  # `run`'s (`identity.holder_fields`): `gc` leaves it to `run`
        record.update(holder)  # type: ignore[typeddict-item]
    spec: dict[str, object] = {
        "id": session_id,
        "home": str(home.root),
        "argv": [program, *argv[1:]],
        "cwd": workdir,
        "env": full_env,
        "cols": cols,
        "rows": rows,
        "record": record,
        "record_cast": dict(record_cast) if record_cast is not None else None,
        "activate": activate,  # set with the running record, in the same write
        "held": held,  # its starter holds it (`run`): ended if no hold comes (`Requests`)
        "log_to": None,
    }
    return Intent(session_id, name, record, spec, str(log_path))


def name_worker(intent: Intent, fields: Mapping[str, object]) -> None:
    """The worker's pid and identity (`proc.identity.worker_fields`) in the intent record,
    before it is claimed: a worker that finds itself named there skips a state write."""
    intent.record.update(fields)  # type: ignore[typeddict-item]  # the three worker fields


def claim(
    store: StateStore,
    intent: Intent,
    alive: Callable[[Record], bool],
    unlisted_names: Callable[[set[str]], set[str]] | None = None,
) -> None:
    """Write the intent record, under the state lock: its id unused, its name not taken by
    a running session (whose worker `alive` says is alive), nor by one the list is missing
    (`unlisted_names`: given the ids listed, the names behind the sockets they leave out).
    Its rename is made durable by the directory sync after the next write: the failed
    record's, or the running record's (the worker's, right after `start` has its answer)."""
    session_id, name, record = intent.session_id, intent.name, intent.record

    def add(sessions: list[Record]) -> None:
        if any(r.get("id") == session_id for r in sessions):
            raise SpawnError("session id collision; try again")
        if name is not None:
            for other in sessions:
                if other.get("name") == name and is_live(other) and alive(other):
                    raise UsageError(f"a running session is already named {name!r}")
                if other.get("id") == name:  # its id would win: the name could not be used
                    raise UsageError(f"{name!r} is the id of another session; choose a name")
            listed = {str(other.get("id")) for other in sessions}
            if unlisted_names is not None and name in unlisted_names(listed):
                raise UsageError(f"a running session is already named {name!r}")
        sessions.append(record)

    store.mutate(add, durable=False)  # the running record's write syncs the directory

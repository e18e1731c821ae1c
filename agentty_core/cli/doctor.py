"""`agentty doctor`: check the whole stack and say what to fix.

Each check is independent and never raises: a broken home is exactly when people run it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from agentty_core.errors import AgenttyError
from agentty_core.ipc.client import listened_on
from agentty_core.paths import SESSION_ID_RE, SPAWNER_SOCKET_RE, Home, default_home
from agentty_core.spawning import stopped
from agentty_core.state.records import is_live

if TYPE_CHECKING:
    from agentty_core.state.records import Record

Check = dict[str, object]
MANY_ENDED = 100  # (500 made a warm start ~2x slower: `bench/bench_start.py`)


def _check(name: str, ok: bool, detail: str, fix: str = "") -> Check:
    return {"name": name, "ok": ok, "detail": detail, "fix": "" if ok else fix}


def _home_permissions(home: Home) -> Check:
    """`Home.check`, with each directory a first start would make allowed to be missing."""
    from agentty_core.paths import ensure_private_dir

    for path in (home.root, home.logs_dir, home.sockets_dir):
        try:
            ensure_private_dir(path, create=False)
        except FileNotFoundError:
            if os.path.lexists(path):  # a symlink to nothing: no command can make it
                return _check("home", False, f"{path} is a dangling symlink", _home_fix(home))
            if path == home.root:
                return _check("home", True, f"{path} does not exist yet (created on first start)")
        except AgenttyError as exc:
            return _check("home", False, str(exc), _home_fix(home))
    return _check("home", True, f"{home.root} is private (0700, owned by you)")


def _home_fix(home: Home) -> str:
    """What makes the home usable: a chmod only where permissions are what is wrong."""
    for parent in reversed(home.root.parents):  # a file where a directory must be
        if os.path.lexists(parent) and not os.path.isdir(parent):
            return f"move {parent} away, or set AGENTTY_HOME elsewhere (it is not a directory)"
    for path in (home.root, home.logs_dir, home.sockets_dir):
        try:
            st = os.stat(path)  # (a symlink of ours to a directory is one)
        except OSError:
            if os.path.lexists(path):  # a symlink to nothing
                return f"move {path} away (agentty makes the directory)"
            continue
        if not stat.S_ISDIR(st.st_mode):  # a file, a FIFO
            return f"move {path} away (agentty makes the directory)"
        if st.st_uid != os.getuid():
            return f"set AGENTTY_HOME to a directory of yours ({path} is uid {st.st_uid}'s)"
        if st.st_mode & stat.S_ISVTX and st.st_mode & 0o022:
            return f"set AGENTTY_HOME to a private directory inside {path}"
    return f"chmod 700 {home.root} and its logs/, sockets/"


def _state_file(home: Home) -> Check:
    """The list, the active pointer and the lock file, as every command reads them."""
    from agentty_core.state.records import CorruptState, load_state, read_active

    try:
        doc = load_state(home)
    except CorruptState as exc:
        return _check(
            "state",
            False,
            str(exc),
            "run agentty status (it moves a corrupt file aside and rebuilds the list)",
        )
    except AgenttyError as exc:  # not a file of ours: nobody may move it but a person
        again = "running sessions are listed again from their workers"
        return _check("state", False, str(exc), f"move {home.state_file} away ({again})")
    path = home.active_file
    try:
        read_active(home)
        path = home.lock_file
        _lockable(path)
    except AgenttyError as exc:
        return _check("state", False, str(exc), f"move {path} away (agentty makes it again)")
    sessions = doc.get("sessions")
    entries: list[object] = sessions if isinstance(sessions, list) else []
    version = doc.get("schema_version")
    detail = f"sessions.json readable: {len(entries)} record(s), schema {version}"
    ended = sum(isinstance(r, dict) and not is_live(cast("Record", r)) for r in entries)
    if ended >= MANY_ENDED:
        with_size = ""
        with contextlib.suppress(OSError):
            with_size = f", {home.state_file.stat().st_size / 1024:.0f} KiB"
        detail += (
            f"; {ended} of them ended{with_size}: every start and exit reads and writes the"
            " file whole (agentty gc removes ended sessions)"
        )
    return _check("state", True, detail)


def _lockable(path: Path) -> None:
    """The lock file is a regular file of ours, or missing (made by the first lock)."""
    from agentty_core.errors import StateError

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise StateError(f"{path} is not a regular file")
    if st.st_uid != os.getuid():
        raise StateError(f"{path} is owned by uid {st.st_uid}, not by you")


def _records(home: Home) -> Check:
    """Hand-edited records that every command skips (`records.skipped`), and times in
    the others that readers can only guess at."""
    from agentty_core.state.records import load_state, skipped

    sessions = load_state(home, keep_junk=True).get("sessions")  # (#N: its place in the file)
    entries: list[object] = sessions if isinstance(sessions, list) else []
    bad = [f"#{i + 1}: {problem}" for i, problem in skipped(entries)]
    times = _bad_timestamps(entries)  # of records still used: gc keeps them
    said, fixes = [], []
    if bad:
        skips = "; ".join(bad)
        said.append(
            f"{len(bad)} malformed or repeated record(s), skipped by every command: {skips}"
        )
        fixes.append("agentty gc (removes the skipped records)")
    if times:
        said.append(f"{len(times)} time(s) read as UTC or as unknown: {'; '.join(times)}")
    if said:
        fixes.append(f"edit {home.state_file}")
        return _check("records", False, "; ".join(said), ", or ".join(fixes))
    return _check("records", True, f"all {len(entries)} record(s) well-formed")


def _active(home: Home) -> Check:
    """The active pointer: commands without `--session` go where it points; one that names
    no recorded session (a hand edit, a restored backup) makes them find none."""
    from agentty_core.state.records import read_active, read_private_file, records

    raw = read_private_file(home.active_file)
    if not raw:
        return _check("active", True, "no active session")
    pointed = read_active(home)
    if pointed is not None and any(r["id"] == pointed for r in records(home)):
        return _check("active", True, f"{pointed}")
    said = raw[:64].decode("utf-8", "replace").strip()
    return _check(
        "active",
        False,
        f"{home.active_file} names no recorded session ({said!r}): commands "
        "without --session find none",
        "agentty attach ID",
    )


def _bad_timestamps(entries: list[object]) -> list[str]:
    """Timestamps that are not ISO 8601 with a UTC offset: readers take a naive one for UTC
    and an unreadable one for unknown (`gc --older-than`: as old as can be)."""
    import datetime as dt

    found = []
    for i, rec in enumerate(entries):
        if not isinstance(rec, dict):
            continue
        for key in ("startedAt", "lastActiveAt", "endedAt"):
            value = rec.get(key)
            if not isinstance(value, str):
                continue
            try:
                naive = dt.datetime.fromisoformat(value).tzinfo is None
            except ValueError:
                found.append(f"#{i + 1}: {key} {value!r} is not ISO 8601")
                continue
            if naive:
                found.append(f"#{i + 1}: {key} {value!r} has no UTC offset")
    return found


def _sessions(home: Home) -> Check:
    from agentty_core.client import Client

    try:
        recs = Client(home).sessions(live_info=True)  # (an exit not recorded yet: ended)
    except AgenttyError as exc:
        return _check("sessions", False, str(exc), "see the state check")
    lost = [r["id"] for r in recs if r.get("status") == "lost"]
    running = [r for r in recs if r.get("status") == "running"]
    # Alive but never answering (SIGSTOP, a debugger): every call to the session waits for it.
    halted = [(r["id"], r["workerPid"]) for r in running if stopped(r.get("workerPid"))]
    problems, fixes = [], []
    if lost:  # (said with the stopped ones: one hid the other)
        problems.append(f"workers of {len(lost)} session(s) died: {' '.join(lost)}")
        fixes.append("agentty orphans --kill, then agentty gc")
    if halted:
        problems.append("stopped: " + " ".join(f"{sid} (worker {pid})" for sid, pid in halted))
        sid, pid = halted[0]
        fixes.append(f"kill -CONT {pid}, or agentty kill --session {sid}")
    if problems:
        detail = f"{len(running)} running; " + "; ".join(problems)
        return _check("sessions", False, detail, "; ".join(fixes))
    return _check("sessions", True, f"{len(running)} running, every worker alive")


def _stale_sockets(home: Home) -> Check:
    from agentty_core.client import Client

    sock_dir = home.socket_dir()
    try:
        names = os.listdir(sock_dir)
    except FileNotFoundError:
        return _check("sockets", True, f"{sock_dir} does not exist yet")
    live = {r["id"] for r in Client(home).sessions() if is_live(r)}
    stale, foreign, sessions = [], [], 0
    for name in names:
        session_id = name.removesuffix(".sock")
        path = sock_dir / name
        st = os.lstat(path)
        if SPAWNER_SOCKET_RE.fullmatch(name) and stat.S_ISSOCK(st.st_mode):
            continue  # a warm spawner's (see the spawner check), or another home's
        sessions += 1
        if not stat.S_ISSOCK(st.st_mode) or not SESSION_ID_RE.fullmatch(session_id):
            foreign.append(name)
        elif session_id in live or not home.owns_session_socket(session_id):
            continue  # (another home's, in a shared directory)
        elif listened_on(path) is False and _aged(st):  # (no worker finishing or binding)
            stale.append(name)
    if foreign:
        return _check(
            "sockets",
            False,
            f"unexpected entries in {sock_dir}: {' '.join(foreign)}",
            f"inspect and remove them from {sock_dir}",
        )
    if stale:
        return _check(
            "sockets", False, f"stale sockets of ended sessions: {' '.join(stale)}", "agentty gc"
        )
    return _check("sockets", True, f"{sessions} session socket(s), all of live sessions")


def _aged(st: os.stat_result) -> bool:
    """Old enough to be called stale: a younger socket may be a worker's that has not
    listened yet (`gc` keeps it as long)."""
    import time

    from agentty_core.client_ending import SWEEP_MIN_AGE

    return time.time() - st.st_mtime >= SWEEP_MIN_AGE


def _orphans(home: Home) -> Check:
    from agentty_core.client import Client

    found = Client(home).orphans()
    if found:
        listing = ", ".join(f"{o.pid} ({o.command[:30]})" for o in found)
        return _check(
            "orphans", False, f"processes of dead workers: {listing}", "agentty orphans --kill"
        )
    return _check("orphans", True, "no processes of dead workers")


def _spawner(home: Home) -> Check:
    from agentty_core.launch import spawner_client
    from agentty_core.spawning import INFO_NAME

    described = home.root / INFO_NAME
    if os.path.lexists(described) and not stat.S_ISREG(os.lstat(described).st_mode):
        # (its spawner exits once it sees it: nobody could see or stop it)
        return _check("spawner", False, f"{described} is not a regular file", "move it away")
    found = spawner_client.info(str(home.root))
    detail = spawner_client.describe(found)
    pid = found.get("pid") if found else None
    if stopped(pid):  # every start waits for it, then goes the direct way
        return _check(
            "spawner", False, f"pid {pid} is stopped (starts wait for it)", f"kill -CONT {pid}"
        )
    return _check("spawner", True, detail if found else f"{detail} (starts are spawned directly)")


def _program_start() -> Check:
    """How workers start programs: the fast way needs util-linux's setpriv (`proc.ptyhost`);
    without it every start costs a fork of the worker, ~4 ms more. Either way is correct."""
    from agentty_core.proc import ptyhost

    helper = ptyhost.setpriv()
    if helper is None:
        return _check(
            "program start",
            True,
            "by a fork of the worker: no setpriv with --pdeathsig (util-linux 2.33 or newer);"
            " each start takes ~4 ms more",
        )
    return _check("program start", True, f"by posix_spawn of {helper} --pdeathsig KILL")


# Room a home needs: the list rewritten whole (a few hundred KiB with many sessions), a final
# screen and a log line per exit.
ROOM = 1 << 20


def _disk_space(home: Home) -> Check:
    """Room on the home's file system: full, every start failed ("No space left on device
    writing sessions.json") and a worker whose program ended retried its exit record, while
    every other check said ok."""
    path = next((p for p in (home.root, *home.root.parents) if os.path.isdir(p)), Path("/"))
    try:
        st = os.statvfs(path)
    except OSError as exc:
        return _check("disk space", False, f"cannot look at {path}: {exc.strerror or exc}")
    if st.f_flag & os.ST_RDONLY:  # (free blocks say nothing then)
        fix = "remount it read-write, or set AGENTTY_HOME elsewhere"
        return _check(
            "disk space",
            False,
            f"the file system of {path} is read-only: starts, exits and gc cannot be saved",
            fix,
        )
    free = (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize
    inodes = st.f_ffree if os.geteuid() == 0 else st.f_favail
    said = f"{free / (1 << 20):.1f} MiB free on the file system of {path}"
    if free < ROOM or (st.f_files and inodes == 0):
        why = said if free < ROOM else f"no inode free on the file system of {path}"
        fix = "free space there, or set AGENTTY_HOME elsewhere (starts and exits cannot be saved)"
        return _check("disk space", False, why, fix)
    return _check("disk space", True, said)


LOCK_LOOKS = 10  # tries at the state lock, LOCK_LOOK apart: a command at work lets go by then
LOCK_LOOK = 0.05


def _state_lock(home: Home) -> Check:
    """Whether the state lock can be had: held by a stopped process (`gc` after Ctrl-Z),
    every start, kill and exit's record waited 10 s for it and failed, naming only the
    lock file, while every other check said ok."""
    import fcntl
    import time

    from agentty_core.state.lock_holders import lock_holders

    path = home.lock_file
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return _check("state lock", True, "not taken yet")  # (the state check says why)
    try:
        for _ in range(LOCK_LOOKS):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(LOCK_LOOK)
                continue
            return _check("state lock", True, "free")
    finally:
        os.close(fd)
    holders = lock_holders(path)
    if not holders:
        return _check("state lock", False, f"{path} stays held", "see who holds it: lsof")
    said = ", ".join(map(str, holders))
    why = f"held by {said}: every start, kill and exit's record waits for it (10 s, then fails)"
    halted = [h.pid for h in holders if h.stopped]
    if halted:
        fix = "; ".join(f"kill -CONT {pid}" for pid in halted) + " (let it go on), or end it"
    else:
        fix = "end it if it is no agentty command at work"
    return _check("state lock", False, why, fix)


def run_checks(home: Home | None = None) -> list[Check]:
    home = home or Home(default_home().absolute())
    checks: list[Check] = []
    steps: list[Callable[[Home], Check]] = [
        _home_permissions,
        _state_file,
        _state_lock,
        _disk_space,
    ]
    for step in steps:
        checks.append(step(home))
    if all(c["ok"] for c in checks) and home.root.exists():
        for step in (_records, _sessions, _active, _stale_sockets, _orphans, _spawner):
            try:
                checks.append(step(home))
            except Exception as exc:  # a check must report, never crash the doctor
                checks.append(_check(step.__name__.strip("_"), False, f"check failed: {exc}"))
    checks.append(_program_start())
    return checks

"""Ending a session's whole process tree, and confirming it is gone.

The ladder is tmux's and systemd's: SIGHUP, a grace period, SIGTERM, another grace period,
SIGKILL, then wait until nothing is left. SIGHUP and SIGTERM come with SIGCONT, as a shell's
SIGHUP to its stopped jobs: a stopped process acts on neither (a stopped worker, which
ignores SIGHUP, runs again, sees its program end and records it). Targets are re-enumerated
every round, since processes fork while being killed. A target is a pid with its start time:
a signal goes through a pidfd opened before /proc is checked to still show that start time
(psutil's handle, for the orphan sweep's targets, refuses a changed one too), so a recycled
pid is never signalled. A session's processes are found with one read of /proc/<pid>/stat
per process: no psutil, whose import and three reads a process made every look of a kill
several times slower.

The ladder is a generator that yields a `Pause`: until a deadline or until one of the
processes it signalled ends, whichever comes first. The worker waits for that on its event
loop (it keeps serving other clients meanwhile), the CLI with `poll`; both watch pidfds, so
the end is confirmed the moment the last process is gone, not on a polling tick. Where
pidfds are not available (Linux < 5.3, another OS) a pause is a short sleep, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from agentty_core import failpoints
from agentty_core.spawning import detached_argv

if TYPE_CHECKING:
    import psutil

POLL = 0.02  # a pause without pidfds: sleep this long, then look again
NO_PIDFD_LOOK = 0.5  # `all_ended` without pidfds: how often a long wait looks again
RECHECK = 0.25  # a pause with pidfds: look again after this long all the same (a pid that
# ended and was reused before its pidfd was opened, a process forked since the last look)


@dataclass(frozen=True)
class Pause:
    """Wait `seconds`, or less: until one of `pids` has ended."""

    seconds: float
    pids: tuple[int, ...]


def _pidfds(pids: tuple[int, ...], *, living_only: bool = False) -> list[int] | None:
    """A pidfd per pid; [] if one has ended already (`living_only`: it is left out); None
    without pidfd support."""
    fds: list[int] = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            if living_only:
                continue
            _close(fds)
            return []
        except (OSError, AttributeError):  # ENOSYS, EMFILE, no os.pidfd_open (not Linux)
            _close(fds)
            return None
    return fds


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def pause_sync(pause: Pause) -> None:
    """Block until the pause is over (see `Pause`)."""
    fds = _pidfds(pause.pids) if pause.pids else None
    if fds is None:
        time.sleep(min(pause.seconds, POLL))
        return
    try:
        if fds:
            poller = select.poll()
            for fd in fds:
                poller.register(fd, select.POLLIN)
            poller.poll(max(1, int(min(pause.seconds, RECHECK) * 1000)))
    finally:
        _close(fds)


async def pause_async(pause: Pause) -> None:
    """`pause_sync` on the running event loop."""
    fds = _pidfds(pause.pids) if pause.pids else None
    if fds is None:
        await asyncio.sleep(min(pause.seconds, POLL))
        return
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def one_ended() -> None:
        if not ended.done():
            ended.set_result(None)

    try:
        if fds:
            for fd in fds:
                loop.add_reader(fd, one_ended)
            await asyncio.wait({ended}, timeout=min(pause.seconds, RECHECK))
    finally:
        for fd in fds:
            loop.remove_reader(fd)
        _close(fds)


async def all_ended(pids: tuple[int, ...], most: float) -> None:
    """Wait until every one of `pids` has ended (their pidfds say so), or `most` seconds
    have passed; without pidfds (none to be had, or no descriptors left) a while, for the
    caller to look again: not POLL, or a long wait would scan /proc 50 times a second."""
    fds = _pidfds(pids, living_only=True)
    if fds is None:
        await asyncio.sleep(min(most, NO_PIDFD_LOOK))
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    waiting = set(fds)

    def ended(fd: int) -> None:
        loop.remove_reader(fd)
        waiting.discard(fd)
        if not waiting and not done.done():
            done.set_result(None)

    try:
        for fd in fds:
            loop.add_reader(fd, ended, fd)
        if waiting:
            await asyncio.wait({done}, timeout=most)
    finally:
        for fd in waiting:
            loop.remove_reader(fd)
        _close(fds)


@dataclass
class KillResult:
    escalated: list[str] = field(default_factory=list)
    survivors: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Proc:
    """A process as one look at /proc saw it. Its pid and start time (clock ticks since boot)
    name it for good: it is signalled only while /proc still shows both, through a pidfd
    opened before that check, so a recycled pid is never hit."""

    pid: int
    start: str


class _Stat(NamedTuple):
    state: str
    ppid: int
    pgrp: int
    session: int
    start: str
    threads: int


if TYPE_CHECKING:
    Handle = Proc | psutil.Process  # psutil's: the orphan sweep's (`proc.orphans`)


def _stat(pid: int) -> _Stat | None:
    """`/proc/<pid>/stat`'s fields this module reads; None once the pid is gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        raw = os.read(fd, 2048)
    except OSError:
        return None
    finally:
        os.close(fd)
    # The command name (field 2) is in parentheses and may itself hold ") ".
    fields = raw[raw.rfind(b")") + 2 :].split()
    if len(fields) < 20:
        return None
    try:
        return _Stat(
            fields[0].decode(),
            int(fields[1]),
            int(fields[2]),
            int(fields[3]),
            fields[19].decode(),
            int(fields[17]),
        )
    except ValueError:
        return None


def _table() -> dict[int, _Stat]:
    """One look at every process (a read of its stat file each): what psutil's
    `process_iter` plus `children(recursive=True)` took three reads a process for."""
    table: dict[int, _Stat] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                table[int(name)] = stat
    return table


def _gone(state: str) -> bool:
    return state in ("Z", "X", "x")  # a zombie has exited; X: being reaped


def group_members(pgid: int) -> list[Proc]:
    """Processes whose process group or session is `pgid` (a session leader's pid).

    `tcgetpgrp` answers 0 for a terminal no session has claimed yet, and in a PID namespace
    every process whose group lies outside it reports group and session 0: asking for group 0
    (or 1) would name init and the sandbox around us, so it names nothing."""
    if pgid <= 1:
        return []
    return [
        Proc(pid, st.start)
        for pid, st in _table().items()
        if (st.pgrp == pgid or st.session == pgid) and not _gone(st.state)
    ]


def session_processes(
    leader: int | None, foreground: int | None, *, reaper: bool = False
) -> list[Handle]:
    """Everything of a session still running: the program's group and session (`leader`),
    the terminal's foreground group, and every descendant of this process (a subreaper
    inherits the double-forked ones, `setsid` daemons included) but another session's
    worker and what it runs (`_another_session`); never this process itself.
    No psutil: the worker runs this on every look of a kill.

    `reaper`: this process is a subreaper and the program its child (the worker). Every
    process of the session is then its descendant (session and group come from the parent,
    an orphan goes to its nearest subreaper ancestor): a walk down from here, a few reads a
    process of the session, finds them all, where the whole table costs a read a process of
    the machine (milliseconds a look). The table where the kernel cannot list children."""
    if not os.path.isdir("/proc/self"):
        return _session_processes_psutil(leader, foreground)
    found = _descendants(os.getpid()) if reaper else None
    if found is not None:
        return [Proc(pid, st.start) for pid, st in sorted(found.items()) if not _gone(st.state)]
    table = _table()
    groups = {g for g in (leader, foreground) if g is not None and g > 1}
    picked = {pid for pid, st in table.items() if st.pgrp in groups or st.session in groups}
    children: dict[int, list[int]] = {}
    for pid, st in table.items():
        children.setdefault(st.ppid, []).append(pid)
    me = os.getpid()
    stack = [me]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in picked and not _another_session(child, table[child]):
                picked.add(child)
                stack.append(child)
    picked.discard(me)
    return [Proc(pid, table[pid].start) for pid in sorted(picked) if not _gone(table[pid].state)]


def _children(pid: int, threads: int) -> list[int] | None:
    """The children of every thread of `pid` (each lists those it forked); [] once it is
    gone, None without the kernel's `children` files (CONFIG_PROC_CHILDREN)."""
    try:
        tids = [str(pid)] if threads == 1 else os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    kids: list[int] = []
    for tid in tids:
        try:
            fd = os.open(f"/proc/{pid}/task/{tid}/children", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            if not os.path.exists(f"/proc/self/task/{os.getpid()}/children"):
                return None
            continue  # that thread (or the process) ended
        except OSError:
            continue
        try:
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
        except OSError:
            continue
        finally:
            os.close(fd)
        kids.extend(int(word) for word in b"".join(chunks).split())
    return kids


def _another_session(pid: int, stat: _Stat) -> bool:
    """Whether `pid` is a process agentty ran detached: a worker of another session (or the
    spawner that forks them, or a host's link), which a program of ours started and which,
    detached, was re-parented to us as its nearest subreaper. It and what it runs are not
    ours to end: that session's, or a home's (the outer session's end ended them all)."""
    if stat.session != pid:  # each leads a session of its own
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return detached_argv(f.read(8192))
    except OSError:
        return False


def _descendants(root: int) -> dict[int, _Stat] | None:
    """Every descendant of `root` (a subreaper), with its stat; None where children cannot
    be listed. A walk holds once `root`'s children are the same after it as before: one
    that ended meanwhile gave its children to `root`, and a walk that missed them must not
    read as "nothing left". None after a few unsettled walks: the whole table then."""
    before = _children(root, 0)
    for _ in range(4):
        if before is None:
            return None
        found: dict[int, _Stat] = {}
        stack = list(before)
        while stack:
            pid = stack.pop()
            stat = None if pid in found else _stat(pid)
            if stat is None or _another_session(pid, stat):
                continue
            found[pid] = stat
            kids = _children(pid, stat.threads)
            if kids is None:
                return None
            stack.extend(kids)
        after = _children(root, 0)
        if after is not None and sorted(after) == sorted(before):
            return found
        before = after
    return None


def _session_processes_psutil(leader: int | None, foreground: int | None) -> list[Handle]:
    """`session_processes` without /proc (not Linux): psutil's handles."""
    import psutil

    procs: dict[int, Handle] = {}
    groups = {g for g in (leader, foreground) if g is not None and g > 1}
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(proc.pid) in groups or os.getsid(proc.pid) in groups:
                procs[proc.pid] = proc
    with contextlib.suppress(psutil.Error):
        procs.update((p.pid, p) for p in psutil.Process().children(recursive=True))
    procs.pop(os.getpid(), None)
    return list(procs.values())


def kill_now(procs: Sequence[Handle]) -> None:
    """SIGKILL each, sparing `protected_pids` (the last resort of a failing worker)."""
    protected = protected_pids()
    for proc in procs:
        if proc.pid not in protected:
            _signal(proc, signal.SIGKILL)


def alive(procs: Sequence[Handle]) -> list[Handle]:
    """Those still running (a zombie has ended), and still the processes that were found."""
    return [proc for proc in procs if _running(proc)]


def _running(proc: Handle) -> bool:
    if isinstance(proc, Proc):
        stat = _stat(proc.pid)
        return stat is not None and stat.start == proc.start and not _gone(stat.state)
    import psutil  # a handle of psutil's: loaded already

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal(proc: Handle, sig: int) -> None:
    """`sig` to `proc` if it is still the process that was found; never to another."""
    if not isinstance(proc, Proc):
        import psutil

        # psutil refuses (NoSuchProcess) when the pid now belongs to another process.
        with contextlib.suppress(psutil.Error, OSError):
            proc.send_signal(sig)
        return
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return
    except (OSError, AttributeError):  # no pidfds: check, then signal (psutil's own way)
        if _running(proc):
            with contextlib.suppress(OSError):
                os.kill(proc.pid, sig)
        return
    try:
        stat = _stat(proc.pid)  # after the pidfd: if it is still ours, the pidfd names it
        if stat is not None and stat.start == proc.start:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, sig)
    finally:
        os.close(pidfd)


def protected_pids() -> frozenset[int]:
    """Never signalled, whatever a target list says: init, this process and its ancestors
    (the CLI's shell, a CI runner, the dashboard's terminal)."""
    pids = {0, 1}
    pid = os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        stat = _stat(pid)
        if stat is None:
            break
        pid = stat.ppid
    return frozenset(pids)


def _send(procs: Sequence[Handle], sig: int) -> None:
    for proc in procs:
        _signal(proc, sig)


def ladder(
    targets: Callable[[], Sequence[Handle]], grace: float = 2.0
) -> Generator[Pause, None, KillResult]:
    """HUP(+CONT) -> TERM(+CONT) -> KILL over `targets()`; yields how long to wait between
    checks."""
    result = KillResult()
    protected = protected_pids()

    def live() -> list[Handle]:
        return [p for p in alive(targets()) if p.pid not in protected]

    steps: list[tuple[str, tuple[int, ...], float]] = [
        ("SIGHUP", (signal.SIGHUP, signal.SIGCONT), grace),
        ("SIGTERM", (signal.SIGTERM, signal.SIGCONT), grace),
        ("SIGKILL", (signal.SIGKILL,), max(grace, 2.0)),
    ]
    for name, signals, wait in steps:
        procs = live()
        if not procs:
            return result
        result.escalated.append(name)
        failpoints.hit(f"kill.before_{name}")
        for sig in signals:
            _send(procs, sig)
        sent = {p.pid for p in procs}
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            yield Pause(left, tuple(p.pid for p in procs))
            procs = live()
            if not procs:
                return result
            # Forked since SIGKILL was sent (a loop that kept starting children until it
            # died): killed too, or they outlive the kill. (Not in the earlier steps: a
            # program that handles SIGHUP may start children to end gracefully.)
            if name == "SIGKILL" and (new := [p for p in procs if p.pid not in sent]):
                _send(new, signal.SIGKILL)
                sent.update(p.pid for p in new)
    result.survivors = sorted(p.pid for p in live())
    return result


def run_sync(gen: Generator[Pause, None, KillResult]) -> KillResult:
    try:
        while True:
            pause_sync(next(gen))
    except StopIteration as stop:
        result: KillResult = stop.value
        return result


async def run_async(gen: Generator[Pause, None, KillResult]) -> KillResult:
    try:
        while True:
            await pause_async(next(gen))
    except StopIteration as stop:
        result: KillResult = stop.value
        return result

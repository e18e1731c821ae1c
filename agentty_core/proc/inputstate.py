"""Is the program waiting for keyboard input? Read from the kernel, not guessed from the screen.

The worker owns the PTY master, so it can ask what tmux-based tools cannot: the terminal's
foreground process group (`tcgetpgrp`), its termios flags (canonical mode, echo), and whether
the foreground process is blocked in a read (or select/poll) on the terminal, from
`/proc/<pid>/syscall` (falling back to `wchan`): its main thread's, or a thread's that reads
the terminal for it (fzf's, from /dev/tty; Go's runtime's, in an epoll set that /proc shows
holding it) while none of the others runs. Linux first; elsewhere the state degrades to
`unknown`.

A read that input was just sent to still shows as blocked until the program is scheduled:
taken for "reading", it let the next answer (a password) arrive before `read -s` turned echo
off. So the program reads only once the terminal holds no input for it: that is asked first
(a poll on the slave side, which pushes input still in flight to the line discipline), then
whether it is blocked in a read, which is then a read that has nothing to return.

`secret` says what a person would see: a program reading a line with echo off (canonical
mode, `read -s`, getpass) is a password prompt, and what is typed will not show. Echo off
alone means nothing: every REPL, shell and TUI in raw mode turns the tty's echo off and
draws what is typed itself.
"""

from __future__ import annotations

import fcntl
import os
import select
import sys
import termios
from typing import Literal, TypedDict

InputStateName = Literal["reading", "busy", "stopped", "exited", "unknown"]


class Foreground(TypedDict):
    pid: int
    name: str


class InputState(TypedDict):
    state: InputStateName
    echo: bool | None
    canonical: bool | None
    secret: bool
    foreground: Foreground | None


# Syscalls that mean "blocked waiting for input": read-like ones count when their first
# argument is the terminal; select-like ones count when the process has the terminal open.
_SYSCALLS = {
    "x86_64": ({0, 19}, {7, 23, 232, 270, 271, 281, 441}, {232, 281, 441}),
    "aarch64": ({63, 65}, {22, 72, 73, 441}, {22, 441}),
}
# Read-like calls, select-like calls, and which of those are epoll's (whose watched
# descriptors /proc lists, so that they are known rather than guessed).
_READ_CALLS, _WAIT_CALLS, _EPOLL_CALLS = _SYSCALLS.get(os.uname().machine, (set(), set(), set()))
_WAIT_CHANNELS = ("n_tty_read", "wait_woken", "do_select", "do_sys_poll", "ep_poll", "poll_sched")
MAX_THREADS = 256
MAX_WATCHED = 64  # an epoll set of more is not looked through (a server's, not a TUI's)


def exited() -> InputState:
    return {"state": "exited", "echo": None, "canonical": None, "secret": False, "foreground": None}


def _read_proc(path: str) -> str:
    """A small /proc file in three system calls (open() with its buffering costs nine, and
    `get` reads several per call)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 4096).decode("utf-8", "replace")
    finally:
        os.close(fd)


def _proc_name(pid: int) -> str:
    try:
        return _read_proc(f"/proc/{pid}/comm").strip()
    except OSError:
        return ""


def _is_tty_fd(pid: int, fd: int, tty: str) -> bool:
    """Is the process's `fd` our terminal: by its name, or as `/dev/tty` (what fzf and other
    programs fed on stdin open to read the keyboard) while our terminal is its controlling
    one."""
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return False
    return target == tty or (target == "/dev/tty" and _controlled_by(pid, tty))


def _controlled_by(pid: int, tty: str) -> bool:
    try:
        tty_nr = int(_read_proc(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[4])
        return tty_nr != 0 and tty_nr == os.stat(tty).st_rdev
    except (OSError, IndexError, ValueError):
        return False


def _blocked_on_input(pid: int, tty: str) -> bool | None:
    """True/False from /proc; None when the kernel does not tell us.

    The main thread is asked first, and its word is taken (a REPL with a thread at work
    still reads its next line). A program whose main thread waits on something else (fzf,
    whose keyboard reader is a Go thread; a main thread joined on its reader thread) reads
    when one of its other threads is blocked in a read of the terminal and none of them
    runs: such a reader waits on the terminal whatever the program is doing. Only a read
    counts there: a thread in select or poll may be waiting on anything (Go's runtime keeps
    one in epoll whatever the program does)."""
    main = _main_thread_blocked(pid, tty)
    return main if main is not False else _a_thread_reads(pid, tty)


def _main_thread_blocked(pid: int, tty: str) -> bool | None:
    try:
        state = _read_proc(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    if state not in ("S", "D"):
        return False  # running, stopped or zombie: not waiting on the keyboard
    try:
        fields = _read_proc(f"/proc/{pid}/syscall").split()
        if fields and fields[0].isdigit():
            nr = int(fields[0])
            if nr in _READ_CALLS:
                return _is_tty_fd(pid, int(fields[1], 16), tty)
            if nr in _EPOLL_CALLS and _epoll_watches_tty(pid, int(fields[1], 16), tty):
                return True
            if nr in _WAIT_CALLS:
                return _is_tty_fd(pid, 0, tty)
            return False
    except (OSError, ValueError, IndexError):
        pass
    try:
        channel = _read_proc(f"/proc/{pid}/wchan").strip()
    except OSError:
        return None
    return any(name in channel for name in _WAIT_CHANNELS) and _is_tty_fd(pid, 0, tty)


def _a_thread_reads(pid: int, tty: str) -> bool:
    """Another thread than the main one is blocked reading the terminal (in a read of it, or
    in an epoll wait whose set holds it: Go's runtime waits for a tty that way, tcell's and
    bubbletea's programs among them), and none runs (its syscall file says "running"). One
    read of /proc a thread; a program of more threads than MAX_THREADS is not scanned (it
    would cost milliseconds, every look of a wait)."""
    try:
        fields = _read_proc(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
        # The main thread sleeps, or has exited (`pthread_exit`) while the others go on.
        if fields[0] not in ("S", "D", "Z") or not 1 < int(fields[17]) <= MAX_THREADS:
            return False
        tids = [tid for tid in os.listdir(f"/proc/{pid}/task") if tid != str(pid)]
    except (OSError, IndexError, ValueError):
        return False
    reads = False
    for tid in tids:
        try:
            call = _read_proc(f"/proc/{pid}/task/{tid}/syscall").split()
        except OSError:
            continue  # it ended meanwhile
        if not call or not call[0].isdigit():
            return False  # "running", or stopped outside a system call: busy
        try:
            nr, fd = int(call[0]), int(call[1], 16)
        except (ValueError, IndexError):
            return False
        if reads:
            continue  # one reader found: the rest are only looked at for one that runs
        if nr in _READ_CALLS:
            reads = _is_tty_fd(pid, fd, tty)
        elif nr in _EPOLL_CALLS:
            reads = _epoll_watches_tty(pid, fd, tty)
    return reads


def _epoll_watches_tty(pid: int, epfd: int, tty: str) -> bool:
    """Does the epoll set `epfd` of `pid` hold our terminal (its `tfd:` lines in /proc)?"""
    try:
        info = _read_proc(f"/proc/{pid}/fdinfo/{epfd}")
    except OSError:
        return False
    watched = [line.split()[1] for line in info.splitlines() if line.startswith("tfd:")]
    if len(watched) > MAX_WATCHED:
        return False
    return any(fd.isdigit() and _is_tty_fd(pid, int(fd), tty) for fd in watched)


def input_pending(tty_name: str) -> bool | None:
    """Whether the terminal holds input its program has not read (whole lines, in canonical
    mode); None when the slave cannot be opened. The poll pushes input still in flight to
    the line discipline (a bare FIONREAD misses most of what was just written); the count
    then rules out a poll that is always ready (non-canonical with VMIN 0). The slave is
    opened for the question only: held, it would keep the master from seeing the end."""
    try:
        fd = os.open(tty_name, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not any(events & select.POLLIN for _fd, events in poller.poll(0)):
            return False
        count = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
        return int.from_bytes(count, sys.byteorder, signed=True) > 0
    except OSError:
        return None
    finally:
        os.close(fd)


def probe(master_fd: int, tty_name: str) -> InputState:
    """The input state of the terminal behind `master_fd` (whose slave is `tty_name`)."""
    try:
        pgid = os.tcgetpgrp(master_fd)
    except OSError:
        pgid = 0
    state: InputStateName = "unknown"
    foreground: Foreground | None = None
    if pgid > 0 and os.path.isdir("/proc"):  # else no session has claimed the terminal yet
        state, foreground = _foreground_state(pgid, tty_name)
    elif pgid > 0:
        foreground = {"pid": pgid, "name": _proc_name(pgid)}
    # Asked last: a program sets its terminal up (echo off for a password) before it reads.
    try:
        attrs = termios.tcgetattr(master_fd)
        echo: bool | None = bool(attrs[3] & termios.ECHO)
        canonical: bool | None = bool(attrs[3] & termios.ICANON)
    except (termios.error, OSError):
        echo = canonical = None
    return _state(state, echo, canonical, foreground)


def _state(
    state: InputStateName,
    echo: bool | None,
    canonical: bool | None,
    foreground: Foreground | None,
) -> InputState:
    """The answer, with `secret` derived: reading a line whose typing will not show."""
    secret = state == "reading" and echo is False and canonical is True
    return {
        "state": state,
        "echo": echo,
        "canonical": canonical,
        "secret": secret,
        "foreground": foreground,
    }


def _foreground_state(pgid: int, tty_name: str) -> tuple[InputStateName, Foreground]:
    """Whether the foreground group reads, and which of its processes does."""
    members = _group_members(pgid)
    leader: Foreground = {"pid": pgid, "name": _proc_name(pgid)}
    blocked = [_blocked_on_input(pid, tty_name) for pid in members]
    if True in blocked:
        # Asked in this order (the module docstring says why): unread input first, then
        # whether the program is blocked in a read, which can then only be a new one.
        if input_pending(tty_name):
            return "busy", leader
        for pid in members:
            if _blocked_on_input(pid, tty_name):
                # Name the process that reads (vim under `sh -c`), not just the group leader.
                return "reading", {"pid": pid, "name": _proc_name(pid)}
        return "busy", leader
    if members and members[0] == pgid and blocked[0] is None:
        return "unknown", leader
    if members and all(_stopped(pid) for pid in members):
        return "stopped", leader  # (SIGSTOP, or SIGTTIN/SIGTTOU): it reads once continued
    return "busy", leader


def _stopped(pid: int) -> bool:
    """Stopped by a signal, or at a debugger's breakpoint."""
    try:
        return _read_proc(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in _read_proc(f"/proc/{pid}/task/{pid}/children").split()]
    except (OSError, ValueError):
        return []


def _pgrp(pid: int) -> int | None:
    try:
        return int(_read_proc(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def _group_members(pgid: int) -> list[int]:
    """The foreground group, leader first: a non-interactive `sh -c` runs its commands in
    its own group, so the process reading the terminal is often a descendant of the leader."""
    members: list[int] = []
    queue, seen = [pgid], {pgid}
    while queue and len(members) < 64:
        pid = queue.pop(0)
        if _pgrp(pid) == pgid:
            members.append(pid)
        for child in _children(pid):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return members

"""The spare: a worker the spawner forks before it is asked for one.

Forking costs the spawner's next caller ~8 ms (two forks, then the child copying every
page it writes to); the spare pays that while nobody waits. It is forked (double, as a
worker) whenever the spawner is idle and has none, puts itself in its own session with
nothing open but its end of a socket pair, and blocks. A request the spawner accepts goes
to it whole: the request line and the caller's descriptors (the connection first). The
spare answers the caller itself (its pid, and a pidfd of itself: race-free), becomes the
caller's worker (`forked.become`) and runs as any forked worker.

The pair's end of file means the spawner is gone (exited, killed, stepping down): the
spare exits without a trace. A spare that died or cannot take the request (its end
closed, its buffer full: stopped) makes the spawner fork for that request as before.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

from agentty_core.spawning import MIDDLE_NAME, SPARE_NAME

NAME = SPARE_NAME  # its command name (`ps`, tests) until it becomes a worker
READY = b"r"  # said once settled, with our pid: only a spare that waits is handed a request
MAX_FDS = 4  # the connection, then the caller's spec, status and (maybe) log descriptors
# The command name a spare gives its worker back, when the process it was forked from had
# another (the spare maker's).
worker_comm: str | None = None
HAND_OVER_TIMEOUT = 0.05  # a stopped spare's full buffer: the spawner forks instead
READ_CHUNK = 1 << 16


def hand_over(end: socket.socket, line: bytes, conn: socket.socket, fds: list[int]) -> bool:
    """Give the spare the request; False if it cannot take it (the caller is untouched).
    Once all of it is sent, nothing more is: the spare may have read it and closed its end
    already, and even an empty send would then fail (EPIPE) and pass for a refusal."""
    rights = [conn.fileno(), *fds]
    payload = line if line.endswith(b"\n") else line + b"\n"
    try:
        end.settimeout(HAND_OVER_TIMEOUT)
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _pack(rights))]
        sent = end.sendmsg([payload], ancillary)
        if sent < len(payload):
            end.sendall(payload[sent:])
    except OSError:
        return False
    return True


def settle(keep: int) -> str:
    """Right after the fork: our own session, stdio on /dev/null, no descriptor of the
    spawner's (its lock above all: held by us, it would outlive the spawner) but `keep`,
    and our command name; the name it had (a worker's, given back when it becomes one)."""
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the spawner's handler raises
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    if null > 2:
        os.close(null)
    os.closerange(3, keep)
    os.closerange(keep + 1, max(65536, os.sysconf("SC_OPEN_MAX")))
    had = name(NAME)
    return worker_comm or had


def ready_note() -> bytes:
    """What the spare says once it waits: READY and its pid (the spawner names it to the
    caller, who then knows whose progress to watch)."""
    return READY + os.getpid().to_bytes(4, sys.byteorder)


def read_ready(note: bytes) -> int | None:
    """The spare's pid from its `ready_note`; None for anything else (its end of file)."""
    if len(note) != len(READY) + 4 or not note.startswith(READY):
        return None
    return int.from_bytes(note[len(READY) :], sys.byteorder)


def name(comm: str) -> str:
    """Set our command name; the one it replaced."""
    try:
        with open("/proc/self/comm", "r+b", buffering=0) as f:
            old = f.read().rstrip(b"\n").decode(errors="replace")
            f.seek(0)
            f.write(comm.encode()[:15])
    except OSError:
        return comm
    return old


def wait_for_request(end: socket.socket) -> tuple[bytes, list[int]] | None:
    """The request line and its descriptors; None when the spawner is gone."""
    end.settimeout(None)
    buf = b""
    fds: list[int] = []
    while b"\n" not in buf:
        try:
            data, ancillary, _, _ = end.recvmsg(READ_CHUNK, socket.CMSG_SPACE(4 * MAX_FDS))
        except InterruptedError:
            continue
        except OSError:
            data, ancillary = b"", []
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += _unpack(payload)
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        buf += data
    return buf.split(b"\n", 1)[0], fds


def answer(conn_fd: int) -> bool:
    """Tell the caller who its worker is: our pid and a pidfd of ourselves."""
    pid = os.getpid()
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        reply = json.dumps({"ok": True, "pid": pid}).encode() + b"\n"
        with socket.socket(fileno=conn_fd) as conn:
            conn.settimeout(2.0)
            conn.sendmsg([reply], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _pack([pidfd]))])
    except OSError:
        return False
    finally:
        os.close(pidfd)
    return True


def end_stopped_leftovers(home: str, *, makers: bool = True) -> list[int]:
    """Kill the stopped spares, intermediate processes (`agentty-middle`) and spare makers
    of `home` (a running one reads its end of file, or forks and exits; a stopped one would
    wait forever, owned by nobody); their pids. Called by a spawner holding the home's
    lock, so none of these is another's: the next spawner, for what one killed outright
    left, and a spawner letting go of a spare whose pid it never learnt (stopped before it
    said it waits: spares and middles only, not its own maker)."""
    from agentty_core.worker import maker

    uid = os.getuid()
    names = {NAME.encode(), MIDDLE_NAME.encode()}
    if makers:
        names.add(maker.NAME.encode())
    wanted = b"AGENTTY_HOME=" + os.fsencode(home)
    ended: list[int] = []
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return ended  # no /proc to look in: nothing is found, nothing is harmed
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
            comm = stat[stat.index(b"(") + 1 : stat.rindex(b")")]
            state = stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3]
            if comm not in names or state not in (b"T", b"t"):
                continue
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if wanted not in f.read().split(b"\0"):
                    continue
            pidfd = os.pidfd_open(int(entry.name))
        except (OSError, ValueError):
            continue  # gone meanwhile, or not readable: not ours to judge
        if not _still(entry.name, stat):
            os.close(pidfd)
            continue
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            ended.append(int(entry.name))
        except OSError:
            pass
        finally:
            os.close(pidfd)
    return ended


def _pack(fds: list[int]) -> bytes:
    return b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds)


def _unpack(payload: bytes) -> list[int]:
    usable = len(payload) - len(payload) % 4
    return [int.from_bytes(payload[i : i + 4], sys.byteorder) for i in range(0, usable, 4)]


def _still(pid: str, stat: bytes) -> bool:
    """Is process `pid` (pinned by a pidfd) still the stopped one whose `stat` was read: the
    same start time, name and state? (Not the same line: its memory counts may change.)"""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return _stopped_identity(f.read()) == _stopped_identity(stat)
    except (OSError, ValueError, IndexError):
        return False


def _stopped_identity(stat: bytes) -> tuple[bytes, bytes, bytes]:
    """A stat line's name, state and start time (field 22: the 20th after the name)."""
    end = stat.rindex(b")")
    fields = stat[end + 2 :].split()
    return stat[stat.index(b"(") + 1 : end], fields[0], fields[19]

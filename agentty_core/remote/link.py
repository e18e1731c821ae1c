"""A `--host` call through the host's link (`remote/linkd.py`), and starting that link.

The caller's side of the link: every `--host` call goes through here first, so this uses
the interpreter's C modules only (`_socket`, `_json`, `binascii`), as the fast lane does.

The link is only ever a shortcut, as the warm spawner is for `start`. No link, a dead one
(its socket gone or refusing), a wedged one (not ready for the request within `WAIT` plus
`GRACE`), or one that refuses the request: the call goes the ssh way, as it always did, and
its output is the same. The link sends a request to the host only on the caller's `go`,
given once the link said it is ready: a caller that gave up first (and goes the ssh way)
never gave it, so a link stalled at any point cannot send a command the ssh way sends
too. After its `go` the caller is committed: when the answer is lost, a command that
changes nothing is asked again the ssh way, any other is reported as the ssh way reports a
dropped connection (exit 4): it is never run twice.

`AGENTTY_LINK=0` turns it off; `AGENTTY_LINK_IDLE` sets the link's idle exit (seconds).
"""

from __future__ import annotations

import os
import sys
import time

from agentty_core.errors import TransportError
from agentty_core.ownership import lock_held, private_dir
from agentty_core.spawning import detached_boot

TYPE_CHECKING = False  # without importing typing: every `--host` call comes through here
if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentty_core.remote.hosts import Host

WAIT = 0.3  # seconds a call may lose to a link that does not take its request
GRACE = 0.5  # ... and more, for a "ready" sent right at that deadline
STALL = 10.0  # a link silent this long (it sends a heartbeat every second) is wedged
RETRY = 60.0  # seconds without a link after one could not start or did not answer
VERSION = 2  # the callers' protocol (2: the link sends a request only on the caller's go)
_MAX_PATH = 107 - len(".lock")
# Commands served through the link: the others stream (relay, attach, run, replay), read
# this process's stdin (`-`), or check the link itself (doctor).
LINKED = frozenset(
    {"get", "text", "paste", "key", "send", "wait", "resize", "signal", "kill", "status"}
    | {"logs", "orphans", "gc", "start", "record"}
)
REPEATABLE = frozenset({"get", "status", "logs", "orphans", "wait"})  # change nothing

_wanted: tuple[Host, str] | None = None  # the link to start once this call is done


def enabled() -> bool:
    return sys.platform == "linux" and os.environ.get("AGENTTY_LINK", "1").strip() != "0"


def socket_path(host: Host, home_root: str) -> str | None:
    """The link's socket for `host` in `<home>/links/` (None when it would not fit)."""
    from agentty_core.remote.transport import _sha256

    key = "\0".join(
        str(v) for v in (host.ssh_config, host.destination, host.port, host.command)
    ) + "\0".join(("", host.agentty, str(host.home)))
    path = os.path.join(home_root, "links", _sha256(key.encode())[:16])
    return path if len(os.fsencode(path)) <= _MAX_PATH else None


def ask(
    host: Host, words: Sequence[str], home_root: str, *, input: bytes | None = None
) -> tuple[int, bytes, bytes] | None:
    """(exit code, stdout, stderr) of `agentty WORDS` on `host` through its link, or None:
    nothing ran there, go the ssh way (and, when no link runs, `launch_if_wanted` after)."""
    global _wanted
    path = socket_path(host, home_root)
    if path is None or not private_dir(os.path.dirname(path)):
        if path is not None:
            _wanted = (host, home_root)
        return None
    try:
        st = os.stat(path + ".off")
    except OSError:
        pass
    else:
        if time.time() - st.st_mtime < RETRY:
            return None
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        deadline = time.monotonic() + WAIT
        sock.settimeout(WAIT)
        try:
            sock.connect(path)
            cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        except OSError:  # none runs (FileNotFoundError, ConnectionRefusedError) or wedged
            _wanted = (host, home_root)
            return None
        if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
            return None
        try:
            sock.sendall(_request(words, input))
        except OSError:
            return None
        reader = _Reader(sock)
        # (counted from the request sent: a large stdin takes its time to go, taken in as
        # it goes, and is no sign of a wedged link)
        ready = reader.line(max(deadline, time.monotonic()) + GRACE)
        if ready != b"?":
            if ready is None:  # wedged (stopped, say): not again for a while
                _mark_off(path)
            elif ready == b"-version":  # an older agentty's link, still up after an upgrade:
                _retire(path + ".lock")  # told to end, and a new one started after this call
                _wanted = (host, home_root)
            return None  # refused, or not ready in time: it never gets a go, sends nothing
        try:
            sock.sendall(b"go\n")  # committed from here: see the module's docstring
        except OSError:
            return None  # not given: nothing was sent
        sent = reader.line(time.monotonic() + STALL)
        if sent is not None and sent.startswith(b"-"):
            return None  # it could not send it (its ssh just ended): nothing ran there
        if sent != b"+":
            _lost(host, words)
            return None
        return reader.answer(host, words)
    finally:
        sock.close()


def _lost(host: Host, words: Sequence[str]) -> None:
    """The host may have run the command and its answer is lost: one that changed nothing
    is asked again the ssh way (the caller returns None), any other is reported (raised),
    never sent again, saying that it may have run ("run the command again" had input
    typed twice)."""
    if _command(words) in REPEATABLE:
        return
    name = host.name
    raise TransportError(
        name,
        "lost",
        f"{name}: the ssh connection dropped (the link to the host ended mid-command); the "
        f"command may have been carried out there: check ('agentty --host {name} status', "
        "'get') before running it again",
    )


def _request(words: Sequence[str], input: bytes | None) -> bytes:
    import _json

    encode = _json.make_encoder(
        {}, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    request: dict[str, object] = {"v": VERSION, "argv": list(words)}
    if input is not None:
        import binascii

        request["stdin"] = binascii.b2a_base64(input, newline=False).decode("ascii")
    return "".join(encode(request, 0)).encode("ascii") + b"\n"


def _no_default(value: object) -> object:
    raise TypeError(f"not JSON: {type(value).__name__}")


def _mark_off(path: str) -> None:
    try:
        fd = os.open(path + ".off", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)
        os.utime(path + ".off")
    except OSError:
        pass


class _Reader:
    """The link's answer lines and frames, read with deadlines."""

    def __init__(self, sock: object) -> None:
        self.sock = sock
        self.buf = bytearray()  # grown in place: a 50 MB answer is not copied per chunk

    def _fill(self, until: float) -> bool:
        remaining = until - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)  # type: ignore[attr-defined]
        try:
            data: bytes = self.sock.recv(1 << 16)  # type: ignore[attr-defined]
        except OSError:
            return False
        if not data:
            return False
        self.buf += data
        return True

    def line(self, until: float) -> bytes | None:
        while (end := self.buf.find(b"\n")) < 0:
            if not self._fill(until):
                return None
        line = bytes(self.buf[:end])
        del self.buf[: end + 1]
        return line

    def take(self, n: int, stall: float) -> bytes | None:
        """`n` bytes; None if the link goes silent for `stall` seconds on the way (a
        large answer takes as long as it takes while it keeps coming)."""
        while len(self.buf) < n:
            if not self._fill(time.monotonic() + stall):
                return None
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def answer(self, host: Host, words: Sequence[str]) -> tuple[int, bytes, bytes] | None:
        """The answer to a request the host has: heartbeats, then the frame."""
        while True:
            line = self.line(time.monotonic() + STALL)
            if line != b"":
                break
        if line is not None and line.startswith(b"-"):
            return None  # refused there, before running anything (an upgrade, say)
        if line is not None and line.startswith(b"="):
            fields = line[1:].split()
            if (
                len(fields) == 3
                and fields[0].lstrip(b"-").isdigit()
                and fields[1].isdigit()
                and fields[2].isdigit()
            ):
                rc, n_out, n_err = (int(f) for f in fields)
                body = self.take(n_out + n_err, STALL)
                if body is not None:
                    return rc, body[:n_out], body[n_out:]
        _lost(host, words)
        return None


def _command(words: Sequence[str]) -> str | None:
    for word in words:
        if not word.startswith("-"):
            return word
    return None


def launch_if_wanted() -> None:
    """Start the link no call found (once, after the call's own work; errors are ignored:
    the ssh way works without it)."""
    global _wanted
    wanted, _wanted = _wanted, None
    if wanted is None or not enabled():
        return
    try:  # noqa: SIM105
        launch(*wanted)
    except (OSError, TransportError):  # (its ssh master could not start just now)
        pass


BOOT = detached_boot("remote.linkd")


def launch(host: Host, home_root: str) -> int | None:
    """Start `host`'s link, detached (own session, stdio on its log and /dev/null); None
    when one holds the host's lock already (starting, or running)."""
    import _json

    from agentty_core.remote import transport

    path = socket_path(host, home_root)
    if path is None:
        return None
    directory = os.path.dirname(path)
    if not private_dir(directory):
        os.mkdir(directory, 0o700)  # under the private home: an existing one is checked
        if not private_dir(directory):
            raise OSError("the links directory is not private")
    if lock_held(path + ".lock"):
        return None
    transport.share_master(host, home_root)
    argv = transport.argv_for(host, ["_serve"], home_root)
    encode = _json.make_encoder(
        {}, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    spec = "".join(encode({"argv": argv, "socket": path, "host": host.name}, 0))
    env = transport.child_env()
    env["AGENTTY_HOME"] = home_root  # the census and the reaper find it by this
    # The home's, not a session's: started by a program of one (an agent), it outlives it.
    env.pop("AGENTTY_SESSION_ID", None)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    log_fd = os.open(path + ".log", flags, 0o600)
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, log_fd, 2),
        ]
        from agentty_core.proc import descriptors

        actions += descriptors.close_actions()
        return os.posix_spawn(
            sys.executable,
            [sys.executable, "-c", BOOT, spec],
            env,
            file_actions=actions,
            setsid=True,
        )
    finally:
        os.close(log_fd)


# ---------------------------------------------------------------- status, tests, doctor


def stats(host: Host, home_root: str, timeout: float = 2.0) -> dict[str, object] | None:
    """The running link's own description (pid, requests served, the remote pid)."""
    path = socket_path(host, home_root)
    return None if path is None else _stats_at(path, timeout)


def _stats_at(path: str, timeout: float = 2.0) -> dict[str, object] | None:
    import json
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            sock.sendall(b'{"v": %d, "stats": true}\n' % VERSION)
            reader = _Reader(sock)
            head = reader.line(time.monotonic() + timeout)
            if head is None or not head.startswith(b"="):
                return None
            body = reader.take(int(head.split()[1]), timeout)
        except (OSError, ValueError, IndexError):
            return None
    try:
        value = json.loads(body) if body else None
    except (ValueError, RecursionError):  # (an older or odd link's answer: none to show)
        return None
    return value if isinstance(value, dict) else None


def stop(home_root: str, timeout: float = 5.0) -> int:
    """End every link of the home (tests, a reaper): SIGTERM (SIGCONT, then SIGKILL for one
    that does not end in `timeout`); how many were ended. A link writes its pid into its
    lock file, and holds the lock for its life."""
    import glob

    return sum(
        _stop_at(lock, timeout) for lock in glob.glob(os.path.join(home_root, "links", "*.lock"))
    )


def _retire(lock: str) -> None:
    """SIGTERM to the link holding `lock`, not waited for: it lets go of its socket at once
    and answers what its host has (its own callers') before it exits."""
    import signal

    pidfd = _holder(lock)
    if pidfd is None:
        return
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        signal.pidfd_send_signal(pidfd, signal.SIGCONT)
    except ProcessLookupError:
        pass
    finally:
        os.close(pidfd)


def _holder(lock: str) -> int | None:
    """A pidfd of the link that holds `lock` (it writes its pid there), or None."""
    try:
        with open(lock, "rb") as f:
            pid = int(f.read().strip() or b"0")
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    if not lock_held(lock):  # it ended, and the pid may name another process now
        os.close(pidfd)
        return None
    return pidfd


def _stop_at(lock: str, timeout: float) -> bool:
    """End the link that holds `lock`; whether one was ended."""
    import select
    import signal

    pidfd = _holder(lock)
    if pidfd is None:
        return False
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        signal.pidfd_send_signal(pidfd, signal.SIGCONT)
        if not select.select([pidfd], [], [], timeout)[0]:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            select.select([pidfd], [], [], timeout)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)

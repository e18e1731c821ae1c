"""Spawning the program on a PTY: the only module that imports ptyprocess.

Two ways, one result: the program in its own session, the PTY its controlling terminal and
its stdio, the caller's cwd and umask, default signals and an empty mask, SIGKILL when its
worker dies (PR_SET_PDEATHSIG), nothing of the worker's open but the PTY.

- `posix_spawn` of util-linux's `setpriv --pdeathsig KILL -- PROGRAM` (the fast way): a
  vfork, so the worker neither copies its page tables nor runs Python in a child that
  copies every page it touches; it waits ~0.3 ms instead of ~4. The session comes from
  POSIX_SPAWN_SETSID, the controlling terminal from opening the PTY's slave as fd 0 in it
  (a session leader without one acquires the terminal it opens), the death signal from
  setpriv (kept across the exec of the program, as a prctl before exec is). Taken only when
  the exec surely succeeds (`proc.execcheck`): setpriv reports a failed exec on the PTY, not
  to us, and a start must fail with its message.
- ptyprocess (fork, then Python in the child): everything else, and where setpriv is
  missing or too old.

Two ptyprocess pitfalls are handled here: it resolves the command with the *worker's* PATH
(so the caller resolves it with the session's PATH first, in `proc.command`, and passes an
absolute path), and its `cwd=` chdir runs in the forked child outside its error reporting
(so the chdir happens in `preexec_fn`, whose failures ptyprocess reports to the parent).
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import struct
import sys
import termios
from dataclasses import dataclass

from agentty_core import libc
from agentty_core.errors import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, SpawnError
from agentty_core.proc import descriptors
from agentty_core.proc.execcheck import execs_surely, own_machine
from agentty_core.spawning import setpriv as setpriv  # (its users look for it here too)

PR_SET_PDEATHSIG = 1
_TIOCGPTN = getattr(termios, "TIOCGPTN", 0x80045430)  # Linux; missing from typeshed
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    if libc.function("prctl")(option, value, 0, 0, 0) != 0:
        raise libc.last_error()


def become_subreaper() -> None:
    """Orphaned descendants (double forks, setsid daemons) get reparented to us, not init."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """SIGKILL when the process that forked us exits: we must not outlive it."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class PtyChild:
    """The program on its PTY: its pid, the master fd and the slave's name."""

    pid: int
    fd: int
    tty_name: str
    # ptyprocess's object, when it started the program: collected, it would close the PTY
    # and kill the program (its __del__).
    owner: object = None

    def set_size(self, cols: int, rows: int) -> None:
        """Window size on the PTY; the kernel sends SIGWINCH to the foreground group."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


# Set back to their defaults for the program: the worker ignores SIGHUP, Python itself
# ignores SIGPIPE and SIGXFSZ at its start (in `agentty` and in the worker: a user's own
# cannot be told from them), the worker may have been started ignoring the others, and an
# ignored signal stays ignored across exec. (SIGXFSZ kept ignored made `dd` past `ulimit -f`
# write short and exit 1, where a shell's child is killed by the signal.)
DEFAULT_SIGNALS = (
    signal.SIGHUP,
    signal.SIGPIPE,
    signal.SIGXFSZ,
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGQUIT,
)


def spawn(
    argv: list[str], cwd: str, env: dict[str, str], cols: int, rows: int, *, umask: int
) -> PtyChild:
    """Start `argv` (argv[0] already absolute) on a new PTY in its own session."""
    helper = setpriv()
    if helper is not None and execs_surely(argv[0]):
        child = _spawn_fast(helper, argv, cwd, env, cols, rows, umask)
        if child is not None:
            return child
    return _spawn_forked(argv, cwd, env, cols, rows, umask)


def _spawn_fast(
    helper: str, argv: list[str], cwd: str, env: dict[str, str], cols: int, rows: int, umask: int
) -> PtyChild | None:
    """The fast way (see the module's docstring); None if posix_spawn failed (the forked
    way then tries, and reports what it finds)."""
    master, slave = os.openpty()  # neither inherited
    try:
        tty_name = os.ttyname(slave)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
            (os.POSIX_SPAWN_OPEN, 0, tty_name, os.O_RDWR, 0),  # after setsid: the ctty
            (os.POSIX_SPAWN_DUP2, 0, 1),
            (os.POSIX_SPAWN_DUP2, 0, 2),
        ]
        actions += descriptors.close_actions()
        # cwd and umask have no spawn attribute: ours for the moment of the spawn (the
        # worker is single-threaded while it starts its program).
        here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(cwd)
            own_umask = os.umask(umask)
            try:
                pid = os.posix_spawn(
                    helper,
                    [helper, "--pdeathsig", "KILL", "--", *argv],
                    env,
                    file_actions=actions,
                    setsid=True,
                    setsigdef=DEFAULT_SIGNALS,
                    setsigmask=(),
                )
            finally:
                os.umask(own_umask)
                os.fchdir(here)
        finally:
            os.close(here)
    except OSError:
        os.close(master)
        return None
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return PtyChild(pid, master, tty_name)


def _spawn_forked(
    argv: list[str], cwd: str, env: dict[str, str], cols: int, rows: int, umask: int
) -> PtyChild:
    def in_child() -> None:
        # Runs after fork, before exec. The worker's asyncio wakeup fd is closed here, and
        # ignored signals survive exec: undo both.
        signal.set_wakeup_fd(-1)
        for sig in DEFAULT_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        die_with_parent()
        os.umask(umask)
        os.chdir(cwd)

    from ptyprocess import PtyProcess  # the worker's alone: `start` stays without it

    try:
        process = PtyProcess.spawn(
            argv, cwd=None, env=env, preexec_fn=in_child, dimensions=(rows, cols)
        )
    except FileNotFoundError as exc:
        raise SpawnError(
            f"command not found: {argv[0]} ({exc})", exit_code=EXIT_NOT_FOUND
        ) from None
    except PermissionError as exc:
        message = f"permission denied: {argv[0]} ({exc})"
        raise SpawnError(message, exit_code=EXIT_NOT_EXECUTABLE) from None
    except OSError as exc:
        # The file exists (the caller resolved it), so ENOENT from exec is its interpreter.
        if exc.errno == errno.ENOENT:
            message = f"bad interpreter: {argv[0]}"
        else:
            message = f"cannot execute {argv[0]}: {exc}"
        raise SpawnError(message, exit_code=EXIT_NOT_EXECUTABLE) from None
    fd: int = process.fd
    os.set_blocking(fd, False)
    return PtyChild(process.pid, fd, _slave_name(fd), owner=process)


def _slave_name(master_fd: int) -> str:
    """`/dev/pts/N` of the slave side (TIOCGPTN)."""
    try:
        raw = fcntl.ioctl(master_fd, _TIOCGPTN, b"\0\0\0\0")
        return f"/dev/pts/{struct.unpack('I', raw)[0]}"
    except (OSError, AttributeError):
        return ""


def preload() -> None:
    """Import ptyprocess, find prctl and look for setpriv now: the warm spawner's children
    then share the pages and the answers."""
    import ptyprocess  # noqa: F401

    setpriv()
    own_machine()
    if sys.platform.startswith("linux"):
        libc.function("prctl")

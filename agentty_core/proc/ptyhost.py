"""Spawning the program on a PTY: the only module that imports ptyprocess.

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
from typing import TYPE_CHECKING

from agentty_core.errors import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, SpawnError

if TYPE_CHECKING:
    from ptyprocess import PtyProcess

PR_SET_PDEATHSIG = 1
_TIOCGPTN = getattr(termios, "TIOCGPTN", 0x80045430)  # Linux; missing from typeshed
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # here: importing this module stays cheap

    # The process's own symbols include libc's: no `find_library` (it runs subprocesses).
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def become_subreaper() -> None:
    """Orphaned descendants (double forks, setsid daemons) get reparented to us, not init."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """SIGKILL when the process that forked us exits: we must not outlive it."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class PtyChild:
    """The program on its PTY: the master fd and the child's pid."""

    process: PtyProcess
    tty_name: str

    @property
    def fd(self) -> int:
        fd: int = self.process.fd
        return fd

    @property
    def pid(self) -> int:
        pid: int = self.process.pid
        return pid

    def set_size(self, cols: int, rows: int) -> None:
        """Window size on the PTY; the kernel sends SIGWINCH to the foreground group."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def spawn(
    argv: list[str], cwd: str, env: dict[str, str], cols: int, rows: int, *, umask: int
) -> PtyChild:
    """Start `argv` (argv[0] already absolute) on a new PTY in its own session."""

    def in_child() -> None:
        # Runs after fork, before exec. The worker's asyncio wakeup fd is closed here, and
        # ignored signals survive exec: undo both.
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGHUP, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
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
    tty_name = _slave_name(process.fd)
    os.set_blocking(process.fd, False)
    return PtyChild(process, tty_name)


def _slave_name(master_fd: int) -> str:
    """`/dev/pts/N` of the slave side (TIOCGPTN)."""
    try:
        raw = fcntl.ioctl(master_fd, _TIOCGPTN, b"\0\0\0\0")
        return f"/dev/pts/{struct.unpack('I', raw)[0]}"
    except (OSError, AttributeError):
        return ""


def preload() -> None:
    """Import ptyprocess now: the warm spawner's children then share its pages."""
    import ptyprocess  # noqa: F401

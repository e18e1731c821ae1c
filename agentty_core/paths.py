"""Where agentty keeps its files, and the checks that keep them private.

Layout of `$AGENTTY_HOME` (default `~/.agentty`), every directory 0700, every file 0600:

    sessions.json        the session records (see `state.py`)
    sessions.json.lock   the OS lock serialising every read-modify-write
    active               the active session id
    logs/<id>.log        the worker's own log (never the program's output)
    logs/<id>.final.json the final screen of an exited session
    logs/<id>.cast       the asciicast v2 recording, when asked for
    sockets/<id>.sock    the worker's Unix socket

Socket paths are derived from the validated session id, never read from the state file.
Stdlib only: this module is on the CLI's hot path.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path

from agentty_core.errors import StateError, UnsafePath, UsageError

# `\Z`, not `$`: `$` also matches before a final newline, which let "web\n" pass as a name
# (a second session "named" web, a broken status table). Callers may use `.match`.
SESSION_ID_RE = re.compile(r"[0-9a-f]{8}\Z")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes on Linux, including the NUL


def validate_session_id(session_id: str) -> str:
    if not SESSION_ID_RE.fullmatch(session_id):
        raise UsageError(f"invalid session id: {session_id!r}")
    return session_id


def validate_name(name: str) -> str:
    if not NAME_RE.fullmatch(name) or ".." in name:
        raise UsageError(
            f"invalid session name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def default_home() -> Path:
    env = os.environ.get("AGENTTY_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".agentty"


def ensure_private_dir(path: Path, *, create: bool = True) -> None:
    """Create `path` 0700, or check that the existing one is ours and closed to others.

    tmux's rule: a directory with group/other bits or another owner is refused, with the fix.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not create:
            raise
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, 0o700)
            st = os.lstat(path)
        except OSError as exc:
            raise StateError(f"cannot create {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        # A symlinked home is allowed only if it resolves to a private dir of ours.
        target = path.resolve()
        st = os.stat(target)
        path = target
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(f"{path} is not a directory")
    if st.st_uid != os.getuid():
        raise UnsafePath(
            f"directory {path} is owned by uid {st.st_uid}, not by you (uid {os.getuid()})"
        )
    if st.st_mode & 0o077:
        raise UnsafePath(
            f"directory {path} has unsafe permissions {stat.S_IMODE(st.st_mode):04o} "
            f"(fix: chmod 700 {path})"
        )


class Home:
    """The resolved, checked agentty home of this process.

    A plain class rather than a dataclass: `dataclasses` imports `inspect`, which the CLI's
    hot path cannot afford."""

    __slots__ = ("root",)

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Home({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Home) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @classmethod
    def resolve(cls, root: Path | None = None, *, create: bool = True) -> Home:
        home = cls((root or default_home()).absolute())
        home.check(create=create)
        return home

    def check(self, *, create: bool = True) -> None:
        ensure_private_dir(self.root, create=create)
        for sub in (self.logs_dir, self.sockets_dir):
            ensure_private_dir(sub, create=create)

    @property
    def state_file(self) -> Path:
        return self.root / "sessions.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "sessions.json.lock"

    @property
    def active_file(self) -> Path:
        return self.root / "active"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def sockets_dir(self) -> Path:
        return self.root / "sockets"

    def log_path(self, session_id: str) -> Path:
        return self.logs_dir / f"{validate_session_id(session_id)}.log"

    def final_path(self, session_id: str) -> Path:
        """The final screen an exited session leaves behind (R10)."""
        return self.logs_dir / f"{validate_session_id(session_id)}.final.json"

    def cast_path(self, session_id: str) -> Path:
        """The session's asciicast v2 recording, when it records."""
        return self.logs_dir / f"{validate_session_id(session_id)}.cast"

    def socket_dir(self) -> Path:
        """The socket directory: `sockets/`, or a short private fallback for long homes."""
        override = os.environ.get("AGENTTY_SOCKET_DIR")
        if override:
            return Path(override)
        if len(os.fsencode(self.sockets_dir / "00000000.sock")) <= MAX_SOCKET_PATH:
            return self.sockets_dir
        import hashlib

        digest = hashlib.sha256(os.fsencode(os.path.realpath(self.root))).hexdigest()[:8]
        return Path("/tmp") / f"agentty-{os.getuid()}" / digest

    def socket_path(self, session_id: str) -> Path:
        path = self.socket_dir() / f"{validate_session_id(session_id)}.sock"
        size = len(os.fsencode(path))
        if size > MAX_SOCKET_PATH:
            raise UsageError(
                f"socket path too long ({size} > {MAX_SOCKET_PATH}): "
                "shorten AGENTTY_HOME or set AGENTTY_SOCKET_DIR"
            )
        return path

    def ensure_socket_dir(self) -> Path:
        path = self.socket_dir()
        if path != self.sockets_dir:
            ensure_private_dir(path.parent)
        ensure_private_dir(path)
        return path

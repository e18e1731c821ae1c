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
from agentty_core.spawning import SOCKET_NAME

# `\Z`, not `$`: `$` also matches before a final newline, which let "web\n" pass as a name
# (a second session "named" web, a broken status table). Callers may use `.match`.
SESSION_ID_RE = re.compile(r"[0-9a-f]{8}\Z")
SPAWNER_SOCKET_RE = re.compile(r"spawner(-[0-9a-f]{8})?\.sock\Z")  # `Home.spawner_socket`
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes on Linux, including the NUL


def validate_session_id(session_id: str) -> str:
    if not SESSION_ID_RE.fullmatch(session_id):
        raise UsageError(f"invalid session id: {session_id!r}")
    return session_id


def validate_name(name: str) -> str:
    if not NAME_RE.fullmatch(name) or ".." in name:
        shown = name if len(name) <= 64 else name[:64] + "..."  # not a page of it
        raise UsageError(
            f"invalid session name {shown!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def default_home() -> Path:
    env = os.environ.get("AGENTTY_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".agentty"


def _trusted(st: os.stat_result) -> bool:
    """Owned by us or by root: nobody else can rename, replace or re-point it."""
    return st.st_uid in (0, os.getuid())


def _writable_by_others(st: os.stat_result) -> bool:
    """Others can add or rename entries: other-writable, or group-writable by a group not
    ours, with no sticky bit to stop them renaming what is not theirs."""
    if st.st_mode & stat.S_ISVTX:
        return False
    return bool(st.st_mode & stat.S_IWOTH) or bool(
        st.st_mode & stat.S_IWGRP and st.st_gid != os.getgid()
    )


def _resolve_trusted(path: Path) -> Path:
    """The physical path of `path`, having checked every component on the way.

    Each directory it passes through and each symlink it follows must be ours or root's, and
    no directory it passes through may let others rename entries (a sticky one like /tmp is
    fine): otherwise the path can be redirected after it was checked. The final component
    is only resolved (the caller checks it). Raises FileNotFoundError at the first missing
    component, after checking the ones before it, so the caller may create it there."""
    todo = list(reversed(Path(os.path.abspath(path)).parts[1:]))
    current = "/"
    hops = 0
    while todo:
        part = todo.pop()
        if part in ("", "."):
            continue
        if part == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            st = os.lstat(candidate)
        except NotADirectoryError:  # `current`, a file, was taken for a directory
            raise UnsafePath(f"{current} is not a directory") from None
        if not _trusted(st):
            raise UnsafePath(
                f"{candidate} is owned by uid {st.st_uid}, not by you (uid {os.getuid()}) or root"
            )
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                raise UnsafePath(f"{path}: too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = "/"
            todo.extend(reversed(Path(target).parts[1 if target.startswith("/") else 0 :]))
            continue
        if todo and stat.S_ISDIR(st.st_mode) and _writable_by_others(st):
            raise UnsafePath(
                f"{candidate} is writable by others: keep agentty's files in a private "
                "directory (set AGENTTY_HOME or AGENTTY_SOCKET_DIR elsewhere)"
            )
        current = candidate
    return Path(current)


def ensure_private_dir(path: Path, *, create: bool = True) -> None:
    """Create `path` 0700, or check that the existing one is ours and closed to others.

    tmux's rule: a directory with group/other bits or another owner is refused, with the fix;
    and so is one reached through a directory or symlink another user controls."""
    try:
        real = _resolve_trusted(path)
    except FileNotFoundError:
        if not create:
            raise
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, 0o700)
            real = _resolve_trusted(path)
        except OSError as exc:
            raise StateError(f"cannot create {path}: {exc.strerror or exc}") from None
    st = os.lstat(real)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(f"{real} is not a directory")
    if st.st_uid != os.getuid():
        raise UnsafePath(
            f"directory {real} is owned by uid {st.st_uid}, not by you (uid {os.getuid()})"
        )
    if st.st_mode & stat.S_ISVTX and st.st_mode & 0o022:
        # A shared directory such as /tmp: never advise opening or closing it for everyone.
        raise UnsafePath(
            f"{real} is a shared directory: use a private directory inside it "
            f"(such as {real / f'agentty-{os.getuid()}'})"
        )
    if st.st_mode & 0o077:
        raise UnsafePath(
            f"directory {real} has unsafe permissions {stat.S_IMODE(st.st_mode):04o} "
            f"(fix: chmod 700 {real})"
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

    @classmethod
    def for_reading(cls, root: Path | None = None) -> Home:
        """The home, checked as `resolve` checks it when it exists, and not made when it does
        not: a reading command (`status`, `get`, `gc`) on a home not made yet, or named with
        a typo, finds no sessions and leaves no directories behind. `start` makes it."""
        home = cls((root or default_home()).absolute())
        with contextlib.suppress(FileNotFoundError):  # (a file on the way: said, as ever)
            home.check(create=False)
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
        if override:  # (`shares_socket_dir`)
            return Path(override)
        if len(os.fsencode(self.sockets_dir / "00000000.sock")) <= MAX_SOCKET_PATH:
            return self.sockets_dir
        return Path("/tmp") / f"agentty-{os.getuid()}" / self._digest()

    def _digest(self) -> str:
        """A short name for this home, the same for every process that uses it."""
        import hashlib

        return hashlib.sha256(os.fsencode(os.path.realpath(self.root))).hexdigest()[:8]

    def shares_socket_dir(self) -> bool:
        """Whether other homes may keep their sockets beside ours (one AGENTTY_SOCKET_DIR:
        the long-path advice names the same one for every home of a user)."""
        return bool(os.environ.get("AGENTTY_SOCKET_DIR"))

    def spawner_socket(self) -> str | None:
        """The warm spawner's socket, next to the sessions' (None for a home too long). In a
        shared directory it carries the home's digest: each home's spawner keeps its own."""
        name = f"spawner-{self._digest()}.sock" if self.shares_socket_dir() else SOCKET_NAME
        path = os.path.join(self.socket_dir(), name)
        return path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else None

    def owns_session_socket(self, session_id: str) -> bool:
        """Whether a session socket in the socket directory may be this home's: in a shared
        directory only one whose session has its log here (made before the socket)."""
        return not self.shares_socket_dir() or self.log_path(session_id).exists()

    def socket_path(self, session_id: str) -> Path:
        path = self.socket_dir() / f"{validate_session_id(session_id)}.sock"
        size = len(os.fsencode(path))
        if size > MAX_SOCKET_PATH:
            raise UsageError(
                f"socket path too long ({size} > {MAX_SOCKET_PATH}): set "
                f"AGENTTY_SOCKET_DIR={short_private_dir()} (a private directory agentty "
                "creates)"
                + ("" if os.environ.get("AGENTTY_SOCKET_DIR") else " or shorten AGENTTY_HOME")
            )
        return path

    def ensure_socket_dir(self) -> Path:
        """The socket directory, created private; our own short fallback's parent
        (`/tmp/agentty-UID`) is ours too. A chosen AGENTTY_SOCKET_DIR's parent may be shared
        (a sticky /tmp): only the directory itself must be private."""
        path = self.socket_dir()
        if path != self.sockets_dir and not os.environ.get("AGENTTY_SOCKET_DIR"):
            ensure_private_dir(path.parent)
        ensure_private_dir(path)
        return path


FileIdentity = tuple[int, int, int, int]


def identity_of(path: str | os.PathLike[str]) -> FileIdentity | None:
    """What tells the file at `path` (not followed) from one made there later: its device,
    inode, type and change time; None if nothing is there. The inode alone does not: one
    just freed is given to the next file made (a description removed and made a directory
    at once had its inode, every time in a quick loop on ext4)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode), st.st_ctime_ns)


def still_at(path: str | os.PathLike[str], identity: FileIdentity | None) -> bool:
    """Whether the file at `path` is still the one `identity_of` found there."""
    return identity is not None and identity_of(path) == identity


def short_private_dir() -> Path:
    """A short directory only we can use, for sockets: under `$XDG_RUNTIME_DIR` (per user,
    0700, made by the login manager) when there is one, else `/tmp/agentty-UID`."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return Path(runtime) / "agentty"
    return Path("/tmp") / f"agentty-{os.getuid()}"

"""Reading session records without taking the lock.

Writers replace `sessions.json` atomically, so a reader always sees a whole file, the old one
or the new one. This is the read half of the state, stdlib only, used on the CLI's hot path
(`get`, `text`, `key` resolve their session here and go straight to the worker's socket).
"""

from __future__ import annotations

import errno
import json
import os
import stat

from agentty_core.errors import AmbiguousSession, NoActiveSession, SessionNotFound, StateError
from agentty_core.paths import SESSION_ID_RE, Home

SCHEMA_VERSION = 1

TYPE_CHECKING = False  # without importing typing: this module is on the hot path
if TYPE_CHECKING:
    from typing import Literal

    Status = Literal["starting", "running", "exited", "failed", "lost"]

Record = dict[str, object]
LIVE_STATUSES = ("starting", "running")


def read_private_file(path: os.PathLike[str] | str) -> bytes | None:
    """The bytes of a file of ours, opened without following symlinks; None if missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateError(f"{path} is a symlink; refusing to follow it") from None
        raise StateError(f"cannot read {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StateError(f"{path} is not a regular file")
        if st.st_uid != os.getuid():
            raise StateError(f"{path} is owned by uid {st.st_uid}, not by you")
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class CorruptState(StateError):
    """`sessions.json` cannot be parsed; `state.py` moves it aside and rebuilds it."""


def parse_state(raw: bytes, path: str) -> dict[str, object]:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptState(f"{path} is corrupt: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("sessions"), list):
        raise CorruptState(f"{path} is corrupt: expected an object with a 'sessions' list")
    sessions: list[Record] = doc["sessions"]
    if not all(isinstance(r, dict) and isinstance(r.get("id"), str) for r in sessions):
        raise CorruptState(f"{path} is corrupt: every session needs an 'id'")
    ids = [r["id"] for r in sessions]
    if len(set(ids)) != len(ids):
        raise CorruptState(f"{path} is corrupt: duplicate session ids")
    result: dict[str, object] = doc
    return result


def empty_state() -> dict[str, object]:
    return {"schema_version": SCHEMA_VERSION, "sessions": []}


def load_state(home: Home) -> dict[str, object]:
    raw = read_private_file(home.state_file)
    if raw is None:
        return empty_state()
    return parse_state(raw, str(home.state_file))


def records(home: Home) -> list[Record]:
    sessions: list[Record] = load_state(home)["sessions"]  # type: ignore[assignment]  # checked by parse_state
    return sessions


def read_active(home: Home) -> str | None:
    raw = read_private_file(home.active_file)
    if not raw:
        return None
    value = raw.decode("utf-8", "replace").strip()
    return value if SESSION_ID_RE.match(value) else None


def find(all_records: list[Record], ref: str) -> Record:
    """A record by full id, unique id prefix or name (a running one wins over old ones)."""
    if not ref or len(ref) > 256 or any(c in ref for c in "/\x00\n"):
        raise SessionNotFound(ref[:64] + ("..." if len(ref) > 64 else ""))
    for rec in all_records:
        if rec.get("id") == ref:
            return rec
    named = [r for r in all_records if r.get("name") == ref]
    if named:
        live = [r for r in named if r.get("status") in LIVE_STATUSES]
        pool = live or named
        return max(pool, key=lambda r: str(r.get("startedAt", "")))
    prefixed = [r for r in all_records if str(r.get("id", "")).startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1:
        raise AmbiguousSession(ref, [str(r["id"]) for r in prefixed])
    raise SessionNotFound(ref)


def resolve(home: Home, ref: str | None) -> Record:
    """The session a command acts on: `ref`, else the active one."""
    all_records = records(home)
    if ref is None:
        active = read_active(home)
        if active is None:
            raise NoActiveSession()
        for rec in all_records:
            if rec.get("id") == active:
                return rec
        raise NoActiveSession()
    return find(all_records, ref)

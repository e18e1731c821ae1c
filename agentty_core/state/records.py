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
# What a running worker's `info` answer adds to its record: the fields the file does not
# keep up to date (the size: as it started, until the exit records the one it ended with;
# `resize` does not write the file); and, once it says its program ended (an exit it could
# not record yet: a full disk, the lock held elsewhere), how. And `recordingError`, as the
# worker knows it: on the home's own full disk it cannot be written into the file.
PROBED_FIELDS = ("lastActiveAt", "input", "seq")  # never in the file
LIVE_FIELDS = (*PROBED_FIELDS, "cols", "rows")
ENDED_FIELDS = ("status", "exitCode", "signal", "endedAt")

TYPE_CHECKING = False  # without importing typing: this module is on the hot path
if TYPE_CHECKING:
    from typing import Literal, TypedDict

    Status = Literal["starting", "running", "exited", "failed", "lost"]

    class _RecordId(TypedDict):
        id: str  # 8 hex digits (`paths.SESSION_ID_RE`)

    class SessionRecord(_RecordId, total=False):
        """One session in `sessions.json`. Written by `start` (the intent), completed by the
        worker (pids, running, the exit); readers get only records `bad_record` passes."""

        name: str | None
        argv: list[str]
        command: str
        program: str
        cwd: str
        status: Status
        pid: int | None  # the program's
        pidStart: str | None  # start tokens: a pid alone may be reused (`proc.identity`)
        createTime: float | None
        workerPid: int | None
        workerStart: str | None
        workerCreateTime: float | None
        emulator: str
        cols: int
        rows: int
        startedAt: str  # ISO 8601 with a UTC offset
        lastActiveAt: str
        endedAt: str
        exitCode: int | None
        signal: str | None  # "SIGKILL" when a signal ended the program
        error: str  # why a session failed or was lost
        socket: str
        log: str
        cast: str  # the recording's path, once one was started
        holderPid: int  # the process that holds it (`run`), which removes it at its end:
        holderStart: str | None  # `gc` leaves it be while that process lives
        input: dict[str, object]  # live fields the worker adds to `info`
        seq: int

    Record = SessionRecord
else:
    Record = dict  # the same dict at run time, without importing typing

RawRecord = dict[str, object]  # a record as JSON, before (or without) checking its fields
STATUSES = frozenset(("starting", "running", "exited", "failed", "lost"))
LIVE_STATUSES = frozenset(("starting", "running"))


def is_live(record: Record) -> bool:
    """Starting or running as far as the record says (whether its worker lives is a separate
    question: `Client.worker_alive`)."""
    status = record.get("status")
    return isinstance(status, str) and status in LIVE_STATUSES  # a writer's may be unchecked


def open_private_file(path: os.PathLike[str] | str) -> int | None:
    """A file of ours to read, opened without following symlinks: its descriptor (the
    caller closes it), None if missing; StateError for anything but our regular file."""
    try:
        # O_NONBLOCK: a FIFO in its place would block the open (under the state lock, say)
        # until somebody writes to it; opened at once, it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
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
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_private_file(path: os.PathLike[str] | str) -> bytes | None:
    """The bytes of a file of ours (`open_private_file`); None if missing."""
    fd = open_private_file(path)
    if fd is None:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _no_number(text: str) -> float:
    """`parse_constant` and `parse_float` of `strict_json`: NaN, Infinity and what no float
    holds (1e999) are no number JSON can carry, for any reader but Python's."""
    value = float(text)
    if value - value != 0.0:
        raise ValueError(f"{text[:20]} is not a number JSON carries")
    return value


_STRICT = json.JSONDecoder(parse_constant=_no_number, parse_float=_no_number)


def strict_json(text: str | bytes) -> object:
    """A file agentty wrote (a final screen), read as strict JSON: ValueError for anything
    else, a hand-edited NaN or 1e999 too (printed by `get --json`, no reader took them)."""
    return _STRICT.decode(text.decode("utf-8") if isinstance(text, bytes) else text)


class CorruptState(StateError):
    """`sessions.json` cannot be parsed; a writer (`StateStore`) moves it aside and rebuilds it."""


class IncompleteState(CorruptState):
    """`sessions.json` was set aside as corrupt and its list is not rebuilt yet: the next
    caller that writes (`Client` does on reading this) asks the live workers for the rest."""


REBUILDING = "rebuilding"  # the state file's flag for that


def parse_state(raw: bytes, path: str, *, keep_junk: bool = False) -> dict[str, object]:
    """The state file's document; `keep_junk`: its non-object entries kept (`doctor` names
    each entry by its place in the file)."""
    try:
        text = raw.decode("utf-8")
        try:
            doc = json.loads(text)
        except (RecursionError, ValueError) as exc:
            if isinstance(exc, ValueError) and "integer string conversion" not in str(exc):
                raise
            # A value nested deeper than the reader goes, or a number past Python's 4300
            # digits (hand-edited), is one record's field, not a corrupt file: read with the
            # field left out, or the number as out of range (for `bad_record` to skip).
            doc = _shallow(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptState(f"{path} is corrupt: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("sessions"), list):
        raise CorruptState(f"{path} is corrupt: expected an object with a 'sessions' list")
    # A malformed record, or a later one with an id already listed, is skipped by readers
    # and removed by gc (`skipped`), and an entry that is no object at all holds no session
    # and is dropped here: moving the file aside as corrupt lost the history of every other
    # session (the live ones come back from their workers, the ended ones did not).
    sessions: list[object] = doc["sessions"]
    if not keep_junk and not all(isinstance(r, dict) for r in sessions):
        doc["sessions"] = [r for r in sessions if isinstance(r, dict)]
    result: dict[str, object] = doc
    return result


def _shallow(text: str) -> object:
    """The state document, read member by member down to each record's fields: a field
    nested past the reader's recursion limit is left out, a number past 4300 digits read
    as out of range (ValueError: not JSON at all)."""
    start = _skip_blank(text, 0)
    doc, end = _lenient(text, start, levels=3)
    if text[_skip_blank(text, end) :]:
        raise ValueError("extra data after the document")
    return doc


def _lenient(text: str, at: int, levels: int) -> tuple[object, int]:
    """The JSON value at `at` and where it ends; within `levels` of containers, a member
    too deep to read is left out (unread: only its brackets are counted)."""
    if levels == 0 or text[at : at + 1] not in ("{", "["):
        return _BOUNDED.raw_decode(text, at)
    is_object, close = text[at] == "{", "}" if text[at] == "{" else "]"
    items: list[object] = []
    members: dict[str, object] = {}
    at = _skip_blank(text, at + 1)
    while text[at : at + 1] != close:
        key = None
        if is_object:
            key, at = _BOUNDED.raw_decode(text, at)
            if not isinstance(key, str):  # (raw_decode of a key: a string, or not JSON)
                raise ValueError("an object's key is not a string")
            at = _skip_blank(text, at)
            if text[at : at + 1] != ":":
                raise ValueError("expected ':'")
            at = _skip_blank(text, at + 1)
        try:
            value, end = _lenient(text, at, levels - 1)
        except RecursionError:
            end = _past_value(text, at)  # left out
            if is_object:  # (of a repeated key, the last counts: this one)
                members.pop(str(key), None)
        else:
            if is_object:
                members[str(key)] = value
            else:
                items.append(value)
        at = _skip_blank(text, end)
        if text[at : at + 1] == ",":
            at = _skip_blank(text, at + 1)
        elif text[at : at + 1] != close:
            raise ValueError(f"expected ',' or {close!r}")
    return (members if is_object else items), at + 1


def _skip_blank(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\n\r":
        at += 1
    return at


def _past_value(text: str, at: int) -> int:
    """Where the container value at `at` ends, found without reading it."""
    depth, index, in_string = 0, at, False
    while index < len(text):
        char = text[index]
        if in_string:
            if char == "\\":
                index += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise ValueError("unterminated value")


def _bounded_int(text: str) -> int | float:
    """An int as JSON gives it, or infinity past 64 bits (`in_range` says no to it)."""
    return int(text) if len(text) <= 20 else float("inf")


_BOUNDED = json.JSONDecoder(parse_int=_bounded_int)


def empty_state() -> dict[str, object]:
    return {"schema_version": SCHEMA_VERSION, "sessions": []}


def load_state(home: Home, *, keep_junk: bool = False) -> dict[str, object]:
    raw = read_private_file(home.state_file)
    if raw is None:
        return empty_state()
    doc = parse_state(raw, str(home.state_file), keep_junk=keep_junk)
    if doc.get(REBUILDING) is True:
        raise IncompleteState(f"{home.state_file} is being rebuilt from the live workers")
    return doc


def bad_record(raw: object) -> str | None:
    """What makes `raw` unusable as a record (a hand-edited file, say), or None if it is fine.

    Only what readers rely on is checked here, cheaply (this runs on every read): an id that
    names a socket, a known status, the types of the fields tables print and liveness checks
    read. Timestamps are checked where they are parsed (`gc`, `doctor`)."""
    if not isinstance(raw, dict):
        return "not an object"
    sid = raw.get("id")
    if not isinstance(sid, str) or not SESSION_ID_RE.fullmatch(sid):
        return f"id {sid!r} is not 8 hex digits"
    status = raw.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        return f"status {raw.get('status')!r} is not one of {', '.join(sorted(STATUSES))}"
    for key, kinds in _FIELD_TYPES:
        value = raw.get(key)
        if value is not None and not isinstance(value, kinds):
            return f"{key} {value!r} is not {' or '.join(_kind(k) for k in kinds)}"
    argv = raw.get("argv")
    if argv is not None and not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
        return "argv is not a list of strings"
    for key, value in raw.items():  # (NaN and 1e999 went out as `status --json`'s NaN and
        if not in_range(value):  # Infinity, which no JSON parser but Python's reads)
            if isinstance(value, (list, dict)):
                return f"{key} holds a number out of range"
            return f"{key} is a number out of range"
    signal = raw.get("signal")
    if isinstance(signal, str) and len(signal) > MAX_SIGNAL_NAME:
        return "signal is too long for a signal's name"
    return None


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _kind(kind: type) -> str:
    return _KIND_NAMES.get(kind, f"a {kind.__name__}")


MAX_SIGNAL_NAME = 16  # (SIGRTMIN+15: tables print it whole)
INT64 = 1 << 63


def in_range(value: object) -> bool:
    """A number JSON can carry anywhere (a finite float; an int in 64 bits), or no number;
    a list or object whose numbers all are, at any depth (a field agentty does not know is
    kept and printed whole)."""
    if isinstance(value, float):
        return value - value == 0.0  # (inf - inf and nan - nan are nan; `math` is no builtin)
    if isinstance(value, (list, dict)):
        return _all_in_range(value)
    return not isinstance(value, int) or -INT64 <= value < INT64


def _all_in_range(container: list[object] | dict[str, object]) -> bool:
    """`in_range` of everything inside, walked without recursion (a reader takes nesting
    deeper than Python's recursion limit)."""
    pending: list[object] = [container]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif not in_range(value):
            return False
    return True


_FIELD_TYPES: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("name", (str,)),
    ("command", (str,)),
    ("startedAt", (str,)),
    ("lastActiveAt", (str,)),
    ("endedAt", (str,)),
    ("signal", (str,)),
    ("error", (str,)),
    ("pid", (int,)),
    ("workerPid", (int,)),
    ("workerStart", (str,)),
    ("exitCode", (int,)),
)


def checked(raw: object) -> Record | None:
    """`raw` as a record if `bad_record` finds nothing wrong with it, else None."""
    if bad_record(raw) is not None:
        return None
    return raw  # type: ignore[return-value]  # its fields were checked just now


def records(home: Home) -> list[Record]:
    """Every well-formed record, the first of each id; the others (`skipped`) are skipped
    here, reported by `doctor`, and removed by `gc`, never fatal to a reader."""
    raw: list[object] = load_state(home)["sessions"]  # type: ignore[assignment]  # a list: parse_state
    return usable(raw)


def usable(entries: list[object]) -> list[Record]:
    """The records of `entries` that readers use: well-formed, the first of each id."""
    passed_over = {index for index, _ in skipped(entries)}
    kept = [rec for i, rec in enumerate(entries) if i not in passed_over]
    return kept  # type: ignore[return-value]  # (each one checked by `skipped`)


def skipped(entries: list[object]) -> list[tuple[int, str]]:
    """The entries readers skip (see `usable`), by index, with why."""
    seen: set[str] = set()
    said: list[tuple[int, str]] = []
    for index, raw in enumerate(entries):
        problem = bad_record(raw)
        if problem is None:
            sid = raw["id"]  # type: ignore[index]  # checked: a dict with a str id
            if sid in seen:
                problem = f"a later record of {sid} (the first is used)"
            seen.add(sid)
        if problem is not None:
            said.append((index, problem))
    return said


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
        pool = [r for r in named if is_live(r)] or named
        return max(pool, key=lambda r: r.get("startedAt") or "")
    prefixed = [r for r in all_records if r["id"].startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1:
        raise AmbiguousSession(ref, [r["id"] for r in prefixed])
    raise SessionNotFound(ref)


def resolve(home: Home, ref: str | None) -> Record:
    """The session a command acts on: `ref`, else the active one."""
    return pick(home, records(home), ref)


def pick(home: Home, all_records: list[Record], ref: str | None) -> Record:
    """`resolve` among `all_records`."""
    if ref is None:
        active = read_active(home)
        if active is None:
            raise NoActiveSession()
        for rec in all_records:
            if rec.get("id") == active:
                return rec
        raise NoActiveSession()
    return find(all_records, ref)

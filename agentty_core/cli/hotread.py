"""What the fast lane (`cli/lane.py`) reads and writes, with the interpreter's C modules only:
the home and its private files (`sessions.json` with the C JSON scanner, the active session,
a worker's liveness in /proc), and the command's output (`--json` with the C encoder, byte
for byte what `cli.output` prints). Each function names the full path's function it
mirrors; tests hold the pairs equal.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # without importing typing: this module is the hot path
if TYPE_CHECKING:
    from _socket import socket

HEX = frozenset("0123456789abcdef")
STATUSES = frozenset(("starting", "running", "exited", "failed", "lost"))
# records._FIELD_TYPES
FIELD_TYPES = (
    *((key, str) for key in ("name", "command", "startedAt", "lastActiveAt", "endedAt")),
    *((key, str) for key in ("signal", "error", "workerStart")),
    *((key, int) for key in ("pid", "workerPid", "exitCode")),
)
MAX_SOCKET_PATH = 107
MAX_SIGNAL_NAME = 16  # records.MAX_SIGNAL_NAME
INT64 = 1 << 63


def active(home: str) -> str | bool | None:
    """`records.read_active`; False where it raises (a symlink, not ours): the full path."""
    path = os.path.join(home, "active")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return False
    if (st.st_mode & 0o170000) != 0o100000 or st.st_uid != os.getuid():
        return False
    raw = read_private(path)
    if raw is None:
        return False
    value = raw.decode("utf-8", "replace").strip()
    return value if is_id(value) else None


def worker_alive(rec: dict[str, object], boot_id: list[str]) -> bool:
    """`Client.worker_alive` on Linux: the pid's start token (`proc.identity.start_token`)
    is the recorded one."""
    pid, token = rec.get("workerPid"), rec.get("workerStart")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(token, str):
        return False
    raw = read_proc(f"/proc/{pid}/stat")
    if raw is None:
        return False
    fields = raw[raw.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] == "Z" or int(fields[6]) & 0x4:  # a zombie, or exiting
        return False
    if not boot_id:
        boot_id.append((read_proc("/proc/sys/kernel/random/boot_id") or "").strip())
    return f"{boot_id[0]}:{fields[19]}" == token


def stopped(pid: int) -> bool:
    """`spawning.stopped` for the lane (without its import): is `pid` stopped (SIGSTOP, a
    debugger)? Such a worker answers nothing until it is continued."""
    raw = read_proc(f"/proc/{pid}/stat")
    return raw is not None and raw[raw.rfind(")") + 2 :][:1] in ("T", "t")


def read_proc(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 4096).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


# ---------------------------------------------------------------- the session, from the files


def private_dir(path: str) -> bool:
    """Ours, a real directory, closed to others (what `paths.ensure_private_dir` demands)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (
        (st.st_mode & 0o170000) == 0o040000
        and st.st_uid == os.getuid()
        and not (st.st_mode & 0o077)
    )


def home() -> str | None:
    """The home, if it and its sockets directory pass the full path's checks."""
    if os.environ.get("AGENTTY_SOCKET_DIR"):
        return None
    home = os.environ.get("AGENTTY_HOME") or os.path.join(os.path.expanduser("~"), ".agentty")
    home = os.path.abspath(os.path.expanduser(home))
    if not (private_dir(home) and private_dir(os.path.join(home, "sockets"))):
        return None
    sockets = os.path.join(home, "sockets", "01234567.sock")
    return home if len(os.fsencode(sockets)) <= MAX_SOCKET_PATH else None


def target(home: str, ref: str | None, need_record: bool) -> tuple[str, int | None] | None:
    """The session's id and its worker's pid (None: not read), for a running session the
    full path would pick; None for anything else (it reports it)."""
    if ref is None:
        raw = read_private(os.path.join(home, "active"))
        ref = raw.decode("ascii", "replace").strip() if raw else None
        if ref is None or not is_id(ref):
            return None
    if is_id(ref) and not need_record:
        return ref, None  # an id wins over names; a socket that is not there hands over
    recs = records(home)
    if recs is None:
        return None
    rec = find(recs, ref)
    if rec is None or rec.get("status") != "running":
        return None
    pid = rec.get("workerPid")
    sid = rec["id"]
    if not isinstance(sid, str) or not isinstance(pid, int) or isinstance(pid, bool):
        return None
    return sid, pid


def is_id(text: str) -> bool:
    return len(text) == 8 and HEX.issuperset(text)


def read_private(path: str) -> bytes | None:
    """A regular file of ours, not followed through a symlink; None if not (or missing).
    Opened without blocking: a FIFO in its place is not one, and must not hang the open
    (`records.read_private_file`, as the lane reads it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (st.st_mode & 0o170000) != 0o100000 or st.st_uid != os.getuid():
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def records(home: str, stored: set[object] | None = None) -> list[dict[str, object]] | None:
    """The well-formed records of `sessions.json` (`records.records`); None when the file
    is missing, corrupt or being rebuilt: the full path deals with that. `stored` gets the
    id of every record, malformed ones too."""
    raw = read_private(os.path.join(home, "sessions.json"))
    if raw is None:
        return None
    try:
        doc = loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("rebuilding") is True:
        return None
    sessions = doc.get("sessions")
    if not isinstance(sessions, list):
        return None
    found: list[dict[str, object]] = []
    seen: set[object] = set()
    for rec in sessions:  # (`records.usable`: the first well-formed record of each id)
        if not isinstance(rec, dict):
            continue
        sid = rec.get("id")
        if stored is not None and isinstance(sid, str):
            stored.add(sid)
        if sid not in seen and well_formed(rec):
            seen.add(sid)
            found.append(rec)
    return found


def well_formed(raw: dict[str, object]) -> bool:
    """`records.bad_record(raw) is None`, inlined (a test holds the two equal)."""
    sid = raw.get("id")
    status = raw.get("status")
    if not isinstance(sid, str) or not is_id(sid):
        return False
    if not isinstance(status, str) or status not in STATUSES:  # a list is no status either
        return False
    for key, kind in FIELD_TYPES:
        value = raw.get(key)
        if value is not None and not isinstance(value, kind):
            return False
    argv = raw.get("argv")
    if argv is not None and not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
        return False
    pending = list(raw.values())  # records.in_range, at any depth
    while pending:
        value = pending.pop()
        if isinstance(value, float):
            if value - value != 0.0:  # (not finite)
                return False
        elif isinstance(value, int):
            if not -INT64 <= value < INT64:
                return False
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    signal = raw.get("signal")
    return not (isinstance(signal, str) and len(signal) > MAX_SIGNAL_NAME)


def find(recs: list[dict[str, object]], ref: str) -> dict[str, object] | None:
    """`records.find`, inlined; None where it raises (the full path says why)."""
    if not ref or len(ref) > 256 or any(c in ref for c in "/\x00\n"):
        return None
    for rec in recs:
        if rec["id"] == ref:
            return rec
    named = [r for r in recs if r.get("name") == ref]
    if named:
        pool = [r for r in named if r.get("status") in ("starting", "running")] or named
        return max(pool, key=lambda r: str(r.get("startedAt") or ""))
    prefixed = [r for r in recs if str(r["id"]).startswith(ref)]
    return prefixed[0] if len(prefixed) == 1 else None


# ---------------------------------------------------------------- JSON and output, C only


class Decoding:
    """What `_json.make_scanner` reads from a decoder: standard JSON, no NaN, Infinity, or
    a float none holds (`records.strict_json`)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_int = int

    @staticmethod
    def parse_float(text: str) -> float:
        value = float(text)
        if value - value != 0.0:  # (1e999: infinite)
            raise ValueError(text[:20])
        return value

    def parse_constant(self, name: str) -> object:
        raise ValueError(name)


def loads(text: str) -> object:
    """`json.loads` for a whole document, with the C scanner."""
    import _json

    # typeshed wants a JSONDecoder; the C scanner reads only the attributes above.
    scan = _json.make_scanner(Decoding())  # type: ignore[arg-type]
    start = len(text) - len(text.lstrip(" \t\n\r"))
    try:
        value, end = scan(text, start)
    except (StopIteration, SystemError):
        # The scanner reports a malformed document through `json.decoder.JSONDecodeError`,
        # which it looks up only if `json.decoder` is loaded: here it is not, and the error
        # comes out as a SystemError ("returned NULL without setting an exception").
        raise ValueError("not JSON") from None
    if text[end:].strip(" \t\n\r"):
        raise ValueError("extra data")
    return value


def no_default(value: object) -> object:
    raise TypeError(f"not JSON: {type(value).__name__}")


def dumps(value: object, *, ascii_only: bool) -> str:
    """`json.dumps(value, ensure_ascii=ascii_only)`, byte for byte, with the C encoder."""
    import _json

    escape = _json.encode_basestring_ascii if ascii_only else _json.encode_basestring
    # The arguments of JSONEncoder.iterencode's C encoder.
    encode = _json.make_encoder({}, no_default, escape, None, ": ", ", ", False, False, True)
    return "".join(encode(value, 0))


def emit(data: object) -> None:
    """`cli.output.emit`: one JSON document, UTF-8 unless it holds lone surrogates."""
    text = dumps(data, ascii_only=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = dumps(data, ascii_only=True)
    sys.stdout.write(text + "\n")


def killed_line(final: dict[str, object], how: str) -> str:
    """`kill`'s line for a session it ended: how it ended, when that is known."""
    sid = final.get("id")
    if final.get("signal"):
        return f"killed {sid} (signal {final['signal']}){how}"
    if final.get("exitCode") is not None:
        return f"killed {sid} (exit code {final['exitCode']}){how}"
    return f"killed {sid}{how}"


def read_input(path: str) -> bytes:
    """`text --file PATH` / `text -` (PATH "-": stdin) / `paste -`: the bytes to send, read
    up to one over MAX_INPUT. More is refused before any of it is held (`--file /dev/zero`
    and `yes | agentty text -` grew without end)."""
    import stat

    from agentty_core.errors import UsageError
    from agentty_core.input_steps import MAX_INPUT

    size = None  # known for a regular file
    if path == "-" and sys.stdin is None:
        raise UsageError("stdin is closed: no text to read from it")
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_INPUT + 1)
        else:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                size = st.st_size if stat.S_ISREG(st.st_mode) else None
                data = f.read(MAX_INPUT + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {shown(path)}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT:
        where = "stdin" if path == "-" else shown(path)
        held = "more than" if size is None or size <= MAX_INPUT else f"{size} bytes, over"
        raise UsageError(
            f"{where} holds {held} the limit of {MAX_INPUT} bytes (64 MiB); nothing was sent"
        )
    return data


def shown(text: str) -> str:
    """`cli.output.shown`: control characters as escapes."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def clipped(text: str, width: int) -> str:
    """`screen_text.clipped`, inlined (the lane imports no more of agentty)."""
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def error(message: str) -> None:
    sys.stderr.write(f"agentty: error: {shown(message)}\n")


def warning(message: str) -> None:
    """`lazylog`'s warning line, for the lanes."""
    if sys.stderr is None:  # (started with it closed)
        return
    try:  # noqa: SIM105  (contextlib stays off the lane)
        sys.stderr.write(f"agentty: warning: {shown(message)}\n")
    except OSError:  # (a warning is never what fails a command)
        pass


def str_list(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def screen_text(screen: dict[str, object], key: str) -> str:
    """`cli.output.screen_text`."""
    lines = str_list(screen.get(key))
    if key == "lines":
        lines = str_list(screen.get("scrollback")) + lines
    return "".join(line + "\n" for line in trim_lines(lines))


def trim_lines(lines: list[str]) -> list[str]:
    """`screen_text.trim_lines`, inlined: this module imports only the parser of ours (a
    test holds the two equal)."""
    out = [line.rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    return out


# What `read_reply` returns, when asked, for a worker that did not answer within the
# socket's receive timeout (alive, its connection open: stopped, say).
SILENT: dict[str, object] = {"silent": True}


def read_reply(
    sock: socket, *, silent: dict[str, object] | None = None, rest: bytearray | None = None
) -> dict[str, object] | None:
    """The reply line on `sock`; None at end of file or for a malformed one, and `silent`
    (None unless given) when the receive timeout passed first. `rest`: where the bytes
    after the line are kept, and read first next time (replies to pipelined requests may
    come in one read); without it they are dropped."""
    # Chunks are joined once and only the new one is searched: a large screen's reply (tens
    # of MB under per-cell colour) must not cost a copy and a scan of all so far per chunk.
    parts: list[bytes] = []
    if rest:
        parts.append(bytes(rest))
        rest.clear()
    try:
        while not parts or b"\n" not in parts[-1]:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return None
            parts.append(chunk)
    except (BlockingIOError, TimeoutError):  # SO_RCVTIMEO: EAGAIN
        if rest is not None:
            rest.extend(b"".join(parts))
        return silent
    except OSError:
        return None
    line, _, after = b"".join(parts).partition(b"\n")
    if rest is not None:
        rest.extend(after)
    try:
        value = loads(line.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None

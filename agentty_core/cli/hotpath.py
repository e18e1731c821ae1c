"""The `agentty` command's entry point, and a fast lane for its hottest calls.

Agents call `agentty get`, `agentty text WORDS` and `agentty key NAMES` hundreds of times per
task. The full command imports json, re, pathlib and socket before it sends a byte: ~15 ms on
a small VM, as much again as the interpreter's own start. The fast lane does those plain
forms, on the active session or one given by its full id, with the interpreter's C modules
only (`_socket`, `_json`).

It makes the full path's privacy checks (a private home and socket directory of ours, a
regular active file of ours, a peer of our uid; not the pid in the record, which would mean
reading the records: only our uid can bind in that directory) and hands everything else to
the full path untouched: any option, a session named on the command line, a missing socket,
an error answer that means nothing happened. When a request was sent and its answer is
lost, it reports that instead of sending it twice.

For `start` and `run` it starts the session's worker process before anything else (see
worker_spawn), so the worker's imports overlap the full path's.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # without importing typing: this module is the hot path
if TYPE_CHECKING:
    from _socket import socket
    from collections.abc import Sequence

    from agentty_core.cli.fast import Namespace

HEX = frozenset("0123456789abcdef")
EXIT_TIMEOUT = 3  # errors.EXIT_TIMEOUT
STATUSES = frozenset(("starting", "running", "exited", "failed", "lost"))
# records._FIELD_TYPES
FIELD_TYPES = (
    *((key, str) for key in ("name", "command", "startedAt", "lastActiveAt", "endedAt")),
    *((key, str) for key in ("signal", "error", "workerStart")),
    *((key, int) for key in ("pid", "workerPid", "exitCode")),
)
# `wait`'s wire names and the parser's attributes (`waitspec.WaitConditions`)
WAIT_CONDITIONS = (
    ("text", "text"),
    ("regex", "regex"),
    ("gone", "gone"),
    ("stable_ms", "stable"),
    ("changed_since", "changed_since"),
    ("input", "input"),
    ("exit", "exit"),
    ("scrollback", "scrollback"),
)
REPEATABLE = frozenset({"get", "wait"})  # change nothing: the full path may ask again
TIMEOUT = 5  # seconds, as the full path's default
MAX_SOCKET_PATH = 107
# Errors after which nothing was written: the full path may safely run the command again
# (and reports the error in its own words).
NOTHING_HAPPENED = frozenset(
    {"bad_request", "invalid_key", "exited", "input_full", "unknown_method", "busy", "too_large"}
)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if words[:1] in (["start"], ["run"]) and "-h" not in words and "--help" not in words:
        return _with_worker_started_early(words)
    if sys.platform == "linux":
        try:
            code = fast_lane(words)
        except BrokenPipeError:
            return 1
        except KeyboardInterrupt:
            return 130
        if code is not None:
            return code
    from agentty_core.cli.main import main as full

    return full(words)


def _with_worker_started_early(words: list[str]) -> int:
    """`start`/`run`: a session's worker imports for ~0.1 s before it can run anything;
    started now, that overlaps this command's own imports and state write. A worker the
    command did not hand a session to (it failed first) is killed before the command exits:
    a refused `start` leaves no process behind, not even for a moment."""
    from agentty_core.cli.main import main as full
    from agentty_core.launch import spawn as worker_spawn

    try:  # noqa: SIM105  (contextlib stays off the hot path)
        worker_spawn.spawn_early()
    except OSError:
        pass  # `start` spawns it again and reports what went wrong
    try:
        return full(words)
    finally:
        worker_spawn.discard_early()


def fast_lane(words: list[str]) -> int | None:
    """The command's exit code, or None: the full path must handle it."""
    from agentty_core.cli.fast import parse

    args = parse(words)
    if args is None:
        return None
    if args.command == "status":
        return _status(args)
    request = _request(args)
    if request is None:
        return None
    command = args.command
    home = _home()
    if home is None:
        return None
    target = _target(home, getattr(args, "session", None), command == "kill")
    if target is None:
        return None
    sid, expect_pid = target
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            sock.connect(os.path.join(home, "sockets", sid + ".sock"))
            cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        except OSError:
            return None  # no worker there: the full path tells why
        peer_pid = int.from_bytes(cred[0:4], sys.byteorder)
        if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
            return None  # the full path refuses it, with its message
        if expect_pid is not None and peer_pid != expect_pid:
            return None  # not the recorded worker: the full path diagnoses it
        _deadline(sock, _socket.SO_SNDTIMEO, TIMEOUT)
        _deadline(sock, _socket.SO_RCVTIMEO, _answer_within(args))
        try:
            sock.sendall(request)
        except OSError:
            return None  # not sent (a send either fails whole here or is a short line)
        reply = _read_reply(sock)
        if reply is not None and reply.get("v") != 1:
            return None  # another protocol version: the full path says so
        if reply is None or not isinstance(reply.get("ok"), bool):
            if command in REPEATABLE or command == "kill":
                return None  # nothing changed, or kill's fallbacks (orphans by marker)
            _error(f"the worker did not answer the {command} request")
            return 1
        if reply["ok"] is not True:
            return _refused(args, sid, sock, reply)
        result = reply.get("result")
        return _answered(args, sid, result if isinstance(result, dict) else {})
    finally:
        sock.close()


def _answer_within(args: Namespace) -> float:
    """How long the full path waits for the answer (`Client.wait`, `Client.kill`)."""
    if args.command == "wait":
        return float(args.timeout) + 5.0
    if args.command == "kill":
        return float(args.timeout) * 3 + 10
    return TIMEOUT


def _deadline(sock: socket, option: int, seconds: float) -> None:
    micros = max(1, int(seconds * 1_000_000))
    timeval = (micros // 1_000_000).to_bytes(8, sys.byteorder)
    sock.setsockopt(1, option, timeval + (micros % 1_000_000).to_bytes(8, sys.byteorder))


def _request(args: Namespace) -> bytes | None:
    """The request line for a form the lane serves; None for anything else."""
    command = args.command
    params: dict[str, object]
    if command == "get":
        if args.raw or args.bytes is not None:
            return None  # base64 output: the full path
        params = {}
        if args.lines is not None:
            params["lines"] = args.lines
        if args.scrollback:
            params["scrollback"] = True
        if args.ansi:
            params["ansi"] = True
    elif command in ("text", "paste"):
        payload = args.payload
        if command == "text" and (args.file is not None or payload == ["-"]):
            return None  # a file or stdin: the full path reads it
        if command == "paste" and payload == "-":
            return None
        data = payload if isinstance(payload, str) else " ".join(payload)
        enter = command == "text" and bool(args.enter)
        params = {"enter": enter, "paste": command == "paste", "data": data}
    elif command == "key":
        params = {"keys": list(args.keys)}
    elif command == "wait":
        params = {}
        for name, attr in WAIT_CONDITIONS:
            value = getattr(args, attr)
            if value is not None and value is not False:
                params[name] = value
        if not params.keys() - {"scrollback"} or params.get("stable_ms") == 0:
            return None  # refused by `WaitConditions`: the full path says why
        params["timeout"] = args.timeout
    elif command == "kill":
        params = {"grace": args.timeout}
    else:
        return None
    try:
        method = "text" if command == "paste" else command  # a paste is a text request
        text = _dumps({"v": 1, "method": method, "params": params}, ascii_only=True)
    except (TypeError, ValueError):
        return None
    return (text + "\n").encode("ascii")


def _refused(args: Namespace, sid: str, sock: socket, reply: dict[str, object]) -> int | None:
    """An error answer: what the full path prints, or None where it does more (a final
    screen, a message of its own) and running it again changes nothing."""
    error = reply.get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    command = args.command
    if command == "kill" and code == "exited":
        return _killed(args, sid, {})
    if command == "wait" and code == "timeout":
        return _timed_out(args, sid, sock, str(error.get("message", "worker error")))
    if command in REPEATABLE or code in NOTHING_HAPPENED:
        return None
    _error(str(error.get("message", "worker error")))
    exit_code = error.get("exit_code")
    return exit_code if isinstance(exit_code, int) and exit_code > 0 else 1


def _answered(args: Namespace, sid: str, result: dict[str, object]) -> int | None:
    command = args.command
    if command == "kill":
        return _killed(args, sid, result)
    if args.json:
        _emit(result)
    elif command == "get":
        sys.stdout.write(_screen_text(result, "ansi" if args.ansi else "lines"))
    elif command == "wait":
        fired, sig = result.get("fired"), result.get("signal")
        tail = ""
        if fired == "exit":
            tail = (
                f"[exited: signal {sig}]\n" if sig else f"[exited: code {result.get('exitCode')}]\n"
            )
        sys.stdout.write(_screen_text(result, "lines") + tail)
    return 0


def _timed_out(args: Namespace, sid: str, sock: socket, message: str) -> int:
    """`wait` ran out of time: the message, then the screen as it is now (`WaitTimeout`)."""
    screen: dict[str, object] | None = None
    try:
        sock.sendall(b'{"v": 1, "method": "get", "params": {}}\n')
        reply = _read_reply(sock)
    except OSError:
        reply = None
    if reply is not None and reply.get("v") == 1 and reply.get("ok") is True:
        result = reply.get("result")
        screen = result if isinstance(result, dict) else {}
    if screen is None:  # ended just now, say: the full path's `get` reads its final screen
        from agentty_core.client import Client
        from agentty_core.errors import AgenttyError

        try:
            screen = Client().get(sid)
        except AgenttyError as exc:
            _error(str(exc))
            return exc.exit_code
    _error(message)
    if args.json:
        _emit({"fired": None, "timeout": True, **screen})
    else:
        sys.stdout.write(_screen_text(screen, "lines"))
    return EXIT_TIMEOUT


def _killed(args: Namespace, sid: str, result: dict[str, object]) -> int:
    """The worker confirmed the end: the record's final fields, as `Client.kill` reports."""
    home = _home()
    recs = _records(home) if home is not None else None
    rec = next((r for r in recs if r["id"] == sid), None) if recs is not None else None
    if rec is None:  # unreadable just now: the full path's reader (it recovers or says why)
        from agentty_core.client import Client
        from agentty_core.errors import AgenttyError

        try:
            ended = Client()._ended_fields(sid)
        except AgenttyError as exc:
            _error(str(exc))
            return exc.exit_code
    else:
        ended = {k: rec.get(k) for k in ("status", "exitCode", "signal")}
    final = {"id": sid, **result, **ended}
    if args.json:
        _emit(final)
        return 0
    steps = final.get("escalated") or []
    how = f" after {', '.join(_str_list(steps))}" if steps else ""
    if final.get("status") == "lost":
        pids = _str_list(final.get("orphansKilled"))
        sys.stdout.write(
            f"killed {sid}: its worker was gone; ended {len(pids)} orphan process(es){how}\n"
        )
    if final.get("signal"):
        sys.stdout.write(f"killed {sid} (signal {final['signal']}){how}\n")
    else:
        sys.stdout.write(f"killed {sid} (exit code {final.get('exitCode')}){how}\n")
    return 0


def _status(args: Namespace) -> int | None:
    """`status` and `status -q` as `cli.main.cmd_status` prints them, when every record's
    liveness is what the file says (a running session's worker alive, by pid and start
    token as `proc.identity` checks it; nothing lost): otherwise the full path, which
    marks dead workers lost and looks for their orphans. `--json` (with each worker's live
    fields) goes the full way."""
    home = _home()
    if args.json or home is None or ".." in home.split(os.sep):
        return None
    recs = _records(home)
    active = _active(home)
    if recs is None or active is False:
        return None
    boot_id: list[str] = []
    for rec in recs:
        status = rec.get("status")
        if status == "lost":
            return None  # orphans are looked for: the full path
        watched = status == "running" or (status == "starting" and rec.get("workerPid") is not None)
        if watched and not _worker_alive(rec, boot_id):
            return None  # the full path writes it down as lost
    write = sys.stdout.write
    if args.quiet:
        for rec in recs:
            if rec.get("status") == "running":
                write(_shown(str(rec["id"])) + "\n")
                if rec.get("name"):
                    write(_shown(str(rec["name"])) + "\n")
        return 0
    write(f"home: {_shown(home)}\n")
    write(f"active: {_shown(str(active or '-'))}\n")
    if not recs:
        write("no sessions\n")
        return 0
    write(f"{'ID':8}  {'NAME':12}  {'STATUS':9}  {'EXIT':6}  COMMAND\n")
    for rec in recs:
        mark = "*" if rec.get("id") == active else " "
        code = rec.get("signal") or rec.get("exitCode")
        command = _shown(" ".join(str(rec.get("command", "")).split()))
        name, state = _shown(str(rec.get("name") or "-")), _shown(str(rec.get("status", "?")))
        write(
            f"{_shown(str(rec['id'])):8}{mark} {name[:12]:12}  "
            f"{state:9}  {'-' if code is None else _shown(str(code)):6}  {command[:60]}\n"
        )
    return 0


def _active(home: str) -> str | bool | None:
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
    raw = _read_private(path)
    if raw is None:
        return False
    value = raw.decode("utf-8", "replace").strip()
    return value if _is_id(value) else None


def _worker_alive(rec: dict[str, object], boot_id: list[str]) -> bool:
    """`Client.worker_alive` on Linux: the pid's start token (`proc.identity.start_token`)
    is the recorded one."""
    pid, token = rec.get("workerPid"), rec.get("workerStart")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(token, str):
        return False
    raw = _read_proc(f"/proc/{pid}/stat")
    if raw is None:
        return False
    fields = raw[raw.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] == "Z":
        return False
    if not boot_id:
        boot_id.append((_read_proc("/proc/sys/kernel/random/boot_id") or "").strip())
    return f"{boot_id[0]}:{fields[19]}" == token


def _read_proc(path: str) -> str | None:
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


def _private_dir(path: str) -> bool:
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


def _home() -> str | None:
    """The home, if it and its sockets directory pass the full path's checks."""
    if os.environ.get("AGENTTY_SOCKET_DIR"):
        return None
    home = os.environ.get("AGENTTY_HOME") or os.path.join(os.path.expanduser("~"), ".agentty")
    home = os.path.abspath(os.path.expanduser(home))
    if not (_private_dir(home) and _private_dir(os.path.join(home, "sockets"))):
        return None
    sockets = os.path.join(home, "sockets", "01234567.sock")
    return home if len(os.fsencode(sockets)) <= MAX_SOCKET_PATH else None


def _target(home: str, ref: str | None, need_record: bool) -> tuple[str, int | None] | None:
    """The session's id and its worker's pid (None: not read), for a running session the
    full path would pick; None for anything else (it reports it)."""
    if ref is None:
        raw = _read_private(os.path.join(home, "active"))
        ref = raw.decode("ascii", "replace").strip() if raw else None
        if ref is None or not _is_id(ref):
            return None
    if _is_id(ref) and not need_record:
        return ref, None  # an id wins over names; a socket that is not there hands over
    recs = _records(home)
    if recs is None:
        return None
    rec = _find(recs, ref)
    if rec is None or rec.get("status") != "running":
        return None
    pid = rec.get("workerPid")
    sid = rec["id"]
    if not isinstance(sid, str) or not isinstance(pid, int) or isinstance(pid, bool):
        return None
    return sid, pid


def _is_id(text: str) -> bool:
    return len(text) == 8 and HEX.issuperset(text)


def _read_private(path: str) -> bytes | None:
    """A regular file of ours, not followed through a symlink; None if not (or missing)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
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


def _records(home: str) -> list[dict[str, object]] | None:
    """The well-formed records of `sessions.json` (`records.records`); None when the file
    is missing, corrupt or being rebuilt: the full path deals with that."""
    raw = _read_private(os.path.join(home, "sessions.json"))
    if raw is None:
        return None
    try:
        doc = _loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("rebuilding") is True:
        return None
    sessions = doc.get("sessions")
    if not isinstance(sessions, list):
        return None
    if not all(isinstance(r, dict) for r in sessions):
        return None
    ids = [r["id"] for r in sessions if isinstance(r.get("id"), str)]
    if len(set(ids)) != len(ids):
        return None
    return [r for r in sessions if _well_formed(r)]


def _well_formed(raw: dict[str, object]) -> bool:
    """`records.bad_record(raw) is None`, inlined (a test holds the two equal)."""
    sid = raw.get("id")
    if not isinstance(sid, str) or not _is_id(sid) or raw.get("status") not in STATUSES:
        return False
    for key, kind in FIELD_TYPES:
        value = raw.get(key)
        if value is not None and not isinstance(value, kind):
            return False
    argv = raw.get("argv")
    return argv is None or (isinstance(argv, list) and all(isinstance(a, str) for a in argv))


def _find(recs: list[dict[str, object]], ref: str) -> dict[str, object] | None:
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


class _Decoding:
    """What `_json.make_scanner` reads from a decoder: standard JSON, no NaN."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    def parse_constant(self, name: str) -> object:
        raise ValueError(name)


def _loads(text: str) -> object:
    """`json.loads` for a whole document, with the C scanner."""
    import _json

    # typeshed wants a JSONDecoder; the C scanner reads only the attributes above.
    scan = _json.make_scanner(_Decoding())  # type: ignore[arg-type]
    start = len(text) - len(text.lstrip(" \t\n\r"))
    try:
        value, end = scan(text, start)
    except StopIteration:
        raise ValueError("not JSON") from None
    if text[end:].strip(" \t\n\r"):
        raise ValueError("extra data")
    return value


def _no_default(value: object) -> object:
    raise TypeError(f"not JSON: {type(value).__name__}")


def _dumps(value: object, *, ascii_only: bool) -> str:
    """`json.dumps(value, ensure_ascii=ascii_only)`, byte for byte, with the C encoder."""
    import _json

    escape = _json.encode_basestring_ascii if ascii_only else _json.encode_basestring
    # The arguments of JSONEncoder.iterencode's C encoder.
    encode = _json.make_encoder({}, _no_default, escape, None, ": ", ", ", False, False, True)
    return "".join(encode(value, 0))


def _emit(data: object) -> None:
    """`cli.output.emit`: one JSON document, UTF-8 unless it holds lone surrogates."""
    text = _dumps(data, ascii_only=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _dumps(data, ascii_only=True)
    sys.stdout.write(text + "\n")


def _shown(text: str) -> str:
    """`cli.output.shown`: control characters as escapes."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _error(message: str) -> None:
    sys.stderr.write(f"agentty: error: {_shown(message)}\n")


def _str_list(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _screen_text(screen: dict[str, object], key: str) -> str:
    """`cli.output.screen_text`."""
    lines = _str_list(screen.get(key))
    if key == "lines":
        lines = _str_list(screen.get("scrollback")) + lines
    return "".join(line + "\n" for line in trim_lines(lines))


def trim_lines(lines: list[str]) -> list[str]:
    """`screen_text.trim_lines`, inlined: this module imports only the parser of ours (a
    test holds the two equal)."""
    out = [line.rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    return out


def _read_reply(sock: socket) -> dict[str, object] | None:
    buf = b""
    try:
        while b"\n" not in buf:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return None
            buf += chunk
    except OSError:
        return None
    try:
        value = _loads(buf.split(b"\n", 1)[0].decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None

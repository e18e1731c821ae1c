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

HEX = frozenset("0123456789abcdef")
TIMEOUT = 5  # seconds, as the full path's default
MAX_SOCKET_PATH = 107
# Errors after which nothing was written: the full path may safely run the command again
# (and reports the error in its own words).
NOTHING_HAPPENED = frozenset(
    {"bad_request", "invalid_key", "exited", "input_full", "unknown_method", "busy", "too_large"}
)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if (
        os.environ.get("AGENTTY_HOST")
        or (words and "--host" in words[0])
        or words[:1] == ["doctor"]
    ):
        from agentty_core.cli import remote  # --host / AGENTTY_HOST: the command runs there

        if remote.wants_host(words):
            return remote.main(words)
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
    session_id, words = _session_option(words)
    request = _request(words)
    if request is None:
        return None
    sock_path = _socket_of(session_id)
    if sock_path is None:
        return None
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            sock.connect(sock_path)
            cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        except OSError:
            return None  # no worker there: the full path tells why
        if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
            return None  # the full path refuses it, with its message
        timeout = TIMEOUT.to_bytes(8, sys.byteorder) + bytes(8)  # struct timeval
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVTIMEO, timeout)
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDTIMEO, timeout)
        try:
            sock.sendall(request)
        except OSError:
            return None  # not sent (a send either fails whole here or is a short line)
        reply = _read_reply(sock)
    finally:
        sock.close()
    command = words[0]
    if reply is not None and reply.get("v") != 1:
        return None  # another protocol version: the full path says so (a worker refused it)
    if reply is None or not isinstance(reply.get("ok"), bool):
        if command == "get":
            return None
        sys.stderr.write(f"agentty: error: the worker did not answer the {command} request\n")
        return 1
    if reply["ok"] is not True:
        error = reply.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        if command == "get" or code in NOTHING_HAPPENED:
            return None
        message = error.get("message") if isinstance(error, dict) else None
        sys.stderr.write(f"agentty: error: {message or 'the worker refused the request'}\n")
        exit_code = error.get("exit_code") if isinstance(error, dict) else None
        return exit_code if isinstance(exit_code, int) and exit_code > 0 else 1
    if command == "get":
        result = reply.get("result")
        lines = result.get("lines") if isinstance(result, dict) else None
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            return None
        sys.stdout.write("".join(line + "\n" for line in trim_lines(lines)))
    return 0


def _session_option(words: list[str]) -> tuple[str | None, list[str]]:
    """`-s ID`, `--session ID` or `--session=ID` right after the command word, taken out."""
    if len(words) >= 3 and words[1] in ("-s", "--session"):
        return words[2], [words[0], *words[3:]]
    if len(words) >= 2 and words[1].startswith("--session="):
        return words[1].partition("=")[2], [words[0], *words[2:]]
    return None, words


def _request(words: list[str]) -> bytes | None:
    """The request line for a plain `get`, `text WORDS` or `key NAMES`; None otherwise."""
    if not words or any(word.startswith("-") for word in words):
        return None  # options (and `-` for stdin) belong to the full parser
    import _json

    command, rest = words[0], words[1:]
    if command == "get" and not rest:
        params = "{}"
    elif command == "text" and rest:
        data = _json.encode_basestring_ascii(" ".join(rest))
        params = '{"data": ' + data + ', "enter": false, "paste": false}'
    elif command == "key" and rest:
        names = ", ".join(_json.encode_basestring_ascii(name) for name in rest)
        params = '{"keys": [' + names + "]}"
    else:
        return None
    line = '{"v": 1, "method": "' + command + '", "params": ' + params + "}\n"
    return line.encode("ascii")


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


def _socket_of(session_id: str | None) -> str | None:
    """The socket of a session given by its full id (else the active one's), if the home and
    its files pass the usual checks; a name or an id prefix needs the records: None."""
    if os.environ.get("AGENTTY_SOCKET_DIR"):
        return None
    home = os.environ.get("AGENTTY_HOME") or os.path.join(os.path.expanduser("~"), ".agentty")
    home = os.path.abspath(os.path.expanduser(home))
    sockets = os.path.join(home, "sockets")
    if not (_private_dir(home) and _private_dir(sockets)):
        return None
    if session_id is None:
        session_id = _active_id(home)
    if session_id is None or len(session_id) != 8 or not HEX.issuperset(session_id):
        return None
    path = os.path.join(sockets, session_id + ".sock")
    return path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else None


def _active_id(home: str) -> str | None:
    try:
        fd = os.open(os.path.join(home, "active"), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (st.st_mode & 0o170000) != 0o100000 or st.st_uid != os.getuid():
            return None
        return os.read(fd, 64).decode("ascii", "replace").strip()
    finally:
        os.close(fd)


class _Decoding:
    """What `_json.make_scanner` reads from a decoder: standard JSON, no NaN."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    def parse_constant(self, name: str) -> object:
        raise ValueError(name)


def trim_lines(lines: list[str]) -> list[str]:
    """`screen_text.trim_lines`, inlined: this module imports no other agentty module (a
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
    import _json

    try:
        # typeshed wants a JSONDecoder; the C scanner reads only the attributes above.
        scan = _json.make_scanner(_Decoding())  # type: ignore[arg-type]
        value, _ = scan(buf.split(b"\n", 1)[0].decode("utf-8"), 0)
    except (ValueError, StopIteration, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None

"""The worker's wire protocol, in one place: every method and field that exists.

Transport: one Unix stream socket per session (`sockets/<id>.sock`, mode 0600, in a 0700
directory; the worker checks the peer's uid with SO_PEERCRED before reading a byte, and the
client checks that the peer is the record's worker pid).

Framing: newline-delimited JSON, UTF-8. The client writes one request line, the worker
answers with one response line; a connection may carry any number of request/response
pairs in order. A line longer than `MAX_LINE` bytes, non-JSON, NaN/Infinity, nesting too
deep or an unknown method gets an error response and the connection stays usable (an
oversized line closes it, since the rest of it cannot be framed).

    request:  {"v": 1, "method": "get", "params": {...}, "until"?: seconds,
               "within"?: seconds}
    response: {"v": 1, "ok": true, "result": {...}}
              {"v": 1, "ok": false, "error": {"code": "...", "message": "...",
                                              "exit_code"?: int, ...extra}}

Late requests: `until` (CLOCK_MONOTONIC, the same clock in every process of the machine) is
when the caller stops waiting; across machines a caller sends `within` (seconds) instead,
which the relay there (`agentty relay`) makes `until` as it passes the line on. A request
that acts (`ACTING`) is done and answered a moment before it (0.1 s: an Enter that waits
for the program to read the text comes early then) or refused with `late` and not done: a
caller whose wait ran out (a stopped worker) said it failed, and one that tries again must
not find it done twice once the worker runs again. Nor is one done whose caller closed its
connection before it was read (interrupted: it said nothing was done, or nothing at all).
(A worker stopped in the middle of one, its text typed and its Enter not yet, still
finishes it late.)

Versions: `v` is `PROTOCOL_VERSION`, in every request and response. A worker refuses a
request of another version (`version_mismatch`, naming both); a client reads no further
than `v` in a response of another version (`errors.ProtocolMismatch`, naming both). So a
session started before agentty was upgraded says so instead of misbehaving.

Methods (params -> result; `?` marks what may be left out):
    ping      {}                            -> {"pong": true, "pid": worker pid, "seq"}
    info      {}                            -> {"record": the session record as the worker
                                                knows it (`state.records.SessionRecord`),
                                                with live "lastActiveAt", "input", "seq";
                                                "status": "exited" and the exit fields
                                                once its program ended, recorded or not}
    get       {scrollback?, ansi?: bool, raw?: bool, bytes?: 0..RAW_BUFFER (raw's length),
               lines?: int (the last N lines of scrollback + screen, trailing blank
               lines dropped first)}        -> screen
    text      {data: str | data_b64: base64 (bytes that are not UTF-8), enter?: bool
               (Enter with the text to a canonical-mode reader, else once the program
               has read the text, 0.25 s at most), paste?: bool (bracketed when the program
               asked for it)}               -> {"seq": seq before the write, "bytes"}
    key       {keys: [name, ...]}           -> {"seq": seq before the write, "bytes"}
    resize    {cols, rows: 2..1000}         -> {"cols", "rows", "seq"}
    signal    {name: "INT" | "SIGINT" ..., leader?: bool (only the program, not its
               foreground group)}           -> {"signal", "pgid"?, "pids"}
    wait      {text?, regex?, gone?: str, stable_ms?, changed_since?: int, input?, exit?,
               scrollback?: bool, after?: int (a seq), timeout: seconds}
                                            -> screen + {"fired": the condition,
                                                "elapsed_ms", "match"?: {"row", "col"}}
              Any condition that holds fires. `after` (optional, added after v1 shipped:
              an older worker ignores it) is an AND on all of them: each counts only on a
              screen whose seq is greater, except `exit`. `forget?: bool` (with `exit`
              alone; added after v1: an older worker ignores it) asks for the session to be
              removed instead of its exit recorded, when the program ends while the wait
              is pending: the answer then says `"forgotten": true` (what `run` does next
              with `forget` in one locked write, not two).
    kill      {grace?: 0..60 seconds}       -> {"escalated": [steps], "exitCode", "signal",
                                                "status"?: "exited" once the record says so
                                                (added after v1: an older worker leaves it
                                                out, and the caller reads the record)}
    record    {on: bool, input?, markers?: bool} -> {"recording": bool, "path", and while
                                                it records "input", "markers": bool (added
                                                after v1); "error" when it could not}
    forget    {}                            -> {}: the ended session removed for good (its
                                               record, the active pointer to it, its log,
                                               final screen and recording), what `run`
                                               asks once it has the final screen. Refused
                                               (`running`) until the end is settled.
    subscribe {interval?: 0..10 seconds}    -> no response: from then on the connection
                                               carries {"event": "screen", "seq", "size",
                                               "cursor", "title", "rows": {row: [runs]}}
                                               lines (no `v`), until either side closes;
                                               ~30 a second at most, or one each
                                               `interval` with every row changed since
                                               the last (added after v1: an older worker
                                               ignores it); a bad one: an error line
    hold      {}                            -> {}, then nothing more is read: the
                                               connection holds the session's life; when
                                               it closes before the program ended (its
                                               client gone, killed even), the session is
                                               ended as by `kill` (what `run` holds; added
                                               after v1)

A screen: {"id", "lines": [str], "cursor": {"row", "col", "visible"}, "size": {"cols",
"rows"}, "seq", "title", "altScreen", "modes": {name: bool}, "exited", "exitCode",
"signal", "input"?: {"state", "echo", "canonical", "foreground"}, "scrollback"?: [str],
"ansi"?: [str], "raw"?: str, "rawBase64"?: str}.

Error codes: bad_request, too_large, unknown_method, version_mismatch, invalid_key,
busy (no free connection slot), exited (the program ended), input_full, timeout (a wait;
its error carries "screen"), kill_unconfirmed (carries "survivors"), running (`forget`
before the end), state (`forget` could not write the state), late (an acting request read
after its `until`: not done), internal.

Stdlib only: the client half of this module is on the CLI's hot path.
"""

from __future__ import annotations

import json
import math

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

PROTOCOL_VERSION = 1
MAX_LINE = 1 << 20  # 1 MiB per request line
# An answer line: a screen with its scrollback can be several MB as JSON; a sanity bound.
MAX_ANSWER_LINE = 64 << 20
MAX_DEPTH = 32
# Attribute bits of a screen run's flags ([text, fg, bg, flags] in `get` and `subscribe`
# events): the emulators set them, the dashboard draws them.
BOLD, ITALICS, UNDERSCORE, REVERSE, STRIKETHROUGH, BLINK = 1, 2, 4, 8, 16, 32

JSONObject = dict[str, object]


class BadRequest(ValueError):
    """A request line that cannot be served; the message goes back to the client."""

    def __init__(self, message: str, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


def _reject_constant(name: str) -> float:
    raise BadRequest(f"non-finite number {name} is not allowed")


def _depth(value: object, limit: int = MAX_DEPTH) -> int:
    stack: list[tuple[object, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


# Built once: json.loads and json.dumps with options build a new decoder or encoder per call,
# a measurable share of a request that takes 0.1 ms in all.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def decode_line(line: bytes) -> JSONObject:
    """Parse one framed line into a JSON object, or raise BadRequest."""
    if len(line) > MAX_LINE:
        raise BadRequest(f"line too long ({len(line)} > {MAX_LINE} bytes)", "too_large")
    try:
        text = line.decode("utf-8")
        value = _DECODER.decode(text)
    except BadRequest:
        raise
    except RecursionError:
        raise BadRequest("JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("a message must be a JSON object")
    version = value.get("v", PROTOCOL_VERSION)
    if not same_version(version):
        raise BadRequest(
            f"this worker speaks protocol version {PROTOCOL_VERSION}, the request version "
            f"{version!r}: use the agentty that started the session, or kill it and start "
            "it again",
            "version_mismatch",
        )
    # Nesting needs a bracket per level: most lines can't be deep, and skip the walk.
    deep = line.count(b"[") + line.count(b"{") > MAX_DEPTH
    if deep and _depth(value) > MAX_DEPTH:
        raise BadRequest("JSON nested too deeply")
    return value


def same_version(v: object) -> bool:
    """Whether a message's `v` is ours (`true` and `1.0` are not 1 here)."""
    return type(v) is int and v == PROTOCOL_VERSION


def encode(message: JSONObject) -> bytes:
    """One framed line. `allow_nan=False`: the protocol never carries NaN."""
    return _ENCODER.encode(message).encode() + b"\n"


# Refused when late (`until`): each changes the session (`record` too: a recording started
# or stopped after its caller was told it failed).
ACTING = frozenset({"text", "key", "signal", "resize", "record"})


def request(
    method: str,
    params: JSONObject | None = None,
    until: float | None = None,
    within: float | None = None,
) -> bytes:
    message: JSONObject = {"v": PROTOCOL_VERSION, "method": method, "params": params or {}}
    if until is not None:
        message["until"] = until
    if within is not None:  # for a relay on another machine (another clock) to make `until`
        message["within"] = within
    return encode(message)


# What a caller on another machine leaves of its wait for the network (`within`): the far
# relay stamps `until` when the line arrives, and the answer has to come back before the
# caller stops waiting. A round trip longer than this (and the worker's own margin) can
# still see a request done after its caller gave up; no clock is shared to do better.
TRANSIT_ALLOWANCE = 0.25


def relayed_within(timeout: float) -> float:
    """The `within` a caller waiting `timeout` seconds sends across machines."""
    return timeout - min(TRANSIT_ALLOWANCE, timeout / 4)


def stamped(line: bytes) -> bytes:
    """A relayed request line with its `within` (seconds, from the caller on another machine)
    made `until` on this machine's clock: the same late requests are refused here. Any
    line it cannot make so (not JSON, `within` not a finite number, a number out of range,
    too long once written again) goes on as it came: the worker says what is wrong with it,
    if anything."""
    if b'"within"' not in line or len(line) > MAX_LINE:
        return line
    try:
        message = decode_line(line)
        within = message.get("within")
        if isinstance(within, bool) or not isinstance(within, (int, float)):
            return line
        seconds = float(within)
    except (ValueError, OverflowError):  # (BadRequest is a ValueError)
        return line
    if not math.isfinite(seconds):
        return line
    import time

    del message["within"]
    message["until"] = time.monotonic() + seconds
    try:  # not ASCII-escaped: the line stays as long as it came ...
        text = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        out = text.encode() + b"\n"
    except UnicodeEncodeError:  # ... unless it holds a lone surrogate, legal as an escape
        out = json.dumps(message, allow_nan=False, separators=(",", ":")).encode() + b"\n"
    except ValueError:  # a number out of range elsewhere (1e400): the worker's to refuse
        return line
    return out if len(out) <= MAX_LINE else line


def ok(result: JSONObject) -> bytes:
    return encode({"v": PROTOCOL_VERSION, "ok": True, "result": result})


def error(code: str, message: str, **extra: object) -> bytes:
    body: JSONObject = {"code": code, "message": message, **extra}
    return encode({"v": PROTOCOL_VERSION, "ok": False, "error": body})


# The signals `signal` sends (by name, without SIG), and the terminal sizes `resize` takes:
# the worker's rules, which the Client checks first (a bad one is a usage error, whether or
# not the session still runs).
SIGNAL_NAMES = ("INT", "TERM", "HUP", "QUIT", "USR1", "USR2", "WINCH", "CONT", "STOP", "KILL")
SIZE_RANGE = (2, 1000)


MAX_GRACE = 60.0  # seconds a kill gives each step at most


def signal_problem(name: object) -> str | None:
    if isinstance(name, str) and name.upper().removeprefix("SIG") in SIGNAL_NAMES:
        return None
    return f"unknown signal {name!r}; use one of {' '.join(SIGNAL_NAMES)}"


def size_problem(cols: object, rows: object) -> str | None:
    low, high = SIZE_RANGE
    for key, value in (("cols", cols), ("rows", rows)):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            return f"{key} must be an integer in {low}..{high}"
    return None


def wait_params(conditions: Mapping[str, object], timeout: float) -> JSONObject:
    """The `wait` request's params: every condition that is set, and the timeout.

    Unset is None, or False for a flag; 0 and other falsy values are values (a fresh
    session's seq is 0). `waitspec.WaitConditions` checks conditions before they get here."""
    params: JSONObject = {k: v for k, v in conditions.items() if is_set(v)}
    params["timeout"] = timeout
    return params


def is_set(value: object) -> bool:
    """Whether a wait condition is set (see `wait_params`)."""
    return value is not None and value is not False


def finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def str_list(value: object) -> list[str]:
    """A JSON list of strings (anything else becomes its str; a non-list is empty)."""
    return [str(item) for item in value] if isinstance(value, list) else []

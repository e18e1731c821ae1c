"""The worker's wire protocol, in one place.

Transport: one Unix stream socket per session (`sockets/<id>.sock`, mode 0600, in a 0700
directory; the worker checks the peer's uid with SO_PEERCRED before reading a byte).

Framing: newline-delimited JSON, UTF-8. The client writes one request line, the worker
answers with one response line; a connection may carry any number of request/response
pairs in order. A line longer than `MAX_LINE` bytes, non-JSON, NaN/Infinity, nesting too
deep or an unknown method gets an error response and the connection stays usable (an
oversized line closes it, since the rest of it cannot be framed).

    request:  {"v": 1, "method": "get", "params": {...}}
    response: {"v": 1, "ok": true, "result": {...}}
              {"v": 1, "ok": false, "error": {"code": "bad_request", "message": "..."}}

Methods (params -> result):
    ping    {}                               -> {"pong": true, "pid": worker pid}
    info    {}                               -> the session record as the worker knows it
    get     {scrollback?, ansi?, raw?, bytes?, lines?} -> screen (see `worker.screen_payload`)
    text    {data: str, enter?: bool, paste?: bool}     -> {"seq": seq before the write}
    key     {keys: [name, ...]}              -> {"seq": seq before the write}
    resize  {cols, rows}                     -> {"cols", "rows"}
    signal  {name, leader?: bool}            -> {"signal", "pids"}
    wait    {text?, regex?, gone?, stable_ms?, changed_since?, input?, exit?, scrollback?,
             after?, timeout}                -> {"fired", "elapsed_ms", "match"?, screen...}
            Any condition that holds fires. `after` (a seq, optional, added after v1 shipped:
            an older worker ignores it) is an AND on all of them: each counts only on a
            screen whose seq is greater, except `exit`.
    kill    {grace?: seconds}                -> {"exitCode", "signal", "escalated": [...]}
    subscribe {}                             -> stream of {"event": "screen", ...} lines

Stdlib only: the client half of this module is on the CLI's hot path.
"""

from __future__ import annotations

import json
import math

PROTOCOL_VERSION = 1
MAX_LINE = 1 << 20  # 1 MiB per request line
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
    # Nesting needs a bracket per level: most lines can't be deep, and skip the walk.
    deep = line.count(b"[") + line.count(b"{") > MAX_DEPTH
    if deep and _depth(value) > MAX_DEPTH:
        raise BadRequest("JSON nested too deeply")
    return value


def encode(message: JSONObject) -> bytes:
    """One framed line. `allow_nan=False`: the protocol never carries NaN."""
    return _ENCODER.encode(message).encode() + b"\n"


def request(method: str, params: JSONObject | None = None) -> bytes:
    return encode({"v": PROTOCOL_VERSION, "method": method, "params": params or {}})


def ok(result: JSONObject) -> bytes:
    return encode({"v": PROTOCOL_VERSION, "ok": True, "result": result})


def error(code: str, message: str, **extra: object) -> bytes:
    body: JSONObject = {"code": code, "message": message, **extra}
    return encode({"v": PROTOCOL_VERSION, "ok": False, "error": body})


def finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def str_list(value: object) -> list[str]:
    """A JSON list of strings (anything else becomes its str; a non-list is empty)."""
    return [str(item) for item in value] if isinstance(value, list) else []

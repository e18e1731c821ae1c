"""What the input calls send: `text`, `key` and `send` as worker requests, and long input cut
into parts. Shared by Client, Session, AsyncSession and the MCP server, so that every face
checks keys the same way and sends the same bytes."""

from __future__ import annotations

from agentty_core import keys
from agentty_core.errors import UsageError

TYPE_CHECKING = False  # the CLI's fast lane builds `send` with this module: no typing, no json
if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentty_core.protocol import JSONObject

MAX_INPUT = 64 << 20  # the most one `text` takes; more is refused before anything is sent
# A larger input goes as parts of this size (base64 keeps each request line under
# protocol.MAX_LINE); the worker answers a part once its input queue has room for it.
INPUT_PART = 512 << 10
INPUT_PART_TIMEOUT = 90.0  # longer than the worker's own wait for room (INPUT_WAIT)

Step = tuple[str, "JSONObject"]  # one request to a worker: method, params


def in_one_request(data: object) -> bool:
    """Whether `data` goes as one `text` request; larger goes in parts (`Client.text`). A
    str is sent as JSON text, up to 6 bytes a character (\\uXXXX escapes)."""
    if not isinstance(data, (str, bytes)):
        return True  # (refused by `text_params`, which says why)
    return len(data) <= (INPUT_PART if isinstance(data, bytes) else INPUT_PART // 6)


# Characters of text that fit in one request line whatever they are (12 bytes each as JSON
# at worst, a surrogate pair escaped): only a longer text is measured.
ALWAYS_FITS = 80_000
# The `until` an acting request carries, as long as a float is written: a run is measured
# with it, as it will be sent (its real value is known only as each step goes out).
LONGEST_UNTIL = -2.2250738585072014e-308


def text_params(data: str | bytes, *, enter: bool = False, paste: bool = False) -> JSONObject:
    """The `text` request's params: bytes that are not UTF-8 travel as base64."""
    if not isinstance(data, (str, bytes)):
        raise UsageError(f"the text is a str or bytes, not {type(data).__name__}")
    if not isinstance(enter, bool) or not isinstance(paste, bool):
        raise UsageError("enter and paste are True or False")
    params: JSONObject = {"enter": enter, "paste": paste}
    if isinstance(data, bytes):
        import base64

        params["data_b64"] = base64.b64encode(data).decode()
    else:
        params["data"] = data
    return params


def input_bytes(data: str | bytes) -> bytes:
    """Input as the program gets it: a str's undecodable argv bytes (surrogate escapes)
    become those bytes again, as the worker does for a str it is sent."""
    if isinstance(data, bytes):
        return data
    try:
        return data.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise UsageError(
            f"the text holds a lone surrogate (U+{ord(data[exc.start]):04X}), which is not "
            "a character; send bytes instead"
        ) from None


def part_ends(data: bytes, size: int) -> list[int]:
    """Where to cut `data` into parts of at most `size`: never inside a short escape sequence
    (the worker strips a paste-end marker from each part) or a UTF-8 character (a recording
    decodes each part on its own)."""
    ends = []
    start = 0
    while start < len(data):
        end = min(start + size, len(data))
        if end < len(data):
            escape = data.rfind(b"\x1b", max(start + 1, end - 8), end)
            if escape > 0:
                end = escape
            for _ in range(3):
                if end - 1 > start and 0x80 <= data[end] < 0xC0:
                    end -= 1
        ends.append(end)
        start = end
    return ends


def text_steps(data: str | bytes, *, enter: bool = False, paste: bool = False) -> list[Step]:
    return [("text", text_params(data, enter=enter, paste=paste))]


def key_steps(names: Sequence[str]) -> list[Step]:
    if not names:
        raise UsageError("key needs a key name, as 'Enter' or 'Ctrl+C'")
    keys.parse_all(list(names))  # an unknown name is InvalidKey here, and nothing is sent
    return [("key", {"keys": list(names)})]


def send_steps(args: Sequence[str], *, literal: bool = False, enter: bool = False) -> list[Step]:
    """`send`: each key name pressed, anything else typed (all checked before any is sent)."""
    words = None if isinstance(args, (str, bytes)) else list(args)  # (a generator: once)
    if words is None or not all(isinstance(word, str) for word in words):
        raise UsageError("send takes words (str), each a key name or text to type")
    steps: list[Step] = []
    for run in keys.split_send(words, literal=literal):
        if isinstance(run, list):
            steps += key_steps(run)
        else:
            steps += text_steps(run)
    if enter:
        method, params = steps[-1] if steps else ("", {})
        if method == "text":  # Enter as `text --enter` sends it
            params["enter"] = True
        else:
            steps.append(("key", {"keys": ["Enter"]}))
    if not steps:
        raise UsageError("send needs something to send: text or key names")
    for method, params in steps:
        if method == "text":
            _fits_one_request(params)
    return steps


def oversized(params: JSONObject) -> int | None:
    """The size of the `text` request `params` make when it is more than a worker reads as
    one line (`protocol.MAX_LINE`), else None: measured, as it will be sent."""
    data = params.get("data", params.get("data_b64"))
    if not isinstance(data, str) or len(data) <= ALWAYS_FITS:
        return None
    from agentty_core import protocol

    size = len(protocol.request("text", params, until=LONGEST_UNTIL))
    return size if size > protocol.MAX_LINE else None


def _fits_one_request(params: JSONObject) -> None:
    """`send` types each run of text as one request: a longer one than a worker reads is
    refused here, before any step is sent."""
    size = oversized(params)
    if size is not None:
        from agentty_core import protocol

        raise UsageError(
            f"send: {len(str(params.get('data')))} characters of text are more than one "
            f"request carries ({size} > {protocol.MAX_LINE} bytes as JSON); `text` sends "
            "any length, in parts"
        )


def sent_bytes(answers: Sequence[JSONObject]) -> int:
    """The bytes a `send`'s requests typed, by their answers."""
    counts = [answer.get("bytes") for answer in answers]
    return sum(n for n in counts if isinstance(n, int))

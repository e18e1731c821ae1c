"""A parser for the plain forms of the agent commands without argparse.

Agents call `get`, `text`, `key`, `paste`, `send`, `wait`, `kill` and `status` hundreds of
times per task, and building an argparse parser (with its imports) is a measurable part of
each call. This parser accepts only forms it understands completely and returns the same attributes
argparse would; anything else (`--help`, an unknown or abbreviated option, a value argparse
might read otherwise, options after the payload) returns None and goes to argparse, which
stays the definition of the command line and reports every error. A test checks that both
give the same result on the forms this one accepts. It imports nothing: the fast lane
(`cli/hotpath.py`) uses it too.
"""

from __future__ import annotations

MAX_INT = 10_000_000
MAX_SECONDS = 86400.0

_SESSION = {"-s": "session", "--session": "session"}

# command -> (flag options, valued options with their attribute, the positional's attribute
# and arity: "" none, "*" any, "+" at least one, "1" exactly one)
_SPEC: dict[str, tuple[dict[str, str], dict[str, str], str, str]] = {
    "get": (
        {"--json": "json", "--scrollback": "scrollback", "--ansi": "ansi", "--raw": "raw"},
        {**_SESSION, "--lines": "lines", "--bytes": "bytes", "--png": "png"},
        "",
        "",
    ),
    "text": (
        {"--json": "json", "--enter": "enter"},
        {**_SESSION, "--file": "file"},
        "payload",
        "*",
    ),
    "paste": ({"--json": "json"}, dict(_SESSION), "payload", "1"),
    "key": ({"--json": "json"}, dict(_SESSION), "keys", "+"),
    "send": (
        {"--json": "json", "--literal": "literal", "--enter": "enter"},
        dict(_SESSION),
        "args",
        "+",
    ),
    "wait": (
        {"--json": "json", "--input": "input", "--exit": "exit", "--scrollback": "scrollback"},
        {
            **_SESSION,
            "--text": "text",
            "--regex": "regex",
            "--gone": "gone",
            "--stable": "stable",
            "--changed-since": "changed_since",
            "--after": "after",
            "--timeout": "timeout",
        },
        "",
        "",
    ),
    "kill": ({"--json": "json"}, {**_SESSION, "--timeout": "timeout"}, "", ""),
    "status": ({"--json": "json", "-q": "quiet", "--quiet": "quiet"}, {}, "", ""),
}
_INTS = {"lines", "bytes", "stable", "changed_since", "after"}
_SECONDS = {"timeout"}
_DEFAULTS: dict[str, dict[str, object]] = {"wait": {"timeout": 30.0}, "kill": {"timeout": 2.0}}
# Flags the lane never reads (given, they go the full way), False as argparse has them.
_FULL_WAY_FLAGS: dict[str, tuple[str, ...]] = {"kill": ("all",)}


class Namespace:
    """What argparse's Namespace holds, without importing argparse (or `types`)."""

    # Set by `parse` per command (as argparse does): declared here for the type checker.
    command: str
    session: str | None
    json: bool
    lines: int | None
    bytes: int | None
    scrollback: bool
    ansi: bool
    raw: bool
    payload: list[str] | str
    enter: bool
    file: str | None
    keys: list[str]
    args: list[str]
    literal: bool
    text: str | None
    regex: str | None
    gone: str | None
    stable: int | None
    changed_since: int | None
    after: int | None
    input: bool
    exit: bool
    timeout: float
    quiet: bool

    def __init__(self, command: str) -> None:
        self.command = command


def plain_seconds(value: str) -> float | None:
    """`value` as argparse's `_seconds` reads it, for plain decimals only (no exponent,
    sign, underscore or space: those go to argparse)."""
    whole, _, frac = value.partition(".")
    if not whole.isascii() or not frac.isascii():
        return None
    if not (whole.isdigit() or (not whole and frac)) or not (frac.isdigit() or not frac):
        return None
    seconds = float(value)
    return seconds if seconds <= MAX_SECONDS else None


def whole_number(value: str) -> int | None:
    """`value` as argparse's `_positive_int` reads it, for plain digits only."""
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_INT:
        return None
    return int(value)


def _option_value(words: list[str], i: int) -> tuple[str, int] | None:
    """The value of the option at `words[i]` (`--name=value` or `--name value`) and the
    index after it; None when it is missing."""
    _, eq, inline = words[i].partition("=")
    if eq:
        return inline, i + 1
    if i + 1 < len(words):
        return words[i + 1], i + 2
    return None


def options_before_program(
    words: list[str], valued: dict[str, str], repeatable: frozenset[str] = frozenset()
) -> tuple[list[tuple[str, str]], bool, list[str]] | None:
    """`start`'s and `run`'s command line: the options before `--` as (attribute, value)
    pairs in order, whether `--json` was among them, and the program's argv after `--`
    (empty without one). None for a form argparse must read: another option or an
    abbreviation, a missing value, one that starts with `-` (it may take it for an
    option), or one not `repeatable` given twice. Empty values are the caller's to judge."""
    pairs: list[tuple[str, str]] = []
    as_json = False
    i = 0
    given: set[str] = set()
    while i < len(words) and words[i] != "--":
        word = words[i]
        if word == "--json":
            as_json = True
            i += 1
            continue
        name = word.partition("=")[0]
        if name not in valued:
            return None  # another option, an abbreviation, a positional without `--`
        found = _option_value(words, i)
        if found is None or found[0].startswith("-"):
            return None
        value, i = found
        attr = valued[name]
        if attr in given and attr not in repeatable:
            return None  # given twice: argparse refuses it
        given.add(attr)
        pairs.append((attr, value))
    return pairs, as_json, words[i + 1 :]


def parse(words: list[str]) -> Namespace | None:
    """`words` is argv after the program name; None means "let argparse decide"."""
    if not words or words[0] not in _SPEC:
        return None
    command = words[0]
    flags, valued, positional, arity = _SPEC[command]
    args = Namespace(command)
    for attr in (*flags.values(), *_FULL_WAY_FLAGS.get(command, ())):
        setattr(args, attr, False)
    for attr in valued.values():
        setattr(args, attr, _DEFAULTS.get(command, {}).get(attr))
    rest = words[1:]
    given: set[str] = set()  # a single-valued option given twice: argparse refuses it
    i = 0
    while i < len(rest) and rest[i].startswith("-") and rest[i] != "-":
        word = rest[i]
        if word in flags:
            setattr(args, flags[word], True)
            i += 1
            continue
        name = word.partition("=")[0]
        found = _option_value(rest, i) if name in valued else None
        if found is None:
            return None
        value, i = found
        attr = valued[name]
        if attr in given:
            return None
        given.add(attr)
        if attr in _INTS:
            number = whole_number(value)
            if number is None:
                return None
            setattr(args, attr, number)
        elif attr in _SECONDS:
            seconds = plain_seconds(value)
            if seconds is None or (command == "kill" and seconds > 60):
                return None  # (`kill`'s grace per step: argparse says what is wrong)
            setattr(args, attr, seconds)
        else:
            if value.startswith("-") or not value:
                return None
            setattr(args, attr, value)
    payload = rest[i:]
    if any(word.startswith("-") and word != "-" for word in payload):
        return None
    if not arity:
        return None if payload else args
    if (arity == "+" and not payload) or (arity == "1" and len(payload) != 1):
        return None
    setattr(args, positional, payload[0] if arity == "1" else payload)
    return args

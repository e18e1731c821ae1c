"""A parser for the plain forms of the hot commands (`get`, `text`, `key`) without argparse.

Agents call these hundreds of times per task, and building an argparse parser (with its
imports) is a measurable part of each call. This parser accepts only forms it understands
completely and returns the same attributes argparse would; anything else (`--help`, an
unknown option, a bad value, options after the payload) returns None and goes to argparse,
which stays the definition of the command line and reports every error. A test checks that
both give the same result on the forms this one accepts.
"""

from __future__ import annotations

from types import SimpleNamespace

MAX_INT = 10_000_000

# command -> (flag options, valued options with their attribute, the positional's attribute)
_SPEC: dict[str, tuple[dict[str, str], dict[str, str], str | None]] = {
    "get": (
        {"--json": "json", "--scrollback": "scrollback", "--ansi": "ansi", "--raw": "raw"},
        {
            "-s": "session",
            "--session": "session",
            "--lines": "lines",
            "--bytes": "bytes",
            "--png": "png",
        },
        None,
    ),
    "text": (
        {"--json": "json", "--enter": "enter"},
        {"-s": "session", "--session": "session", "--file": "file"},
        "payload",
    ),
    "key": ({"--json": "json"}, {"-s": "session", "--session": "session"}, "keys"),
}
_INTS = {"lines", "bytes"}


def parse(words: list[str]) -> SimpleNamespace | None:
    """`words` is argv after the program name; None means "let argparse decide"."""
    if not words or words[0] not in _SPEC:
        return None
    command = words[0]
    flags, valued, positional = _SPEC[command]
    args = SimpleNamespace(command=command)
    for attr in (*flags.values(), *valued.values()):
        setattr(args, attr, False if attr in flags.values() else None)
    rest = words[1:]
    i = 0
    while i < len(rest) and rest[i].startswith("-") and rest[i] != "-":
        word = rest[i]
        name, eq, inline = word.partition("=")
        if word in flags:
            setattr(args, flags[word], True)
            i += 1
            continue
        if name not in valued:
            return None
        if eq:
            value, i = inline, i + 1
        elif i + 1 < len(rest):
            value, i = rest[i + 1], i + 2
        else:
            return None
        attr = valued[name]
        if attr in _INTS:
            if not value.isdigit() or int(value) > MAX_INT:
                return None
            setattr(args, attr, int(value))
        else:
            if value.startswith("-") or not value:
                return None
            setattr(args, attr, value)
    payload = rest[i:]
    if any(word.startswith("-") and word != "-" for word in payload):
        return None
    if positional is None:
        return None if payload else args
    if positional == "keys" and not payload:
        return None
    setattr(args, positional, payload)
    return args

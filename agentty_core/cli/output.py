"""What the `agentty` command prints, and the program's name, shared by its modules.

`cli.main` (the commands) and `cli.parser` (the definitions) both need `PROG`; it lives here,
below both, so neither imports the other at import time. Only the standard library: the hot
commands load this module too.
"""

from __future__ import annotations

import json
import sys

from agentty_core.protocol import JSONObject, str_list
from agentty_core.screen_text import printable, trim_lines

PROG = "agentty"

TYPE_CHECKING = False  # typing and argparse cost milliseconds the hot path does not spend
if TYPE_CHECKING:
    import argparse


def emit(data: object) -> None:
    """One JSON document on stdout, exact (the `--json` form of every command)."""
    text = json.dumps(data, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (from non-UTF-8 argv bytes) cannot be UTF-8: escape everything.
        text = json.dumps(data, ensure_ascii=True)
    sys.stdout.write(text + "\n")


def error(message: object) -> None:
    """One line on stderr, the form of every error the command reports (escaped: a message
    may quote a program's own words)."""
    print(f"{PROG}: error: {shown(str(message))}", file=sys.stderr)


shown = printable  # a human-readable line's program-controlled text, escaped


def screen_text(screen: JSONObject, key: str = "lines") -> str:
    """The rendered screen as text; the emulator's cells hold no control characters."""
    lines = str_list(screen.get(key))
    if key == "lines":
        lines = str_list(screen.get("scrollback")) + lines
    return "".join(line + "\n" for line in trim_lines(lines))


def print_screen(screen: JSONObject, args: argparse.Namespace) -> None:
    if args.json:
        emit(screen)
    elif getattr(args, "raw", False):
        import base64

        sys.stdout.flush()
        sys.stdout.buffer.write(base64.b64decode(str(screen.get("rawBase64", ""))))
    elif getattr(args, "ansi", False):
        sys.stdout.write(screen_text(screen, "ansi"))
    else:
        sys.stdout.write(screen_text(screen))

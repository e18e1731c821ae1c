"""How a screen's lines read as text: one definition for every place that trims them, and
for how a wait matches them (`to_cursor`, `readings`); and how a program's or a remote
side's own words are shown to a person (`printable`).

The emulator keeps each line as drawn (trailing blank cells already dropped). What a reader
is given (`agentty get`, `Screen.text`, the MCP tools, `get --lines N` and an ended
session's last lines) is that, less any trailing whitespace a program wrote, less the blank
lines under the last one with text. The CLI's fast lane inlines this (it imports no agentty
module); tests/unit/test_screen_text.py holds the two equal.
"""

from __future__ import annotations

TYPE_CHECKING = False  # without importing typing: the CLI's fast lane imports this
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping


def trim_lines(lines: Iterable[str]) -> list[str]:
    """The lines without trailing whitespace, and without the blank lines that end them."""
    out = [line.rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    return out


def to_cursor(
    rows: list[str], row: int, col: int, cols: int, cells: Callable[[str], int] | None = None
) -> list[str]:
    """`rows` as a wait matches them (`text`, `regex`, `gone`, `run --expect`): the cursor's
    row carried on in blanks up to the cursor. A row's trailing blanks are trimmed, so the
    space a prompt ends with (`Name: `, the cursor after it) was never found, though the
    screen shows it (and pexpect finds it in the stream). Only blank cells that exist are
    added: up to the cursor, never past the last column. `cells`: the screen cells a row
    takes, as its emulator counts them (for a row that is not ASCII)."""
    if not 0 <= row < len(rows):
        return rows
    text = rows[row]
    pad = min(col, cols) - (len(text) if text.isascii() else (cells or _cells)(text))
    if pad <= 0:
        return rows
    carried = list(rows)
    carried[row] = text + " " * pad
    return carried


def readings(row: str) -> tuple[str, ...]:
    """How a regex reads a row: as trimmed and, for the cursor's row carried on in blanks
    (`to_cursor`), with them too, so that `^\\$$` and `name\\? $` both find a prompt
    (`$ `, `name? `) waiting after its space. A text needs no second reading: one found in
    the trimmed row is in the carried one."""
    if not row.endswith(" "):
        return (row,)
    return (row.rstrip(" "), row)


def screen_to_cursor(screen: Mapping[str, object]) -> list[str]:
    """`to_cursor` of a screen as `get --json` and the final screen files give it: its
    `lines`, `cursor` and `size`."""
    lines = screen.get("lines")
    rows = [line for line in lines if isinstance(line, str)] if isinstance(lines, list) else []
    cursor, size = screen.get("cursor"), screen.get("size")
    if not isinstance(cursor, dict) or not isinstance(size, dict):
        return rows
    row, col, cols = cursor.get("row"), cursor.get("col"), size.get("cols")
    if type(row) is not int or type(col) is not int or type(cols) is not int:
        return rows
    return to_cursor(rows, row, col, cols)


def _cells(text: str) -> int:
    """Screen cells `text` takes, near enough to the emulator's count for a screen that is
    only read now (an ended session's): East Asian wide and full-width characters two,
    combining marks none."""
    import unicodedata

    def width(ch: str) -> int:
        if unicodedata.combining(ch) or unicodedata.category(ch) == "Cf":  # (ZWJ, ZWSP)
            return 0
        return 2 if unicodedata.east_asian_width(ch) in "WF" else 1

    return sum(map(width, text))


def clipped(text: str, width: int) -> str:
    """`text` in at most `width` characters, an ellipsis ending one that was cut (a table's
    column: a name or a command line that goes on)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def printable(text: str) -> str:
    """`text` safe to show a person: what is not printable (ESC, BEL, CR, newlines, C1
    controls, bidi overrides) is written as its escape (`\\x1b`), so a string a program or a
    remote side controls (an argv, a command line, a reason) cannot set the title, write
    the clipboard, reorder what is shown or break a line of a table."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def controls_escaped(text: str) -> str:
    """`text` with its control characters (C0, DEL, C1) written as their escapes and the rest
    as it is: a screen row, which may hold a non-breaking space or a zero-width joiner a
    program drew, but never a control character, unless a host's agentty sent one."""
    if text.isprintable():
        return text
    return "".join(repr(ch)[1:-1] if _control(ch) else ch for ch in text)


def _control(ch: str) -> bool:
    """C0, DEL or C1: what a screen row never holds (a terminal acts on it)."""
    return ch < " " or "\x7f" <= ch <= "\x9f"


def printable_lines(text: str) -> str:
    """Another host's stderr, passed on to ours: its lines kept, a tab kept, the CR of a
    CRLF dropped, any other control character written as its escape (a command prefix or
    a remote shell may put anything in them)."""
    lines = (line.removesuffix("\r") for line in text.split("\n"))
    return "\n".join("\t".join(map(controls_escaped, line.split("\t"))) for line in lines)


def row_text_problem(name: str, value: object) -> str | None:
    """Why a wait's `text` or `gone` can never be on a screen row, or None. Rows hold no
    control character (C0, DEL, C1): a newline ends the row, a tab became blanks, an escape
    sequence was acted on. Such a text waited out its whole timeout (`gone`: held at once)."""
    if not isinstance(value, str) or not value or value.isprintable():
        return None
    char = next((c for c in value if _control(c)), None)
    if char is None:  # (not printable, yet no control: a non-breaking space, say)
        return None
    return (
        f"{name} has a control character ({char!r}): a screen row never holds one "
        "(a newline ends the row, a tab is blanks); wait for the text of one row"
    )

"""An optional compiled backend: asciinema's avt (Rust, through pyavt) behind `Emulator`'s
interface. `AGENTTY_EMULATOR=avt` in the environment of `agentty start` selects it.

pyte stays the default: it is what the golden tests pin down. avt parses 10x faster
(`make bench` measures both on the same streams), but it models less: it sends no replies
and tracks only some modes, so this module scans the stream for the queries a program may
wait on (cursor position, device attributes, mode reports, colours, version) and the modes
agentty reports (bracketed paste, mouse, keypad, alternate screen) and the window title.
A query is answered with the cursor as it is right after the query, like a terminal.
"""

from __future__ import annotations

import codecs
import re
from itertools import chain

from avt._avt import Color, Line, Vt
from pyte.graphics import FG_BG_256

from agentty_core.emulator._parser import DA1, DA2, XTVERSION
from agentty_core.emulator._screen import (
    BLINK,
    BOLD,
    ITALICS,
    REVERSE,
    STRIKETHROUGH,
    UNDERSCORE,
    Run,
)
from agentty_core.emulator.pyte_backend import _ansi_line, cells, find_in, search_in
from agentty_core.screen_text import to_cursor

_BASE = ("black", "red", "green", "brown", "blue", "magenta", "cyan", "white")
_OSC_COLORS = {10: "rgb:ffff/ffff/ffff", 11: "rgb:0000/0000/0000"}
_MOUSE = frozenset({1000, 1002, 1003, 1005, 1006, 1015})
_ALT = frozenset({47, 1047, 1049})
# What matters to us in the stream: the CSI sequences that set modes or ask something (not
# SGR and cursor motion, the bulk of it), OSC strings, keypad ESC = / ESC >.
_SEQ = re.compile(
    r"\x1b\[([\x30-\x3f]*)([\x20-\x2f]*)([hlcnpqtJ])"
    r"|\x1b\](\d+);([^\x07\x1b]*)(\x07|\x1b\\)"
    r"|\x1b([=>c])"
)
# A sequence cut by the end of a chunk: kept to be scanned with the next one.
_PARTIAL = re.compile(r"\x1b(?:\[[\x20-\x3f]*|\][^\x07\x1b]*|\]?)?\Z")


def _color(color: object) -> str:
    if color is None:
        return "default"
    if isinstance(color, Color.Indexed):
        n = color[0]
        if n < 8:
            return _BASE[n]
        if n < 16:
            return "bright" + ("black" if n == 8 else _BASE[n - 8])
        return str(FG_BG_256[n])
    r, g, b = color[0], color[1], color[2]  # type: ignore[index]
    return f"{r:02x}{g:02x}{b:02x}"


def _runs(line: Line) -> list[Run]:
    runs: list[Run] = []
    for cell in line.cells:
        if cell.width == 0:
            continue  # the second half of a wide character
        pen = cell.pen
        flags = (
            (BOLD if pen.bold else 0)
            | (ITALICS if pen.italic else 0)
            | (UNDERSCORE if pen.underline else 0)
            | (REVERSE if pen.inverse else 0)
            | (STRIKETHROUGH if pen.strikethrough else 0)
            | (BLINK if pen.blink else 0)
        )
        style = (_color(pen.foreground), _color(pen.background), flags)
        if runs and runs[-1][1:] == style:
            runs[-1] = (runs[-1][0] + cell.char, *style)
        else:
            runs.append((cell.char, *style))
    return runs


class AvtEmulator:
    """`Emulator`'s interface over avt.Vt."""

    def __init__(self, cols: int = 80, rows: int = 24, scrollback: int = 5000) -> None:
        if cols < 1 or rows < 1:
            raise ValueError(f"terminal size must be positive, got {cols}x{rows}")
        self._vt = Vt(cols, rows, scrollback)
        self._cols, self._rows = cols, rows
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._seq = 0
        self._dirty: set[int] = set(range(rows))
        self._private: set[int] = set()
        self._keypad = False
        self.erases = 0  # the main screen's erasures: `_screen.Screen.erases`
        self._title = ""
        self._evicted = 0  # scrollback lines avt dropped (its history is bounded)

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Parse PTY output; returns the replies the terminal owes the program."""
        text = self._decoder.decode(data)
        if not text:
            return b""
        before = self._state()
        scan = self._partial + text if self._partial else text
        offset = len(self._partial)  # the partial sequence was fed to avt already
        self._partial = ""
        replies: list[str] = []
        fed = 0  # of `text`
        for m in _SEQ.finditer(scan):
            reply = self._note(m)
            if reply is not None:
                end = m.end() - offset
                self._feed(text[fed:end])
                fed = end
                replies.append(self._reply(reply))
        self._feed(text[fed:])
        start = scan.rfind("\x1b", max(0, len(scan) - 4096))
        if start >= 0 and _PARTIAL.match(scan, start):
            self._partial = scan[start:]
        if self._state() != before:
            self._seq += 1
        return "".join(replies).encode("utf-8")

    def _feed(self, text: str) -> None:
        if text:
            changed, evicted = self._vt.feed_str(text)
            self._evicted += len(evicted)
            if changed:
                self._dirty.update(changed)
                self._seq += 1

    def _note(self, m: re.Match[str]) -> str | None:
        """Track what the sequence changes; the query it is, if it wants an answer."""
        params, inter, final, osc, payload, end, esc = m.groups()
        if esc is not None:
            if esc == "c":  # RIS
                self._erased_all()
                self._keypad = False
            else:
                self._keypad = esc == "="
            return None
        if osc is not None:
            if osc in ("0", "2"):
                self._title = payload
            elif osc in ("10", "11") and payload == "?":
                return f"osc {osc} {end}"
            return None
        lead = params[:1] if params[:1] in "<=>?" else ""
        body = params[1:] if lead else params
        if final == "J":  # ED 2 (`_screen.Screen.erased_from`; where a partial one began,
            if not lead and not inter and body == "2":  # the scan cannot tell: not noted)
                self._erased_all()
            return None
        if inter:
            return f"decrqm {lead} {body}" if inter == "$" and final == "p" else None
        if lead == "?" and final in "hl":
            for mode in body.split(";"):
                if mode.isdigit():
                    (self._private.add if final == "h" else self._private.discard)(int(mode))
            return None
        if lead == ">" and final in "cq" and body in ("", "0"):
            return "da2" if final == "c" else "xtversion"
        if lead:
            return None
        if final == "c" and body in ("", "0"):
            return "da1"
        if final == "n" and body in ("5", "6"):
            return f"dsr {body}"
        if final == "t" and body == "18":
            return "size"
        return None

    def _reply(self, query: str) -> str:
        kind, _, arg = query.partition(" ")
        if kind == "da1":
            return DA1
        if kind == "da2":
            return DA2
        if kind == "xtversion":
            return XTVERSION
        if kind == "size":
            return f"\x1b[8;{self._rows};{self._cols}t"
        if kind == "dsr":
            if arg == "5":
                return "\x1b[0n"
            row, col = self.cursor
            return f"\x1b[{row + 1};{col + 1}R"
        if kind == "osc":
            code, _, end = arg.partition(" ")
            return f"\x1b]{code};{_OSC_COLORS[int(code)]}{end}"
        lead, _, body = arg.partition(" ")
        mode = int(body.split(";")[0]) if body.split(";")[0].isdigit() else 0
        if lead == "?":
            value = 1 if mode in self._private or (mode == 1 and self._app_cursor()) else 2
            return f"\x1b[?{mode};{value}$y"
        return f"\x1b[{mode};0$y"

    def _app_cursor(self) -> bool:
        return bool(self._vt.cursor_key_app_mode)

    def _state(self) -> tuple[object, ...]:
        c = self._vt.cursor
        return (c.row, c.col, c.visible, self._title, frozenset(self._private), self._keypad)

    # -- size ------------------------------------------------------------------------------

    def resize(self, cols: int, rows: int) -> None:
        if cols < 1 or rows < 1:
            raise ValueError(f"terminal size must be positive, got {cols}x{rows}")
        self._vt.resize(cols, rows)
        self._cols, self._rows = cols, rows
        self._dirty = set(range(rows))
        self._seq += 1

    @property
    def cols(self) -> int:
        return self._cols

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def seq(self) -> int:
        return self._seq

    # -- reading ---------------------------------------------------------------------------

    def _erased_all(self) -> None:
        if not ({47, 1047, 1049} & self._private):  # (the main screen's only)
            self.erases += 1

    def erased_from(self, line: int, since: int) -> int | None:
        """`_screen.Screen.erased_from`, for whole-screen erasures only (ED 2, RIS)."""
        return 0 if self.erases > since else None

    @property
    def scrolled(self) -> int:
        """Lines scrolled off the top so far: those still in avt's history and those it
        dropped. (Asked only for echo masking: it lists the whole history.)"""
        return self._evicted + max(0, len(self._vt.lines()) - self._rows)

    def lines(self) -> list[str]:
        return [line.text.rstrip(" ") for line in self._vt.view()]

    def scrollback(self) -> list[str]:
        history = self._vt.lines()[: -self._rows or None]
        return [line.text.rstrip(" ") for line in history]

    def row_runs(self, row: int) -> list[Run]:
        if not 0 <= row < self._rows:
            raise IndexError(f"row {row} out of range 0..{self._rows - 1}")
        return _runs(self._vt.view()[row])

    def ansi_lines(self) -> list[str]:
        return [_ansi_line(_runs(line)) for line in self._vt.view()]

    def dirty_rows(self) -> set[int]:
        rows, self._dirty = self._dirty, set()
        return {r for r in rows if 0 <= r < self._rows}

    @property
    def cursor(self) -> tuple[int, int]:
        c = self._vt.cursor
        return c.row, min(c.col, self._cols - 1)

    @property
    def typing_at(self) -> tuple[int, int]:
        """`cursor`, but past the last column in a pending wrap (as pyte's backend)."""
        c = self._vt.cursor
        return c.row, c.col

    @property
    def cursor_visible(self) -> bool:
        return bool(self._vt.cursor.visible)

    @property
    def title(self) -> str:
        return self._title

    @property
    def alt_screen(self) -> bool:
        return not _ALT.isdisjoint(self._private)

    @property
    def modes(self) -> dict[str, bool]:
        return {
            "applicationCursor": self._app_cursor(),
            "bracketedPaste": 2004 in self._private,
            "mouse": not _MOUSE.isdisjoint(self._private),
            "applicationKeypad": self._keypad,
        }

    def find(self, needle: str, *, scrollback: bool = False) -> tuple[int, int] | None:
        return find_in(self._searchable(scrollback), needle)

    def search(
        self, pattern: re.Pattern[str], *, scrollback: bool = False
    ) -> tuple[int, int] | None:
        return search_in(self._searchable(scrollback), pattern)

    def _searchable(self, scrollback: bool) -> chain[str]:
        screen = to_cursor(self.lines(), *self.typing_at, self.cols, cells)
        if scrollback:
            return chain(self.scrollback(), screen)
        return chain(screen)

"""Line floods straight to the scrollback; private to agentty_core.emulator.pyte_backend.

When a program prints many complete lines (``cat``, a compiler, ``ls --color``) nearly all of
them scroll off before anyone can see them. Drawing each one cell by cell, scrolling the
screen and then compacting the row again for the history costs ~50 µs a row; here a run of
whole lines (text and SGR only, each ending in CR LF, cursor at the bottom-left) is laid out
as scrollback entries directly, and only the rows that stay visible are put on the screen.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from pyte import charsets as cs
from pyte import modes as mo
from pyte.screens import Char, wcwidth

from agentty_core.emulator._screen import Screen, StyleRun, style_flags

# A block of complete lines of printable text, each ending in CR LF: one C-speed match for
# a whole run of plain output. Linear: a line's text cannot contain the CR that ends it.
_PLAIN_LINES = re.compile(r"(?:[^\x00-\x1f\x7f-\x9f]*\r\n)+")
# One complete line of printable text and SGR sequences, then CR LF. Runs of text are taken
# whole where possessive quantifiers exist (3.11); before that, per-character alternation
# (no nested quantifier) keeps a failing match linear.
if sys.version_info >= (3, 11):
    _LINE = re.compile(r"((?:[^\x00-\x1f\x7f-\x9f]++|\x1b\[[0-9;:]*+m)*+)\r\n")
else:  # pragma: no cover - exercised on 3.10 only
    _LINE = re.compile(r"((?:[^\x00-\x1f\x7f-\x9f]|\x1b\[[0-9;:]*m)*)\r\n")
_SGR_SPLIT = re.compile(r"\x1b\[([0-9;:]*)m")
_DEFAULT = ("default", "default", 0)
Style = tuple[str, str, int]
# A laid-out line before Screen.pack: text and runs, exactly as Screen.record would see it.
Row = tuple[str, "list[StyleRun] | None"]


class Flood:
    """Lays out runs of complete lines as scrollback entries; see the module docstring."""

    def __init__(self, screen: Screen, sgr: Callable[[str], None]) -> None:
        self.screen = screen
        self.sgr = sgr
        self._styles: dict[Char, Style] = {}

    def eligible(self) -> bool:
        s = self.screen
        c = s.cursor
        if c.x or c.y != s.lines - 1 or s.alt or s.columns < 2:
            return False
        if s.margins is not None and (s.margins.top or s.margins.bottom != s.lines - 1):
            return False
        mode = s.mode
        if mo.DECAWM not in mode or mo.IRM in mode or mo.DECSCNM in mode:
            return False
        if s.charset or s.g0_charset is not cs.LAT1_MAP:
            return False
        return not s.buffer.get(s.lines - 1)

    def run(self, data: str, pos: int) -> int:
        """Consume whole lines from data[pos:]; returns where the normal parser resumes."""
        if not self.eligible():
            return pos
        rows: list[Row] = []
        add = rows.append
        while True:
            block = _PLAIN_LINES.match(data, pos)
            if block is not None:
                style = self._style(self.screen.cursor.attrs)  # no SGR in a plain block
                contents = block.group().split("\r\n")
                contents.pop()  # the empty string after the last CR LF
                for content in contents:
                    if content.isascii():
                        self._plain_line(content, style, add)
                    elif not self._styled_line(content, add):
                        break  # a zero-width or control-like character: the parser's job
                    pos += len(content) + 2
                else:
                    continue
                break
            m = _LINE.match(data, pos)
            if m is None or not self._styled_line(m.group(1), add):
                break
            pos = m.end()
        if rows:
            self._commit(rows)
            self.screen.last_char = ""
        return pos

    def _plain_line(self, content: str, style: Style, add: Callable[[Row], None]) -> None:
        cols = self.screen.columns
        if not content:
            add(("", None))
        elif style == _DEFAULT:
            if len(content) <= cols:
                add((content.rstrip(" "), None))
            else:
                for i in range(0, len(content), cols):
                    add((content[i : i + cols].rstrip(" "), None))
        else:
            for i in range(0, len(content), cols):
                piece = content[i : i + cols]
                add(self._row([(piece, style)], len(piece)))

    def _style(self, attrs: Char) -> Style:
        style = self._styles.get(attrs)
        if style is None:
            if len(self._styles) > 256:
                self._styles.clear()
            flags = style_flags(attrs[1:9])
            style = self._styles[attrs] = (attrs.fg, attrs.bg, flags)
        return style

    def _styled_line(self, content: str, add: Callable[[Row], None]) -> bool:
        """Lay out a line with SGR or wide characters; False (nothing added) if ineligible."""
        s = self.screen
        cursor = s.cursor
        cols = s.columns
        saved = cursor.attrs
        out: list[Row] = []
        segs: list[tuple[str, Style]] = []
        x = 0
        parts = _SGR_SPLIT.split(content)  # text, SGR params, text, ...
        for i, text in enumerate(parts):
            if i & 1:
                self.sgr(text)
                continue
            if not text:
                continue
            style = self._style(cursor.attrs)
            if text.isascii():
                if x + len(text) <= cols:
                    segs.append((text, style))
                    x += len(text)
                    continue
                j = 0
                while j < len(text):
                    if x == cols:
                        out.append(self._row(segs, x))
                        segs, x = [], 0
                    take = text[j : j + cols - x]
                    segs.append((take, style))
                    x += len(take)
                    j += len(take)
                continue
            for ch in text:
                width = wcwidth(ch)
                if width not in (1, 2):
                    cursor.attrs = saved
                    return False
                if x + width > cols:
                    out.append(self._row(segs, x))
                    segs, x = [], 0
                segs.append((ch, style))
                x += width
        out.append(self._row(segs, x))
        for row in out:
            add(row)
        return True

    def _row(self, segs: list[tuple[str, Style]], used: int) -> Row:
        """Text and runs exactly as Screen.record would take them from the drawn row."""
        cols = self.screen.columns
        if used < cols:
            segs = [*segs, (" " * (cols - used), _DEFAULT)]
        text = "".join(t for t, _ in segs)
        runs: list[StyleRun] = []
        last: Style | None = None
        count = 0
        for piece, style in segs:
            if style == last:
                count += len(piece)
                continue
            if last is not None:
                runs.append((count, last))
            last, count = style, len(piece)
        if last is not None:
            runs.append((count, last))
        if len(runs) == 1 and runs[0][1] == _DEFAULT:
            return text.rstrip(" "), None
        return text.rstrip(" "), runs

    def _commit(self, rows: list[Row]) -> None:
        """As if each row had been drawn on the bottom row and scrolled up once.

        Rows are packed in the order drawing would scroll them off, so style ids (and thus
        the history's bytes) are the same as drawing's."""
        s = self.screen
        keep = s.lines - 1  # rows above the (blank) bottom row
        n = len(rows)
        buf = s.buffer
        old = min(n, keep)  # screen rows pushed out by the new ones
        if s.history.maxlen:
            for y in range(old):
                s.push_history(buf.get(y))
            # One at a time: a pack may compact the style table, renumbering the ids of what
            # is already in the history (a batch packed ahead would keep stale ids).
            pack, append = s.pack, s.history.append
            s.scrolled += max(0, n - keep)  # (the rows pushed above counted themselves)
            for text, runs in rows[: max(0, n - keep)]:
                append((text, None) if runs is None else pack(text, runs))
        s.shift_rows(min(n, s.lines))
        first = keep - min(n, keep)
        for i, (text, runs) in enumerate(rows[max(0, n - keep) :]):
            buf[first + i] = s.line_from(text, runs)
        s.dirty.update(range(first, keep))

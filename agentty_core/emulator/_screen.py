"""The pyte.Screen subclass behind agentty_core.emulator.pyte_backend; private to it.

pyte 0.8.2 has no alternate screen, a history that stores full Char rows, a resize that throws
lines away, and a draw() that leaves half-overwritten wide characters behind and stops at the
first zero-width character that is not a combining mark. This subclass fixes those in place
so the rest of pyte (cursor motion, erase, margins, modes) is reused rather than forked.
"""

from __future__ import annotations

import copy
from array import array
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from itertools import chain, groupby, repeat
from operator import itemgetter

import pyte
from pyte import charsets as cs
from pyte import modes as mo
from pyte.screens import Char, Margins, Savepoint, StaticDefaultDict, wcwidth

from agentty_core.emulator._styles import Cells, StyleStore

# The flag bits belong to the wire protocol; re-exported for the two backends.
from agentty_core.protocol import BLINK as BLINK
from agentty_core.protocol import BOLD as BOLD
from agentty_core.protocol import ITALICS as ITALICS
from agentty_core.protocol import REVERSE as REVERSE
from agentty_core.protocol import STRIKETHROUGH as STRIKETHROUGH
from agentty_core.protocol import UNDERSCORE as UNDERSCORE

Line = StaticDefaultDict[int, Char]
Buffer = dict[int, Line]
Run = tuple[str, str, str, int]
Style = tuple[str, str, int]  # fg, bg, flags
# (codepoint count, (fg, bg, flags)) over a row's unstripped text.
StyleRun = tuple[int, Style]
# A scrollback line: its text (trailing spaces stripped) and, only when something in it is
# styled, its runs packed by Screen.pack: (count, style id) pairs as one bytes object, so a
# line costs a few bytes a run instead of a tuple per run.
Stored = tuple[str, bytes | None]

TITLE_MAX = 1024
_COMBINE_MAX = 16  # codepoints per cell: a stream of combining marks must not grow a cell forever
_DATA = itemgetter(0)
_STYLE = itemgetter(1, 2, 3, 4, 5, 6, 7, 8)
_DEFAULT_STYLE = ("default", "default", False, False, False, False, False, False)
_STYLES_MIN = 4096  # style table size below which it is never compacted
# Most distinct styles the scrollback keeps (~300 bytes each): output where every cell has its
# own 24-bit colours (image viewers) would otherwise grow the table by a style a cell, to
# hundreds of MiB. Past it, the oldest styled lines lose their colours (not their text).
_STYLES_CAP = 16384
# pyte builds a new default Char on every access; one shared object per mode lets rows be
# compared by identity (a row of blanks against another is 80 pointer checks, not 720 fields).
_BLANK = Char(" ")
_BLANK_REVERSE = Char(" ", reverse=True)


def style_flags(style: tuple[str, str, bool, bool, bool, bool, bool, bool]) -> int:
    """Pack pyte's six attribute booleans into the public bitmask."""
    _fg, _bg, bold, italics, underscore, strike, reverse, blink = style
    return (
        (BOLD if bold else 0)
        | (ITALICS if italics else 0)
        | (UNDERSCORE if underscore else 0)
        | (REVERSE if reverse else 0)
        | (STRIKETHROUGH if strike else 0)
        | (BLINK if blink else 0)
    )


def cell_runs(cells: tuple[Char, ...] | list[Char]) -> list[Run]:
    """Runs of equal style; stubs add no text, so a wide char appears once."""
    runs: list[Run] = []
    for style, group in groupby(cells, _STYLE):
        text = "".join(map(_DATA, group))
        runs.append((text, style[0], style[1], style_flags(style)))
    return runs


def row_cells(line: Line | None, cols: int, blank: Char) -> tuple[Char, ...]:
    """A row as exactly `cols` cells, without creating entries in pyte's sparse dicts."""
    if not line:
        return (line.default if line is not None else blank,) * cols
    return tuple(map(line.get, range(cols), repeat(line.default, cols)))


def _attrs(fg: str, bg: str, flags: int) -> Char:
    return Char(
        " ",
        fg,
        bg,
        bool(flags & BOLD),
        bool(flags & ITALICS),
        bool(flags & UNDERSCORE),
        bool(flags & STRIKETHROUGH),
        bool(flags & REVERSE),
        bool(flags & BLINK),
    )


def _uncoloured(runs: Sequence[StyleRun]) -> list[StyleRun] | None:
    """Runs with default colours (attributes kept), merged; None when nothing is left."""
    out: list[StyleRun] = []
    for count, (_fg, _bg, flags) in runs:
        if out and out[-1][1][2] == flags:
            out[-1] = (out[-1][0] + count, out[-1][1])
        else:
            out.append((count, ("default", "default", flags)))
    return None if len(out) == 1 and not out[0][1][2] else out


def _is_wide(char: Char | None) -> bool:
    return char is not None and bool(char.data) and wcwidth(char.data[0]) == 2


# Lines whose erasures are kept (`Screen.erased_from`): the newest, by absolute number.
ERASURES_KEPT = 4096


class Screen(pyte.Screen):
    """pyte.Screen plus alternate screen, compact scrollback, wide-char hygiene and replies."""

    def __init__(self, columns: int, lines: int, scrollback: int) -> None:
        # reset() runs inside pyte's __init__, so our state must exist before it.
        self.history: deque[Stored] = deque(maxlen=max(0, scrollback))
        self.replies: list[str] = []
        self.alt = False
        self.keypad = False
        self.last_char = ""
        self.on_shift: Callable[[int, int, int], None] | None = None
        self.resize_pushed = 0  # lines a row shrink pushed to history; a grow pulls them back
        # Lines ever scrolled off the main screen's top (a grow's pull takes some back): with
        # the cursor row, an absolute line that follows a row as it scrolls (echo masking).
        self.scrolled = 0
        # Erasures of the main screen so far, and where (`erased_from`): what was shown before
        # one may be drawn again, the same, at the same place, and is new then (a wait after
        # an input reads rows with nothing new as old: worker/echo.py).
        self.erases = 0
        self._whole_erase = 0  # the number of the last erase of the whole screen
        self._erasures: dict[int, dict[int, int]] = {}  # absolute line: {column: number}
        self._main_buffer: Buffer | None = None
        self._alt_saved: Savepoint | None = None
        # Every attribute set drawn with, interned (bounded): cells are shared objects.
        self.styles = StyleStore(self._held)
        self._last_cells = Cells(Char(""))
        self._xs: tuple[int, ...] = ()  # shared column numbers (ints past 256 are objects)
        self.sgr_cache: dict[tuple[str, Char], Char] = {}
        # Distinct styles of the packed scrollback, indexed by style id (see pack()).
        self._styles: list[Style] = []
        self._style_ids: dict[Style, int] = {}
        self._styles_max = _STYLES_MIN
        super().__init__(columns, lines)

    # -- helpers ---------------------------------------------------------------------------

    @property
    def default_char(self) -> Char:
        return _BLANK_REVERSE if mo.DECSCNM in self.mode else _BLANK

    def _new_buffer(self) -> Buffer:
        return defaultdict(lambda: StaticDefaultDict[int, Char](self.default_char))

    def _cells(self, attrs: Char) -> Cells:
        if attrs is self._last_cells.attrs:
            return self._last_cells
        cells = self._last_cells = self.styles.cells(attrs)
        return cells

    def _held(self) -> Iterator[Char]:
        """Every style object the screen holds: cells of both buffers, cursor attributes."""
        yield self.cursor.attrs
        for point in self.savepoints:
            yield point.cursor.attrs
        if self._alt_saved is not None:
            yield self._alt_saved.cursor.attrs
        for buf in (self.buffer, self._main_buffer or {}):
            for line in buf.values():
                yield line.default
            yield from chain.from_iterable(line.values() for line in buf.values())

    def column_keys(self) -> tuple[int, ...]:
        """Column numbers 0..columns+1 as shared int objects, for use as row keys (ints
        past 256 are objects of their own: 28 bytes a cell on a wide screen otherwise)."""
        xs = self._xs
        if len(xs) < self.columns + 2:
            xs = self._xs = tuple(range(self.columns + 2))
        return xs

    def columns_of(self, start: int, end: int) -> tuple[int, ...]:
        """Shared column numbers start..end-1."""
        return self.column_keys()[start:end]

    def _split(self, line: Line, x: int) -> None:
        """Blank any wide character straddling the x-1|x boundary (xterm erases both halves)."""
        if 0 < x < self.columns:
            stub = line.get(x)
            if stub is not None and stub.data == "":
                line[x] = stub._replace(data=" ")
                if _is_wide(line.get(x - 1)):
                    line[x - 1] = line[x - 1]._replace(data=" ")

    def record(self, line: Line | None) -> Stored:
        """Compact form of a row for the scrollback: runs are kept only for styled rows."""
        if not line:
            return "", None
        if line.default is _BLANK:
            # The usual line: only its drawn cells matter when they are all unstyled.
            width = min(max(line) + 1, self.columns)
            drawn = tuple(map(line.get, range(width), repeat(_BLANK, width)))
            if set(map(_STYLE, drawn)) == {_DEFAULT_STYLE}:
                return "".join(map(_DATA, drawn)).rstrip(" "), None
        cells = row_cells(line, self.columns, line.default)
        text = "".join(map(_DATA, cells))
        styles = set(map(_STYLE, cells))
        if len(styles) == 1 and _DEFAULT_STYLE in styles:
            return text.rstrip(" "), None
        runs = []
        for style, group in groupby(cells, _STYLE):
            count = sum(map(len, map(_DATA, group)))
            runs.append((count, (style[0], style[1], style_flags(style))))
        return self.pack(text.rstrip(" "), runs)

    def pack(self, text: str, runs: Sequence[StyleRun] | None) -> Stored:
        """Scrollback form of a line: runs become (count, style id) pairs in one bytes object.

        Ids index a per-screen table of distinct styles, which are few. The last byte is the
        item size (2, or 4 when a count or id does not fit 16 bits).
        """
        if runs is None:
            return text, None
        if len(self._styles) + len(runs) > self._styles_max:
            self._compact_styles(len(runs))
        ids = self._style_ids
        flat: list[int] = []
        add = flat.append
        for count, style in runs:
            sid = ids.get(style)
            if sid is None:
                sid = ids[style] = len(self._styles)
                self._styles.append(style)
            add(count)
            add(sid)
        try:
            return text, array("H", flat).tobytes() + b"\x02"
        except OverflowError:
            return text, array("I", flat).tobytes() + b"\x04"

    def unpack(self, stored: Stored) -> tuple[str, list[StyleRun] | None]:
        """Text and runs of a scrollback line, as they were given to pack()."""
        text, packed = stored
        if packed is None:
            return text, None
        pairs = array("H" if packed[-1] == 2 else "I", packed[:-1])
        styles = self._styles
        it = iter(pairs)
        return text, [(count, styles[sid]) for count, sid in zip(it, it, strict=True)]

    def _compact_styles(self, room: int) -> None:
        """Drop styles no scrollback line uses any more (a truecolour gradient makes many),
        renumbering in history order so equal histories get equal bytes. When the newest
        lines alone use more than half the cap, older lines keep their text and attributes
        but lose their colours, so the table stays bounded whatever the output."""
        lines = [self.unpack(stored) for stored in self.history]
        keep = len(lines) - self._coloured_tail(lines, _STYLES_CAP // 2)
        for i in range(keep):
            text, runs = lines[i]
            if runs is not None:
                lines[i] = text, _uncoloured(runs)
        self._styles = []
        self._style_ids = {}
        self._styles_max = 1 << 62  # no recursion while re-packing
        self.history.clear()
        self.history.extend([self.pack(text, runs) for text, runs in lines])
        used = len(self._styles)
        self._styles_max = max(_STYLES_MIN, min(_STYLES_CAP, 2 * used), used + room)

    @staticmethod
    def _coloured_tail(lines: Sequence[tuple[str, list[StyleRun] | None]], budget: int) -> int:
        """How many of the newest lines fit `budget` distinct styles between them."""
        seen: set[Style] = set()
        for n, (_text, runs) in enumerate(reversed(lines)):
            if runs is not None:
                seen.update(style for _count, style in runs)
                if len(seen) > budget:
                    return n
        return len(lines)

    def unrecord(self, stored: Stored) -> Line:
        """Rebuild a row from its scrollback form (used when a grow pulls history back)."""
        return self.line_from(*self.unpack(stored))

    def line_from(self, text: str, runs: Sequence[StyleRun] | None) -> Line:
        """A screen row holding text styled by runs (full-width runs, as record() makes)."""
        line: Line = StaticDefaultDict(self.default_char)
        styles = [(len(text), ("default", "default", 0))] if runs is None else runs
        if text.isascii():  # one cell per codepoint: whole runs go in with one update each
            pos = 0
            for count, (fg, bg, flags) in styles:
                count = min(count, self.columns - pos)
                if count <= 0:
                    break
                cells = self._cells(_attrs(fg, bg, flags))
                part = text[pos : pos + count].ljust(count)
                keys = self.columns_of(pos, pos + count)
                line.update(zip(keys, map(cells.__getitem__, part), strict=True))
                pos += count
            return line
        x, pos = 0, 0
        for count, (fg, bg, flags) in styles:
            cells = self._cells(_attrs(fg, bg, flags))
            for ch in text[pos : pos + count].ljust(count):
                width = wcwidth(ch)
                if width == 0 and x:
                    px = x - 2 if line[x - 1].data == "" and x > 1 else x - 1
                    line[px] = line[px]._replace(data=line[px].data + ch)
                elif 0 < width <= self.columns - x:
                    line[x] = cells[ch]
                    if width == 2:
                        line[x + 1] = cells[""]
                    x += width
            pos += count
        return line

    def push_history(self, line: Line | None) -> None:
        self.scrolled += 1
        if self.history.maxlen:
            self.history.append(self.record(line))

    def shift_rows(self, count: int) -> None:
        """Scroll the whole screen up by count rows without touching the scrollback."""
        self._shift(self.buffer, 0, self.lines - 1, count)
        self._shifted(0, self.lines - 1, count)

    def _shift(self, buf: Buffer, top: int, bottom: int, count: int) -> None:
        """Move rows top..bottom up by count (down if negative); vacated rows become blank."""
        pop = buf.pop
        if count > 0:
            for y in range(top, bottom + 1 - count):
                line = pop(y + count, None)
                if line is None:
                    pop(y, None)
                else:
                    buf[y] = line
            for y in range(max(top, bottom + 1 - count), bottom + 1):
                pop(y, None)
        elif count < 0:
            for y in range(bottom, top - count - 1, -1):
                line = pop(y + count, None)
                if line is None:
                    pop(y, None)
                else:
                    buf[y] = line
            for y in range(top, min(bottom + 1, top - count)):
                pop(y, None)

    # -- drawing ---------------------------------------------------------------------------

    def draw(self, data: str) -> None:
        """Print text; wraps before a wide char that does not fit, like xterm and tmux."""
        if self.charset:
            data = data.translate(self.g1_charset)
        elif self.g0_charset is not cs.LAT1_MAP:
            data = data.translate(self.g0_charset)
        if not data:
            return
        if data.isascii() and mo.IRM not in self.mode:
            self._draw_ascii(data)
            self.last_char = data[-1]
        else:
            self._draw_any(data)

    def _wrap(self) -> None:
        self.carriage_return()
        self.index()

    def _draw_ascii(self, data: str) -> None:
        """Fast path: every char is one cell wide, so whole slices go in with one dict update."""
        cols = self.columns
        cursor = self.cursor
        get = self._cells(cursor.attrs).__getitem__
        autowrap = mo.DECAWM in self.mode
        i, n = 0, len(data)
        while i < n:
            x = cursor.x
            if x >= cols:
                if autowrap:
                    self._wrap()
                    x = 0
                else:
                    x = cursor.x = cols - 1
                    i = n - 1  # without autowrap only the last char survives in the last column
            line = self.buffer[cursor.y]
            end = min(cols, x + n - i)
            edge = line.get(x)
            if edge is not None and not edge.data:
                self._split(line, x)
            edge = line.get(end)
            if edge is not None and not edge.data:
                self._split(line, end)
            line.update(zip(self.columns_of(x, end), map(get, data[i : i + end - x]), strict=True))
            i += end - x
            cursor.x = end
            self.dirty.add(cursor.y)

    def _draw_any(self, data: str) -> None:
        cols = self.columns
        cursor = self.cursor
        cells = self._cells(cursor.attrs)
        autowrap = mo.DECAWM in self.mode
        xs = self.column_keys()
        for ch in data:
            width = wcwidth(ch)
            if width <= 0:
                if width == 0:
                    self._combine(ch)
                continue
            if width > cols:
                continue
            if cursor.x + width > cols:
                if autowrap:
                    self._wrap()
                else:
                    cursor.x = cols - width
            if mo.IRM in self.mode:
                self.insert_characters(width)
            x = cursor.x
            line = self.buffer[cursor.y]
            self._split(line, x)
            self._split(line, x + width)
            line[xs[x]] = cells[ch]
            if width == 2:
                line[xs[x + 1]] = cells[""]
            cursor.x = x + width
            self.dirty.add(cursor.y)
            self.last_char = ch

    def _combine(self, ch: str) -> None:
        """Join a zero-width char (combining mark, ZWJ, variation selector) to the cell before."""
        x = min(self.cursor.x, self.columns) - 1
        if x < 0:
            return
        line = self.buffer[self.cursor.y]
        prev = line.get(x)
        if prev is not None and prev.data == "" and x > 0:
            x -= 1
            prev = line.get(x)
        if prev is None or not prev.data or len(prev.data) >= _COMBINE_MAX:
            return
        line[x] = prev._replace(data=prev.data + ch)  # not NFC-normalised, as tmux
        self.dirty.add(self.cursor.y)

    def repeat_last(self, count: int | None = None) -> None:
        """REP (CSI n b): bounded so a huge count cannot stall the emulator."""
        if self.last_char:
            self.draw(self.last_char * min(count or 1, self.lines * self.columns))

    # -- scrolling and history -------------------------------------------------------------

    def index(self) -> None:
        """Like pyte's, but lines leaving a full-screen main buffer go to the scrollback."""
        bottom = self.margins.bottom if self.margins else self.lines - 1
        y = self.cursor.y
        if y == bottom:
            self.scroll_up(1)
        elif y < self.lines - 1:
            self.cursor.y = y + 1

    def reverse_index(self) -> None:
        top = self.margins.top if self.margins else 0
        y = self.cursor.y
        if y == top:
            self.scroll_down(1)
        elif y > 0:
            self.cursor.y = y - 1

    def scroll_up(self, count: int | None = None) -> None:
        """SU (CSI n S) and the index at the bottom margin."""
        top, bottom = self.margins or Margins(0, self.lines - 1)
        count = min(count or 1, bottom - top + 1)
        buf = self.buffer
        if top == 0 and bottom == self.lines - 1 and not self.alt:
            for y in range(count):
                self.push_history(buf.get(y))
        self._shift(buf, top, bottom, count)
        self._shifted(top, bottom, count)

    def scroll_down(self, count: int | None = None) -> None:
        """SD (CSI n T) and the reverse index at the top margin."""
        top, bottom = self.margins or Margins(0, self.lines - 1)
        count = min(count or 1, bottom - top + 1)
        self._shift(self.buffer, top, bottom, -count)
        self._shifted(top, bottom, -count)

    def _shifted(self, top: int, bottom: int, count: int) -> None:
        """Rows top..bottom moved by `count`: the listener moves its row caches along (a line
        of output at the bottom then costs one row, not the whole screen), or all are dirty.
        Rows moved within a region (not the whole screen scrolled: lines keep their
        absolute numbers then) hold what other lines held: noted as erased."""
        if top != 0 or bottom != self.lines - 1:
            self._erased_rows(top, bottom)
        if self.on_shift is None:
            self.dirty.update(range(top, bottom + 1))
        else:
            self.on_shift(top, bottom, count)

    # -- erasing: keep wide characters whole -----------------------------------------------

    # -- erasures: what a wait after an input must not take for old (worker/echo.py) ----

    def _erased_all(self) -> None:
        """The whole main screen erased (ED 2, ED 0 from home, RIS)."""
        if not self.alt:
            self.erases += 1
            self._whole_erase = self.erases

    def _erased_rows(self, first: int, last: int, col: int = 0) -> None:
        """Main-screen rows first..last erased, the first from column `col`, the rest whole:
        noted by absolute line, with the erase's number, a column once (its latest)."""
        if self.alt or first > last:
            return
        self.erases += 1
        number, base, log = self.erases, self.scrolled, self._erasures
        for y in range(first, last + 1):
            log.setdefault(base + y, {})[col if y == first else 0] = number
        if len(log) > 2 * ERASURES_KEPT:  # (the oldest lines, long scrolled away, go: at
            for line in sorted(log)[: len(log) - ERASURES_KEPT]:  # once, now and then)
                del log[line]

    def erased_from(self, line: int, since: int) -> int | None:
        """The first column of absolute `line` erased after erase number `since`, or None."""
        if self._whole_erase > since:
            return 0
        cols = [col for col, number in self._erasures.get(line, {}).items() if number > since]
        return min(cols) if cols else None

    def insert_lines(self, count: int | None = None) -> None:
        self._erased_rows(self.cursor.y, (self.margins or Margins(0, self.lines - 1)).bottom)
        super().insert_lines(count)

    def delete_lines(self, count: int | None = None) -> None:
        self._erased_rows(self.cursor.y, (self.margins or Margins(0, self.lines - 1)).bottom)
        super().delete_lines(count)

    def erase_in_display(self, how: int = 0, *args: object, **kwargs: object) -> None:
        """ED; ED 3 clears the scrollback only, as xterm and tmux do (pyte clears the screen).
        Every erased cell takes the current background colour (`_erased`); pyte's set only
        the cells written before, the rest stayed default."""
        if how == 3:
            self.history.clear()
            self._styles, self._style_ids = [], {}
            self.resize_pushed = 0
            return
        if how not in (0, 1, 2):
            return
        y = self.cursor.y
        home, end = (
            (y, self.cursor.x) == (0, 0),
            (y, self.cursor.x) == (self.lines - 1, self.columns - 1),
        )
        if how == 2 or (how == 0 and home) or (how == 1 and end):
            self._erased_all()
        elif how == 0:
            self._erased_rows(y + 1, self.lines - 1)
        else:
            self._erased_rows(0, y - 1)
        rows = range(y + 1, self.lines) if how == 0 else range(y if how == 1 else self.lines)
        blank = self._erased()
        self.dirty.update(rows)
        for row in rows:
            line = self.buffer[row]
            if blank == line.default:  # (a blank row stays sparse)
                line.clear()
            else:
                line.update(dict.fromkeys(range(self.columns), blank))
        if how != 2:
            self.erase_in_line(how)

    def _erased(self) -> Char:
        """An erased cell: blank, on the current background colour (terminfo's `bce`, which
        xterm-256color promises: ncurses clears a coloured screen with ED and EL), the
        other attributes not kept (tmux and xterm: an erase in reverse video is no bar)."""
        blank = self.default_char
        bg = self.cursor.attrs.bg
        return blank if bg == blank.bg else self.styles.cells(blank._replace(bg=bg)).attrs

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        """EL as pyte does it, but with one dict update instead of a loop over the cells."""
        if how not in (0, 1, 2):
            return
        x = self.cursor.x
        line = self.buffer[self.cursor.y]
        self._split(line, x if how == 0 else x + 1)
        self._erased_rows(self.cursor.y, self.cursor.y, x if how == 0 else 0)
        self.dirty.add(self.cursor.y)
        cells = range(x, self.columns) if how == 0 else range(x + 1 if how == 1 else self.columns)
        line.update(dict.fromkeys(cells, self._erased()))

    def erase_characters(self, count: int | None = None) -> None:
        self._erased_rows(self.cursor.y, self.cursor.y, self.cursor.x)
        line = self.buffer[self.cursor.y]
        self._split(line, self.cursor.x)
        self._split(line, self.cursor.x + (count or 1))
        super().erase_characters(count)

    def delete_characters(self, count: int | None = None) -> None:
        self._erased_rows(self.cursor.y, self.cursor.y, self.cursor.x)
        line = self.buffer[self.cursor.y]
        self._split(line, self.cursor.x)
        self._split(line, self.cursor.x + (count or 1))
        super().delete_characters(count)

    def insert_characters(self, count: int | None = None) -> None:
        line = self.buffer[self.cursor.y]
        self._split(line, self.cursor.x)
        super().insert_characters(count)
        line.pop(self.columns, None)  # pyte can shift one cell past the last column
        if _is_wide(line.get(self.columns - 1)):
            line[self.columns - 1] = line[self.columns - 1]._replace(data=" ")

    # -- cursor save/restore: one slot, like xterm (pyte's stack grows without bound) -------

    def save_cursor(self) -> None:
        self.savepoints.clear()
        super().save_cursor()

    def restore_cursor(self) -> None:
        saved = self.savepoints[-1] if self.savepoints else None
        hidden = self.cursor.hidden
        super().restore_cursor()
        self.cursor.hidden = hidden  # pyte would restore DECTCEM from the savepoint
        if saved is not None:
            self.savepoints.append(saved._replace(cursor=copy.copy(saved.cursor)))

    # -- modes, alternate screen -----------------------------------------------------------

    def private_modes(self, modes: list[int], on: bool) -> None:
        """DECSET/DECRST with the alternate screen, which pyte lacks."""
        for mode in modes:
            if mode in (1049, 1047, 47):
                if on:
                    self._enter_alt(save_cursor=mode == 1049)
                else:
                    self._leave_alt(restore_cursor=mode == 1049)
            elif mode == 5:
                self.sgr_cache.clear()  # SGR 0 means "reverse" under DECSCNM
            elif mode == 3:
                continue  # DECCOLM: pyte would resize to 132 columns; xterm ignores it by default
            if on:
                self.set_mode(mode, private=True)
            else:
                self.reset_mode(mode, private=True)

    def _enter_alt(self, save_cursor: bool) -> None:
        if self.alt:
            return  # as tmux: a second enter neither saves the cursor nor clears
        if save_cursor:
            self._alt_saved = Savepoint(
                copy.copy(self.cursor),
                self.g0_charset,
                self.g1_charset,
                self.charset,
                mo.DECOM in self.mode,
                mo.DECAWM in self.mode,
            )
        self._main_buffer = self.buffer
        self.buffer = self._new_buffer()
        self.alt = True
        self.dirty.update(range(self.lines))

    def _leave_alt(self, restore_cursor: bool) -> None:
        if self.alt and self._main_buffer is not None:
            self.buffer = self._main_buffer
            self._main_buffer = None
            self.alt = False
            self.mode.difference_update({1049 << 5, 1047 << 5, 47 << 5})
            self.dirty.update(range(self.lines))
        saved = self._alt_saved
        if restore_cursor and saved is not None:
            self._alt_saved = None
            saved.cursor.hidden = self.cursor.hidden  # DECTCEM is a mode, not cursor state
            self.cursor = saved.cursor
            self.g0_charset, self.g1_charset = saved.g0_charset, saved.g1_charset
            self.charset = saved.charset
            self.ensure_hbounds()
            self.ensure_vbounds()

    def reset(self) -> None:
        """RIS also leaves the alternate screen; the scrollback survives."""
        self._leave_alt(restore_cursor=False)
        self._alt_saved = None
        self._erased_all()
        super().reset()
        self.sgr_cache.clear()
        self.keypad = False
        self.last_char = ""

    def soft_reset(self) -> None:
        """DECSTR (CSI ! p)."""
        self.mode.difference_update({mo.IRM, mo.DECOM, 1 << 5})
        self.mode.update({mo.DECAWM, mo.DECTCEM})
        self.cursor.hidden = False
        self.margins = None
        self.keypad = False
        self.charset = 0
        self.g0_charset = self.g1_charset = cs.LAT1_MAP
        self.select_graphic_rendition(0)
        self.savepoints.clear()

    def select_graphic_rendition(self, *attrs: int) -> None:
        super().select_graphic_rendition(*attrs)
        if self.cursor.attrs.bg == "bfightmagenta":  # typo in pyte.graphics.BG_AIXTERM[105]
            self.cursor.attrs = self.cursor.attrs._replace(bg="brightmagenta")
        self.cursor.attrs = self._cells(self.cursor.attrs).attrs  # interned (or approximated)

    def set_title(self, param: str) -> None:
        title = "".join(ch for ch in param[:TITLE_MAX] if ch.isprintable())
        self.title = title

    def tab_forward(self, count: int | None = None) -> None:
        for _ in range(min(count or 1, self.columns)):
            self.tab()

    def tab_back(self, count: int | None = None) -> None:
        """CBT (CSI n Z): pyte has no backward tab."""
        for _ in range(min(count or 1, self.columns)):
            stops = [s for s in self.tabstops if s < self.cursor.x]
            self.cursor.x = max(stops) if stops else 0

    # -- resize ----------------------------------------------------------------------------

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """Resize like tmux: shrinking eats blank-or-not rows below the cursor first, then
        pushes rows off the top into the scrollback; growing pulls those rows back."""
        lines = lines or self.lines
        columns = columns or self.columns
        if lines == self.lines and columns == self.columns:
            return
        old = self.lines
        if lines != old:
            main = self._main_buffer if self.alt else self.buffer
            if self.alt:
                self.cursor.y = self._resize_rows(self.buffer, old, lines, self.cursor.y, False)
            saved = self._alt_saved
            main_y = saved.cursor.y if self.alt and saved is not None else self.cursor.y
            assert main is not None
            main_y = self._resize_rows(main, old, lines, main_y, True)
            if not self.alt:
                self.cursor.y = main_y
            elif saved is not None:
                saved.cursor.y = main_y
        if columns < self.columns:
            for buf in (self.buffer, self._main_buffer or {}):
                for line in buf.values():
                    for x in [x for x in line if x >= columns]:
                        del line[x]
                    if _is_wide(line.get(columns - 1)):
                        line[columns - 1] = line[columns - 1]._replace(data=" ")
        elif columns > self.columns:
            self.tabstops.update(range(8 * ((self.columns + 7) // 8), columns, 8))
        self.lines, self.columns = lines, columns
        self.margins = None
        self.cursor.x = min(self.cursor.x, columns - 1)
        self.cursor.y = min(self.cursor.y, lines - 1)
        self.dirty.update(range(lines))

    def _resize_rows(self, buf: Buffer, old: int, new: int, cy: int, history: bool) -> int:
        if new < old:
            needed = old - new
            eat = min(max(old - 1 - cy, 0), needed)
            for y in range(old - eat, old):
                buf.pop(y, None)
            needed -= eat
            if needed:
                if history and self.history.maxlen:
                    for y in range(needed):
                        self.push_history(buf.get(y))
                    self.resize_pushed += needed
                self._shift(buf, 0, old - 1, needed)
                cy -= needed
            return max(cy, 0)
        pull = min(new - old, self.resize_pushed, len(self.history)) if history else 0
        if pull:
            self._shift(buf, 0, new - 1, -pull)
            for y in range(pull - 1, -1, -1):
                buf[y] = self.unrecord(self.history.pop())
            self.resize_pushed -= pull
            self.scrolled -= pull
            cy += pull
        return cy

"""Terminal screen model fed with the raw bytes a program writes to its PTY.

This is the only public door to pyte. The heavy lifting lives in two private helpers:
``_emulator_parser`` (tokenizer, caps, query replies) and ``_emulator_screen`` (a pyte.Screen
subclass with alternate screen, scrollback and wide-char fixes). This module adds the caches
that make frequent reads cheap: each row is snapshotted once per feed, and its text is only
rebuilt when the snapshot differs, so ``lines()``/``find()`` cost nothing on an idle screen.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Iterable
from itertools import chain
from operator import itemgetter

from pyte.screens import Char
from wcwidth import wcswidth, wcwidth

from agentty_core.emulator._ansi import SgrMemo, ansi_row
from agentty_core.emulator._ansi import _ansi_line as _ansi_line
from agentty_core.emulator._ansi import _make_sgr as _make_sgr
from agentty_core.emulator._parser import Parser
from agentty_core.emulator._screen import (
    BLINK,
    BOLD,
    ITALICS,
    REVERSE,
    STRIKETHROUGH,
    UNDERSCORE,
    Run,
    Screen,
    cell_runs,
    row_cells,
)
from agentty_core.screen_text import readings, to_cursor

__all__ = ["BLINK", "BOLD", "ITALICS", "REVERSE", "STRIKETHROUGH", "UNDERSCORE", "Emulator", "Run"]

_log = logging.getLogger(__name__)
_DATA = itemgetter(0)
_MOUSE = frozenset(m << 5 for m in (1000, 1002, 1003, 1006))
_ANSI_CACHE = 4 << 20  # characters of rendered rows kept between ansi_lines() calls
_APP_CURSOR = 1 << 5
_BRACKETED_PASTE = 2004 << 5


class Emulator:
    """A screen for one PTY: feed it output bytes, read text, styles, cursor and modes."""

    def __init__(self, cols: int = 80, rows: int = 24, scrollback: int = 5000) -> None:
        if cols < 1 or rows < 1:
            raise ValueError(f"terminal size must be positive, got {cols}x{rows}")
        self._screen = Screen(cols, rows, scrollback)
        self._parser = Parser(self._screen, _log)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._seq = 0
        self._blank: tuple[Char, ...] = ()
        self._snap: list[tuple[Char, ...]] = []
        self._text: list[str | None] = []
        self._ui_dirty: set[int] = set()
        self._shown: list[tuple[Char, ...]] = []  # each row as of the last flush
        self._recheck: set[int] = set()  # rows to compare with what was shown
        self._ansi: dict[int, tuple[tuple[Char, ...], str]] = {}  # id(snapshot) -> row
        self._screen.on_shift = self._on_shift
        self._reset_caches()
        self._state = self._state_key()

    # -- caches ----------------------------------------------------------------------------

    def _reset_caches(self) -> None:
        s = self._screen
        self._blank = (s.default_char,) * s.columns
        self._snap = [self._blank] * s.lines
        self._shown = list(self._snap)  # (every row is reported dirty below anyway)
        self._recheck.clear()
        self._text = [None] * s.lines
        self._ui_dirty = set(range(s.lines))
        s.dirty.update(range(s.lines))

    def _on_shift(self, top: int, bottom: int, count: int) -> None:
        """Scrolling moves the cached rows with the buffer's: only the rows it vacates (and
        rows already dirty, moved along) are rebuilt at the next flush, so a line of output
        at the bottom costs one row, not the whole screen."""
        dirty = self._screen.dirty
        if abs(count) > bottom - top or len(self._snap) != self._screen.lines:
            dirty.update(range(top, bottom + 1))
            return
        snaps, texts = self._snap, self._text
        # Vacated rows keep what was shown there until the flush compares it with the new.
        if count > 0:
            snaps[top : bottom + 1 - count] = snaps[top + count : bottom + 1]
            texts[top : bottom + 1 - count] = texts[top + count : bottom + 1]
            moved = {y - count for y in dirty if top + count <= y <= bottom}
            vacated = range(bottom + 1 - count, bottom + 1)
        else:
            snaps[top - count : bottom + 1] = snaps[top : bottom + 1 + count]
            texts[top - count : bottom + 1] = texts[top : bottom + 1 + count]
            moved = {y - count for y in dirty if top <= y <= bottom + count}
            vacated = range(top, top - count)
        kept = {y for y in dirty if y < top or y > bottom}
        dirty.clear()
        dirty.update(kept, moved, vacated)
        self._recheck.update(range(top, bottom + 1))

    def _state_key(self) -> tuple[object, ...]:
        s = self._screen
        c = s.cursor
        return (c.y, c.x, c.hidden, s.title, s.alt, s.keypad, frozenset(s.mode))

    def _flush(self) -> bool:
        """Fold pyte's dirty rows into the snapshots; bump seq if anything visible changed."""
        s = self._screen
        changed = False
        if s.dirty:
            rows, cols, buf = s.lines, s.columns, s.buffer
            default = s.default_char
            if self._blank[:1] != (default,):
                self._blank = (default,) * cols
            snaps, texts = self._snap, self._text
            for y in s.dirty:
                if 0 <= y < rows:
                    line = buf.get(y)
                    snap = row_cells(line, cols, default) if line else self._blank
                    if snap != snaps[y]:
                        snaps[y] = snap
                        texts[y] = None
                        self._recheck.add(y)
            s.dirty.clear()
        if self._recheck:
            snaps, shown = self._snap, self._shown
            for y in self._recheck:
                if snaps[y] is not shown[y] and snaps[y] != shown[y]:
                    shown[y] = snaps[y]
                    self._ui_dirty.add(y)
                    changed = True
            self._recheck.clear()
        state = self._state_key()
        if state != self._state:
            self._state = state
            changed = True
        if changed:
            self._seq += 1
        return changed

    def _texts(self) -> list[str | None]:
        self._flush()
        texts = self._text
        for y, text in enumerate(texts):
            if text is None:
                texts[y] = "".join(map(_DATA, self._snap[y])).rstrip(" ")
        return texts

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Parse PTY output; returns the replies the terminal owes the program (usually b"").

        Never raises: a handler failure is logged and the rest of the chunk still applies.
        """
        if not data:
            return b""
        try:
            self._parser.feed(self._decoder.decode(data))
        except Exception:
            _log.warning("emulator: parser failure, state reset", exc_info=True)
            self._parser.reset()
        self._flush()
        replies = self._screen.replies
        if not replies:
            return b""
        out = "".join(replies).encode("utf-8")
        replies.clear()
        return out

    def resize(self, cols: int, rows: int) -> None:
        """Resize keeping the scrollback; a row shrink pushes top rows into it, like tmux."""
        if cols < 1 or rows < 1:
            raise ValueError(f"terminal size must be positive, got {cols}x{rows}")
        try:
            self._screen.resize(lines=rows, columns=cols)
        except Exception:
            _log.warning("emulator: resize failure", exc_info=True)
        self._reset_caches()
        self._flush()
        self._seq += 1

    # -- reading ---------------------------------------------------------------------------

    @property
    def cols(self) -> int:
        return self._screen.columns

    @property
    def rows(self) -> int:
        return self._screen.lines

    @property
    def seq(self) -> int:
        """Change counter: moves only when content, cursor, title or modes changed."""
        return self._seq

    @property
    def erases(self) -> int:
        """The main screen's erasures so far: see `_screen.Screen.erases`."""
        return self._screen.erases

    def erased_from(self, line: int, since: int) -> int | None:
        """The first column of absolute `line` erased after erasure number `since`."""
        return self._screen.erased_from(line, since)

    @property
    def scrolled(self) -> int:
        """Lines scrolled off the top so far (not bounded by the scrollback's length): the
        top row's absolute line, which stays with a row as it scrolls."""
        return self._screen.scrolled

    def lines(self) -> list[str]:
        """The visible rows, trailing spaces stripped; a wide char appears once."""
        return [t or "" for t in self._texts()]

    def scrollback(self) -> list[str]:
        """History lines, oldest first."""
        return [text for text, _runs in self._screen.history]

    def row_runs(self, row: int) -> list[Run]:
        """Row `row` (0 <= row < rows) as styled runs covering the full width."""
        if not 0 <= row < self.rows:
            raise IndexError(f"row {row} out of range 0..{self.rows - 1}")
        self._flush()
        return cell_runs(self._snap[row])

    def ansi_lines(self) -> list[str]:
        """Visible rows with SGR styling; trailing default-styled blanks are dropped.

        A row is rendered once per snapshot (keyed by the snapshot itself, so scrolled rows
        stay cached): under per-cell colour a full screen costs seconds to render, and
        repeated `get --ansi` calls must not pay that each time. The cache holds at most
        _ANSI_CACHE characters, whatever the screen size."""
        self._flush()
        old, new = self._ansi, {}
        out: list[str] = []
        budget = _ANSI_CACHE
        memo = SgrMemo()
        for snap in self._snap:
            hit = old.get(id(snap))
            if hit is None or hit[0] is not snap:
                hit = (snap, ansi_row(snap, memo))
            out.append(hit[1])
            if budget >= len(hit[1]):
                budget -= len(hit[1])
                new[id(snap)] = hit
        self._ansi = new
        return out

    def dirty_rows(self) -> set[int]:
        """Rows whose content changed since the previous call."""
        self._flush()
        rows, self._ui_dirty = self._ui_dirty, set()
        return rows

    @property
    def cursor(self) -> tuple[int, int]:
        """(row, col), 0-based; a pending wrap after the last column reports that column."""
        c = self._screen.cursor
        return c.y, min(c.x, self._screen.columns - 1)

    @property
    def typing_at(self) -> tuple[int, int]:
        """(row, col) where the next character goes: `cursor`, but past the last column in
        a pending wrap (a prompt that ends at the row's end: its last blank is the next row's)."""
        c = self._screen.cursor
        return c.y, c.x

    @property
    def cursor_visible(self) -> bool:
        return not self._screen.cursor.hidden

    @property
    def title(self) -> str:
        return self._screen.title

    @property
    def alt_screen(self) -> bool:
        return self._screen.alt

    @property
    def modes(self) -> dict[str, bool]:
        mode = self._screen.mode
        return {
            "applicationCursor": _APP_CURSOR in mode,
            "bracketedPaste": _BRACKETED_PASTE in mode,
            "mouse": not _MOUSE.isdisjoint(mode),
            "applicationKeypad": self._screen.keypad,
        }

    def find(self, needle: str, *, scrollback: bool = False) -> tuple[int, int] | None:
        """(row, screen column) of the first occurrence, or None.

        With scrollback=True rows count from the oldest history line, screen rows following.
        The column counts cells, so it matches the cursor's: a wide character before the
        match counts two.
        """
        return find_in(self._searchable(scrollback), needle)

    def search(
        self, pattern: re.Pattern[str], *, scrollback: bool = False
    ) -> tuple[int, int] | None:
        """Like find() with a regex searched in each line."""
        return search_in(self._searchable(scrollback), pattern)

    def _searchable(self, scrollback: bool) -> chain[str]:
        screen = to_cursor([t or "" for t in self._texts()], *self.typing_at, self.cols, cells)
        if scrollback:
            return chain((text for text, _runs in self._screen.history), screen)
        return chain(screen)


def find_in(lines: Iterable[str], needle: str) -> tuple[int, int] | None:
    """(row, screen column) of the first occurrence of `needle` in `lines`, or None."""
    for row, text in enumerate(lines):
        index = text.find(needle)
        if index >= 0:
            return row, _cell_column(text, index)
    return None


def search_in(lines: Iterable[str], pattern: re.Pattern[str]) -> tuple[int, int] | None:
    """Like find_in() with a regex searched in each line."""
    for row, text in enumerate(lines):
        for reading in readings(text):
            m = pattern.search(reading)
            if m is not None:
                return row, _cell_column(reading, m.start())
    return None


def char_width(ch: str) -> int:
    """Cells one code point takes on screen, as the emulator counts them (0 for a combining
    mark, -1 for a control character)."""
    return int(wcwidth(ch))


def cells(text: str) -> int:
    """Screen cells `text` takes: wide characters two."""
    return _cell_column(text, len(text))


def _cell_column(text: str, index: int) -> int:
    """The screen column where `text[index]` is drawn: wide characters take two cells."""
    prefix = text[:index]
    if prefix.isascii():
        return index
    width = wcswidth(prefix)
    return width if width >= 0 else index

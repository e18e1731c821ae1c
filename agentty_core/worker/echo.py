"""Where typed text was echoed, so that a wait `after` an input is not satisfied by its echo.

The terminal (or the program's line editor) draws what an agent types at the cursor: in bash,
`echo BUILD-OK` + Enter puts `BUILD-OK` on screen before the command has run. Counting only
screens newer than the input's seq cannot tell the two apart: the echo is newer too.

So each input that carries printable text leaves an Echo: the cursor's position when it was
written, as an absolute line (lines scrolled off so far + cursor row, which follows the row
as it scrolls) and a column, and the text split into lines. A wait with `after` reads text
and regex conditions on the screen with those echoes masked (blanked):

- the first line of the text, only where it still shows exactly there (wrapping onto the next
  rows at column 0, wide characters counting two cells), or the part of it drawn so far,
  with nothing after it on the row (a line editor draws a pasted line in several writes;
  the prompt's last blank may still be on its way, so the part may begin after blanks);
- each later line (a multi-line paste: a REPL's `... ` prompt shifts the column), at its first
  occurrence on a row after the previous line's.

Where the program redrew that place (vim's message over its `:` command line, `clear`, the
alternate screen) nothing matches, nothing is masked, and real output there still counts.

Output from before the input is masked too, where nothing new was drawn: each input also
leaves a Before, the normal screen as the input found it (at the seq its answer gives), the
rows above the cursor and the cursor's row up to the cursor. A row that still shows just
that (its echo masked) reads as blank: the last run's "TESTS: 3 failed" and the prompt an
input was typed at no longer satisfy a wait for "TESTS:" or for the prompt after the next
command, which counted them once any newer screen came. A row with anything new on it
counts whole (`pw> GOT-3`, the answer written on the prompt's row). A wait `after` a seq
uses the latest Before taken at or before it. Not on the alternate screen, or with the
cursor hidden (a TUI redraws what it showed, and its old status line may be the answer);
input typed on the alternate screen (vim, less) keeps the normal screen's last Before, for
when the program ends. A row erased since, where it showed something (the emulator says:
`erased_from`), is new whatever it shows: `clear; make test` run again, a watch mode's
rerun, a prompt asked again in place, draw the same text at the same place anew. With the
scrollback searched, the lines already in it are old. The cursor's row also matches its
whole as it was (a right-side prompt, zsh's RPROMPT, follows the cursor).
Text already shown at the cursor when it was typed (a TUI's key that is a command, typed over
the same letter) records nothing: it could not be told from the program's own output. Nor
does input to a program reading lines with echo off (see draws_echo), or typed while the
cursor is hidden (a TUI taking keys as commands).

Cost: nothing until a wait with `after` has a text or regex to check; then, once per screen
version, each recent echo is placed again, except where the rows that placed it last are
unchanged (one row of output at the bottom re-places nothing else).
"""

from __future__ import annotations

import re
import termios
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agentty_core.emulator.interface import TerminalModel
from agentty_core.emulator.pyte_backend import cells, char_width, find_in, search_in
from agentty_core.screen_text import to_cursor

MAX_ECHOES = 32  # the most recent inputs whose echoes are masked
MAX_SAVED = 4  # the latest inputs whose masked rows an ended session's final screen keeps
MAX_SEGMENTS = 200  # lines of one input that are followed (a huge paste: its first ones)
MAX_CHARS = 16_384  # characters of one input that are followed
# Escape sequences in typed bytes (a key's, or pasted): never drawn as themselves.
_ESCAPES = re.compile(
    r"\x1b(?:\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]|\][^\x07\x1b]*(?:\x07|\x1b\\)|.)?"
)
_CONTROLS = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

Span = tuple[int, int, int]  # absolute line, first and past-last character index


@dataclass(frozen=True, eq=False)
class Echo:
    """One input's text, and where its echo begins (see the module docstring). Compared
    (and hashed, as a key of the caches) by identity: one Echo a write."""

    line: int
    col: int
    alt: bool
    segments: tuple[str, ...]
    seq: int = 0  # the screen's, when it was typed


@dataclass(frozen=True, eq=False)
class Before:
    """The normal screen at `seq`, when an input was written: from absolute line `top`, the
    rows above the cursor whole and the cursor's row up to the cursor (see the module
    docstring). Empty on the alternate screen or with the cursor hidden."""

    seq: int
    top: int
    rows: tuple[str, ...]
    erases: int = 0  # the emulator's count of erasures then
    whole: str = ""  # the cursor's row whole


def before(emu: TerminalModel) -> Before:
    """What an input about to be written finds on the screen (see Before)."""
    if emu.alt_screen or not emu.cursor_visible:
        return Before(emu.seq, emu.scrolled, (), emu.erases)
    row, col = emu.typing_at
    lines = emu.lines()[: row + 1]
    whole = ""
    if lines:
        whole = text = lines[-1]
        cut = _index_at(text, col)
        lines[-1] = text[: len(text) if cut is None else cut].rstrip(" ")
    return Before(emu.seq, emu.scrolled, tuple(lines), emu.erases, whole)


def segments_of(text: str) -> tuple[str, ...]:
    """The lines of typed text as they would be drawn: escape sequences and control
    characters dropped, split at CR/LF. Empty when nothing printable is typed."""
    text = _CONTROLS.sub("", _ESCAPES.sub("", text[:MAX_CHARS]))
    segments = tuple(_LINE_BREAK.split(text))[:MAX_SEGMENTS]
    return segments if any(segments) else ()


def draws_echo(fd: int) -> bool:
    """Whether typed input shows on the terminal of PTY `fd`. A program reading lines with
    echo off (`read -s`, `stty -echo; cat`) gets no echo: whatever it prints where the cursor
    was is its output, and must count. A line editor reads raw with echo off, but draws what
    it reads: that is an echo."""
    try:
        lflag = termios.tcgetattr(fd)[3]
    except (termios.error, OSError):
        return True
    return not (lflag & termios.ICANON and not lflag & termios.ECHO)


class Rows:
    """The session's rows by absolute line: the screen's, and the scrollback's when asked
    (read once, only if needed)."""

    def __init__(self, emu: TerminalModel) -> None:
        self.emu = emu
        self.top = emu.scrolled
        self.screen = emu.lines()
        self.cols = emu.cols
        self._history: list[str] | None = None

    @property
    def history(self) -> list[str]:
        if self._history is None:
            self._history = self.emu.scrollback()
        return self._history

    def get(self, line: int) -> str | None:
        row = line - self.top
        if 0 <= row < len(self.screen):
            return self.screen[row]
        if row < 0 and -row <= len(self.history):
            return self.history[row]
        return None


def _index_at(text: str, col: int) -> int | None:
    """The index in `text` of the character drawn at cell `col` (past its end: as if padded
    with blanks); None inside a wide character."""
    if text.isascii():
        return col
    cells = 0
    for index, ch in enumerate(text):
        if cells == col:
            return index
        cells += max(char_width(ch), 0)
        if cells > col:
            return None
    return len(text) + (col - cells)


def _match(rows: Rows, line: int, col: int, segment: str) -> list[Span] | None:
    """Where `segment` is drawn starting at (line, col), wrapping at the right margin; None
    unless every character is exactly there."""
    text = rows.get(line)
    pos = None if text is None else _index_at(text, col)
    if text is None or pos is None:
        return None
    if segment.isascii():  # one cell a character: compared a row's stretch at a time
        return _match_ascii(rows, line, col, pos, text, segment)
    spans: list[Span] = []
    start = pos
    for ch in segment:
        width = char_width(ch)
        if width < 0:
            return None
        if width and col + width > rows.cols:  # the terminal wraps before it
            spans.append((line, start, pos))
            line, col, pos, start = line + 1, 0, 0, 0
            text = rows.get(line)
            if text is None:
                return None
        if (text[pos] if pos < len(text) else " ") != ch:
            return None
        pos += 1
        col += width
    spans.append((line, start, pos))
    return spans


def _match_ascii(
    rows: Rows, line: int, col: int, pos: int, text: str, segment: str
) -> list[Span] | None:
    """_match for text of one-cell characters (what is typed, mostly)."""
    spans: list[Span] = []
    done = 0
    while True:
        take = min(rows.cols - col, len(segment) - done)
        shown = text[pos : pos + take]
        if shown.ljust(take) != segment[done : done + take]:
            return None
        spans.append((line, pos, pos + take))
        done += take
        if done == len(segment):
            return spans
        line, col, pos = line + 1, 0, 0
        next_text = rows.get(line)
        if next_text is None:
            return None
        text = next_text


def _drawn_so_far(rows: Rows, line: int, col: int, segment: str) -> list[Span] | None:
    """Where the start of `segment` shows at (line, col) with nothing after it on the row:
    an echo still being drawn (a line editor draws a pasted line a few characters a write),
    which the next screens complete. It may begin after blanks: the prompt's last space was
    still on its way when the input was written. None unless a part of it is there
    (one-cell text)."""
    text = rows.get(line)
    if text is None or not segment.isascii() or not text.isascii():
        return None
    rest = text[col:].rstrip(" ")
    for skip in (0, len(rest) - len(rest.lstrip(" "))):
        drawn = rest[skip:]
        if drawn and len(drawn) < len(segment) and segment.startswith(drawn):
            return [(line, col + skip, col + len(rest))]
    return None


def _find_on(rows: Rows, echo: Echo, segment: str) -> list[Span] | None:
    """`segment` further right on the echo's row (the prompt's end was still on its way when
    the input was written), or at the next row's start (a pending wrap reads as the last
    column)."""
    text = rows.get(echo.line) or ""
    start = _index_at(text, echo.col + 1)
    index = -1 if start is None else text.find(segment, start)
    if index >= 0:
        return _match(rows, echo.line, _width(text[:index]), segment)
    if echo.col == rows.cols - 1:
        return _match(rows, echo.line + 1, 0, segment)
    return None


def _width(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(max(char_width(ch), 0) for ch in text)


def _find_after(rows: Rows, line: int, segment: str, limit: int) -> list[Span] | None:
    """The first place on a row after `line` (within `limit` rows) that shows `segment`."""
    for candidate in range(line + 1, line + 1 + limit):
        text = rows.get(candidate)
        if text is None:
            if candidate >= rows.top + len(rows.screen):
                return None
            continue
        index = text.find(segment[0])
        while index >= 0:
            spans = _match(rows, candidate, _width(text[:index]), segment)
            if spans is not None:
                return spans
            index = text.find(segment[0], index + 1)
    return None


def _followed(rows: Rows, span: Span, then: Echo | None) -> bool:
    """Whether the character right after `span` on its row is not blank, and not where the
    next input (`then`) was typed: keys typed one by one follow each other."""
    line, _, end = span
    text = rows.get(line) or ""
    if end >= len(text) or text[end] == " ":
        return False
    return then is None or (then.line, then.col) != (line, _width(text[:end]))


def echo_spans(echo: Echo, rows: Rows, then: Echo | None = None) -> tuple[list[Span], bool]:
    """Where `echo` still shows (see the module docstring), empty where it does not, and
    whether that is all of it (False: a later line is not, or not yet, to be seen). `then`
    is the input typed after it, if any."""
    spans: list[Span] = []
    line = echo.line
    first, *later = echo.segments
    if first:
        found = _match(rows, echo.line, echo.col, first) or _find_on(rows, echo, first)
        if found is not None and len(first) == 1 and not later and _followed(rows, found[-1], then):
            found = None  # a key's character that the program's answer begins with
            # (`y` at "[y/n] ", read with no echo, then "yes" written there)
        if found is None:
            partial = _drawn_so_far(rows, echo.line, echo.col, first)
            if partial is not None:
                return partial, False  # still being drawn: the rest comes on later screens
            return [], True  # redrawn: the later lines cannot be placed either
        spans += found
        line = found[-1][0]
    for segment in later:
        if not segment:
            continue  # an empty line: the next one is still on a later row
        found = _find_after(rows, line, segment, len(rows.screen))
        if found is None:
            return spans, False  # the lines after it would be guesses
        spans += found
        line = found[-1][0]
    return spans, True


def _blank(text: str, cuts: list[tuple[int, int]]) -> str:
    """`text` with the characters of each cut blanked, each as wide as it was."""
    if text.isascii():
        for start, end in cuts:
            end = min(end, len(text))
            if start < end:
                text = text[:start] + " " * (end - start) + text[end:]
        return text.rstrip(" ")
    chars = list(text)
    for start, end in cuts:
        for index in range(start, min(end, len(chars))):
            chars[index] = " " * max(char_width(chars[index]), 0)
    return "".join(chars).rstrip(" ")


class EchoLog:
    """The recent inputs' echoes, and the screen with them masked (computed once per screen
    version, only for a wait with `after`)."""

    def __init__(self) -> None:
        self.echoes: deque[Echo] = deque(maxlen=MAX_ECHOES)
        self.befores: deque[Before] = deque(maxlen=MAX_ECHOES)
        self._cached: dict[bool, tuple[tuple[int, int, Before | None], MaskedView | None]] = {}
        # Where echoes wholly in the scrollback are: it never changes, so it is found once.
        self._settled: dict[Echo, list[Span]] = {}
        # Where each echo was found last, with the rows that placed it: the same rows place
        # it the same way (a row of output at the bottom does not move an echo's spans).
        self._recent: dict[
            Echo, tuple[tuple[tuple[int, str | None], ...], list[Span], Echo | None]
        ] = {}
        self._version = 0

    def note_before(self, emu: TerminalModel) -> None:
        """An input is about to be written: remember what it finds (see Before)."""
        if self.befores and self.befores[-1].seq == emu.seq:
            return  # (the same screen)
        taken = before(emu)
        if emu.alt_screen and self.befores:  # the normal screen as it was left, for when
            last = self.befores[-1]  # the full-screen program ends (vim, then the hooks)
            taken = Before(taken.seq, last.top, last.rows, last.erases, last.whole)
        self.befores.append(taken)

    def _before(self, after: int | None) -> Before | None:
        """The Before a wait `after` seq masks with: the latest taken at or before it."""
        if after is not None:
            for taken in reversed(self.befores):
                if taken.seq <= after:
                    return taken if taken.rows else None
        return None

    def note(self, text: str, emu: TerminalModel) -> None:
        """Input `text` is being written: remember where its echo will be drawn."""
        segments = segments_of(text)
        if not segments or not emu.cursor_visible:
            return  # (a TUI that hides its cursor does not draw what is typed at it)
        row, col = emu.cursor
        line = emu.scrolled + row
        last = self.echoes[-1] if self.echoes else None
        if (
            last is not None
            and (last.line, last.col, last.alt, last.seq) == (line, col, emu.alt_screen, emu.seq)
            and len(last.segments) == 1
            and col + _width(last.segments[0]) < emu.cols
        ):
            # Typed before the last input's echo was drawn (nothing drawn since it, not even
            # its erasure: the cursor came back there): this one's goes after it.
            col += _width(last.segments[0])
        echo = Echo(line, col, emu.alt_screen, segments, emu.seq)
        rows, first = Rows(emu), segments[0]
        if (
            first
            and (  # (as echo_spans looks, but a key's character followed by more too)
                _match(rows, echo.line, col, first)
                or _find_on(rows, Echo(echo.line, col, echo.alt, segments[:1]), first)
                or _drawn_so_far(rows, echo.line, col, first)
            )
        ):
            return  # already shown there: the echo could not be told from the program's text
        self.echoes.append(echo)
        self._version += 1
        self._settled = {e: spans for e, spans in self._settled.items() if e in self.echoes}
        self._recent = {e: found for e, found in self._recent.items() if e in self.echoes}

    def view(
        self, emu: TerminalModel, *, scrollback: bool, after: int | None = None
    ) -> MaskedView | None:
        """The screen with the echoes and the unchanged rows from before the input `after`
        masked, or None when nothing is."""
        taken = self._before(after)
        if not self.echoes and taken is None:
            return None
        key = (emu.seq, self._version, taken)
        cached = self._cached.get(scrollback)
        if cached is not None and cached[0] == key:
            return cached[1]
        view = self._build(emu, scrollback, taken)
        self._cached[scrollback] = (key, view)
        return view

    def saved(
        self, emu: TerminalModel, read: list[str], history: list[str]
    ) -> list[dict[str, object]]:
        """What a wait `after` one of the latest inputs reads on the final screen, kept with
        it for a caller that asks once the session ended (`final_wait.masked_lines`): for
        each such input (and for the echoes alone, `after` null: a wait after none of them)
        the rows of `read` (the screen to its cursor, as the caller reads it) that the
        masking changed (`rows`; `read`, all of them, should the two not line up) and of
        `history` (its scrollback: the first `blank` lines read as blank, then `history`'s
        changes; null, should they not line up: then read as they are)."""
        afters: list[int | None] = [None] if self.echoes else []
        afters += [taken.seq for taken in list(self.befores)[-MAX_SAVED:]]
        kept: list[dict[str, object]] = []
        for after in dict.fromkeys(afters):
            entry: dict[str, object] = {"after": after}
            view = self.view(emu, scrollback=True, after=after)
            if view is not None:
                rows = _changed(read, view.read)
                entry.update({"rows": rows} if rows is not None else {"read": view.read})
                blank = next((i for i, line in enumerate(view.history) if line), None)
                blank = len(view.history) if blank is None else blank
                entry["blank"] = blank
                entry["history"] = _changed(history, view.history, blank)
            kept.append(entry)
        return kept

    def _spans(self, echo: Echo, rows: Rows, then: Echo | None) -> list[Span]:
        settled = self._settled.get(echo)
        if settled is not None:
            return settled
        recent = self._recent.get(echo)
        if (
            recent is not None
            and recent[2] is then
            and all(rows.get(line) == text for line, text in recent[0])
        ):
            return recent[1]  # the rows it was looked for on are as they were
        spans, complete = echo_spans(echo, rows, then)
        if complete:
            last = max(spans[-1][0] if spans else echo.line, echo.line + 1)
            looked = tuple((line, rows.get(line)) for line in range(echo.line, last + 1))
            self._recent[echo] = (looked, spans, then)
        if spans and complete and spans[-1][0] < rows.top:
            self._settled[echo] = spans
        elif not spans and complete and echo.line < rows.top - len(rows.screen):
            self._settled[echo] = spans  # a screen above: the echo is not being drawn now
        return spans

    def _build(
        self, emu: TerminalModel, scrollback: bool, taken: Before | None
    ) -> MaskedView | None:
        rows = Rows(emu)
        alt = emu.alt_screen
        masks: dict[int, list[tuple[int, int]]] = {}
        echoes = list(self.echoes)
        for index, echo in enumerate(echoes):
            then = echoes[index + 1] if index + 1 < len(echoes) else None
            if echo.alt != alt:
                continue
            for line, start, end in self._spans(echo, rows, then):
                masks.setdefault(line, []).append((start, end))
        old = taken is not None and not alt
        if not masks and not old:
            return None
        screen = list(rows.screen)
        history: list[str] = list(rows.history) if scrollback else []

        def at(line: int) -> tuple[list[str], int] | None:
            row = line - rows.top
            target, index = (screen, row) if row >= 0 else (history, len(history) + row)
            return (target, index) if 0 <= index < len(target) else None  # (else: in the
            # scrollback, which this wait does not read)

        for line, cuts in masks.items():
            if (place := at(line)) is not None:
                target, index = place
                target[index] = _blank(target[index], cuts)
        if taken is not None and old:
            _blank_unchanged(taken, emu, rows, at)
            first = rows.top - len(history)  # (the oldest kept line's absolute number)
            for index in range(max(0, min(len(history), taken.top - first))):
                history[index] = ""  # in the scrollback before the input (read if asked)
        read = to_cursor(screen, *emu.typing_at, emu.cols, cells)
        return MaskedView(emu.seq, screen, history, read)


def _changed(lines: list[str], masked: list[str], start: int = 0) -> list[list[object]] | None:
    """`masked` as the rows that differ from `lines` from `start` on ([index, text] each);
    None where the two are not the same length."""
    if len(lines) != len(masked):
        return None
    return [[i, masked[i]] for i in range(start, len(lines)) if masked[i] != lines[i]]


def _blank_unchanged(
    taken: Before,
    emu: TerminalModel,
    rows: Rows,
    at: Callable[[int], tuple[list[str], int] | None],
) -> None:
    """Blank each row of `taken` with nothing new on it (see Before): showing what it did,
    or so once the echoes are masked (the input's, typed after it; `at` gives the masked
    row), and not erased since where it showed something."""
    last = taken.top + len(taken.rows) - 1
    for line, shown in enumerate(taken.rows, taken.top):
        if not shown or (place := at(line)) is None:
            continue
        erased = emu.erased_from(line, taken.erases)
        if erased is not None and erased < _width(shown):
            continue  # drawn anew
        target, index = place
        now = (rows.get(line), target[index].rstrip(" "))
        if shown in now or (line == last and taken.whole in now):
            target[index] = ""


class MaskedView:
    """A ScreenView (see waits.py) over the masked rows."""

    def __init__(
        self, seq: int, screen: list[str], history: list[str], read: list[str] | None = None
    ) -> None:
        self._seq = seq
        self.screen = screen
        self.history = history
        self.read = screen if read is None else read  # as matched: `screen_text.to_cursor`

    @property
    def seq(self) -> int:
        return self._seq

    def _lines(self, scrollback: bool) -> Iterable[str]:
        return [*self.history, *self.read] if scrollback else self.read

    def find(self, needle: str, *, scrollback: bool = False) -> tuple[int, int] | None:
        return find_in(self._lines(scrollback), needle)

    def search(
        self, pattern: re.Pattern[str], *, scrollback: bool = False
    ) -> tuple[int, int] | None:
        return search_in(self._lines(scrollback), pattern)

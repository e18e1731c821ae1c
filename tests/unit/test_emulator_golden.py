"""Golden tests: the emulator's fast paths against stock pyte fed the same bytes.

The reference is a plain pyte.Screen (plus a record of the rows that scroll off its top), so
these tests pin down that the line-flood shortcut, the tokenizer and the screen fixes give the
same text, cursor, styles and history as pyte wherever pyte's model is the same as ours.
Captured streams live in tests/data (vim, less, top -b, ls --color, via `script`).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pyte
import pytest
from pyte.screens import Char

from agentty_core.emulator._flood import Flood
from agentty_core.emulator._screen import Run, cell_runs, row_cells
from agentty_core.emulator.pyte_backend import Emulator, _ansi_line

DATA = Path(__file__).parents[1] / "data"
CSI = "\x1b["
# What stock pyte mis-parses or lacks and the emulator handles on purpose: private SGR-like
# sequences (>4;2m would be bold underline), window ops, keypad and cursor-key modes.
_PYTE_UNSAFE = re.compile(rb"\x1b\[[<=>?][0-9;]*[a-zA-Z]|\x1b\[[0-9;]*t|\x1b[=>]")


class RefScreen(pyte.Screen):
    """Stock pyte, recording each row that scrolls off the top of the full screen."""

    def __init__(self, columns: int, lines: int) -> None:
        self.scrolled: list[str] = []
        super().__init__(columns, lines)

    def index(self) -> None:
        full = self.margins is None or (self.margins.top, self.margins.bottom) == (
            0,
            self.lines - 1,
        )
        if full and self.cursor.y == self.lines - 1:
            self.scrolled.append(_text(self.buffer[0], self.columns))
        super().index()


def _text(line: dict[int, Char], cols: int) -> str:
    return "".join(line[x].data for x in range(cols)).rstrip(" ")


def reference(data: bytes, cols: int = 80, rows: int = 24) -> RefScreen:
    screen = RefScreen(cols, rows)
    pyte.ByteStream(screen).feed(_PYTE_UNSAFE.sub(b"", data))
    return screen


def feed(data: bytes, cols: int = 80, rows: int = 24, chunks: list[int] | None = None) -> Emulator:
    emu = Emulator(cols, rows, 10_000)
    pos = 0
    for size in chunks or [len(data)]:
        emu.feed(data[pos : pos + size])
        pos += size
    emu.feed(data[pos:])
    return emu


def ref_runs(screen: RefScreen) -> list[list[Run]]:
    cols = screen.columns
    return [
        cell_runs(row_cells(screen.buffer[y], cols, screen.default_char))
        for y in range(screen.lines)
    ]


def assert_same(emu: Emulator, ref: RefScreen) -> None:
    cols = ref.columns
    assert emu.lines() == [_text(ref.buffer[y], cols) for y in range(ref.lines)]
    assert emu.cursor == (ref.cursor.y, min(ref.cursor.x, cols - 1))
    assert emu.scrollback() == ref.scrolled
    runs = ref_runs(ref)
    assert [emu.row_runs(y) for y in range(ref.lines)] == runs
    assert emu.ansi_lines() == [_ansi_line(r) for r in runs]


# -- generated streams ----------------------------------------------------------------------

WORDS = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
]


def plain_lines(n: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        width = rnd.choice([0, 1, 5, 40, 79, 80, 81, 120, 160, 161, 250])
        line = (f"{i:05d} " + " ".join(rnd.choice(WORDS) for _ in range(60)))[:width]
        out.append(line + rnd.choice(["", " ", "   "]) + "\r\n")
    return "".join(out).encode()


def sgr_lines(n: int, seed: int = 2) -> bytes:
    """Compiler-like output: colours that reset, persist across lines, 256 colours, bg."""
    rnd = random.Random(seed)
    sgrs = ["0", "1", "1;31", "32", "33;44", "38;5;208", "48;5;17", "7", "4", "", "39", "22;3"]
    out = []
    for i in range(n):
        parts = [f"{i:04d}:"]
        for _ in range(rnd.randint(0, 12)):
            parts.append(f"{CSI}{rnd.choice(sgrs)}m" + rnd.choice(WORDS) + " " * rnd.randint(0, 3))
        out.append("".join(parts))
        out.append(rnd.choice(["", f"{CSI}0m"]) + "\r\n")
    return "".join(out).encode()


def cjk_lines(n: int) -> bytes:
    """Wide characters at even columns only: stock pyte mishandles one straddling the edge."""
    out = []
    for i in range(n):
        text = "日本語のテキスト" * (i % 13) + f"{CSI}3{i % 8}m中文{CSI}m"
        out.append(f"{i:04d}" + text + "\r\n")
    return "".join(out).encode()


def redraws(frames: int) -> bytes:
    """top-like: home, rows rewritten with erase to end of line, progress with CR."""
    out = []
    for f in range(frames):
        out.append(f"{CSI}H{CSI}1mframe {f}{CSI}m{CSI}K\r\n")
        for r in range(18):
            out.append(f"{CSI}{r + 3};{1 + r % 5}H{CSI}3{r % 8}m{r * f:6d}{CSI}m pid{r}{CSI}K")
        out.append(f"{CSI}22;1H{CSI}7m status {f} {CSI}m{CSI}J")
        out.append(f"{CSI}24;1H" + "".join(f"\r{p}%" for p in range(0, 100, 17)))
    return "".join(out).encode()


STREAMS = {
    "plain": plain_lines(300),
    "sgr": sgr_lines(300),
    "cjk": cjk_lines(80),
    "redraws": redraws(6),
    "mixed": plain_lines(30, 5) + redraws(2) + sgr_lines(40, 7) + b"tail without newline",
    "ls": (DATA / "ls.raw").read_bytes(),
    "top": (DATA / "topb.raw").read_bytes(),
    "less": (DATA / "less.raw").read_bytes(),
    # vim on the alternate screen, cut before it leaves it (stock pyte has no alt screen).
    "vim": (DATA / "vim.raw").read_bytes().rsplit(b"\x1b[?1049l", 1)[0],
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_matches_stock_pyte(name: str) -> None:
    data = STREAMS[name]
    assert_same(feed(data), reference(data))


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_matches_stock_pyte_in_random_chunks(name: str) -> None:
    data = STREAMS[name]
    rnd = random.Random(name)
    chunks = [rnd.choice([1, 2, 3, 7, 64, 1000, 4096]) for _ in range(len(data) // 2)]
    assert_same(feed(data, chunks=chunks), reference(data))


@pytest.mark.parametrize("size", [(80, 24), (33, 7), (120, 3), (2, 2)])
def test_other_sizes(size: tuple[int, int]) -> None:
    cols, rows = size
    data = plain_lines(60, 3) + sgr_lines(60, 4)
    assert_same(feed(data, cols, rows), reference(data, cols, rows))


def test_every_split_point_gives_the_same_state() -> None:
    """Split UTF-8, split escape sequences: one cut anywhere must not change the result."""
    data = (
        sgr_lines(3, 9)
        + "\r\n".join(["日本語 ok", "é\u0301 x"] * 2).encode()
        + f"\r\n{CSI}5;7H{CSI}38;2;1;2;3mrgb\x1b]0;title\x07{CSI}2K{CSI}?25l\r\n".encode()
        + b"line\r\n" * 8
    )
    whole = feed(data, 40, 6)
    expect = (whole.lines(), whole.cursor, whole.scrollback(), whole.ansi_lines(), whole.title)
    for cut in range(1, len(data)):
        emu = feed(data, 40, 6, chunks=[cut])
        got = (emu.lines(), emu.cursor, emu.scrollback(), emu.ansi_lines(), emu.title)
        assert got == expect, f"cut at {cut}"


@pytest.mark.parametrize("name", ["plain", "sgr", "cjk", "mixed", "ls", "top"])
def test_flood_shortcut_equals_drawing(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The line-flood shortcut stores exactly what drawing and scrolling would (runs too)."""
    data = STREAMS[name]
    fast = feed(data, 50, 10)
    monkeypatch.setattr(Flood, "run", lambda self, data, pos: pos)
    slow = feed(data, 50, 10)
    assert list(fast._screen.history) == list(slow._screen.history)
    assert fast.ansi_lines() == slow.ansi_lines()
    assert fast.cursor == slow.cursor
    # and the rows it put on screen hold real cells: a resize pulls history back the same way
    fast.resize(50, 20)
    slow.resize(50, 20)
    assert fast.ansi_lines() == slow.ansi_lines()

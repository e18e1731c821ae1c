"""Per-cell 24-bit colour (what image viewers print) keeps the scrollback's style table
bounded (the newest lines keep their colours, older ones keep text and attributes only) and
the visible screen's style store too (exact colours up to its bound, approximated past it)."""

from __future__ import annotations

import random

import pytest

from agentty_core.emulator._ansi import ansi_row
from agentty_core.emulator._screen import cell_runs
from agentty_core.emulator._styles import StyleStore, nearest_16, nearest_256
from agentty_core.emulator.pyte_backend import Emulator, _ansi_line
from tests.helpers.cli import wait_until

COLS, LINES = 40, 600  # 24 000 distinct styles: past the cap
STYLES_CAP = 16384  # _screen._STYLES_CAP


def _line(rnd: random.Random, n: int) -> bytes:
    cells = []
    for k in range(COLS):
        fg, bg = rnd.getrandbits(24), rnd.getrandbits(24)
        cells.append(
            f"\x1b[{'1' if k == 0 else '0'};38;2;{fg >> 16};{(fg >> 8) & 255};{fg & 255};"
            f"48;2;{bg >> 16};{(bg >> 8) & 255};{bg & 255}m{(n + k) % 10}"
        )
    return ("".join(cells) + "\x1b[0m").encode()


def _feed(emu: Emulator, *, flood: bool) -> None:
    rnd = random.Random(6)
    lines = [_line(rnd, n) for n in range(LINES)]
    if flood:
        emu.feed(b"".join(line + b"\r\n" for line in lines))
    else:
        for line in lines:  # the line and its end apart: drawn, then scrolled (no flood)
            emu.feed(line)
            emu.feed(b"\r\n")


@pytest.mark.parametrize("flood", [True, False])
def test_per_cell_truecolour_keeps_the_style_table_bounded(flood: bool) -> None:
    emu = Emulator(COLS, 5)
    _feed(emu, flood=flood)
    screen = emu._screen
    assert len(screen._styles) <= STYLES_CAP
    history = screen.history
    assert len(history) == LINES - 4
    # Text survives everywhere.
    assert emu.scrollback() == [
        "".join(str((n + k) % 10) for k in range(COLS)) for n in range(LINES - 4)
    ]
    newest = screen.unpack(history[-1])[1]
    oldest = screen.unpack(history[0])[1]
    assert newest is not None and len(newest) == COLS and newest[1][1][0] != "default"
    # The oldest line lost its colours but kept its bold first cell.
    assert oldest == [(1, ("default", "default", 1)), (COLS - 1, ("default", "default", 0))]


def test_drawn_and_flooded_truecolour_history_is_the_same() -> None:
    drawn, flooded = Emulator(COLS, 5), Emulator(COLS, 5)
    _feed(drawn, flood=False)
    _feed(flooded, flood=True)
    assert list(drawn._screen.history) == list(flooded._screen.history)
    assert drawn.ansi_lines() == flooded.ansi_lines()


def test_ansi_rows_are_rendered_once_and_stay_right_as_the_screen_changes() -> None:
    """ansi_lines() keeps each row's rendering while its snapshot is unchanged (a full
    per-cell-colour screen costs seconds to render); every change shows at once."""
    emu = Emulator(COLS, 5)
    rnd = random.Random(3)
    emu.feed(b"\r\n".join(_line(rnd, n) for n in range(4)))
    first = emu.ansi_lines()
    assert emu.ansi_lines() == first
    for chunk in (
        b"\r\nab",  # scrolls: cached rows move up
        b"\r\n\x1b[31mred\r\n",
        b"\x1b[2;5H\x1b[42mZ",  # one cell of a cached row
        b"\x1b[?5h",  # reverse video: every row changes
        b"\x1b[?5l\x1b[?1049h" + _line(rnd, 9),
        b"\x1b[?1049l",
        b"\x1b[2J",
    ):
        emu.feed(chunk)
        assert emu.ansi_lines() == [_ansi_line(cell_runs(snap)) for snap in emu._snap], chunk


@pytest.mark.parametrize(
    ("fg", "bg", "flags", "sgr"),
    [
        ("default", "default", 0, "\x1b[0m"),
        ("00ff7f", "0a0b0c", 1, "\x1b[0;1;38;2;0;255;127;48;2;10;11;12m"),
        ("ABCDEF", "yellow", 0, "\x1b[0;38;2;171;205;239;43m"),
        ("brightred", "brown", 8, "\x1b[0;7;91;43m"),
        ("magenta", "zzzzzz", 0, "\x1b[0;35m"),
    ],
)
def test_sgr_of_a_style(fg: str, bg: str, flags: int, sgr: str) -> None:
    from agentty_core.emulator.pyte_backend import _make_sgr

    assert _make_sgr(fg, bg, flags) == sgr


# -- the visible screen's bounded style store (issue 16 #6, at large sizes) ---------------


def _cell(fg: int, bg: int, ch: str = "\u2580") -> bytes:
    return (
        f"\x1b[38;2;{fg >> 16};{(fg >> 8) & 255};{fg & 255};"
        f"48;2;{bg >> 16};{(bg >> 8) & 255};{bg & 255}m{ch}"
    ).encode()


def _hex(rgb: int) -> str:
    return f"{rgb:06x}"


def _small_store(emu: Emulator, cap: int) -> StyleStore:
    store = emu._screen.styles
    store.exact_cap = store.approx_cap = cap
    return store


def test_colours_are_exact_until_the_table_is_full_then_approximated() -> None:
    """Below the bound every cell keeps its exact 24-bit colours; past it a new colour is
    the nearest xterm-256 one, and past the second table the nearest basic colour."""
    emu = Emulator(64, 4)
    store = _small_store(emu, 64)
    rnd = random.Random(7)
    colours = [(rnd.getrandbits(24), rnd.getrandbits(24)) for _ in range(64 * 3)]
    emu.feed(b"".join(_cell(fg, bg) for fg, bg in colours))
    got = [(fg, bg) for row in range(3) for _text, fg, bg, _flags in emu.row_runs(row)]
    exact = [(_hex(fg), _hex(bg)) for fg, bg in colours[:64]]
    assert got[:64] == exact
    assert store.approximated > 0
    near = [(nearest_256(_hex(fg)), nearest_256(_hex(bg))) for fg, bg in colours[64:128]]
    assert got[64:128] == near  # random colours rarely share a 256-colour pair
    basic = {nearest_16(_hex(c)) for pair in colours[128:] for c in pair}
    assert {c for pair in got[128:] for c in pair} <= basic | {c for pair in near for c in pair}
    assert len(store) <= 2 * 64 + 18 * 18


def test_the_style_table_is_bounded_and_frees_styles_no_longer_shown() -> None:
    emu = Emulator(100, 10)
    store = _small_store(emu, 100)
    rnd = random.Random(8)
    for _ in range(20):  # 20 screens of all-distinct colours
        emu.feed(b"\x1b[H" + b"".join(_cell(rnd.getrandbits(24), 0) for _ in range(999)))
        assert len(store) <= 2 * 100 + 18 * 18
    emu.feed(b"\x1b[0m\x1b[2J")

    def exact_again() -> bool:
        # Nothing else is on screen any more: new colours are exact again once the store
        # scans the screen (rate-limited to a tenth of the time: soon, not at once).
        fresh = [(rnd.getrandbits(24), rnd.getrandbits(24)) for _ in range(60)]
        emu.feed(b"\x1b[H" + b"".join(_cell(fg, bg) for fg, bg in fresh))
        runs = emu.row_runs(0)[:60]
        return [(fg, bg) for _t, fg, bg, _f in runs] == [(_hex(f), _hex(b)) for f, b in fresh]

    wait_until(exact_again, timeout=10, interval=0.01)
    assert len(store) <= 2 * 100 + 18 * 18


def test_cells_of_one_style_are_one_shared_object() -> None:
    emu = Emulator(300, 3)
    emu.feed(_cell(0x123456, 0x654321) * 600)
    cells = {id(c) for y in range(2) for c in emu._screen.buffer[y].values()}
    keys = {id(x) for y in range(2) for x in emu._screen.buffer[y]}
    assert len(cells) == 1
    assert len(keys) == 300  # column numbers past 256 are shared ints too


@pytest.mark.parametrize(
    "chars",
    [
        b"ab\x1b[1mcd  \x1b[0m   ",
        "\x1b[31m\u4e2d\x1b[0m x \x1b[7m \x1b[0m".encode(),
        b"\x1b[42m   \x1b[0m",
        b"  \x1b[38;2;1;2;3mxx\x1b[48;5;17myy\x1b[0mzz   ",
        "e\u0301\x1b[4m\u4e2d\u4e2d\x1b[24m".encode(),
        b"\x1b[?5hreverse  ",
    ],
)
def test_the_fast_row_renderer_matches_the_run_renderer(chars: bytes) -> None:
    emu = Emulator(20, 3)
    emu.feed(chars)
    rnd = random.Random(9)
    emu.feed(b"\r\n" + b"".join(_cell(rnd.choice([1, 2]), 3, "x") for _ in range(20)))
    emu.lines()
    for snap in emu._snap:
        assert ansi_row(snap) == _ansi_line(cell_runs(snap))


@pytest.mark.parametrize(
    "chars",
    [
        b"",  # every row blank
        b"text",
        b"\x1b[70Gfar right",
        b"\x1b[50G\x1b[41m \x1b[0m",  # a styled blank: kept, and the blanks before it
        b"\x1b[33G\x1b[7m\x1b[K",  # reverse blanks to the end of the line
        b"\x1b[?5hreverse video",  # every blank is reverse: none is trailing
        "\u4e2d\x1b[31G\u4e2d".encode(),
    ],
)
def test_trailing_blanks_are_dropped_exactly_on_wide_rows(chars: bytes) -> None:
    # Blank tails are counted off in chunks (C speed); the rows must not change for it.
    emu = Emulator(80, 3)
    emu.feed(chars)
    emu.lines()
    for snap in emu._snap:
        assert ansi_row(snap) == _ansi_line(cell_runs(snap))


def test_nearest_256_keeps_palette_colours() -> None:
    from pyte.graphics import FG_BG_256

    for index in range(16, 256):
        assert nearest_256(str(FG_BG_256[index])) == FG_BG_256[index]
    assert nearest_256("red") == "red"
    assert nearest_16("ff0000") == "brightred"

"""Per-cell 24-bit colour (what image viewers print) keeps the scrollback's style table
bounded: the newest lines keep their colours, older ones keep text and attributes only."""

from __future__ import annotations

import random

import pytest

from agentty_core.emulator._screen import cell_runs
from agentty_core.emulator.pyte_backend import Emulator, _ansi_line

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

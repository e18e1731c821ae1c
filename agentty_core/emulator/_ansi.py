"""Rows as text with SGR styling, for `get --ansi`; private to the emulator backends.

Under per-cell colour (image viewers) every cell is a run of its own, so a row renderer
that walks runs in Python costs seconds for a large screen. ansi_row() renders a row of
cells with C-level passes (style keys, memoised SGR strings, one join) and gives exactly
what _ansi_line(cell_runs(cells)) gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
from operator import is_, itemgetter

from pyte.screens import Char

from agentty_core.emulator._screen import (
    BLINK,
    BOLD,
    ITALICS,
    REVERSE,
    STRIKETHROUGH,
    UNDERSCORE,
    Run,
)

_DATA = itemgetter(0)
_STYLE = itemgetter(1, 2, 3, 4, 5, 6, 7, 8)
_PLAIN = ("default", "default", 0)
_PLAIN_KEY = ("default", "default", False, False, False, False, False, False)
_BLANK = Char(" ")
_CHUNK = 16  # trailing blanks are counted off this many at a time (in C: list.count)
_RESET = "\x1b[0m"
_COLOR_INDEX = {
    "black": 0,
    "red": 1,
    "green": 2,
    "brown": 3,
    "yellow": 3,
    "blue": 4,
    "magenta": 5,
    "cyan": 6,
    "white": 7,
}
_FLAG_SGR = (
    (BOLD, "1"),
    (ITALICS, "3"),
    (UNDERSCORE, "4"),
    (BLINK, "5"),
    (REVERSE, "7"),
    (STRIKETHROUGH, "9"),
)


def _color_sgr(color: str, base: int) -> str | None:
    """SGR parameter for a pyte colour (name, bright name or 6-hex); None for default."""
    if color == "default":
        return None
    if color.startswith("bright") and color[6:] in _COLOR_INDEX:
        return str(base + 60 + _COLOR_INDEX[color[6:]])
    if color in _COLOR_INDEX:
        return str(base + _COLOR_INDEX[color])
    try:
        rgb = int(color, 16)
    except ValueError:
        return None
    return f"{base + 8};2;{rgb >> 16};{(rgb >> 8) & 255};{rgb & 255}"


_SGR_MEMO: dict[tuple[str, str, int], str] = {}


def _sgr(fg: str, bg: str, flags: int) -> str:
    """The SGR sequence for a style; memoised (bounded) as rows repeat the same few."""
    key = (fg, bg, flags)
    sgr = _SGR_MEMO.get(key)
    if sgr is None:
        if len(_SGR_MEMO) >= 4096:
            _SGR_MEMO.clear()
        sgr = _SGR_MEMO[key] = _make_sgr(fg, bg, flags)
    return sgr


def _make_sgr(fg: str, bg: str, flags: int) -> str:
    codes = ["0"]
    if flags:
        codes += [code for bit, code in _FLAG_SGR if flags & bit]
    for color, base, named in ((fg, 30, _FG_NAMED), (bg, 40, _BG_NAMED)):
        code = named.get(color)
        if code is None and len(color) == 6:
            # 24-bit colour (what image viewers print, a style a cell): table lookups
            # instead of int() and formatting, as this runs once per cell.
            r, g, b = _HEX.get(color[0:2]), _HEX.get(color[2:4]), _HEX.get(color[4:6])
            if r is not None and g is not None and b is not None:
                code = f"{base + 8};2;{r};{g};{b}"
        if code is None:
            code = _color_sgr(color, base)
        if code:
            codes.append(code)
    return "\x1b[" + ";".join(codes) + "m"


def _named_codes(base: int) -> dict[str, str]:
    """SGR parameters of pyte's named colours ("" for default, which needs none)."""
    codes = {"default": ""}
    for name, index in _COLOR_INDEX.items():
        codes[name] = str(base + index)
        codes["bright" + name] = str(base + 60 + index)
    return codes


_FG_NAMED = _named_codes(30)
_BG_NAMED = _named_codes(40)
_HEX = {f"{i:02x}": str(i) for i in range(256)}


def _ansi_line(runs: list[Run]) -> str:
    """One row as text with SGR; trailing default-styled blanks are dropped."""
    while runs and runs[-1][1:] == _PLAIN:
        text = runs[-1][0].rstrip(" ")
        if text:
            runs[-1] = (text, "default", "default", 0)
            break
        runs.pop()
    parts: list[str] = []
    styled = False
    current = _PLAIN
    for text, fg, bg, flags in runs:
        style = (fg, bg, flags)
        if style != current:
            parts.append("\x1b[0m" if style == _PLAIN else _sgr(fg, bg, flags))
            styled = True
            current = style
        parts.append(text)
    if styled and (not parts or parts[-1] != "\x1b[0m"):
        parts.append("\x1b[0m")
    return "".join(parts)


# ";1;3" and so on for each combination of the six attribute booleans, in a style key's
# order (bold, italics, underscore, strikethrough, reverse, blink), codes in SGR order.
_KEY_FLAGS = {
    bits: "".join(";" + code for bit, code in _FLAG_SGR if flags & bit)
    for flags in range(64)
    for bits in [
        (
            bool(flags & BOLD),
            bool(flags & ITALICS),
            bool(flags & UNDERSCORE),
            bool(flags & STRIKETHROUGH),
            bool(flags & REVERSE),
            bool(flags & BLINK),
        )
    ]
}


def _colour_code(color: str, base: int, named: dict[str, str]) -> str:
    """ ";" and the SGR parameter of a colour ("" for default), as _make_sgr spells it."""
    code = named.get(color)
    if code is None:
        hexes = _HEX
        r, g, b = hexes.get(color[0:2]), hexes.get(color[2:4]), hexes.get(color[4:6])
        if len(color) == 6 and r is not None and g is not None and b is not None:
            return f";{base + 8};2;{r};{g};{b}"
        code = _color_sgr(color, base)
    return ";" + code if code else ""


def _key_sgr(key: tuple[str, str, bool, bool, bool, bool, bool, bool]) -> str:
    """The SGR of a cell's style key, built with lookups (not _make_sgr's lists): under
    per-cell colour it runs once a cell."""
    sgr = "\x1b[0" + _KEY_FLAGS[key[2:]]
    return sgr + _colour_code(key[0], 30, _FG_NAMED) + _colour_code(key[1], 40, _BG_NAMED) + "m"


class SgrMemo:
    """SGR strings of the cells of one rendering (one ansi_lines() call): nothing is kept
    between calls, as the styles of a per-cell-colour screen are many and short-lived.
    Equal styles get the same string object, so rows compare styles by identity."""

    __slots__ = ("by_cell", "by_style")

    def __init__(self) -> None:
        self.by_cell: dict[Char, str] = {}
        self.by_style: dict[tuple[str, str, bool, bool, bool, bool, bool, bool], str] = {}

    def sgr(self, cell: Char) -> str:
        key = _STYLE(cell)
        sgr = self.by_style.get(key)
        if sgr is None:
            sgr = self.by_style[key] = _key_sgr(key)
        self.by_cell[cell] = sgr
        return sgr


def ansi_row(cells: Sequence[Char], memo: SgrMemo | None = None) -> str:
    """One row of cells as text with SGR; the same string as _ansi_line(cell_runs(cells)),
    made with C-level passes over the row (a per-cell-colour row is a run a cell)."""
    n = len(cells)
    while n >= _CHUNK and cells[n - _CHUNK : n].count(_BLANK) == _CHUNK:  # most rows' tails
        n -= _CHUNK
    while n and cells[n - 1][0] in (" ", "") and _STYLE(cells[n - 1]) == _PLAIN_KEY:
        n -= 1
    if not n:
        return ""
    if memo is None:
        memo = SgrMemo()
    row = cells[:n] if n < len(cells) else cells
    sgrs: list[str | None] = list(map(memo.by_cell.get, row))
    if None in sgrs:
        sgrs = [memo.sgr(c) if sgr is None else sgr for sgr, c in zip(sgrs, row, strict=True)]
    # A cell styled like the one before it opens no new run: no SGR.
    for i in list(compress(range(1, n), map(is_, sgrs[1:], sgrs))):
        sgrs[i] = ""
    if _STYLE(row[0]) == _PLAIN_KEY:
        sgrs[0] = ""
    styled = any(sgrs)
    parts: list[str | None] = [None] * (2 * n)
    parts[::2] = sgrs
    parts[1::2] = map(_DATA, row)
    text = "".join(parts)  # type: ignore[arg-type]
    return text + _RESET if styled else text

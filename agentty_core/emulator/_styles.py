"""The visible screen's bounded style store; private to agentty_core.emulator._screen.

pyte keeps a Char per cell, each with its own colour strings: output where every cell has
its own 24-bit colours (image viewers such as viu or chafa) costs ~370 bytes a cell, ~500
MiB for a 1000x1000 screen. Here every attribute set (a Char with data " ") is interned once,
with the Char of each character drawn in it, so cells on screen are pointers to shared
objects. The table is bounded: past EXACT_CAP distinct styles still in use, a new 24-bit
colour is approximated by the nearest xterm-256 colour (kept in a second table of APPROX_CAP
styles), and past that too, by the nearest of the 16 basic colours (a few hundred styles at
most: 16 colours and default, fg and bg, times the attributes programs combine).
Styles no longer on screen are dropped when a table fills, so the degradation lasts only as
long as the screen really shows that many distinct styles.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from pyte.graphics import FG_AIXTERM, FG_ANSI, FG_BG_256
from pyte.screens import Char

EXACT_CAP = 16384  # distinct styles kept exact (~600 bytes each with their cells)
APPROX_CAP = 16384  # distinct styles approximated to xterm-256 colours (of 65 536 pairs)
_CUBE = (0, 95, 135, 175, 215, 255)
# xterm's 16 basic colours, by pyte's names (what SGR 30-37 and 90-97 give).
_BASIC = tuple(
    (name, int(rgb[0:2], 16), int(rgb[2:4], 16), int(rgb[4:6], 16))
    for name, rgb in zip(
        [*(FG_ANSI[c] for c in range(30, 38)), *(FG_AIXTERM[c] for c in range(90, 98))],
        FG_BG_256[:16],
        strict=True,
    )
)


class Cells(dict[str, Char]):
    """Char objects for one attribute set, built once per character and then shared."""

    __slots__ = ("attrs",)

    def __init__(self, attrs: Char) -> None:
        super().__init__()
        self.attrs = attrs

    def __missing__(self, key: str) -> Char:
        char = self.attrs._replace(data=key)
        if len(self) < 1024:
            self[key] = char
        return char


def _cube_index(v: int) -> int:
    return 0 if v < 48 else 1 if v < 115 else (v - 35) // 40


def nearest_256(color: str) -> str:
    """The xterm-256 colour nearest a 6-hex colour (pyte's spelling of it); names as given."""
    if len(color) != 6:
        return color
    try:
        rgb = int(color, 16)
    except ValueError:
        return color
    r, g, b = rgb >> 16, (rgb >> 8) & 255, rgb & 255
    ri, gi, bi = _cube_index(r), _cube_index(g), _cube_index(b)
    cr, cg, cb = _CUBE[ri], _CUBE[gi], _CUBE[bi]
    grey = min(max((r + g + b) // 3 - 3, 0) // 10, 23)
    gv = 8 + 10 * grey
    cube_d = (r - cr) ** 2 + (g - cg) ** 2 + (b - cb) ** 2
    grey_d = (r - gv) ** 2 + (g - gv) ** 2 + (b - gv) ** 2
    index = 232 + grey if grey_d < cube_d else 16 + 36 * ri + 6 * gi + bi
    return str(FG_BG_256[index])


def nearest_16(color: str) -> str:
    """The basic colour (pyte's name) nearest a 6-hex colour; names as given."""
    if len(color) != 6:
        return color
    try:
        rgb = int(color, 16)
    except ValueError:
        return color
    r, g, b = rgb >> 16, (rgb >> 8) & 255, rgb & 255
    return min(_BASIC, key=lambda c: (c[1] - r) ** 2 + (c[2] - g) ** 2 + (c[3] - b) ** 2)[0]


# The basic colour nearest each xterm-256 colour: the third tier approximates the second's.
_BASIC_OF: dict[str, str] = {str(c): nearest_16(str(c)) for c in FG_BG_256}


class StyleStore:
    """Interned attribute sets of the visible screen; see the module docstring.

    `live` lists the objects the screen holds (its cells, the cursor's attributes), so a
    full table can drop the styles nothing uses any more."""

    def __init__(
        self,
        live: Callable[[], Iterable[Char]],
        exact_cap: int = EXACT_CAP,
        approx_cap: int = APPROX_CAP,
    ) -> None:
        self._live = live
        self.exact_cap = exact_cap
        self.approx_cap = approx_cap
        self._exact: dict[Char, Cells] = {}
        self._approx: dict[Char, Cells] = {}
        self._basic: dict[Char, Cells] = {}  # bounded by construction, never compacted
        self._colours: dict[str, str] = {}
        self._misses = 0  # new styles since the last compaction
        self._screenful = 0  # cells the screen held at the last compaction
        self._next_scan = 0.0  # monotonic time before which a scan is not worth its cost
        self.approximated = 0  # styles that could not be kept exact (for tests and logs)

    def __len__(self) -> int:
        return len(self._exact) + len(self._approx) + len(self._basic)

    def cells(self, attrs: Char) -> Cells:
        """The shared Cells of `attrs` (or of its approximation when the table is full)."""
        hit = self._exact.get(attrs)
        if hit is None:
            hit = self._approx.get(attrs)
            if hit is None:
                hit = self._basic.get(attrs)
                if hit is None:
                    hit = self._add(attrs)
        return hit

    def _add(self, attrs: Char) -> Cells:
        self._misses += 1
        if len(self._exact) >= self.exact_cap:
            self._maybe_compact()
        if len(self._exact) < self.exact_cap:
            return self._insert(self._exact, attrs)
        self.approximated += 1
        near = attrs._replace(fg=nearest_256(attrs.fg), bg=nearest_256(attrs.bg))
        hit = self._exact.get(near)
        if hit is None:
            hit = self._approx.get(near)
        if hit is not None:
            return hit
        if len(self._approx) >= self.approx_cap:
            self._maybe_compact()
        if len(self._approx) < self.approx_cap:
            return self._insert(self._approx, near)
        get = _BASIC_OF.get
        basic = near._replace(fg=get(near.fg, near.fg), bg=get(near.bg, near.bg))
        hit = self._basic.get(basic)
        return hit if hit is not None else self._insert(self._basic, basic)

    def _insert(self, table: dict[Char, Cells], attrs: Char) -> Cells:
        colours = self._colours
        fg = colours.setdefault(attrs.fg, attrs.fg)
        bg = colours.setdefault(attrs.bg, attrs.bg)
        if fg is not attrs.fg or bg is not attrs.bg:
            attrs = attrs._replace(fg=fg, bg=bg)
        cells = table[attrs] = Cells(attrs)
        return cells

    def _maybe_compact(self) -> None:
        """Drop styles nothing on screen uses. At most once per half table of new styles,
        and only once a screenful of them came or ten times the last scan's duration went
        by: the scan of the screen costs O(1) a cell drawn, or a tenth of the time at most,
        and styles freed by a cleared screen are found again soon."""
        if self._misses < self.exact_cap // 2:
            return
        now = time.monotonic()
        if self._misses < self._screenful and now < self._next_scan:
            return
        held = list(self._live())
        live = set(map(id, held))
        self._misses = 0
        self._screenful = len(held)
        del held
        for table in (self._exact, self._approx):
            dead = [
                key
                for key, cells in table.items()
                if id(cells.attrs) not in live and live.isdisjoint(map(id, cells.values()))
            ]
            for key in dead:
                del table[key]
        self._colours = {}
        for table in (self._exact, self._approx):
            for attrs in table:
                self._colours.setdefault(attrs.fg, attrs.fg)
                self._colours.setdefault(attrs.bg, attrs.bg)
        done = time.monotonic()
        self._next_scan = done + 10 * (done - now)

"""A session's screen as a PNG, for multimodal agents: colours, attributes and the cursor,
drawn on a fixed grid of character cells with the bundled GNU Unifont (no browser, no
system fonts), so the same screen gives the same picture on every machine.

It runs in the caller, from a `get` answer with `ansi=True`: the worker's styled rows as SGR
text (which `emulator.pyte_backend` writes from the cells' runs and this module reads back),
the size and the cursor. A cell is `CELL_W` x `CELL_H` pixels times `scale`; a wide character
covers two cells, as the emulator counts it (the same wcwidth). Pillow is imported here only,
when a picture is asked for: the `png` extra, never on the CLI's hot path.
"""

from __future__ import annotations

import functools
import gzip
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from agentty_core.errors import AgenttyError, UsageError
from agentty_core.protocol import (
    BOLD,
    ITALICS,
    REVERSE,
    STRIKETHROUGH,
    UNDERSCORE,
    JSONObject,
    str_list,
)

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

CELL_W, CELL_H = 8, 16  # Unifont's half-width glyph at its native 16 px
MAX_SCALE = 4
# The largest picture drawn: 8192x4096 pixels (~100 MB as RGB while it is drawn and encoded).
# A 1000x1000 screen at scale 4 (both in range) took 8 GB and a minute.
MAX_PIXELS = 8192 * 4096
INSTALL_HINT = "pip install 'agentty[png]'"

RGB = tuple[int, int, int]
# xterm's palette for the 16 named colours (pyte's "brown" is yellow).
_BASE: tuple[RGB, ...] = (
    (0, 0, 0),
    (205, 0, 0),
    (0, 205, 0),
    (205, 205, 0),
    (0, 0, 238),
    (205, 0, 205),
    (0, 205, 205),
    (229, 229, 229),
    (127, 127, 127),
    (255, 0, 0),
    (0, 255, 0),
    (255, 255, 0),
    (92, 92, 255),
    (255, 0, 255),
    (0, 255, 255),
    (255, 255, 255),
)
DEFAULT_FG: RGB = (229, 229, 229)
DEFAULT_BG: RGB = (0, 0, 0)
_SGR = re.compile(r"\x1b\[([0-9;:]*)m")
_FLAG_ON = {1: BOLD, 3: ITALICS, 4: UNDERSCORE, 7: REVERSE, 9: STRIKETHROUGH}
_FLAG_OFF = {22: BOLD, 23: ITALICS, 24: UNDERSCORE, 27: REVERSE, 29: STRIKETHROUGH}


class PillowMissing(AgenttyError):
    """PNG screenshots need Pillow, an optional dependency (the `png` extra)."""


def _palette256(index: int) -> RGB:
    """xterm's 256-colour palette: 16 named, a 6x6x6 cube, 24 greys."""
    if index < 16:
        return _BASE[index]
    if index < 232:
        index -= 16
        steps = (0, 95, 135, 175, 215, 255)
        return steps[index // 36], steps[index // 6 % 6], steps[index % 6]
    grey = 8 + 10 * (index - 232)
    return grey, grey, grey


@dataclass
class Style:
    """One cell's colours (None: the terminal's default) and attribute flags."""

    fg: RGB | None = None
    bg: RGB | None = None
    flags: int = 0


@dataclass
class Cell:
    text: str
    style: Style
    wide: bool = False


_BLANK = Cell(" ", Style())


def _extended(codes: list[int], i: int) -> tuple[RGB | None, int]:
    """A 38/48 colour (`;5;N` or `;2;R;G;B`) starting at codes[i]; and the next index."""
    if i + 1 < len(codes) and codes[i + 1] == 5 and i + 2 < len(codes):
        return _palette256(codes[i + 2] % 256), i + 3
    if i + 1 < len(codes) and codes[i + 1] == 2 and i + 4 < len(codes):
        r, g, b = (min(c, 255) for c in codes[i + 2 : i + 5])
        return (r, g, b), i + 5
    return None, len(codes)


def apply_sgr(style: Style, params: str) -> Style:
    """The style after one SGR sequence (the subset terminals agree on; the rest ignored)."""
    codes = [int(c) if c.isdigit() else 0 for c in re.split("[;:]", params)] if params else [0]
    fg, bg, flags = style.fg, style.bg, style.flags
    i = 0
    while i < len(codes):
        code = codes[i]
        i += 1
        if code == 0:
            fg, bg, flags = None, None, 0
        elif code in _FLAG_ON:
            flags |= _FLAG_ON[code]
        elif code in _FLAG_OFF:
            flags &= ~_FLAG_OFF[code]
        elif 30 <= code <= 37:
            fg = _BASE[code - 30]
        elif 90 <= code <= 97:
            fg = _BASE[code - 90 + 8]
        elif 40 <= code <= 47:
            bg = _BASE[code - 40]
        elif 100 <= code <= 107:
            bg = _BASE[code - 100 + 8]
        elif code == 39:
            fg = None
        elif code == 49:
            bg = None
        elif code in (38, 48):
            color, i = _extended(codes, i - 1)
            if code == 38:
                fg = color
            else:
                bg = color
    return Style(fg, bg, flags)


def _width(char: str) -> int:
    """Columns a character takes, as the emulator counts them (it draws with wcwidth too)."""
    from wcwidth import wcwidth

    width = int(wcwidth(char))
    return width if width >= 0 else 1


def grid(ansi_lines: Sequence[str], cols: int, rows: int) -> list[list[Cell | None]]:
    """The screen's cells, row by row; None is the second column of a wide character."""
    cells: list[list[Cell | None]] = []
    for row in range(rows):
        line: list[Cell | None] = [_BLANK] * cols  # shared: only placed cells change
        cells.append(line)
        if row >= len(ansi_lines):
            continue
        style = Style()
        col = 0
        last: Cell | None = None
        text = ansi_lines[row]
        pos = 0
        for m in [*_SGR.finditer(text), None]:
            chunk = text[pos : m.start() if m else len(text)]
            for char in chunk:
                width = _width(char)
                if width == 0:
                    if last is not None:
                        last.text += char  # a combining mark joins the cell before it
                    continue
                if col + width > cols:
                    break
                last = line[col] = Cell(char, style, wide=width == 2)
                if width == 2:
                    line[col + 1] = None
                col += width
            if m is not None:
                style = apply_sgr(style, m.group(1))
                pos = m.end()
    return cells


@functools.cache
def _font_bytes(name: str) -> bytes:
    data = resources.files("agentty_core.render").joinpath("fonts").joinpath(name).read_bytes()
    return gzip.decompress(data)


@functools.cache
def _font(name: str, scale: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    return ImageFont.truetype(
        io.BytesIO(_font_bytes(name)), CELL_H * scale, layout_engine=ImageFont.Layout.BASIC
    )


@functools.cache
def _glyph(text: str, wide: bool, bold: bool, italic: bool, scale: int) -> Image.Image:
    """A cell's glyph as a mask the size of its cells: Unifont's bitmaps, thickened by one
    font pixel for bold and sheared for italics (the font has neither)."""
    from PIL import Image, ImageDraw

    upper = ord(text[0]) > 0xFFFF
    font = _font("unifont_upper.otf.gz" if upper else "unifont.otf.gz", scale)
    size = (CELL_W * scale * (2 if wide else 1), CELL_H * scale)
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    draw.text((0, 0), text, fill=255, font=font, anchor="la")
    if bold:
        draw.text((scale, 0), text, fill=255, font=font, anchor="la")
    if italic:
        lean = 2 * scale / size[1]  # the top row moves two font pixels right
        mask = mask.transform(
            size,
            Image.Transform.AFFINE,
            (1, lean, -lean * size[1], 0, 1, 0),
            resample=Image.Resampling.NEAREST,
        )
    return mask


def _pil() -> None:
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise PillowMissing(
            f"PNG screenshots need Pillow, which is not installed: {INSTALL_HINT}"
        ) from None


def render(screen: JSONObject, *, scale: int = 1) -> Image.Image:
    """The screen of a `get` answer (with `ansi=True` for colours) as an RGB image of
    cols*CELL_W*scale x rows*CELL_H*scale pixels."""
    _pil()
    from PIL import Image, ImageDraw

    if not 1 <= scale <= MAX_SCALE:
        raise UsageError(f"scale must be an integer in 1..{MAX_SCALE}")
    size = screen.get("size")
    size = size if isinstance(size, dict) else {}
    cols, rows = _positive(size.get("cols"), 80), _positive(size.get("rows"), 24)
    ansi = str_list(screen["ansi"] if "ansi" in screen else screen.get("lines"))
    _check_size(cols, rows, scale)
    cw, ch = CELL_W * scale, CELL_H * scale
    image = Image.new("RGB", (cols * cw, rows * ch), DEFAULT_BG)
    draw = ImageDraw.Draw(image)
    cursor = _cursor(screen, cols, rows)
    for y, line in enumerate(grid(ansi, cols, rows)):
        for x, cell in enumerate(line):
            if cell is None:
                continue
            wide = cell.wide and x + 1 < cols
            on_cursor = cursor is not None and cursor[0] == y and x <= cursor[1] <= x + wide
            _draw_cell(image, draw, cell, (x * cw, y * ch), scale, wide, on_cursor)
    return image


def _check_size(cols: int, rows: int, scale: int) -> None:
    """Refuse a picture past MAX_PIXELS before any of it is drawn, naming a scale that fits."""
    width, height = cols * CELL_W * scale, rows * CELL_H * scale
    if width * height <= MAX_PIXELS:
        return
    fits = [n for n in range(1, scale) if cols * rows * (CELL_W * CELL_H) * n * n <= MAX_PIXELS]
    what = (
        f"scale {fits[-1]} fits"
        if fits
        else "resize the session smaller, or read its text with get"
    )
    raise UsageError(
        f"a picture of {cols}x{rows} cells at scale {scale} would be {width}x{height} pixels, "
        f"over the limit of {MAX_PIXELS // 1_000_000} megapixels: {what}"
    )


def _positive(value: object, default: int) -> int:
    return value if isinstance(value, int) and value > 0 else default


def _cursor(screen: JSONObject, cols: int, rows: int) -> tuple[int, int] | None:
    """(row, col) of a visible cursor, kept on the screen (a pending wrap sits past the edge)."""
    cursor = screen.get("cursor")
    if not isinstance(cursor, dict) or cursor.get("visible") is False:
        return None
    row, col = cursor.get("row"), cursor.get("col")
    if not isinstance(row, int) or not isinstance(col, int):
        return None
    return min(max(row, 0), rows - 1), min(max(col, 0), cols - 1)


def _draw_cell(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    cell: Cell,
    origin: tuple[int, int],
    scale: int,
    wide: bool,
    on_cursor: bool,
) -> None:
    """One cell: its background, glyph, underline and strike line. Reverse video and the
    cursor (a block, as a terminal draws it) each swap the colours."""
    flags = cell.style.flags
    fg = cell.style.fg or DEFAULT_FG
    bg = cell.style.bg or DEFAULT_BG
    if flags & REVERSE:
        fg, bg = bg, fg
    if on_cursor:
        fg, bg = bg, fg
    x, y = origin
    w, h = CELL_W * scale * (2 if wide else 1), CELL_H * scale
    if bg != DEFAULT_BG:
        draw.rectangle((x, y, x + w - 1, y + h - 1), fill=bg)
    if cell.text.strip():
        mask = _glyph(cell.text, wide, bool(flags & BOLD), bool(flags & ITALICS), scale)
        image.paste(fg, (x, y, x + w, y + h), mask)
    for flag, line_y in ((UNDERSCORE, 14), (STRIKETHROUGH, 8)):
        if flags & flag:
            top = y + line_y * scale
            draw.rectangle((x, top, x + w - 1, top + scale - 1), fill=fg)


def png_bytes(screen: JSONObject, *, scale: int = 1) -> bytes:
    """`render` encoded as a PNG file's bytes."""
    out = io.BytesIO()
    render(screen, scale=scale).save(out, format="PNG")
    return out.getvalue()

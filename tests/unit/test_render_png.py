"""render/png.py: SGR read back into cell styles, the cell grid (wide characters, combining
marks), and each attribute's pixels; screens made by the real emulator from program output."""

from __future__ import annotations

import io

import pytest

from agentty_core.cli import fast as cli_fast
from agentty_core.cli.parser import build_parser
from agentty_core.emulator.pyte_backend import Emulator
from agentty_core.errors import UsageError
from agentty_core.protocol import BOLD, ITALICS, REVERSE, STRIKETHROUGH, UNDERSCORE, JSONObject

pytest.importorskip("PIL")

from PIL import Image

from agentty_core.render.png import (
    CELL_H,
    CELL_W,
    DEFAULT_BG,
    DEFAULT_FG,
    Style,
    apply_sgr,
    grid,
    png_bytes,
    render,
)

RED = (205, 0, 0)


def _screen(data: bytes, cols: int = 20, rows: int = 3) -> JSONObject:
    """A `get --ansi` answer as the worker builds it, from the same emulator."""
    emu = Emulator(cols, rows)
    emu.feed(data)
    row, col = emu.cursor
    return {
        "ansi": emu.ansi_lines(),
        "lines": emu.lines(),
        "size": {"cols": cols, "rows": rows},
        "cursor": {"row": row, "col": col, "visible": emu.cursor_visible},
    }


def _row_pixels(image: Image.Image, col: int, y: int) -> set[tuple[int, ...]]:
    pixels = (image.getpixel((x, y)) for x in range(col * CELL_W, (col + 1) * CELL_W))
    return {p for p in pixels if isinstance(p, tuple)}


def _lit(image: Image.Image, col: int, row: int = 0) -> int:
    cell = image.crop((col * CELL_W, row * CELL_H, (col + 1) * CELL_W, (row + 1) * CELL_H))
    return sum(n for n, colour in cell.getcolors() or [] if colour != DEFAULT_BG)


def test_sgr_codes_become_styles() -> None:
    style = apply_sgr(Style(), "0;1;3;4;7;9;31;42")
    assert style.flags == BOLD | ITALICS | UNDERSCORE | REVERSE | STRIKETHROUGH
    assert (style.fg, style.bg) == (RED, (0, 205, 0))
    assert apply_sgr(style, "22;23;39;49").flags == UNDERSCORE | REVERSE | STRIKETHROUGH
    assert apply_sgr(style, "0") == Style()
    assert apply_sgr(style, "") == Style()
    assert apply_sgr(Style(), "38;2;255;135;0;48;5;196") == Style((255, 135, 0), (255, 0, 0))
    assert apply_sgr(Style(), "38;5;244;91;104").fg == (255, 0, 0)  # the last one wins
    assert apply_sgr(Style(), "48;5;244").bg == (128, 128, 128)
    assert apply_sgr(Style(), "38;2").fg is None  # cut short: ignored, not an error


def test_grid_puts_wide_characters_over_two_cells_and_marks_on_their_base() -> None:
    [row] = grid(["a中b e\u0301\x1b[0;31mx\x1b[0m"], 8, 1)
    texts = [cell.text if cell else None for cell in row]
    assert texts == ["a", "中", None, "b", " ", "e\u0301", "x", " "]
    assert row[1] is not None and row[1].wide
    assert row[6] is not None and row[6].style.fg == RED
    [cut] = grid(["abc中"], 4, 1)  # a wide character that does not fit is left out
    assert [cell.text if cell else None for cell in cut] == ["a", "b", "c", " "]
    assert len(grid([], 3, 2)) == 2


def test_emulator_colours_reach_the_picture() -> None:
    screen = _screen(b"\x1b[41m  \x1b[0m\x1b[33;44mY\x1b[0m\x1b[38;2;1;2;3;48;2;9;8;7mT\x1b[m")
    image = render(screen)
    assert image.size == (20 * CELL_W, 3 * CELL_H)
    assert image.getpixel((1, 1)) == RED and image.getpixel((CELL_W + 1, 1)) == RED
    assert image.getpixel((2 * CELL_W, 0)) == (0, 0, 238)  # blue behind the yellow Y
    assert (205, 205, 0) in _row_pixels(image, 2, 8)
    assert image.getpixel((3 * CELL_W, 0)) == (9, 8, 7)


def test_attributes_change_the_glyph_pixels() -> None:
    plain = render(_screen(b"H"))
    bold = render(_screen(b"\x1b[1mH"))
    italic = render(_screen(b"\x1b[3mH"))
    assert _lit(bold, 0) > _lit(plain, 0) > 0
    box = (0, 0, CELL_W, CELL_H)
    assert italic.crop(box).tobytes() != plain.crop(box).tobytes()
    under = render(_screen(b"\x1b[4m \x1b[0m"))
    assert _row_pixels(under, 0, 14) == {DEFAULT_FG} and _row_pixels(under, 0, 8) == {DEFAULT_BG}
    strike = render(_screen(b"\x1b[9m \x1b[0m"))
    assert _row_pixels(strike, 0, 8) == {DEFAULT_FG} and _row_pixels(strike, 0, 14) == {DEFAULT_BG}
    reverse = render(_screen(b"\x1b[7;31m \x1b[0m"))
    assert reverse.getpixel((4, 8)) == RED  # the foreground fills the cell


def test_cursor_is_a_block_when_visible_only() -> None:
    screen = _screen(b"ab")
    assert render(screen).getpixel((2 * CELL_W + 4, 8)) == DEFAULT_FG
    hidden = _screen(b"ab\x1b[?25l")
    assert render(hidden).getpixel((2 * CELL_W + 4, 8)) == DEFAULT_BG
    edge = _screen(b"x" * 20, cols=20, rows=3)  # a pending wrap: the cursor sits past the edge
    edge["cursor"] = {"row": 0, "col": 20, "visible": True}
    assert render(edge).getpixel((19 * CELL_W, 0)) == DEFAULT_FG


def test_png_bytes_size_scale_and_plain_lines() -> None:
    data = png_bytes({"lines": ["hello"], "size": {"cols": 10, "rows": 2}}, scale=3)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (10 * CELL_W * 3, 2 * CELL_H * 3)
    with pytest.raises(UsageError, match=r"1\.\.4"):
        png_bytes({"lines": []}, scale=5)


def test_get_png_parses_the_same_on_the_fast_lane() -> None:
    words = ["get", "--png", "shot.png", "--json"]
    fast = cli_fast.parse(words)
    assert fast is not None
    assert vars(fast) == vars(build_parser("get").parse_args(words))


def test_pillow_is_loaded_only_for_a_picture() -> None:
    """Importing the CLI, the session API or the MCP server loads neither Pillow nor the
    renderer: they are imported inside the calls that draw."""
    import subprocess
    import sys

    code = (
        "import sys, importlib.util\n"
        "import agentty_core.cli.main, agentty_core.cli.hotpath, agentty_core.session\n"
        "if importlib.util.find_spec('mcp'): import agentty_core.cli.mcp\n"
        "print(sorted(m for m in sys.modules if m == 'PIL' or m.startswith('agentty_core.render')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_picture_past_the_pixel_limit_is_refused_before_it_is_drawn() -> None:
    """A 1000x1000 screen at scale 4 is 32000x64000 pixels: its screenshot took 8 GB and
    a minute (an attack round on the MCP server), all of it within the advertised ranges."""
    import time

    huge: JSONObject = {"size": {"cols": 1000, "rows": 1000}, "lines": ["x"]}
    began = time.monotonic()
    with pytest.raises(UsageError, match=r"32000x64000 pixels, over the limit") as refused:
        png_bytes(huge, scale=4)
    assert "resize the session" in str(refused.value)
    wide: JSONObject = {"size": {"cols": 300, "rows": 100}, "lines": ["x"]}
    with pytest.raises(UsageError, match=r"scale 2 fits"):
        png_bytes(wide, scale=4)
    assert time.monotonic() - began < 5  # refused, not drawn first
    image = Image.open(io.BytesIO(png_bytes(wide, scale=2)))
    assert image.size == (300 * 8 * 2, 100 * 16 * 2)

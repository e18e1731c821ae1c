"""Screenshots of a live session: `agentty get --png FILE` and `Session.screenshot()`, drawn
from what a real worker's emulator made of a program's colours, attributes and wide text."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agentty_core import Session
from tests.helpers.cli import AGENTTY, agentty, agentty_json, wait_until

pytest.importorskip("PIL")

from PIL import Image

from agentty_core.render.png import CELL_H, CELL_W, DEFAULT_BG, DEFAULT_FG

Factory = Callable[..., Session]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RED, BLUE = (205, 0, 0), (0, 0, 238)
# Row 0: a red block at cols 0-3, bold and plain M at 5 and 6, a wide 中 at 8-9 and a blue
# cell right after it at 10. Row 1: a prompt with the cursor after it (col 7).
PROGRAM = (
    r"printf '\033[41m    \033[0m \033[1mM\033[0mM \344\270\255\033[44m \033[0m\n"
    r"prompt>'; exec sleep 60"
)


def _cell(image: Image.Image, row: int, col: int, scale: int = 1) -> Image.Image:
    w, h = CELL_W * scale, CELL_H * scale
    return image.crop((col * w, row * h, (col + 1) * w, (row + 1) * h))


def _centre(image: Image.Image, row: int, col: int) -> tuple[int, ...]:
    pixel = image.getpixel((col * CELL_W + CELL_W // 2, row * CELL_H + CELL_H // 2))
    assert isinstance(pixel, tuple)
    return pixel


def _lit(cell: Image.Image) -> int:
    """How many of a cell's pixels are not the default background."""
    return sum(n for n, colour in cell.getcolors() or [] if colour != DEFAULT_BG)


def _start() -> str:
    started = agentty_json("start", "--cols", "40", "--rows", "6", "--", "sh", "-c", PROGRAM)
    agentty("wait", "--text", "prompt>", "--timeout", "20", check=True)
    return str(started["id"])


def test_get_png_draws_colours_bold_wide_characters_and_the_cursor(tmp_path: Path) -> None:
    sid = _start()
    try:
        out = tmp_path / "screen.png"
        proc = agentty("get", "--png", str(out), check=True)
        assert str(out) in proc.stdout
        data = out.read_bytes()
        assert data.startswith(PNG_MAGIC)
        png = Image.open(io.BytesIO(data))
        assert png.format == "PNG" and png.size == (40 * CELL_W, 6 * CELL_H)
        image = png.convert("RGB")
        assert _centre(image, 0, 0) == RED and _centre(image, 0, 3) == RED
        assert _centre(image, 0, 4) == DEFAULT_BG
        # Bold is drawn thicker than the same letter plain.
        assert _lit(_cell(image, 0, 5)) > _lit(_cell(image, 0, 6)) > 0
        # 中 covers cols 8 and 9 (ink in both halves), so the blue cell lands at col 10.
        assert _lit(_cell(image, 0, 8)) > 0 and _lit(_cell(image, 0, 9)) > 0
        assert _centre(image, 0, 10) == BLUE and _centre(image, 0, 9) != BLUE
        # The cursor is a block after "prompt>": filled with the foreground colour.
        assert _centre(image, 1, 7) == DEFAULT_FG
        assert _centre(image, 1, 8) == DEFAULT_BG
        assert _lit(_cell(image, 2, 7)) == 0
        info = agentty_json("get", "--png", str(tmp_path / "again.png"))
        assert info["path"] == str(tmp_path / "again.png")
        assert (info["cols"], info["rows"]) == (40, 6) and info["bytes"] > 0
    finally:
        agentty("kill", "-s", sid, check=True)


def test_get_png_to_stdout_and_an_unwritable_file(tmp_path: Path) -> None:
    sid = _start()
    try:
        raw = subprocess.run(
            [AGENTTY, "get", "--png", "-"], capture_output=True, timeout=60, check=True
        ).stdout
        assert raw.startswith(PNG_MAGIC)
        bad = agentty("get", "--png", str(tmp_path / "no" / "such" / "dir.png"))
        assert bad.returncode == 1 and "cannot write" in bad.stderr  # failed, not misused
    finally:
        agentty("kill", "-s", sid, check=True)


def test_get_png_to_a_terminal_is_refused_before_anything_is_drawn() -> None:
    """`get --png -` on a terminal wrote the picture's bytes to it (as `curl` will not)."""
    sid = _start()
    leader, follower = os.openpty()
    try:
        proc = subprocess.run(
            [AGENTTY, "get", "--png", "-"],
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2
        assert proc.stderr == (
            "agentty: error: --png - would write a picture's bytes to your terminal: "
            "redirect it, or --png FILE\n"
        )
        os.set_blocking(leader, False)
        with pytest.raises(BlockingIOError):
            os.read(leader, 4096)  # nothing reached the terminal
    finally:
        os.close(leader)
        os.close(follower)
        agentty("kill", "-s", sid, check=True)


def test_get_png_without_pillow_says_how_to_install_it(tmp_path: Path) -> None:
    """A PIL that cannot be imported (first on the path) stands in for a missing Pillow."""
    sid = _start()
    try:
        shadow = tmp_path / "shadow" / "PIL"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text("raise ImportError('No module named PIL')\n")
        env = dict(os.environ, PYTHONPATH=str(shadow.parent))
        proc = agentty("get", "--png", str(tmp_path / "x.png"), env=env)
        assert proc.returncode == 1, proc.stderr
        assert "Pillow" in proc.stderr and "pip install 'agentty[png]'" in proc.stderr
        assert "Traceback" not in proc.stderr and not (tmp_path / "x.png").exists()
    finally:
        agentty("kill", "-s", sid, check=True)


def test_session_screenshot_returns_png_bytes(agentty_session: Factory) -> None:
    sh = agentty_session(["sh", "-c", PROGRAM], size=(30, 5))
    sh.wait(text="prompt>")
    data = sh.screenshot()
    assert isinstance(data, bytes) and data.startswith(PNG_MAGIC)
    image = Image.open(io.BytesIO(data)).convert("RGB")
    assert image.size == (30 * CELL_W, 5 * CELL_H)
    assert _centre(image, 0, 1) == RED
    big = Image.open(io.BytesIO(sh.screenshot(scale=2)))
    assert big.size == (30 * CELL_W * 2, 5 * CELL_H * 2)


def test_screenshot_of_an_exited_session_is_its_last_screen(agentty_session: Factory) -> None:
    sh = agentty_session([sys.executable, "-c", "print('\\x1b[41mbye\\x1b[0m')"], size=(20, 4))
    sh.wait(exit=True)
    image = Image.open(io.BytesIO(sh.screenshot())).convert("RGB")
    assert image.size == (20 * CELL_W, 4 * CELL_H)
    assert image.getpixel((0, 0)) == RED  # the background of "bye", above its letters


def test_an_exited_session_keeps_its_colours(tmp_path: Path) -> None:
    """The final screen saved at exit has the styled rows: `get --ansi` and `get --png` of an
    ended session show its colours (they were plain text, and `get --ansi` printed nothing)."""
    program = "printf '\\033[41mbye\\033[0m\\n'"
    sid = str(agentty_json("start", "--cols", "20", "--rows", "4", "--", "sh", "-c", program)["id"])
    wait_until(lambda: agentty_json("status")["sessions"][0]["status"] == "exited", 20)
    assert agentty("get", "--ansi", "-s", sid, check=True).stdout == "\x1b[0;41mbye\x1b[0m\n"
    out = tmp_path / "ended.png"
    agentty("get", "--png", str(out), "-s", sid, check=True)
    image = Image.open(out).convert("RGB")
    assert image.getpixel((0, 0)) == RED

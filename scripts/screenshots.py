"""Pictures of the dashboard for the README: SVGs from Textual, PNGs from headless Chromium.

Runs against a private, temporary AGENTTY_HOME with a few demo sessions, and kills them all
afterwards. `make screenshots` runs it; PNGs need `chromium-headless-shell` and
`fonts-firacode` (Debian), and are skipped with a note when Chromium is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agentty_core.client import Client

OUT = Path(__file__).resolve().parent.parent / "screenshots"
SIZE = (110, 34)
CHROMIUM = ("chromium-headless-shell", "chromium", "chromium-browser")
COLOURS = r"""
import time
print("\x1b[1mBuild report\x1b[0m  \x1b[2m(agentty demo)\x1b[0m")
for mark, colour, text in [
    ("✓", 32, "compile    12 modules"), ("✓", 32, "unit tests 348 passed"),
    ("!", 33, "lint       2 warnings"), ("✗", 31, "e2e        1 failed: test_login"),
]:
    print(f"  \x1b[{colour};1m{mark}\x1b[0m \x1b[{colour}m{text}\x1b[0m")
print()
for i, c in enumerate([196, 202, 226, 46, 51, 21, 201]):
    print(f"\x1b[48;5;{c}m" + " " * 8 + "\x1b[0m", end="")
print("\n\x1b[4munderline\x1b[0m \x1b[7mreverse\x1b[0m \x1b[3mitalic\x1b[0m ✓ → ✗")
"""


def wait(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


async def shoot() -> dict[str, str]:

    client = Client(timeout=3.0)
    try:
        return await _shoot(client)
    finally:
        for rec in client.sessions():
            if rec.get("status") in ("running", "starting", "lost"):
                with contextlib.suppress(Exception):
                    client.kill(str(rec["id"]), grace=0.5)
        with contextlib.suppress(Exception):
            client.end_orphans(grace=0.5)


async def _shoot(client: Client) -> dict[str, str]:
    from agentty_ui.app import create_app
    from agentty_ui.screens.grid import GridScreen, MiniPane
    from agentty_ui.widgets.terminal_view import TerminalView

    script = Path(os.environ["AGENTTY_HOME"]) / "report.py"
    script.write_text(COLOURS)
    report = client.start(["python3", "-q", "-i", str(script)], name="build")
    client.start(
        ["sh", "-c", "ls -l --color=always / | head -20; exec cat"],
        name="listing",
    )
    top = client.start(["sh", "-c", "echo watching logs...; exec cat"], name="watcher")
    stray = client.start(
        ["sh", "-c", "trap '' HUP; sleep 1000000 & echo background child $!; wait"],
        name="stray",
    )
    for rec in (report, top, stray):
        client.wait(str(rec["id"]), regex=r"\S", timeout=10)
    shots: dict[str, str] = {}
    app = create_app(client)

    async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met")
            await pilot.pause(0.05)

    async with app.run_test(size=SIZE) as pilot:
        screen = app.query_one("#screen", TerminalView)
        await until(lambda: len(app.records) == 4 and "Build report" in screen.text)
        await pilot.pause(1.2)  # one more poll, for CPU %
        shots["overview"] = app.export_screenshot(title="agentty")
        await pilot.press("down")
        await until(lambda: "bin" in screen.text)
        shots["session"] = app.export_screenshot(title="agentty: a colourful listing")
        await pilot.press("up", "enter", *"print(6 * 7)", "enter")
        await until(lambda: "42" in screen.text)
        shots["attach"] = app.export_screenshot(title="agentty: attached")
        await pilot.press("ctrl+right_square_bracket", "k")
        await pilot.pause(0.2)
        shots["kill-modal"] = app.export_screenshot(title="agentty: kill")
        await pilot.press("escape", "g")
        await until(lambda: isinstance(app.screen, GridScreen))
        panes = list(app.screen.query(MiniPane))
        await until(lambda: all(p.query_one(TerminalView).text.strip() for p in panes))
        shots["grid"] = app.export_screenshot(title="agentty: grid")
        await pilot.press("escape")
        pid = stray["workerPid"]
        assert isinstance(pid, int)
        os.kill(pid, signal.SIGKILL)
        await until(lambda: app.orphans, 15)
        await pilot.pause(0.3)
        shots["orphans"] = app.export_screenshot(title="agentty: orphan warning")
    return shots


def svg_size(svg: str) -> tuple[int, int]:
    match = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg)
    return (
        (int(float(match.group(1))) + 1, int(float(match.group(2))) + 1) if match else (1400, 900)
    )


def to_png(svg_path: Path, chromium: str) -> None:
    """Render an SVG with Chromium, inside a page that sets Fira Code as the font."""
    width, height = svg_size(svg_path.read_text())
    page = svg_path.with_suffix(".html")
    page.write_text(
        '<html><head><meta charset="utf-8"><style>html,body{margin:0;background:#1e1e1e}'
        "svg{display:block} text{font-family:'Fira Code',monospace !important}</style></head>"
        f"<body>{svg_path.read_text()}</body></html>"
    )
    png = svg_path.with_suffix(".png")
    subprocess.run(
        [chromium, "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri()],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    page.unlink()


def main() -> int:
    home = tempfile.mkdtemp(prefix="at-shots-", dir="/tmp")
    os.chmod(home, 0o700)
    os.environ["AGENTTY_HOME"] = home
    try:
        shots = asyncio.run(shoot())
    finally:
        shutil.rmtree(home, ignore_errors=True)
    OUT.mkdir(exist_ok=True)
    chromium = next((found for name in CHROMIUM if (found := shutil.which(name))), None)
    for name, svg in shots.items():
        svg_path = OUT / f"{name}.svg"
        svg_path.write_text(svg)
        if chromium:
            to_png(svg_path, chromium)
        print(f"wrote {svg_path}" + (" and .png" if chromium else ""))
    if not chromium:
        print("no chromium-headless-shell: PNGs skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

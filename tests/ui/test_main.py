"""`agentty ui` refuses to start as every command does: one line and the error's exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.cli import agentty

REPO = Path(__file__).resolve().parents[2]


def test_an_unsafe_home_is_one_line_and_the_exit_code_status_gives(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    env = {**os.environ, "AGENTTY_HOME": str(home)}
    status = agentty("status", env=env)
    assert status.returncode != 0 and "unsafe permissions 0755" in status.stderr
    ui = subprocess.run(
        [sys.executable, "-m", "agentty_ui"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert (ui.returncode, ui.stderr, ui.stdout) == (status.returncode, status.stderr, "")


def test_without_a_terminal_it_is_refused_in_one_line() -> None:
    """`echo x | agentty ui > out` wrote the alternate screen and mouse modes into the file
    and ran until killed (an attack round); `agentty ui` needs a terminal to draw on."""
    ui = agentty("ui", "--demo", timeout=30)  # (stdin and stdout pipes)
    assert ui.returncode == 2, ui
    assert ui.stderr.startswith("agentty: error: the dashboard needs a terminal"), ui.stderr
    assert ui.stderr.count("\n") == 1 and ui.stdout == "", ui
    assert "demo" not in agentty("status").stdout  # nothing started for it

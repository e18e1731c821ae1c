"""Ctrl-C at any point of a command, its imports included, is exit 130 without a traceback."""

from __future__ import annotations

import subprocess
import sys

INTERRUPTED_EARLY = """
import sys
from agentty_core.cli import hotpath

def interrupted(argv):
    raise KeyboardInterrupt  # as in an import before the command's own handling began

hotpath._main = interrupted
sys.exit(hotpath.main(["doctor"]))
"""


def test_ctrl_c_before_a_commands_own_handling_is_exit_130() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_EARLY], capture_output=True, text=True, timeout=30
    )
    assert (proc.returncode, proc.stderr) == (130, "")

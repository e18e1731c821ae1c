"""The fast lane's console entry ends with `os._exit` once its output is flushed
(`cli/hotpath._leave_now`): the interpreter's teardown is a fifth of a bare interpreter's
run, paid by every agent call for nothing. Every byte must still arrive, the exit code must
be the command's, and where something does need the teardown (an atexit callback, a
thread) it runs as before."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers.cli import AGENTTY, agentty, agentty_json

FULL = [
    sys.executable,
    "-c",
    "import sys; from agentty_core.cli.main import main; sys.exit(main())",
]
WITH_ATEXIT = (
    "import atexit, sys\n"
    "atexit.register(print, 'atexit ran')\n"
    "from agentty_core.cli.hotpath import main\n"
    "sys.exit(main())\n"
)


def run(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
    )


def test_the_lane_ends_without_teardown_and_with_all_its_output() -> None:
    """A screen with a long scrollback (more than a pipe holds) arrives whole, as the full
    path prints it; `python -v` shows no module cleanup: the teardown was skipped."""
    agentty_json("start", "--", "sh", "-c", "seq -f '%070g' 1 6000; echo done; exec cat")
    agentty("wait", "--text", "done", check=True)
    sizes = []
    for args in (["get", "--scrollback"], ["get", "--json", "--scrollback"], ["status"]):
        fast, full = run([AGENTTY], *args), run(FULL, *args)
        assert (fast.returncode, fast.stdout, fast.stderr) == (0, full.stdout, ""), args
        sizes.append(len(fast.stdout))
    assert max(sizes) > 1 << 16, sizes
    verbose = run([sys.executable, "-v", AGENTTY], "get")
    assert verbose.returncode == 0 and verbose.stdout.endswith("done\n"), verbose.stderr[-500:]
    assert "# cleanup" not in verbose.stderr
    agentty("kill", check=True)


def test_an_error_exit_code_and_its_message_come_through() -> None:
    agentty_json("start", "--", "sh", "-c", "echo here; exec cat")
    agentty("wait", "--text", "here", check=True)
    args = ["wait", "--text", "never", "--timeout", "0.2"]
    fast, full = run([AGENTTY], *args), run(FULL, *args)
    assert (fast.returncode, fast.stdout, fast.stderr) == (3, full.stdout, full.stderr)
    assert fast.stdout == "here\n" and "never" in fast.stderr
    agentty("kill", check=True)


def test_what_needs_the_teardown_still_gets_it() -> None:
    """An atexit callback registered before the lane ran still runs, after the output."""
    agentty_json("start", "--", "sh", "-c", "echo here; exec cat")
    agentty("wait", "--text", "here", check=True)
    proc = run([sys.executable, "-v", "-c", WITH_ATEXIT], "get")
    assert proc.returncode == 0, proc.stderr[-500:]
    assert proc.stdout == "here\natexit ran\n"
    assert "# cleanup" in proc.stderr  # the interpreter's own exit, as before
    agentty("kill", check=True)

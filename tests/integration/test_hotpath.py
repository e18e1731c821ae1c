"""The fast lane of `agentty get/text/key` (hotpath.py) does exactly what the full path does,
without importing json, re, pathlib or socket, and hands everything else over untouched."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers.cli import AGENTTY, agentty, agentty_json

FULL = [
    sys.executable,
    "-c",
    "import sys; from agentty_core.cli.main import main; sys.exit(main())",
]

LANE_CHECK = """
import sys
from agentty_core.cli.hotpath import fast_lane
code = fast_lane(sys.argv[1:])
loaded = sorted({'json', 're', 'pathlib', 'socket', 'argparse'} & set(sys.modules))
print(f'CODE={code} LOADED={",".join(loaded)}', file=sys.stderr)
"""


def run(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
    )


def lane(*args: str) -> str:
    proc = run([sys.executable, "-c", LANE_CHECK], *args)
    return proc.stderr.strip().splitlines()[-1]


def test_get_text_and_key_answer_as_the_full_path_does() -> None:
    agentty_json("start", "--", "sh", "-c", "printf 'one  \\n\\ntwo\\n'; exec cat")
    agentty("wait", "--text", "two", check=True)
    fast, full = run([AGENTTY], "get"), run(FULL, "get")
    assert fast.returncode == full.returncode == 0
    assert fast.stdout == full.stdout == "one\n\ntwo\n"
    typed = run([AGENTTY], "text", "héllo", "wörld")
    assert (typed.returncode, typed.stdout, typed.stderr) == (0, "", "")
    pressed = run([AGENTTY], "key", "Enter")
    assert (pressed.returncode, pressed.stdout, pressed.stderr) == (0, "", "")
    agentty("wait", "--text", "héllo wörld", check=True)
    screen = agentty_json("wait", "--stable", "300", "--timeout", "10")
    # The tty's echo, then cat's copy: sent once, not twice.
    assert sum("héllo wörld" in line for line in screen["lines"]) == 2, screen["lines"]
    agentty("kill", check=True)


def test_the_lane_serves_without_the_heavy_standard_modules() -> None:
    agentty_json("start", "--", "sh", "-c", "echo ready; exec cat")
    agentty("wait", "--text", "ready", check=True)
    assert lane("get") == "CODE=0 LOADED="
    assert lane("key", "Escape") == "CODE=0 LOADED="
    sid = agentty_json("status")["active"]
    assert lane("get", "--session", sid) == "CODE=0 LOADED="
    assert lane("text", "-s", sid, "x") == "CODE=0 LOADED="
    assert lane("get", f"--session={sid}") == "CODE=0 LOADED="
    agentty("kill", check=True)


@pytest.mark.parametrize(
    "args",
    [
        ["get", "--json"],
        ["get", "-s", "x"],  # a name: the records know which session it is
        ["get", "-s", "0123abc"],  # an id prefix
        ["text", "x", "-s", "0123abcd"],
        ["get", "extra"],
        ["text"],
        ["text", "-"],
        ["text", "--enter", "x"],
        ["key"],
        ["wait", "--text", "x"],
        ["status"],
        [],
    ],
)
def test_other_forms_are_left_to_the_full_path(args: list[str]) -> None:
    agentty_json("start", "--", "cat")
    assert lane(*args).startswith("CODE=None")
    agentty("kill", check=True)


def test_refusals_and_ended_sessions_read_as_the_full_path_says() -> None:
    assert lane("get").startswith("CODE=None")  # no session at all
    assert run([AGENTTY], "get").stderr == run(FULL, "get").stderr != ""
    agentty_json("start", "--", "sh", "-c", "echo bye; sleep 30")
    agentty("wait", "--text", "bye", check=True)
    for args in (["key", "NoSuchKey"], ["get"]):
        fast, full = run([AGENTTY], *args), run(FULL, *args)
        assert (fast.returncode, fast.stdout, fast.stderr) == (
            full.returncode,
            full.stdout,
            full.stderr,
        )
    assert run([AGENTTY], "key", "NoSuchKey").returncode == 2
    agentty("kill", check=True)
    fast, full = run([AGENTTY], "get"), run(FULL, "get")  # the final screen, from the file
    assert (fast.returncode, fast.stdout) == (full.returncode, full.stdout) == (0, "bye\n")
    assert lane("text", "x").startswith("CODE=None")  # no socket: the full path says why

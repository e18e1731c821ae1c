"""A forked worker takes the caller's environment by changing only what differs from the
spawner's (`forked._take_environment`): the result is the caller's, in the caller's order."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

BASE = {"HOME": "/root", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TERM": "xterm"}
TAKE = """
import json, os, sys
from agentty_core.worker.forked import _take_environment
_take_environment(json.loads(sys.argv[1]))
sys.stdout.write(json.dumps(list(os.environ.items())))
"""


def _taken(own: dict[str, str], caller: dict[str, str]) -> None:
    """A process whose environment is `own` takes `caller`: it ends up with it, in order."""
    env = {**own, "PYTHONPATH": os.getcwd()}  # the interpreter's own, kept by both
    caller = {**caller, "PYTHONPATH": os.getcwd()}
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {os.getcwd()!r})\n{TAKE}",
            json.dumps(caller),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert list(map(list, caller.items())) == json.loads(out)


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param(BASE, id="the-same"),
        pytest.param({**BASE, "LANG": "de_DE.UTF-8"}, id="a-value-changed"),
        pytest.param({k: v for k, v in BASE.items() if k != "PATH"}, id="one-unset"),
        pytest.param({**BASE, "NEW": "x"}, id="a-new-one-last"),
        pytest.param({"NEW": "first", **BASE}, id="a-new-one-first"),
        pytest.param(dict(reversed(BASE.items())), id="another-order"),
        pytest.param({}, id="empty"),
        pytest.param({"ODD": "a=b\nc", "EMPTY": ""}, id="odd-values"),
    ],
)
def test_the_caller_environment_in_its_order(caller: dict[str, str]) -> None:
    _taken(BASE, caller)

"""Run-time guards for what importing agentty loads, in a fresh interpreter each.

The import-linter contracts in pyproject.toml read the static graph: they cannot see what a
third-party module drags in, nor tell a module-level import from one deferred into the
function that needs it. These tests import for real and look at `sys.modules`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import agentty, agentty_json

FORBIDDEN_IN_CORE = ("textual", "rich", "agentty_ui")

IMPORT_EVERY_CORE_MODULE = """
import importlib, importlib.util, json, pkgutil, sys
import agentty_core

skip = {"agentty_core.__main__"}  # it runs the command
if importlib.util.find_spec("mcp") is None:
    skip.add("agentty_core.cli.mcp")  # the optional extra
forbidden = sys.argv[1:]
names = sorted(m.name for m in pkgutil.walk_packages(agentty_core.__path__, "agentty_core."))
leaks = {}
for name in names:
    if name in skip:
        continue
    importlib.import_module(name)
    new = sorted(f for f in forbidden if f in sys.modules and f not in leaks.values())
    for f in new:
        leaks[name] = f  # first present after importing this module (or one it imports)
print(json.dumps({"imported": [n for n in names if n not in skip], "leaks": leaks}))
"""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_no_core_module_loads_the_dashboard_or_its_toolkit() -> None:
    report = json.loads(run_python(IMPORT_EVERY_CORE_MODULE, *FORBIDDEN_IN_CORE).stdout)
    imported = set(report["imported"])
    # The walk really covered the package: each layer's modules are there.
    assert {
        "agentty_core.session",
        "agentty_core.client",
        "agentty_core.worker.core",
        "agentty_core.emulator.pyte_backend",
        "agentty_core.cli.main",
        "agentty_core.pytest_plugin",
    } <= imported
    assert len(imported) >= 40, sorted(imported)
    assert report["leaks"] == {}, f"first loaded by (a module imported by) {report['leaks']}"


# What `import agentty_core.cli.hotpath` loads today, pinned: the package's (empty) roots, the
# version, and nothing else. Anything new here is paid by every `agentty` call.
HOTPATH_IMPORTS = {
    "__future__",
    "agentty_core",
    "agentty_core._version",
    "agentty_core.cli",
    "agentty_core.cli.hotpath",
}
# What the fast lane adds: its own modules (parser, lane, readers: they import nothing else)
# and two of the interpreter's C modules.
FAST_LANE_IMPORTS = HOTPATH_IMPORTS | {
    "agentty_core.cli.fast",
    "agentty_core.cli.lane",
    "agentty_core.cli.hotread",
    "_socket",
    "_json",
}

LOADED_BY = """
import sys
before = set(sys.modules)
import agentty_core.cli.hotpath as hotpath
imported = set(sys.modules) - before
words = sys.argv[1:]
code = hotpath.main(words) if words else 0
ran = set(sys.modules) - before
import json
print(json.dumps({"code": code, "imported": sorted(imported), "ran": sorted(ran)}))
"""


def loaded_by(*words: str) -> tuple[int, set[str], set[str]]:
    """`agentty WORDS` through the entry point in a fresh interpreter: its exit code, the
    modules the import loaded, and those loaded by the end of the run."""
    value = json.loads(run_python(LOADED_BY, *words).stdout.splitlines()[-1])
    return value["code"], set(value["imported"]), set(value["ran"])


def test_importing_the_entry_point_loads_only_what_it_loads_today() -> None:
    _, imported, _ = loaded_by()
    assert imported == HOTPATH_IMPORTS


def test_the_fast_lane_runs_on_the_interpreters_c_modules_only() -> None:
    agentty_json("start", "--", "sh", "-c", "echo ready; exec cat")
    agentty("wait", "--text", "ready", check=True)
    try:
        name = agentty_json("status")["sessions"][0]["id"][:4]
        for words in (
            ["get"],
            ["text", "hello"],
            ["key", "Enter"],
            ["get", "--json", "-s", name],
            ["paste", "--json", "x"],
            ["wait", "--text", "ready", "--json"],
        ):
            code, _, ran = loaded_by(*words)
            assert code == 0, words
            assert ran == FAST_LANE_IMPORTS, words  # the lane answered, not the full path
        status = FAST_LANE_IMPORTS | {"agentty_core.cli.hotstatus"}
        for words in (["status"], ["status", "--json"], ["status", "-q"]):
            code, _, ran = loaded_by(*words)
            assert code == 0, words
            # Every form asks the running workers (their live fields, an unrecorded exit).
            assert ran == status, words
    finally:
        agentty("kill", check=True)


# What `agentty start` adds with the home's spawner warm (`cli/startlane.py`): its module,
# the lane's readers and option parser, the caller's context (`spawning`, os and sys only,
# shared with the full path's spawner client), and C modules only (the socket, the JSON
# codec, select). Not `resource`, a shared library: the rlimits are read from /proc.
START_LANE_IMPORTS = HOTPATH_IMPORTS | {
    "agentty_core.cli.startlane",
    "agentty_core.cli.fast",
    "agentty_core.spawning",
    "agentty_core.cli.hotread",
    "_socket",
    "_json",
    "select",
}


# What `agentty run` adds to the start lane's (`cli/runlane.py`): its module, the driving it
# shares with the full path (`cli/run.py`: signals through `_signal`, loaded at start-up), the
# fast lane's requests, the errors and what a screen row can hold (`--expect`'s check):
# they import nothing.
RUN_LANE_IMPORTS = START_LANE_IMPORTS | {
    "agentty_core.cli.runlane",
    "agentty_core.cli.run",
    "agentty_core.cli.lane",
    "agentty_core.errors",
    "agentty_core.screen_text",
}


@pytest.mark.parametrize(
    ("forms", "expected"),
    [
        (
            [
                ["start", "--", "cat"],
                ["start", "--json", "--name", "n", "--env", "A=1", "--cwd", "/", "--", "cat"],
                ["start", "--shell", "exec cat", "--cols", "90", "--rows", "20"],
            ],
            START_LANE_IMPORTS,
        ),
        (
            [
                ["run", "--input", "x", "--", "sh", "-c", "read a; echo $a"],
                ["run", "--json", "--expect", "?", "--input", "y", "--", "sh", "-c", "read -p ? a"],
            ],
            RUN_LANE_IMPORTS,
        ),
    ],
    ids=["start", "run"],
)
def test_the_start_and_run_lanes_run_on_the_interpreters_c_modules_only(
    agentty_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    forms: list[list[str]],
    expected: set[str],
) -> None:
    from tests.helpers.spawner import ready_spawner

    monkeypatch.setenv("AGENTTY_SPAWNER", "1")
    agentty("start", "--", "cat", check=True)  # no spawner yet: this one launches it
    ready_spawner(agentty_home)
    try:
        for words in forms:
            code, _, ran = loaded_by(*words)
            assert code == 0, words
            assert ran == expected, words  # the lane answered, not the full path
    finally:
        for sid in agentty("status", "-q").stdout.split():
            if len(sid) == 8:
                agentty("kill", "-s", sid, check=True)


def test_start_without_the_spawner_does_not_try_the_lane() -> None:
    """The tests' default (`AGENTTY_SPAWNER=0`): `start` goes the full way at once."""
    code, _, ran = loaded_by("start", "--", "cat")
    try:
        assert code == 0
        assert "agentty_core.cli.startlane" not in ran
    finally:
        agentty("kill", check=True)


def test_the_sync_session_does_not_load_asyncio() -> None:
    """`from agentty_core import Session` took 26 ms more once the wait slots it shares
    with AsyncSession imported asyncio at module level (a read-through)."""
    loaded = run_python(
        "import sys; from agentty_core import Session; Session; print('asyncio' in sys.modules)"
    )
    assert loaded.stdout.strip() == "False"

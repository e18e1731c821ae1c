"""`proc.command`: the caller's checks of a start's program and cwd.

`which` is written out so that `start` need not import shutil; it must find exactly what
`shutil.which` finds, whatever the PATH holds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentty_core.errors import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, SpawnError, UsageError
from agentty_core.proc.command import resolve_command, validate_cwd, which

KINDS = ("executable", "not-executable", "directory", "empty", "missing")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One directory per kind of what `prog` is in it."""
    root = tmp_path_factory.mktemp("path")
    made = {}
    for kind in KINDS:
        d = root / kind
        if kind != "missing":
            d.mkdir()
        if kind in ("executable", "not-executable"):
            (d / "prog").write_text("#!/bin/sh\n")
            (d / "prog").chmod(0o755 if kind == "executable" else 0o644)
        elif kind == "directory":
            (d / "prog").mkdir()
        made[kind] = str(d)
    return made


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from([*KINDS, "", "relative"]), max_size=6),
    cwd_has_prog=st.booleans(),
)
def test_which_finds_what_shutil_finds(
    dirs: dict[str, str], parts: list[str], cwd_has_prog: bool
) -> None:
    # "" and a relative entry are looked up from the cwd, as shutil does.
    cwd = Path(dirs["executable"] if cwd_has_prog else dirs["empty"])
    path = os.pathsep.join(
        "" if p == "" else "executable" if p == "relative" else dirs[p] for p in parts
    )
    before = os.getcwd()
    os.chdir(cwd.parent if any(p == "relative" for p in parts) else cwd)
    try:
        assert which("prog", path) == shutil.which("prog", path=path), path
    finally:
        os.chdir(before)


def test_resolve_command_messages_and_exit_codes(dirs: dict[str, str]) -> None:
    assert resolve_command("prog", dirs["executable"], "/") == f"{dirs['executable']}/prog"
    cases = [
        ("prog", dirs["not-executable"], EXIT_NOT_FOUND, "command not found: prog"),
        ("prog", "", EXIT_NOT_FOUND, "command not found: prog"),
        (f"{dirs['missing']}/prog", None, EXIT_NOT_FOUND, "command not found:"),
        (f"{dirs['directory']}/prog", None, EXIT_NOT_EXECUTABLE, "is a directory:"),
        (f"{dirs['not-executable']}/prog", None, EXIT_NOT_EXECUTABLE, "permission denied:"),
    ]
    for program, path, code, message in cases:
        with pytest.raises(SpawnError) as raised:
            resolve_command(program, path, "/")
        assert raised.value.exit_code == code and message in raised.value.message, program
    # A relative program with a slash is found from the session's cwd, not ours.
    found = resolve_command("./prog", None, dirs["executable"])
    assert found == f"{dirs['executable']}/prog"


def test_validate_cwd(dirs: dict[str, str]) -> None:
    validate_cwd(dirs["empty"])
    for cwd, message in (
        (dirs["missing"], "cwd does not exist"),
        (f"{dirs['executable']}/prog", "cwd is not a directory"),
    ):
        with pytest.raises(SpawnError, match=message):
            validate_cwd(cwd)


def test_an_empty_program_and_a_nul_in_the_cwd_are_said_as_they_are() -> None:
    """`start -- ''` said "command not found: " (naming nothing); a cwd with a NUL was
    "cwd does not exist" (a SpawnError), where it is a usage error (an attacker's round)."""
    with pytest.raises(SpawnError, match=r"command not found: '' \(the program is an empty"):
        resolve_command("", "/usr/bin", "/")
    with pytest.raises(UsageError, match="cwd holds a NUL byte"):
        validate_cwd("/tmp\0x")

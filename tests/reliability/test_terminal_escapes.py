"""Program-controlled text never reaches the user's terminal as escapes (issue #16.11).

`status` printed a session's argv raw and `orphans` a surviving process's command line raw:
an OSC 52 clipboard write and a title set went straight to the terminal running `agentty`.
Human-readable output shows control characters escaped (`\\x1b`); `--json` stays exact."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from tests.reliability.conftest import (
    AGENTTY,
    PYTHON,
    agentty,
    of_session,
    sigkill,
    start,
    wait_until,
)

CLIPBOARD = "\x1b]52;c;aGVsbG8=\x07"  # OSC 52: write "hello" to the clipboard
TITLE = "\x1b]0;title\x07"  # OSC 0: set the window title
# The escapes early in each command line, inside the columns the tables show. The HUP-ignoring
# Python grandchild outlives its worker: an orphan whose command line holds them.
ORPHAN = f"{PYTHON} -c \"'{CLIPBOARD}'; import time; time.sleep({{token}})\""
SCRIPT = f": '{CLIPBOARD}{TITLE}'; trap '' HUP; {ORPHAN}; :"


def _assert_escaped(out: str) -> None:
    assert "\x1b" not in out and "\x07" not in out, repr(out)
    assert "\\x1b]52;c;" in out, out  # shown, escaped (the table may cut the line after it)


def test_status_escapes_argv_and_json_keeps_it(agentty_home: Path) -> None:
    rec = start("--", "sh", "-c", "exec sleep 60", TITLE, CLIPBOARD)
    script = SCRIPT.format(token=random.randint(3_000_000, 3_999_999))
    start("--name", "ctl", "--", "sh", "-c", script)
    out = agentty("status", check=True).stdout
    _assert_escaped(out)
    assert "\\x1b]0;title\\x07" in out
    exact = json.loads(agentty("status", "--json", check=True).stdout)
    argvs = [s["argv"] for s in exact["sessions"]]
    assert ["sh", "-c", "exec sleep 60", TITLE, CLIPBOARD] in argvs
    assert rec["argv"][3:] == [TITLE, CLIPBOARD]


def test_orphans_escapes_the_command_line_and_json_keeps_it(agentty_home: Path) -> None:
    token = str(random.randint(3_000_000, 3_999_999))
    rec = start("--", "sh", "-c", SCRIPT.format(token=token))
    sid = rec["id"]
    wait_until(lambda: len(of_session(agentty_home, sid)) == 2)  # sh and python
    sigkill(rec["workerPid"])
    wait_until(lambda: agentty("orphans", "--json", check=True).stdout.count('"pid"') >= 1)
    out = agentty("orphans", check=True).stdout
    _assert_escaped(out)
    listed = json.loads(agentty("orphans", "--json", check=True).stdout)["orphans"]
    assert any(CLIPBOARD in o["command"] for o in listed), listed


def test_gc_escapes_the_ids_of_malformed_records(agentty_home: Path) -> None:
    """A hand-edited (or corrupted) record's id may hold anything: `gc` names what it
    removed, escaped."""
    import os

    hostile = "zz\x1b]0;PWNED\x07\x1b[31m"
    doc = {"schema_version": 1, "sessions": [{"id": hostile, "status": "exited"}]}
    fd = os.open(agentty_home / "sessions.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, json.dumps(doc).encode())
    os.close(fd)
    gc = agentty("gc")
    assert gc.returncode == 0, gc.stderr
    assert "\x1b" not in gc.stdout + gc.stderr and "\x07" not in gc.stdout + gc.stderr
    assert "removed 1 session(s)" in gc.stdout


def test_usage_errors_escape_the_words_they_quote(agentty_home: Path) -> None:
    """argparse quotes an unknown argument or an ambiguous option as given: an escape in
    argv reached the terminal, and a newline made the one-line error two."""
    for words in (
        ["status", TITLE + "\x1b[2J"],
        ["get", "--nope", CLIPBOARD],
        ["start", f"--re={TITLE}", "--", "true"],
        ["kill", "a\nb"],
    ):
        proc = agentty(*words)
        assert proc.returncode == 2, (words, proc.stderr)
        assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr, repr(proc.stderr)
        assert proc.stderr.count("\n") == 1, repr(proc.stderr)
        assert proc.stderr.startswith("agentty: error: "), proc.stderr


def test_status_shows_the_line_breaks_of_argv_escaped(agentty_home: Path) -> None:
    """A newline, a carriage return or a tab in argv was shown as a space: a two-line
    `sh -c` script read as one line, not as the command that runs."""
    start("--", "sh", "-c", "echo safe\nsleep 60 #A\rB\tC")
    full_path = [sys.executable, "-c", "from agentty_core.cli.main import main; main()"]
    for argv in ([AGENTTY, "status"], [*full_path, "status"]):  # the fast lane, the full path
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
        assert "echo safe\\nsleep 60 #A\\rB\\tC" in out, out

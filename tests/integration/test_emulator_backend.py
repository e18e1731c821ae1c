"""`AGENTTY_EMULATOR=avt` runs a session on the compiled backend, end to end."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.helpers.cli import AGENTTY, agentty, agentty_json

pytest.importorskip("avt")


def test_a_session_on_the_avt_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTY_EMULATOR", "avt")
    rec = agentty_json("start", "--", "sh", "-c", "printf '\\033[31mred\\033[0m\\n'; exec cat")
    assert rec["emulator"] == "avt"
    agentty("wait", "--text", "red", check=True)
    assert "31mred\x1b[0m" in agentty("get", "--ansi", check=True).stdout
    agentty("text", "--enter", "typed", check=True)
    assert agentty_json("wait", "--regex", "^typed$", "--timeout", "10")["fired"] == "regex"
    screen = agentty_json("wait", "--stable", "300", "--timeout", "10")
    assert screen["lines"][:3] == ["red", "typed", "typed"]  # the tty's echo, cat's copy
    agentty("kill", check=True)


def test_without_pyavt_the_worker_says_so_and_uses_pyte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTY_EMULATOR", "pyte")
    assert agentty_json("start", "--", "cat")["emulator"] == "pyte"
    agentty("kill", check=True)
    # A worker that cannot import pyavt: shadow it with a module that fails to import.
    shadow = subprocess.run(
        ["mktemp", "-d"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with open(os.path.join(shadow, "avt.py"), "w") as f:
        f.write("raise ImportError('no pyavt here')\n")
    monkeypatch.setenv("AGENTTY_EMULATOR", "avt")
    monkeypatch.setenv("PYTHONPATH", shadow)
    proc = subprocess.run(
        [AGENTTY, "start", "--json", "--", "cat"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)
    assert rec["emulator"] == "pyte"
    with open(str(rec["log"])) as log:
        assert "pyavt is not installed" in log.read()
    agentty("kill", check=True)
    subprocess.run(["rm", "-rf", shadow], check=False)

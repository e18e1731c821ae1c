"""asciicast v2 recording: written live, replayed, and equal to the final screen."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentty_core.emulator.pyte_backend import Emulator
from tests.helpers.cli import AGENTTY, agentty, agentty_json


def _replayed_screen(cast: Path) -> list[str]:
    header = json.loads(cast.read_text().splitlines()[0])
    emu = Emulator(header["width"], header["height"])
    for line in cast.read_text().splitlines()[1:]:
        _at, code, data = json.loads(line)
        if code == "o":
            emu.feed(data.encode())
        elif code == "r":
            cols, rows = data.split("x")
            emu.resize(int(cols), int(rows))
    return emu.lines()


def test_a_key_marker_does_not_spell_what_was_typed(agentty_home: Path) -> None:
    """Input is recorded only when asked (it may hold secrets); `key 1 2 3 4 Enter` at a
    password prompt spelt the password in its marker all the same (an outside round)."""
    rec = agentty_json("start", "--record", "--record-markers", "--", "cat")
    agentty("key", "1", "2*3", "x", "Space", "M-y", "Enter", "C-c", check=True)
    agentty("wait", "--exit", check=True)
    cast = agentty_home / "logs" / f"{rec['id']}.cast"
    events = [json.loads(line) for line in cast.read_text().splitlines()[1:]]
    markers = [e[2] for e in events if e[1] == "m"]
    # (2*3, Space and Alt with a character too: reviews)
    assert markers[0] == "key" + " \u00b7" * 5 + " Enter C-c", markers


def test_recording_replays_to_the_live_final_screen(agentty_home: Path) -> None:
    rec = agentty_json("start", "--record", "--record-markers", "--", sys.executable, "-q")
    agentty("wait", "--text", ">>>", check=True)
    agentty("text", "--enter", 'print("日本", 6*7)', check=True)
    agentty("wait", "--regex", "^日本 42$", check=True)
    agentty("resize", "--cols", "60", "--rows", "20", check=True)
    agentty("key", "Ctrl+D", check=True)
    final = agentty_json("wait", "--exit")
    cast = agentty_home / "logs" / f"{rec['id']}.cast"
    lines = cast.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and (header["width"], header["height"]) == (80, 24)
    events = [json.loads(line) for line in lines[1:]]
    assert [e[2] for e in events if e[1] == "m"] == ["text", "key Ctrl+D", "exited (code 0)"]
    assert ["r", "60x20"] in [e[1:] for e in events]
    # asciicast v2 has no exit event: the exit is a marker, which every v2 player accepts.
    assert events[-1][1:] == ["m", "exited (code 0)"]
    assert {e[1] for e in events} <= {"o", "i", "m", "r"}
    assert not [e for e in events if e[1] == "i"]  # input is not recorded unless asked
    assert _replayed_screen(cast) == final["lines"]
    replay = subprocess.run(
        [AGENTTY, "replay", str(rec["id"]), "--speed", "0"], capture_output=True, timeout=30
    )
    assert replay.returncode == 0 and "日本 42".encode() in replay.stdout


def test_record_on_and_off_with_input(agentty_home: Path) -> None:
    rec = agentty_json("start", "--", "cat")
    agentty("text", "--enter", "before", check=True)
    agentty("wait", "--regex", "^before$", check=True)
    assert agentty_json("record", "on", "--input")["recording"] is True
    agentty("text", "--enter", "during", check=True)
    agentty("wait", "--regex", "^during$", check=True)
    assert agentty_json("record", "off")["recording"] is False
    agentty("text", "--enter", "after", check=True)
    agentty("wait", "--regex", "^after$", check=True)
    agentty("kill", check=True)
    cast = (agentty_home / "logs" / f"{rec['id']}.cast").read_text()
    assert "during" in cast and "before" not in cast and "after" not in cast
    # What was typed while recording, its Enter included (sent with the text to a program
    # reading lines, as its own write to one reading keys): one event or two.
    events = [json.loads(line) for line in cast.splitlines()[1:]]
    assert "".join(e[2] for e in events if e[1] == "i") == "during\r"


def test_replay_needs_a_recording() -> None:
    agentty("start", "--", "sleep", "30", check=True)
    proc = agentty("replay", agentty_json("status")["active"])
    assert proc.returncode == 2 and "no recording" in proc.stderr
    agentty("kill", check=True)


@pytest.mark.skipif(shutil.which("asciinema") is None, reason="asciinema is not installed")
def test_asciinema_reads_the_file(agentty_home: Path) -> None:
    rec = agentty_json("start", "--record", "--", "sh", "-c", "echo recorded-line; exit 0")
    agentty("wait", "--exit", check=True)
    cast = agentty_home / "logs" / f"{rec['id']}.cast"
    # asciinema wants a terminal: give it one with agentty itself.
    out = agentty("run", "--timeout", "20", "--", "asciinema", "cat", str(cast))
    assert out.returncode == 0, out.stderr
    assert "recorded-line" in out.stdout.splitlines()


def _events(cast: Path) -> list[list[object]]:
    return [json.loads(line) for line in cast.read_text().splitlines()[1:]]


def test_exit_by_signal_is_a_v2_marker(agentty_home: Path) -> None:
    rec = agentty_json("start", "--record", "--", "sleep", "1000")
    agentty("kill", "--timeout", "0.5", check=True)
    events = _events(agentty_home / "logs" / f"{rec['id']}.cast")
    assert {e[1] for e in events} <= {"o", "i", "m", "r"}, events
    assert events[-1][1:] == ["m", "exited (signal SIGHUP)"], events


def test_record_input_includes_the_enter_of_text_enter(agentty_home: Path) -> None:
    rec = agentty_json("start", "--record-input", "--", "cat")
    agentty("text", "--enter", "typed", check=True)
    agentty("wait", "--regex", "^typed$", check=True)
    agentty("kill", check=True)
    inputs = [e[2] for e in _events(agentty_home / "logs" / f"{rec['id']}.cast") if e[1] == "i"]
    assert "".join(str(i) for i in inputs) == "typed\r", inputs


def test_gc_removes_the_recording(agentty_home: Path) -> None:
    rec = agentty_json("start", "--record", "--", "sh", "-c", "echo recorded; exit 0")
    agentty("wait", "--exit", check=True)
    cast = agentty_home / "logs" / f"{rec['id']}.cast"
    assert cast.exists()
    assert rec["id"] in agentty_json("gc")["removed"]
    assert not cast.exists()
    assert list((agentty_home / "logs").iterdir()) == []

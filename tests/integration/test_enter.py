"""`text --enter`: a program reading lines gets the text and its Enter at once; a program
reading raw gets the Enter only after it has read the text (no fixed gap either way)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers.cli import agentty, agentty_json

PROGRAMS = Path(__file__).parent.parent / "programs"


def test_a_line_reader_gets_the_line() -> None:
    agentty_json("start", "--", "sh", "-c", 'echo ready; read line; echo "got [$line]"; sleep 30')
    agentty("wait", "--text", "ready", check=True)
    agentty("text", "--enter", "hello world", check=True)
    screen = agentty_json("wait", "--text", "got [", "--timeout", "10")
    assert "got [hello world]" in screen["lines"], screen["lines"]
    agentty("kill", check=True)


def test_a_raw_reader_reads_the_text_before_its_enter() -> None:
    agentty_json("start", "--", sys.executable, str(PROGRAMS / "read_report.py"))
    agentty("wait", "--text", "READY", check=True)
    agentty("text", "--enter", "hello", check=True)
    screen = agentty_json("wait", "--text", "READ b'\\r'", "--timeout", "10")
    reads = [line for line in screen["lines"] if line.startswith("READ ")]
    assert reads == ["READ b'hello'", "READ b'\\r'"], screen["lines"]
    agentty("kill", check=True)


def test_enter_alone_reaches_a_raw_reader() -> None:
    """`text --enter ''` (an agent ending a REPL's block): the Enter is typed at once, with
    no text to wait for (it waited out the whole gap; `make bench` row `text --enter ''`)."""
    agentty_json("start", "--", sys.executable, str(PROGRAMS / "read_report.py"))
    agentty("wait", "--text", "READY", check=True)
    sent = agentty_json("text", "--enter", "")
    assert sent["bytes"] == 1  # the Enter (it said 0: nothing typed)
    screen = agentty_json("wait", "--text", "READ b'\\r'", "--timeout", "10")
    reads = [line for line in screen["lines"] if line.startswith("READ ")]
    assert reads == ["READ b'\\r'"], screen["lines"]
    agentty("kill", check=True)


def test_text_counts_its_enter_as_send_does() -> None:
    """`text --enter ab` said 2 bytes where `send ab Enter`, which types the same, said 3."""
    agentty_json("start", "--", "cat")
    assert agentty_json("text", "--enter", "ab")["bytes"] == 3
    assert agentty_json("send", "ab", "Enter")["bytes"] == 3
    assert agentty_json("text", "ab")["bytes"] == 2
    agentty("kill", check=True)

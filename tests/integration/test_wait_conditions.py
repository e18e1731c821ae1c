"""One set of wait conditions behind the CLI, `Session.wait` and MCP: 0 is a seq like any other.

`wait --changed-since 0` used to be refused as "wait needs a condition": each caller dropped
unset conditions by truthiness, and 0 is falsy (and a fresh session's seq)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from agentty_core import Session
from agentty_core.emulator.pyte_backend import Emulator
from agentty_core.errors import RemoteError, UsageError
from agentty_core.worker.echo import EchoLog
from tests.helpers.cli import AGENTTY, agentty
from tests.integration.test_hotpath import FULL, run

Factory = Callable[..., Session]
PRINTS = ["sh", "-c", "echo ready; exec sleep 30"]


def test_cli_wait_changed_since_zero() -> None:
    agentty("start", "--", *PRINTS, check=True)
    try:
        proc = agentty("wait", "--changed-since", "0", "--timeout", "20", "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["fired"] == "changed"
    finally:
        agentty("kill", check=True)


def test_cli_wait_without_a_condition_names_the_options() -> None:
    proc = agentty("wait", "--scrollback", "--timeout", "1")
    assert proc.returncode == 2
    assert "wait needs a condition: --text, --regex" in proc.stderr


def test_session_wait_changed_since_zero(agentty_session: Factory) -> None:
    s = agentty_session(PRINTS)
    assert s.wait(changed_since=0, timeout=20).fired == "changed"


def test_a_seq_newer_than_the_session_s_is_refused(agentty_session: Factory) -> None:
    """A seq of another session (or made up) was waited on for the whole timeout: a seq
    this session answered is never newer than its screen."""
    agentty("start", "--", *PRINTS, check=True)
    try:
        for option in ("--after", "--changed-since"):
            proc = agentty("wait", option, "999999", "--text", "ready", "--timeout", "20")
            assert proc.returncode == 2
            assert "seq 999999 (" in proc.stderr and "is newer than this session's" in proc.stderr
    finally:
        agentty("kill", check=True)
    agentty("start", "--", "true", check=True)  # ended: its last screen's seq, as live
    assert agentty("wait", "--exit", "--timeout", "20").returncode == 0
    for way in ([AGENTTY], FULL):
        proc = run(way, "wait", "--after", "999999", "--text", "x", "--timeout", "5")
        assert proc.returncode == 2 and "seq 999999 (after) is newer" in proc.stderr, way
    s = agentty_session(PRINTS)
    with pytest.raises(RemoteError, match="is newer than this session's") as refused:
        s.wait(text="ready", after=s.get().seq + 1000, timeout=20)
    assert refused.value.code == "bad_request"


def test_a_wait_the_program_s_end_made_impossible_shows_its_last_screen() -> None:
    """Exit 1 as before, now with the last screen on stdout, as a timeout gives it: the
    program's last words are why the text never came (an agent had to `get` them)."""
    agentty("start", "--", "sh", "-c", "echo partial; read x; exit 4", check=True)
    pending = agentty("wait", "--text", "NEVER", "--timeout", "0.3")
    assert pending.returncode == 3 and pending.stdout.startswith("partial\n")
    agentty("text", "--enter", "go", check=True)  # it ends while the next wait waits
    for extra in ([], ["--json"]):
        proc = agentty("wait", *extra, "--text", "NEVER", "--timeout", "20")
        assert proc.returncode == 1
        assert proc.stderr.endswith("exited (code 4)\n") and proc.stderr.count("\n") == 1
        if extra:
            shown = json.loads(proc.stdout)
            assert (shown["fired"], shown["exited"], shown["lines"][0]) == (None, True, "partial")
            assert "timeout" not in shown
        else:
            assert proc.stdout.startswith("partial\n")


def test_session_wait_refuses_nonsense_before_sending(agentty_session: Factory) -> None:
    s = agentty_session(PRINTS)
    with pytest.raises(UsageError, match="needs a condition"):
        s.wait(scrollback=True)
    with pytest.raises(UsageError, match="stable_ms"):
        s.wait(stable=0)


# -- the echo mask of a wait `after` an input (worker/echo.py), on the emulator alone ------


def _typed(emu: Emulator, log: EchoLog, text: str, echo: bytes) -> None:
    """`text` typed at the cursor, and what the terminal then draws."""
    log.note(text, emu)
    emu.feed(echo)


def _masked(emu: Emulator, log: EchoLog, scrollback: bool = False) -> list[str]:
    view = log.view(emu, scrollback=scrollback)
    assert view is not None
    return [*view.history, *view.screen] if scrollback else view.screen


def test_echo_mask_hides_the_typed_line_not_the_output() -> None:
    emu, log = Emulator(30, 4), EchoLog()
    emu.feed(b"$ ")
    _typed(emu, log, "echo BUILD-OK\r", b"echo BUILD-OK\r\nBUILD-OK\r\n$ ")
    assert _masked(emu, log) == ["$", "BUILD-OK", "$", ""]
    assert emu.lines()[0] == "$ echo BUILD-OK"  # the screen itself is untouched


def test_echo_mask_follows_wrapping_wide_characters_and_scrolling() -> None:
    emu, log = Emulator(10, 4), EchoLog()
    emu.feed(b"> ")
    _typed(emu, log, "日本語テキスト", "日本語テキスト\r\nOUT\r\nmore\r\n> ".encode())
    # The echo wrapped before the wide character that did not fit, then scrolled up a row.
    assert emu.lines() == ["キスト", "OUT", "more", ">"] and emu.scrolled == 1
    assert _masked(emu, log) == ["", "OUT", "more", ">"]
    assert _masked(emu, log, scrollback=True) == [">", "", "OUT", "more", ">"]


def test_echo_mask_places_each_pasted_line_after_the_one_before() -> None:
    emu, log = Emulator(30, 6), EchoLog()
    emu.feed(b">>> ")
    text = "for i in range(2):\n    print(i * 111)\n\n"
    echo = b"for i in range(2):\r\n...     print(i * 111)\r\n... \r\n0\r\n111\r\n>>> "
    _typed(emu, log, text, echo)
    assert _masked(emu, log) == [">>>", "...", "...", "0", "111", ">>>"]


def test_an_echo_still_being_drawn_is_masked_as_far_as_it_goes() -> None:
    """A REPL's line editor draws a pasted line in several writes: a wait for text in that
    line must not fire on the part drawn so far (seen in CI: `x = "PASTE-OK` matched)."""
    emu, log = Emulator(30, 4), EchoLog()
    emu.feed(b">>> ")
    _typed(emu, log, 'x = "PASTE-OK"\nprint(x)\n', b'x = "PASTE-OK')
    assert _masked(emu, log) == [">>>", "", "", ""]
    emu.feed(b'"\r\n>>> print(x)\r\nPASTE-OK\r\n>>> ')
    assert _masked(emu, log) == [">>>", ">>>", "PASTE-OK", ">>>"]
    emu, log = Emulator(30, 3), EchoLog()
    emu.feed(b"$ ")
    _typed(emu, log, "echo hi\r", b"ec" + b"\x1b[1;10HX")  # not the echo's end: output
    assert log.view(emu, scrollback=False) is None


def test_an_echo_still_being_drawn_after_the_prompt_s_end_is_masked() -> None:
    """The paste can arrive between `>>>` and the prompt's last space (CI, under load): the
    part of the echo drawn so far starts a cell right of where the cursor was."""
    emu, log = Emulator(30, 4), EchoLog()
    emu.feed(b">>>")
    _typed(emu, log, 'x = "PASTE-OK"\nprint(x)\n', b' x = "PASTE-OK')
    assert _masked(emu, log) == [">>>", "", "", ""]
    emu.feed(b'"\r\n>>> print(x)\r\nPASTE-OK\r\n>>> ')
    assert _masked(emu, log) == [">>>", ">>>", "PASTE-OK", ">>>"]
    emu, log = Emulator(30, 3), EchoLog()
    emu.feed(b"$")
    _typed(emu, log, "echo hi\r", b" done ec")  # not after the prompt's end: output
    assert log.view(emu, scrollback=False) is None
    emu, log = Emulator(30, 3), EchoLog()
    emu.feed(b"... ")
    _typed(emu, log, "    print(x)\n", b"    pri")  # a line that begins with blanks
    assert _masked(emu, log) == ["...", "", ""]


def test_a_redrawn_echo_is_not_masked() -> None:
    """vim draws `:s/a/b/g` itself on its last row, not at the cursor, then its message."""
    emu, log = Emulator(30, 3), EchoLog()
    emu.feed(b"a a a\x1b[1;1H")
    _typed(emu, log, ":s/a/b/g\r", b"\x1b[3;1H:s/a/b/g\x1b[1;1Hb b b\x1b[3;1H\x1b[K3 substitutions")
    assert log.view(emu, scrollback=False) is None
    emu, log = Emulator(30, 3), EchoLog()
    emu.feed(b"$ ")
    _typed(emu, log, "clear\r", b"clear\r\n\x1b[H\x1b[2J$ ")
    assert log.view(emu, scrollback=False) is None


def test_text_already_at_the_cursor_is_no_echo() -> None:
    """A TUI key that is a command, typed over the same letter, could not be told from
    the program's own text: nothing is recorded."""
    emu, log = Emulator(20, 2), EchoLog()
    emu.feed(b"abc\x1b[1;1H")
    log.note("a", emu)
    assert not log.echoes
    log.note("\x1b[B\x03", emu)  # keys without printable text
    assert not log.echoes


def test_the_emulator_counts_lines_scrolled_off_beyond_its_scrollback() -> None:
    """The echo's row is followed by an absolute line: lines scrolled off so far, counted
    past what the scrollback keeps, through a flood of whole lines and a resize."""
    emu = Emulator(10, 3, scrollback=4)
    emu.feed(b"".join(b"line%d\r\n" % i for i in range(10)))  # the flood's fast path
    assert emu.lines() == ["line8", "line9", ""] and emu.scrolled == 8
    emu.feed(b"x\r\ny\r\n")
    assert emu.scrolled == 10 and len(emu.scrollback()) == 4
    emu.resize(10, 2)  # a shrink pushes the top row off
    assert emu.lines()[0] == "y" and emu.scrolled == 11
    emu.resize(10, 3)  # a grow pulls it back
    assert emu.lines()[0] == "x" and emu.scrolled == 10


def test_echo_mask_on_the_avt_backend() -> None:
    pytest.importorskip("avt")
    from agentty_core.emulator.avt_backend import AvtEmulator

    emu, log = AvtEmulator(30, 3), EchoLog()
    emu.feed(b"x\r\ny\r\n$ ")  # the prompt on the bottom row: the echo scrolls up
    log.note("echo BUILD-OK\r", emu)
    emu.feed(b"echo BUILD-OK\r\nBUILD-OK\r\n$ ")
    assert emu.lines() == ["$ echo BUILD-OK", "BUILD-OK", "$"]
    view = log.view(emu, scrollback=False)
    assert view is not None and view.screen == ["$", "BUILD-OK", "$"]


def test_keys_typed_at_a_hidden_cursor_are_no_echo() -> None:
    """A TUI that hides its cursor takes keys as commands: `j` moves down a list, and a
    `j` it then draws where the cursor was is its own text."""
    emu, log = Emulator(20, 3), EchoLog()
    emu.feed(b"\x1b[?25l> item\r\n  json")
    log.note("j", emu)
    assert not log.echoes

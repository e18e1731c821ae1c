r"""A prompt's own trailing space is found: `wait --text 'Name: '`, `run --expect 'Name: '`.

Screen rows come with their trailing blanks trimmed, so a text or regex ending in a space
(the way pexpect users write a prompt) never matched, and the wait ran out its timeout
(`run`: 60 s by default). The cursor's row now reads on in blanks up to the cursor
(`screen_text.to_cursor`), on the live screen (with or without the echo mask of `--after`)
and on an ended session's last one; any other row stays trimmed. A regex reads the cursor's
row both ways (`^\$$` finds the prompt `$ ` as before, `\$ $` now too).
"""

from __future__ import annotations

import json

import pytest

from agentty_core.emulator.pyte_backend import Emulator
from agentty_core.screen_text import screen_to_cursor, to_cursor
from tests.helpers.cli import agentty, agentty_json

ASKS = ["python3", "-c", "import time; print('hi', input('Project name? ')); time.sleep(30)"]


def _wait(*conditions: str, timeout: str = "20") -> tuple[int, str]:
    proc = agentty("wait", "--json", *conditions, "--timeout", timeout)
    fired = json.loads(proc.stdout).get("fired", "") if proc.stdout.startswith("{") else ""
    return proc.returncode, fired


def test_a_text_ending_in_the_prompt_s_space_is_found() -> None:
    agentty("start", "--", *ASKS, check=True)
    try:
        assert _wait("--text", "name? ") == (0, "text")
        assert _wait("--regex", r"name\? $") == (0, "regex")
        assert _wait("--text", "name?  ", timeout="0.3")[0] == 3  # one blank cell, not two
    finally:
        agentty("kill", check=True)


def test_a_row_the_cursor_is_not_on_stays_trimmed() -> None:
    agentty("start", "--", "sh", "-c", "echo 'Name:'; exec sleep 30", check=True)
    try:
        assert _wait("--text", "Name:") == (0, "text")
        assert _wait("--text", "Name: ", timeout="0.3")[0] == 3  # the cursor is below it
    finally:
        agentty("kill", check=True)


def test_run_expect_with_the_prompt_s_space() -> None:
    proc = agentty(
        "run",
        "--timeout",
        "20",
        "--expect",
        "Name: ",
        "--input",
        "Ada",
        "--",
        "python3",
        "-c",
        "print('hi', input('Name: '))",
    )
    assert proc.returncode == 0, proc.stderr
    assert "hi Ada" in proc.stdout


def test_a_wait_after_an_input_finds_the_next_prompt_s_space() -> None:
    """`--after` reads the screen with the typed line's echo blanked (worker/echo.py)."""
    agentty("start", "--env", "PS1=$ ", "--", "sh", "-i", check=True)
    try:
        assert _wait("--text", "$ ") == (0, "text")
        seq = agentty_json("text", "--enter", "echo done")["seq"]
        assert _wait("--after", str(seq), "--text", "done") == (0, "text")
        assert _wait("--after", str(seq), "--regex", r"^\$ $") == (0, "regex")
        assert _wait("--after", str(seq), "--regex", r"^\$$") == (0, "regex")  # trimmed too
    finally:
        agentty("kill", check=True)


def test_an_ended_session_s_last_prompt_is_found_as_the_live_one_was() -> None:
    sid = agentty("start", "--", "sh", "-c", "printf 'Continue? '", check=True).stdout.strip()
    assert _wait("--exit")[0] == 0
    assert _wait("--text", "Continue? ") == (0, "text")  # the fast lane's final screen
    assert _wait("--regex", r"\? $") == (0, "regex")
    assert _wait("--regex", r"\?$") == (0, "regex")
    from agentty_core.client import Client

    answer = Client().wait(sid, text="Continue? ", timeout=5)  # the library's
    assert answer["fired"] == "text"
    assert Client().wait(sid, regex=r"\? $", timeout=5)["fired"] == "regex"


# -- to_cursor on its own -------------------------------------------------------------------


def test_only_blank_cells_that_exist_are_added() -> None:
    rows = ["a:", "b"]
    assert to_cursor(rows, 0, 3, 80) == ["a: ", "b"]
    assert to_cursor(rows, 0, 2, 80) is rows  # the cursor right after the text
    assert to_cursor(rows, 5, 3, 80) is rows  # no such row
    assert to_cursor(["x" * 79], 0, 120, 80) == ["x" * 79 + " "]  # never past the last column


@pytest.mark.parametrize("text", ["名前: ", "e\u0301: "])
def test_wide_and_combining_characters_count_as_the_emulator_draws_them(text: str) -> None:
    emu = Emulator(cols=20, rows=2)
    emu.feed(text.encode())
    row, col = emu.cursor
    assert emu.find(text) == (0, 0)
    assert emu.find(text + " ") is None
    screen = {"lines": emu.lines(), "cursor": {"row": row, "col": col}, "size": {"cols": 20}}
    assert screen_to_cursor(screen)[0] == text  # the final screen's reading agrees


def test_an_ended_screen_counts_zero_width_characters_as_none() -> None:
    """The final screen is measured without the emulator (`screen_text._cells`): a
    zero-width space or joiner takes no cell there either."""
    screen = {"lines": ["\u200bab"], "cursor": {"row": 0, "col": 3}, "size": {"cols": 20}}
    assert screen_to_cursor(screen) == ["\u200bab "]


def test_a_prompt_that_ends_at_the_last_column_is_found_with_its_space() -> None:
    """Its space is the row's last cell and the cursor waits past it (a pending wrap): the
    cursor as reported stays in the last column, which left no blank to carry on."""
    emulators: list[type] = [Emulator]
    try:
        from agentty_core.emulator.avt_backend import AvtEmulator

        emulators.append(AvtEmulator)
    except ImportError:  # (pyavt is optional)
        pass
    for make in emulators:
        emu = make(cols=19, rows=3)
        emu.feed(b"Continue (yes/no)? ")
        assert emu.cursor == (0, 18) and emu.typing_at == (0, 19)
        assert emu.find("no)? ") == (0, 14), make

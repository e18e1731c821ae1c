"""`wait` after an input reads the rows the input found, that show nothing new, as blank
(worker/echo.py `Before`): the cases an agent's round found it wrong in, each played with
bash and escape sequences as zsh, node, vim, a right-side prompt or a y/n prompt draw them.
A wait that must not fire is given a short timeout: its timing out is the answer."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from agentty_core import Session, WaitConditions
from agentty_core.errors import SessionNotRunning, WaitTimeout
from tests.reliability.conftest import AGENTTY

Factory = Callable[..., Session]
BASH = ["bash", "--norc", "--noprofile"]


def _bash(agentty_session: Factory, ps1: str) -> Session:
    s = agentty_session(BASH, env={"PS1": ps1, "HISTFILE": "/dev/null"})
    s.wait(input=True, timeout=20)
    return s


def _no_fire(s: Session, typed: str, wait: WaitConditions) -> None:
    with pytest.raises(WaitTimeout):
        s.text(typed, enter=True, wait=wait)


def test_a_prompt_that_erases_below_it_keeps_the_old_rows_old(agentty_session: Factory) -> None:
    """zsh, node and prompt_toolkit erase below the cursor (ED 0) at every prompt: taken
    for an erased screen, it let the last run's result answer the next wait."""
    s = _bash(agentty_session, "\\[\\e[J\\]$ ")
    s.text("echo TESTS: 3 failed", enter=True, wait=WaitConditions(text="TESTS", timeout=20))
    s.wait(regex=r"^\$$", timeout=20)
    _no_fire(s, "sleep 0.5; true", WaitConditions(text="TESTS:", timeout=1.5))
    s.wait(regex=r"^\$$", timeout=20)
    done = s.text(
        "sleep 0.5; echo TESTS: all passed",
        enter=True,
        wait=WaitConditions(regex="^TESTS: .*", timeout=20),
    )
    assert done.match is not None and done.screen.lines[done.match[0]] == "TESTS: all passed"


def test_the_normal_screen_stays_old_across_a_full_screen_program(
    agentty_session: Factory,
) -> None:
    """Input typed in vim or less (the alternate screen) took no snapshot: once the program
    ended, the last run's result on the normal screen answered the wait at once."""
    s = _bash(agentty_session, "$ ")
    s.text("echo TESTS: 3 failed", enter=True, wait=WaitConditions(text="TESTS", timeout=20))
    editor = "printf '\\e[?1049hEDITOR'; read x; printf '\\e[?1049l'; sleep 3; echo TESTS: ok"
    s.text(editor, enter=True, wait=WaitConditions(text="EDITOR", timeout=20))
    _no_fire(s, "done", WaitConditions(text="TESTS:", timeout=1))  # (the new one: 3 s on)
    s.wait(text="TESTS: ok", timeout=20)


def test_a_scrollback_search_passes_over_what_was_in_it_before(agentty_session: Factory) -> None:
    s = _bash(agentty_session, "$ ")
    first = "seq 1 5; echo TESTS: 3 failed; seq 1 40"
    s.text(first, enter=True, wait=WaitConditions(regex="^40$", timeout=20))
    s.wait(regex=r"^\$$", timeout=20)
    wait = WaitConditions(text="TESTS:", scrollback=True, timeout=20)
    done = s.text("sleep 0.5; echo TESTS: all passed", enter=True, wait=wait)
    assert "TESTS: all passed" in done.screen.lines, done


def test_a_right_side_prompt_leaves_the_prompt_row_old(agentty_session: Factory) -> None:
    """zsh's RPROMPT, fish's right prompt: text right of the cursor on the prompt's row made
    the row look new, and the prompt a command was typed at answered a wait for the next."""
    s = _bash(agentty_session, "\\[\\e7\\e[70G[rp]\\e8\\]$ ")
    _no_fire(s, "sleep 3", WaitConditions(text="$", timeout=1))  # (the next prompt: later)


def test_a_key_whose_answer_begins_with_it_is_not_taken_for_its_echo(
    agentty_session: Factory, tmp_path: Path
) -> None:
    """`y` at "[y/n] ", read with no echo, then "yes" written there: the `y` was masked as
    the key's echo, and a wait for "yes" never fired."""
    script = tmp_path / "ask.sh"
    script.write_text('printf "[y/n] "; read -s -n1 k; [ "$k" = y ] && echo yes; sleep 30\n')
    s = agentty_session(["bash", str(script)])
    s.wait(text="[y/n]", timeout=20)
    s.wait(input=True, timeout=20)
    done = s.key("y", wait=WaitConditions(regex="yes", timeout=20))
    assert done.fired == "regex"


def test_a_prompt_asked_again_in_place_is_new(agentty_session: Factory, tmp_path: Path) -> None:
    """Erased and drawn again, the same, at the same place (`\\r\\e[K`): read as nothing
    new, a wait for the prompt asked again never fired."""
    script = tmp_path / "again.sh"
    script.write_text(
        "while :; do printf '\\r\\e[KContinue? [y/n] '; read -s -n1 k; [ \"$k\" = y ] && break;"
        " printf '\\r\\e[KPlease answer y or n'; sleep .3; done; echo DONE; sleep 30\n"
    )
    s = agentty_session(["bash", str(script)])
    s.wait(text="Continue?", timeout=20)
    s.wait(input=True, timeout=20)
    s.key("x", wait=WaitConditions(text="Please answer", timeout=20))
    s.wait(input=True, timeout=20)
    s.key("x", wait=WaitConditions(text="Please answer", timeout=20))
    asked = s.wait(text="Continue?", timeout=20)
    assert asked.fired == "text"
    s.wait(input=True, timeout=20)
    seq = s.key("x")
    again = s.wait(after=seq, text="Continue? [y/n]", timeout=20)
    assert again.fired == "text", again


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AGENTTY, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("ended", ["while waiting", "before the wait"])
@pytest.mark.parametrize("needle", ["TESTS:", "sleep 0.5"])  # the last run's row; the echo
def test_a_wait_after_an_input_that_ends_the_session_masks_its_final_screen(
    agentty_session: Factory, ended: str, needle: str
) -> None:
    """The input ends the program: the wait, asked of the final screen, read it unmasked
    (the worker's "exited" was checked again by the caller, and a wait made after the end
    has only the saved screen) and fired on the last run's `TESTS: 3 failed`, or on the
    echo of the command that ended it. The worker saves the masked rows with the screen."""
    s = _bash(agentty_session, "$ ")
    s.text("echo TESTS: 3 failed", enter=True, wait=WaitConditions(text="TESTS", timeout=20))
    s.wait(regex=r"^\$$", timeout=20)
    typed = _cli("text", "--json", "--enter", "sleep 0.5; exit 3")
    seq = str(json.loads(typed.stdout)["seq"])
    if ended == "before the wait":
        s.wait(exit=True, timeout=20)
    waited = _cli("wait", "--json", "--after", seq, "--text", needle, "--timeout", "20")
    assert waited.returncode == 1, waited  # the session's end: the condition never held
    assert json.loads(waited.stdout)["fired"] is None
    with pytest.raises(SessionNotRunning):  # (the Python API: the Client's own reading)
        s.wait(after=int(seq), text=needle, timeout=20)


def test_what_the_input_made_before_the_end_still_answers(agentty_session: Factory) -> None:
    s = _bash(agentty_session, "$ ")
    s.text("echo TESTS: 3 failed", enter=True, wait=WaitConditions(text="TESTS", timeout=20))
    s.wait(regex=r"^\$$", timeout=20)
    seq = s.text("sleep 0.5; echo TESTS: all passed; exit 3", enter=True)
    s.wait(exit=True, timeout=20)
    waited = _cli("wait", "--json", "--after", str(seq), "--regex", "^TESTS: ", "--timeout", "9")
    assert waited.returncode == 0 and json.loads(waited.stdout)["fired"] == "regex", waited
    assert s.wait(after=seq, regex="^TESTS: a", timeout=20).fired == "regex"


@pytest.mark.parametrize("second", ["after the first's echo", "before the first's echo"])
def test_keys_typed_one_by_one_are_each_an_echo(agentty_session: Factory, second: str) -> None:
    """`key l` then `key s`: the `l` was followed by a character (the next key's echo),
    taken for the program's answer beginning with it, and a wait after the first key fired
    on `$ ls` before anything ran. Typed before the `l` was drawn (a fast agent, a busy
    program: a clean CI run), the `s` was looked for where the `l` went."""
    import os
    import signal

    s = _bash(agentty_session, "$ ")
    shell = int(s.client.resolve(s.id)["pid"])  # type: ignore[arg-type]
    if second == "before the first's echo":
        os.kill(shell, signal.SIGSTOP)  # (it draws nothing until it runs again)
    seq = s.key("l")
    if second == "after the first's echo":
        s.wait(text="$ l", timeout=20)
    s.key("s")
    os.kill(shell, signal.SIGCONT)
    s.wait(text="$ ls", timeout=20)
    with pytest.raises(WaitTimeout):
        s.wait(after=seq, regex="l", timeout=1)
    s.key("Enter")  # (what runs then is new)
    assert s.wait(after=seq, regex=r"\S", timeout=20).fired == "regex"


def test_a_wait_after_an_input_with_no_echo_is_answered(agentty_session: Factory) -> None:
    """An input that leaves no echo (Enter alone) and nothing typed before it: the worker
    failed the wait ("zip() argument 2 is longer than argument 1") once it looked for the
    input typed after each echo."""
    s = _bash(agentty_session, "$ ")
    seq = s.key("Enter")
    assert s.wait(after=seq, regex=r"^\$$", timeout=20).fired == "regex"


def test_text_typed_where_the_last_input_was_erased_is_its_echo(agentty_session: Factory) -> None:
    """`foo`, three Backspaces, `bar`: the cursor is back where `foo` began, and `bar` was
    taken for typed before `foo` was drawn, looked for after it, and not masked (a
    read-through of the typed-ahead rule)."""
    s = _bash(agentty_session, "$ ")
    s.text("foo")
    s.wait(text="$ foo", timeout=20)
    s.key("BSpace", "BSpace", "BSpace")
    s.wait(regex=r"^\$$", timeout=20)
    seq = s.text("bar")
    s.wait(text="$ bar", timeout=20)
    with pytest.raises(WaitTimeout):
        s.wait(after=seq, text="bar", timeout=1)


INPUT_BOX = r"""
import os, sys, termios, tty
tty.setraw(0)
sys.stdout.write("\x1b[2J\x1b[3;5HYour name? [          ]\x1b[3;17H"); sys.stdout.flush()
while True:
    ch = os.read(0, 1)
    if ch in (b"\r", b"\x03"):
        break
    os.write(1, ch)  # drawn where it was typed, as dialog's input box draws it
"""


@pytest.mark.parametrize("condition", ["--text", "--regex"])
def test_a_wait_after_text_only_echoed_says_why_it_timed_out(
    agentty_home: Path, condition: str
) -> None:
    """An input box draws what is typed where it is typed: that is the input's echo, and a
    wait after the input does not count it. It timed out with no word of why (an agent
    confirming a field's contents); the message now says the screen has it, but only so."""
    started = json.loads(
        subprocess.run(
            [AGENTTY, "start", "--json", "--", "python3", "-c", INPUT_BOX],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AGENTTY, *args, "-s", started["id"]], capture_output=True, text=True)

    assert run("wait", "--text", "Your name?").returncode == 0
    seq = json.loads(run("text", "--json", "Ada").stdout)["seq"]
    timed_out = run("wait", "--after", str(seq), condition, "Ada", "--timeout", "1")
    assert timed_out.returncode == 3, timed_out.stderr
    assert timed_out.stderr.rstrip("\n").endswith(
        "; the screen has it, but only as the input's own echo or as it was before the"
        " input, which a wait after the input does not count"
    ), timed_out.stderr
    assert run("wait", condition, "Ada", "--timeout", "5").returncode == 0  # (not after)
    never = run("wait", "--after", str(seq), "--text", "Lovelace", "--timeout", "0.5")
    assert never.returncode == 3 and "the screen has it" not in never.stderr
    run("kill")

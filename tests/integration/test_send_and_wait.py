"""Send and wait in one call, `wait --after`, mixed input with `send`, and a Session shared by
threads and an AsyncSession shared by tasks. Real sessions throughout."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from agentty_core import AsyncSession, Session, WaitConditions
from agentty_core.api_types import Screen
from agentty_core.errors import InvalidKey, SessionNotRunning, WaitTimeout
from tests.helpers.aio import awaits_its_answer, until
from tests.helpers.cli import agentty, agentty_json

Factory = Callable[..., Session]
PY = sys.executable
# Reads a line with echo off (not even the Enter), then after a pause answers on the prompt's
# line in one write: nothing reaches the screen between the input and the answer, so the
# screen from before the input is all a wait that ignores `after` can see, and the first
# newer screen holds the answer. (A newline first would be a write of its own: bash's
# stdout is line-buffered on a terminal.)
SILENT = ["bash", "-c", "read -s -p 'pw> ' x; sleep 0.5; echo GOT-${#x}; sleep 30"]


def test_text_with_wait_counts_only_output_after_the_input(agentty_session: Factory) -> None:
    s = agentty_session(SILENT)
    assert s.wait(input=True, timeout=20).screen.input.secret
    # 'pw>' is on screen already: without `after` this fired at once, before any answer.
    result = s.text("abc", enter=True, wait=WaitConditions(text="pw>", timeout=20))
    assert result.fired == "text" and result.screen.lines[0] == "pw> GOT-3"


def test_send_and_wait_returns_the_answer_not_the_echo(
    agentty_session: Factory, programs: Path
) -> None:
    s = agentty_session([PY, str(programs / "answer_after_echo.py")])
    s.wait(text="ask>", timeout=20)
    result = s.send("hello", "Enter", wait=WaitConditions(regex=r"^ANSWER HELLO$", timeout=20))
    assert result.fired == "regex" and "ANSWER HELLO" in result.screen.lines
    assert "ask> hello" in result.screen.lines  # the echo came first, and did not fire it


def test_cli_wait_after_and_the_answer_recipe(programs: Path) -> None:
    agentty("start", "--", *SILENT, check=True)
    try:
        agentty("wait", "--input", "--timeout", "20", check=True)
        seq = agentty_json("text", "--enter", "abcd")["seq"]
        out = agentty("wait", "--after", str(seq), "--text", "pw>", "--timeout", "20")
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[0] == "pw> GOT-4"
    finally:
        agentty("kill", check=True)
    agentty("start", "--", PY, str(programs / "answer_after_echo.py"), check=True)
    try:
        agentty("wait", "--text", "ask>", "--timeout", "20", check=True)
        seq = agentty_json("text", "--enter", "make")["seq"]
        done = agentty_json("wait", "--after", str(seq), "--regex", "^ANSWER MAKE$")
        assert done["fired"] == "regex" and "ANSWER MAKE" in done["lines"]
        # The next prompt may come in a write of its own: once it is there, nothing changes.
        idle = agentty_json("wait", "--after", str(seq), "--regex", "^ask>$")["seq"]
        late = agentty("wait", "--after", str(idle), "--text", "ask>", "--timeout", "0.3")
        assert late.returncode == 3 and f"on a screen newer than seq {idle}" in late.stderr
    finally:
        agentty("kill", check=True)


# A shell and a REPL that echo what is typed (readline draws it). Each command below holds
# the text it waits for and prints it 0.5 s later: a wait that fired on the echo returns a
# screen without the output line.
BASH = ["bash", "--norc", "--noprofile"]
BASH_ENV = {"PS1": "$ ", "HISTFILE": "/dev/null"}
LATE = "sleep 0.5; echo BUILD-OK"


def _bash(agentty_session: Factory, size: tuple[int, int] = (80, 24)) -> Session:
    s = agentty_session(BASH, env=BASH_ENV, size=size)
    s.wait(regex=r"^\$$", timeout=20)
    return s


def test_the_echo_of_a_command_never_satisfies_its_wait(agentty_session: Factory) -> None:
    s = _bash(agentty_session)
    result = s.text(LATE, enter=True, wait=WaitConditions(text="BUILD-OK", timeout=20))
    assert result.fired == "text"
    assert result.screen.lines[:2] == ("$ " + LATE, "BUILD-OK"), result.screen.lines
    assert result.match == (1, 0)  # the output line; the echo's row reads as masked


def test_a_repl_answer_not_its_echo(agentty_session: Factory) -> None:
    s = agentty_session([PY, "-q"])
    s.wait(text=">>>", timeout=20)
    typed = 'import time; time.sleep(0.5); print("xxx")'
    result = s.text(typed, enter=True, wait=WaitConditions(regex="x{3}", timeout=20))
    assert result.fired == "regex" and result.match == (1, 0), result
    assert result.screen.lines[:2] == (">>> " + typed, "xxx")


def test_what_showed_before_the_input_does_not_answer_its_wait(agentty_session: Factory) -> None:
    """The last run's result, and the prompt a command was typed at, satisfied a wait for
    the next run's result or for the prompt after it at once: the first newer screen
    (the echo) still showed them (an outside round, through MCP)."""
    s = _bash(agentty_session)
    s.text("echo TESTS: 3 failed", enter=True, wait=WaitConditions(regex=r"^\$$", timeout=20))
    passed = "sleep 0.5; echo TESTS: all passed"
    result = s.text(passed, enter=True, wait=WaitConditions(regex="TESTS: .*", timeout=20))
    assert result.fired == "regex" and result.match is not None, result
    assert result.screen.lines[result.match[0]] == "TESTS: all passed", result.screen.lines
    result = s.text("sleep 0.5; echo done", enter=True, wait=WaitConditions(text="$", timeout=20))
    assert result.fired == "text" and result.match is not None, result
    assert result.match[0] > 0, (result.match, result.screen.lines)
    assert result.screen.lines[result.match[0] - 1 : result.match[0] + 1] == ("done", "$")


def test_the_same_output_drawn_anew_after_a_clear_answers_the_wait(
    agentty_session: Factory, tmp_path: Path
) -> None:
    """`clear; make test` run again with the same result draws the same rows at the same
    place: read as "nothing new" there, the wait after it never fired (a review). Once the
    screen was erased, what shows was drawn anew."""
    script = tmp_path / "t.sh"
    script.write_text('sleep 0.3; echo "line A"; echo "TESTS: 3 passed"\n')
    s = _bash(agentty_session)
    again = f"clear; sh {script}"
    s.text(again, enter=True, wait=WaitConditions(text="TESTS", timeout=20))
    s.wait(regex=r"^\$$", timeout=20)
    result = s.text(again, enter=True, wait=WaitConditions(text="TESTS", timeout=20))
    assert result.fired == "text" and result.match is not None, result
    result = s.text(again, enter=True, wait=WaitConditions(regex=r"^\$$", timeout=20))
    assert result.fired == "regex" and "TESTS: 3 passed" in result.screen.lines, result


def test_the_echo_of_a_wrapped_command_line_is_masked_on_every_row(
    agentty_session: Factory,
) -> None:
    s = _bash(agentty_session, size=(40, 12))
    command = "sleep 0.5; echo " + "W" * 60  # its echo takes two rows, the second 38 W's
    result = s.text(command, enter=True, wait=WaitConditions(text="W" * 30, timeout=20))
    assert result.fired == "text"
    assert result.screen.lines[2:4] == ("W" * 40, "W" * 20), result.screen.lines
    assert result.match == (2, 0)


def test_a_multi_line_paste_into_the_repl(agentty_session: Factory) -> None:
    s = agentty_session([PY, "-q"])
    s.wait(text=">>>", timeout=20)
    pasted = 'x = "PASTE-OK"\nimport time; time.sleep(0.5)\nprint(x)\n'
    result = s.paste(pasted, wait=WaitConditions(text="PASTE-OK", timeout=20))
    assert result.fired == "text"
    assert "PASTE-OK" in result.screen.lines, result.screen.lines
    assert result.match is not None
    assert result.screen.lines[result.match[0]] == "PASTE-OK"


def test_output_that_a_program_draws_over_its_command_line_still_counts(
    agentty_session: Factory, tmp_path: Path
) -> None:
    """vim draws `:s/a/b/g` on its last row and replaces it with its message: that place
    was redrawn, nothing is masked there, and the message fires the wait."""
    if not Path("/usr/bin/vim").exists():
        pytest.skip("vim is not installed")
    target = tmp_path / "subst.txt"
    target.write_text("a a a\n")
    s = agentty_session(["vim", "-Nu", "NONE", "-i", "NONE", str(target)], size=(60, 10))
    s.wait(text="subst.txt", timeout=20)
    wait = WaitConditions(text="substitutions", timeout=20)
    result = s.text(":s/a/b/g", enter=True, wait=wait)
    assert result.fired == "text" and result.match is not None, result
    assert result.match[0] == 9, result.screen.lines
    assert result.screen.lines[9].startswith("3 substitutions"), result.screen.lines


def test_cli_wait_after_follows_the_echo_as_the_answer_scrolls_it_up() -> None:
    """The prompt is on the bottom row: the Enter and the answer scroll the echo up."""
    env = [f"--env={k}={v}" for k, v in BASH_ENV.items()]
    agentty("start", "--cols", "60", "--rows", "6", *env, "--", *BASH, check=True)
    try:
        agentty("wait", "--regex", r"^\$$", "--timeout", "20", check=True)
        agentty("text", "--enter", "seq 1 20", check=True)
        agentty("wait", "--regex", r"^20$", "--timeout", "20", check=True)
        seq = agentty_json("text", "--enter", LATE)["seq"]
        done = agentty_json("wait", "--after", str(seq), "--text", "BUILD-OK", "--timeout", "20")
        assert done["fired"] == "text", done
        row = done["match"]["row"]
        assert done["lines"][row - 1 : row + 1] == ["$ " + LATE, "BUILD-OK"], done["lines"]
        assert row - 1 < 5 and done["lines"][row - 2] == "20"  # the echo scrolled up
    finally:
        agentty("kill", check=True)


def test_wait_after_alone_is_no_condition() -> None:
    proc = agentty("wait", "--after", "3", "--timeout", "1")
    assert proc.returncode == 2 and "wait needs a condition" in proc.stderr


def test_send_edits_a_file_in_vim(tmp_path: Path) -> None:
    target = tmp_path / "note.txt"
    agentty("start", "--", "vim", "-u", "NONE", "-i", "NONE", "-N", str(target), check=True)
    try:
        agentty("wait", "--input", "--timeout", "20", check=True)
        sent = agentty_json("send", "i", "a line typed by send", "Esc", ":wq", "Enter")
        assert isinstance(sent["seq"], int)
        agentty("wait", "--exit", "--timeout", "20", check=True)
    finally:
        agentty("kill")
    assert target.read_text() == "a line typed by send\n"


def test_send_literal_tmux_spellings_and_a_bad_key(agentty_session: Factory) -> None:
    s = agentty_session(["sh", "-c", "stty -echo; cat"])
    s.wait(input=True, timeout=20)
    s.send("6*7", "=", "42", "Enter")  # 6*7 is text, not seven sixes; words join unspaced
    s.send("end", "C-m", literal=True)  # literal: `end` and `C-m` are typed, not pressed
    s.send("Down*1", enter=True)  # a named key's repeat; `enter` adds the Enter
    screen = s.wait(regex="^end", timeout=20).screen
    assert screen.lines[0] == "6*7=42"
    assert screen.lines[1] == "endC-m"
    with pytest.raises(InvalidKey, match="send --literal"):
        s.send("typed", "Ctrl+Banana")  # spelt as a key but none: refused, nothing sent
    assert "typed" not in s.get().text


def test_cli_send_is_in_the_schema_and_key_takes_tmux_names() -> None:
    schema = json.loads(agentty("help", "--json", check=True).stdout)
    send = next(c for c in schema["commands"] if c["name"] == "send")
    assert {o["names"][0] for o in send["options"]} >= {"--literal", "--enter", "--json"}
    agentty("start", "--", "sh", "-c", "stty -icanon -echo; cat -v", check=True)
    try:
        agentty("wait", "--input", "--timeout", "20", check=True)
        agentty("key", "C-a", "Escape", "BSpace", "M-x", "C-m", check=True)
        out = agentty("wait", "--text", "^A^[^?^[x", "--timeout", "20")
        assert out.returncode == 0, out.stdout
    finally:
        agentty("kill", check=True)


def test_one_session_waits_in_one_thread_while_another_types(agentty_session: Factory) -> None:
    s = agentty_session(["sh", "-c", "stty -echo; cat"])
    s.wait(input=True, timeout=20)
    for n in range(10):
        word = f"pong{n}"
        started = threading.Event()
        results: list[object] = []

        def wait_for(
            word: str = word, started: threading.Event = started, results: list[object] = results
        ) -> None:
            started.set()
            results.append(s.wait(regex=f"^{word}$", timeout=20))

        waiter = threading.Thread(target=wait_for)
        waiter.start()
        started.wait(10)
        s.text(word + "\r")  # while the wait is (most often) in flight on its own connection
        waiter.join(25)
        assert not waiter.is_alive() and len(results) == 1
        assert s.get().lines.count(word) == 1  # typed once, never repeated by a retry


async def test_async_session_waits_in_one_task_while_another_types(tmp_path: Path) -> None:
    s = await AsyncSession.start(["sh", "-c", "stty -echo; cat"])
    async with s:
        await s.wait(input=True, timeout=20)
        for n in range(10):
            word = f"pong{n}"
            waiter = asyncio.create_task(s.wait(regex=f"^{word}$", timeout=20))
            await asyncio.sleep(0)  # let the wait go out first (it holds its own connection)
            await s.text(word + "\r")
            result = await asyncio.wait_for(waiter, 25)
            assert result.fired == "regex"
            assert (await s.get()).lines.count(word) == 1
        answer = await s.send("last", "Enter", wait=WaitConditions(regex="^last$", timeout=20))
        assert "last" in answer.screen.lines
        cancelled = asyncio.create_task(s.wait(text="never", timeout=60))
        await until(lambda: awaits_its_answer(cancelled))  # the worker has the wait
        cancelled.cancel()  # gives up its connection; the session goes on answering
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert (await s.get()).seq >= answer.screen.seq
        with pytest.raises(WaitTimeout) as timed_out:
            await s.wait(text="never", timeout=0.2)
        assert isinstance(timed_out.value.screen, Screen)
        assert "last" in timed_out.value.screen.lines
        ended = await s.key("C-d", wait=WaitConditions(exit=True, timeout=20))
        assert ended.fired == "exit" and ended.screen.exit_code == 0
    # (`async with` ended it quietly: it had exited by itself.)


async def test_async_session_input_and_reads_go_on_past_a_hundred_pending_waits() -> None:
    """Waits took every one of the worker's 64 connections: with 70 pending, `text` failed
    ("Broken pipe") and `get` said "too many connections" (an attack round). The session's
    waits past its wait slots queue in the process, each within its own timeout."""
    s = await AsyncSession.start(["sh", "-c", "stty -echo; cat"])
    async with s:
        await s.wait(input=True, timeout=20)
        waits = [asyncio.create_task(s.wait(text=f"go{i % 3}", timeout=30)) for i in range(100)]
        await asyncio.sleep(0)
        answer = await s.text("go0 go1 go2\r", wait=WaitConditions(text="go2", timeout=20))
        assert answer.fired == "text"
        assert "go0 go1 go2" in (await s.get()).lines
        fired = await asyncio.wait_for(asyncio.gather(*waits), 60)
        assert [f.fired for f in fired] == ["text"] * 100
        queued = [s.wait(text="never", timeout=0.5) for _ in range(40)]
        outcomes = await asyncio.wait_for(asyncio.gather(*queued, return_exceptions=True), 20)
        assert all(isinstance(o, WaitTimeout) for o in outcomes), outcomes  # (each in its time)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_after_exit_every_method_raises_session_not_running(
    api: str, agentty_session: Factory
) -> None:
    s = agentty_session(["sh", "-c", "echo bye"])
    s.wait(exit=True, timeout=20)
    calls: list[Callable[[], object]]
    if api == "sync":
        calls = [
            lambda: s.text("x"),
            lambda: s.key("Enter"),
            lambda: s.paste("x"),
            lambda: s.send("x", "Enter"),
            lambda: s.resize(40, 10),
            lambda: s.wait(text="never", timeout=1),
            lambda: s.kill(),
        ]
        for call in calls:
            with pytest.raises(SessionNotRunning):
                call()
        return

    async def each() -> None:
        a = AsyncSession(s.id, s.client)
        for make in (
            lambda: a.text("x"),
            lambda: a.key("Enter"),
            lambda: a.paste("x"),
            lambda: a.send("x", "Enter"),
            lambda: a.resize(40, 10),
            lambda: a.wait(text="never", timeout=1),
            lambda: a.kill(),
        ):
            with pytest.raises(SessionNotRunning):
                await make()
        assert (await a.get()).lines == ("bye",) + ("",) * 23

    asyncio.run(each())


def test_text_with_nothing_to_type_is_refused() -> None:
    """`agentty text` with no words, no --file and no --enter typed nothing and exited 0:
    an agent's forgotten payload went unnoticed. An empty text asked for (`''`) is fine."""
    agentty("start", "--", "cat", check=True)
    for way in (["text"], ["text", "--json"]):
        proc = agentty(*way)
        assert proc.returncode == 2, proc
        assert proc.stderr.startswith("agentty: error: nothing to type"), proc.stderr
        assert proc.stderr.count("\n") == 1, proc.stderr
    assert agentty_json("text", "")["bytes"] == 0
    agentty("text", "--enter", check=True)  # (Enter alone)
    agentty("text", "--enter", "ab", check=True)
    agentty("wait", "--regex", "^ab$", "--after", "0", "--timeout", "10", check=True)
    assert agentty("get", check=True).stdout.startswith("\n\nab\nab\n")  # (cat's lines too)
    agentty("kill", check=True)

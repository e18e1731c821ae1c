"""What the command says when something is missing or never came (issue #16.21)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import agentty


def test_replay_of_a_missing_file_says_no_such_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nonexistent.cast")
    proc = agentty("replay", missing)
    assert proc.returncode == 2
    assert f"no such file: {missing}" in proc.stderr and "session" not in proc.stderr


def test_replay_of_a_missing_session_still_says_no_such_session() -> None:
    proc = agentty("replay", "nosuchname")
    assert proc.returncode == 2 and "no such session: nosuchname" in proc.stderr


def test_run_timeout_names_the_expect_that_never_appeared() -> None:
    proc = agentty(
        "run",
        "--timeout",
        "1",
        "--expect",
        "Name:",
        "--input",
        "Ada",
        "--expect",
        "Password:",
        "--input",
        "s3cret",
        "--",
        "sh",
        "-c",
        "printf 'Name: '; read n; echo hello; sleep 30",
    )
    assert proc.returncode == 3
    assert "run timed out after 1s waiting for --expect 'Password:'" in proc.stderr
    assert "hello" in proc.stdout  # and the screen as it was


def test_run_timeout_names_the_exit_when_every_prompt_was_answered() -> None:
    proc = agentty("run", "--timeout", "0.5", "--", "sleep", "30")
    assert proc.returncode == 3
    assert "waiting for the program to exit" in proc.stderr


def test_get_refuses_options_that_contradict_each_other() -> None:
    """`--raw` is the output's bytes (no screen to colour, trim or scroll) and `--png` a
    picture of the screen: combined with the screen's options they were silently ignored."""
    for extra in (["--raw", "--ansi"], ["--bytes", "10", "--lines", "3"], ["--raw", "--png", "-"]):
        proc = agentty("get", "-s", "nosuchname", *extra)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "cannot be combined" in proc.stderr, extra
    proc = agentty("get", "-s", "nosuchname", "--png", "-", "--scrollback")
    assert proc.returncode == 2 and "cannot be combined" in proc.stderr


def test_get_ansi_refuses_lines_and_scrollback_it_cannot_colour() -> None:
    """`--ansi` is the screen's own rows: with `--lines 2` it printed the whole screen, and
    with `--scrollback` no scrollback, exit 0 (found by an attack round), on both paths and
    on a session that ended as on one that runs. `--json` keeps them apart (`ansi` the
    screen's rows, `lines` and `scrollback` as asked): taken there."""
    agentty("start", "--name", "long", "--", "sh", "-c", "seq 1 300; exec cat", check=True)
    agentty("wait", "-s", "long", "--regex", "^300$", check=True)
    for state in ("running", "ended"):
        both = agentty("get", "-s", "long", "--ansi", "--lines", "2", "--json", check=True)
        assert len(json.loads(both.stdout)["lines"]) == 2, (state, both.stdout[:200])
        for extra in (["--lines", "2"], ["--scrollback"]):
            proc = agentty("get", "-s", "long", "--ansi", *extra)
            assert proc.returncode == 2 and "--ansi cannot be combined" in proc.stderr, (
                state,
                extra,
                proc,
            )
        if state == "running":
            agentty("kill", "-s", "long", check=True)


def test_get_raw_of_an_ended_session_says_there_is_none() -> None:
    """Its raw output is not kept (the final screen is): `--raw` and `--bytes` printed
    nothing, exit 0 (found by an attack round)."""
    agentty("start", "--name", "ended", "--", "sh", "-c", "echo hello", check=True)
    agentty("wait", "-s", "ended", "--exit", check=True)
    for extra in (["--raw"], ["--bytes", "20"], ["--raw", "--json"]):
        proc = agentty("get", "-s", "ended", *extra)
        assert proc.returncode == 1 and "raw output is not kept" in proc.stderr, (extra, proc)
        assert proc.stdout == "", proc
    assert "hello" in agentty("get", "-s", "ended", check=True).stdout


def test_a_repeat_count_past_the_engine_s_says_so() -> None:
    """It was called "nested too deeply" (an attack round)."""
    agentty("start", "--", "cat", check=True)
    proc = agentty("wait", "--regex", "a{99999999999}", "--timeout", "1")
    assert proc.returncode == 2 and "repetition number is too large" in proc.stderr, proc
    agentty("kill", check=True)


def test_a_long_pattern_is_quoted_short_in_every_message() -> None:
    """The timeout's message quoted a 100 KB pattern whole (the invalid one's cut it)."""
    agentty("start", "--", "cat", check=True)
    for option in ("--regex", "--text", "--gone"):
        proc = agentty("wait", option, "a" * 30_000, "--timeout", "0.2")
        assert proc.returncode in (0, 3) and len(proc.stderr) < 300, (option, len(proc.stderr))
        if proc.returncode == 3:
            assert "(30000 characters)" in proc.stderr, proc.stderr
    agentty("kill", check=True)


@pytest.mark.parametrize("state", ["running", "ended"])
def test_a_regex_past_the_limit_is_refused_before_it_is_compiled(state: str) -> None:
    """A 1 MB pattern took 1.2 s to compile, in the worker's one thread (every client of
    the session waited) and in the MCP server's loop; its wait's timeout was not kept."""
    agentty("start", "--name", "r", "--", "cat", check=True)
    if state == "ended":
        agentty("kill", "-s", "r", check=True)
    for extra in ([], ["--json"]):
        proc = agentty("wait", "-s", "r", "--regex", "a" * 100_000, "--timeout", "5", *extra)
        assert proc.returncode == 2, proc
        assert "over the limit of 32768 characters" in proc.stderr and len(proc.stderr) < 300
    if state == "running":
        agentty("kill", "-s", "r", check=True)


def test_get_png_to_a_file_that_cannot_be_written_is_a_failure_not_a_usage_error() -> None:
    """Exit 1, as a stdout that cannot be written: it was 2 (an attack round)."""
    pytest.importorskip("PIL")
    agentty("start", "--", "cat", check=True)
    for target in ("/dev/full", "/nonexistent/screen.png"):
        proc = agentty("get", "--png", target)
        assert proc.returncode == 1 and "cannot write" in proc.stderr, (target, proc)
    agentty("kill", check=True)


def test_input_over_the_limit_is_refused_without_reading_it_all() -> None:
    """`text --file /dev/zero` and `yes | agentty text -` read without end (12 GB in 30 s)."""
    import subprocess

    from tests.helpers.cli import AGENTTY, agentty_json

    sid = agentty_json("start", "--", "cat")["id"]
    proc = agentty("text", "--file", "/dev/zero", timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.startswith("agentty: error: /dev/zero holds more than the limit")
    for command in ("text", "paste"):
        yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
        fed = subprocess.run(
            [AGENTTY, command, "-"], stdin=yes.stdout, capture_output=True, text=True, timeout=30
        )
        yes.kill()
        yes.wait()
        assert fed.returncode == 2, fed.stderr
        assert fed.stderr.startswith("agentty: error: stdin holds more than the limit")
    assert not "".join(agentty_json("get")["lines"]).strip()  # nothing was sent
    agentty("kill", "-s", sid, check=True)


def test_relay_reads_requests_from_a_file(tmp_path: Path) -> None:
    """epoll refuses a regular file or /dev/null as stdin: `relay S < requests` was a
    traceback (PermissionError)."""
    from tests.helpers.cli import agentty_json

    sid = agentty_json("start", "--", "cat")["id"]
    requests = tmp_path / "requests"
    requests.write_text('{"v":1,"method":"ping","params":{}}\n')
    with open(requests) as stdin:
        import subprocess

        from tests.helpers.cli import AGENTTY

        proc = subprocess.run(
            [AGENTTY, "relay", sid], stdin=stdin, capture_output=True, text=True, timeout=30
        )
    assert proc.returncode == 0, proc.stderr
    assert '"pong":true' in proc.stdout
    agentty("kill", "-s", sid, check=True)


def test_relay_passes_on_every_line_it_reads_whatever_it_cannot_stamp(tmp_path: Path) -> None:
    """A line with a lone surrogate escape (text from non-UTF-8 bytes) is legal locally, but
    `relay` ended on it with a traceback when stamping its `within`: the line before it,
    read in the same chunk, was never typed."""
    import json
    import subprocess

    from tests.helpers.cli import AGENTTY, agentty_json

    sid = agentty_json("start", "--", "cat")["id"]
    lines = [
        {"v": 1, "method": "text", "params": {"data": "first"}, "within": 30},
        {"v": 1, "method": "text", "params": {"data": "\udcff"}, "within": 30},
        {"v": 1, "method": "text", "params": {"data": "last\r"}, "within": 30},
    ]
    requests = "".join(json.dumps(line) + "\n" for line in lines)
    proc = subprocess.run(
        [AGENTTY, "relay", sid], input=requests, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a.get("ok") for a in answers] == [True, True, True], answers
    agentty("wait", "-s", sid, "--text", "last", "--timeout", "5", check=True)
    assert agentty_json("get", "-s", sid)["lines"][0].startswith("first")
    agentty("kill", "-s", sid, check=True)


IN_PROCESS_START = """
import signal, sys
from agentty_core.cli import hotpath, main
signal.signal(signal.SIGINT, signal.default_int_handler)  # (a harness may ignore SIGINT)
for run in (hotpath.main, main.main):
    assert run(["start", "--", "sleep", "1000000"]) == 0
    print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
"""


def test_a_start_run_in_process_gives_ctrl_c_back() -> None:
    """`start` makes Ctrl-C let it finish once its program runs; run from a program's own
    main thread (`main(argv)`), it left that program unable to be stopped by Ctrl-C."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", IN_PROCESS_START], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    words = proc.stdout.split()  # each start's id, then whether Ctrl-C is Python's again
    assert words[1::2] == ["True", "True"], proc.stdout
    for session_id in words[0::2]:
        agentty("kill", "-s", session_id, check=True)


@pytest.mark.parametrize("state", ["running", "ended"])
def test_a_wait_for_text_no_row_can_hold_is_refused(state: str) -> None:
    """A screen row holds no control character (a newline ends the row, a tab is blanks):
    `--text 'a\\nb'` waited out its whole timeout (exit 3), or on an ended session said it
    ended (exit 1), and `--gone` with one held at once. Now a usage error, on every path."""
    agentty("start", "--name", "w", "--", "sh", "-c", "echo 'a\tb'; exec cat", check=True)
    agentty("wait", "-s", "w", "--text", "a", check=True)
    if state == "ended":
        agentty("kill", "-s", "w", check=True)
    for option, value in (("--text", "a\nb"), ("--gone", "a\tb"), ("--text", "x\x1b[1m")):
        for extra in ([], ["--json"]):
            proc = agentty("wait", "-s", "w", option, value, "--timeout", "5", *extra)
            assert proc.returncode == 2, (option, extra, proc)
            assert "a screen row never holds one" in proc.stderr, proc.stderr
            assert proc.stderr.count("\n") == 1 and "\x1b" not in proc.stderr, proc.stderr
    if state == "running":
        agentty("kill", "-s", "w", check=True)


def test_run_refuses_an_expect_no_row_can_hold_before_it_starts() -> None:
    proc = agentty("run", "--expect", "name:\n", "--text", "x", "--timeout", "5", "--", "cat")
    assert proc.returncode == 2, proc
    assert proc.stderr.startswith("agentty: error: --expect has a control character"), proc
    assert json.loads(agentty("status", "--json", check=True).stdout)["sessions"] == []

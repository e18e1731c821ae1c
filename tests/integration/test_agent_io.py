"""Agent I/O: waits answered by the worker, input state, terminal replies, modes, resize."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agentty_core import Session
from agentty_core.client import Client
from tests.helpers.cli import AGENTTY, agentty, agentty_json

PY = sys.executable


def start(*argv: str, extra: tuple[str, ...] = ()) -> str:
    return agentty("start", *extra, "--", *argv, check=True).stdout.strip()


def test_wait_text_for_output_after_a_random_delay(programs: Path) -> None:
    start(PY, str(programs / "delayed_print.py"))
    result = agentty_json("wait", "--text", "DONE", "--timeout", "20")
    assert result["fired"] == "text" and result["match"] == {"row": 0, "col": 0}
    assert result["lines"][0] == "DONE"
    agentty("kill", check=True)


def test_wait_stable_after_a_burst(programs: Path) -> None:
    start(PY, str(programs / "burst_then_quiet.py"))
    agentty("wait", "--text", "tick 0", check=True)
    result = agentty_json("wait", "--stable", "300", "--timeout", "20")
    assert result["fired"] == "stable"
    assert "quiet now" in result["lines"]
    agentty("kill", check=True)


def test_changed_since_after_text_has_no_race() -> None:
    start(PY, "-q")
    agentty("wait", "--text", ">>>", check=True)
    sent = agentty_json("text", "--enter", "6*7")
    result = agentty_json("wait", "--changed-since", str(sent["seq"]), "--timeout", "10")
    assert result["fired"] == "changed" and int(result["seq"]) > int(sent["seq"])
    assert "42" in agentty_json("wait", "--regex", "^42$")["lines"]
    agentty("kill", check=True)


def test_wait_gone(programs: Path) -> None:
    # The screen changes only when told to (Enter), not after a pause that a loaded machine
    # may outlast before the first wait runs.
    start("sh", "-c", "echo Loading...; read x; printf '\\033[2J\\033[Hready\\n'; sleep 30")
    agentty("wait", "--text", "Loading", "--timeout", "10", check=True)
    agentty("key", "Enter", check=True)
    result = agentty_json("wait", "--gone", "Loading", "--timeout", "10")
    assert result["fired"] == "gone" and result["lines"][0] == "ready"
    agentty("kill", check=True)


def test_several_conditions_report_which_fired() -> None:
    start("sh", "-c", "echo first; sleep 30")
    result = agentty_json("wait", "--text", "never", "--regex", "fir+st", "--timeout", "10")
    assert result["fired"] == "regex"
    agentty("kill", check=True)


def test_timeout_exits_3_and_shows_the_screen() -> None:
    start("sh", "-c", "echo something else; sleep 30")
    agentty("wait", "--text", "something", check=True)
    proc = agentty("wait", "--text", "absent", "--timeout", "0.3")
    assert proc.returncode == 3
    assert proc.stderr.strip() == "agentty: error: timed out after 0.3s waiting for text 'absent'"
    assert proc.stdout == "something else\n"
    agentty("kill", check=True)


def test_many_waits_on_one_session_at_once() -> None:
    start("sh", "-c", "sleep 0.5; echo go; sleep 30")
    results: list[subprocess.CompletedProcess[str]] = []

    def waiter() -> None:
        results.append(agentty("wait", "--text", "go", "--timeout", "20"))

    threads = [threading.Thread(target=waiter) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0] * 8
    agentty("kill", check=True)


def test_wait_exit_reports_the_code_and_a_dying_worker_is_an_error() -> None:
    start("sh", "-c", "sleep 0.3; exit 7")
    result = agentty_json("wait", "--exit", "--timeout", "10")
    assert result["fired"] == "exit" and result["exitCode"] == 7
    assert agentty("wait", "--exit").stdout.endswith("[exited: code 7]\n")
    rec = agentty_json("start", "--", "sleep", "60")
    waiting = subprocess.Popen(
        [AGENTTY, "wait", "--text", "never", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    agentty("wait", "--stable", "200", check=True)
    import os
    import signal

    os.kill(int(rec["workerPid"]), signal.SIGKILL)
    _, err = waiting.communicate(timeout=20)
    assert waiting.returncode == 1 and "worker" in err
    agentty("kill", check=True)  # ends what the worker left behind


def test_a_stopped_program_is_stopped_not_busy() -> None:
    """A program stopped (SIGSTOP, or SIGTTIN at a read) reads nothing until continued:
    `busy` had an agent wait for it to finish some work."""
    rec = agentty_json("start", "--", "sh", "-c", "cat; sleep 30")
    agentty("wait", "--input", "--timeout", "20", check=True)
    reader = agentty_json("get")["input"]["foreground"]["pid"]
    os.killpg(os.getpgid(reader), signal.SIGSTOP)
    try:
        state = agentty_json("get")["input"]
        assert (state["state"], state["foreground"]["pid"]) == ("stopped", rec["pid"]), state
    finally:
        os.killpg(os.getpgid(reader), signal.SIGCONT)
    assert agentty_json("wait", "--input", "--timeout", "20")["input"]["state"] == "reading"
    agentty("kill", check=True)


@pytest.mark.parametrize("case", ["compute", "password", "repl", "vim"])
def test_input_state(case: str, programs: Path, tmp_path: Path) -> None:
    if case == "compute":
        start(PY, str(programs / "compute_then_prompt.py"))
        state = agentty_json("get")["input"]
        assert state["state"] == "busy"
        result = agentty_json("wait", "--input", "--timeout", "20")
        assert "your name?" in result["lines"][0]
        assert result["input"]["echo"] is True and result["input"]["canonical"] is True
        assert result["input"]["secret"] is False
    elif case == "password":
        start("bash", "-c", "read -s -p 'Password: ' pw; echo; echo got ${#pw}; sleep 30")
        result = agentty_json("wait", "--input", "--timeout", "20")
        assert result["input"]["echo"] is False and result["input"]["canonical"] is True
        assert result["input"]["secret"] is True  # a password prompt: typing will not show
        assert agentty_json("get")["input"]["secret"] is True
        assert agentty_json("status")["sessions"][0]["input"]["state"] == "reading"
        agentty("text", "--enter", "hunter2", check=True)
        agentty("wait", "--text", "got 7", check=True)
        agentty("kill", check=True)
        return
    elif case == "repl":
        start(PY, "-q")
        result = agentty_json("wait", "--input", "--timeout", "20")
        assert ">>>" in result["lines"][0]
        assert result["input"]["foreground"]["name"].startswith("python")
        # The REPL reads in raw mode with the tty's echo off and echoes keys itself: what is
        # typed shows, so it is no secret (echo alone would have called it a password).
        assert result["input"]["canonical"] is False and result["input"]["secret"] is False
    else:
        # Under a non-interactive shell vim is not its group's leader; it is still found.
        vim = f"vim -u NONE -i NONE -N {tmp_path / 'x.txt'}; sleep 30"
        start("sh", "-c", vim)
        result = agentty_json("wait", "--input", "--timeout", "20")
        assert result["input"]["canonical"] is False and result["input"]["secret"] is False
        assert result["input"]["foreground"]["name"] == "vim"
        assert result["altScreen"] is True
    assert agentty_json("status")["sessions"][0]["input"]["state"] == "reading"
    agentty("kill", check=True)


@pytest.mark.parametrize("how", ["read", "epoll"])
def test_a_program_reading_the_terminal_in_a_thread_of_its_own(how: str, programs: Path) -> None:
    """fzf's shape: stdin a pipe, /dev/tty read by a thread while the main thread waits on
    it (or, Go's runtime's way, waited for in an epoll set first). It reads: the main
    thread alone said busy for ever."""
    start("sh", "-c", f"echo piped | {PY} {programs / 'thread_reader.py'} {how}")
    result = agentty_json("wait", "--input", "--timeout", "20")
    assert result["fired"] == "input" and "name?" in result["lines"][0]
    assert result["input"]["foreground"]["name"].startswith("python")
    agentty("text", "--enter", "Ada", check=True)
    agentty("wait", "--text", "got 'Ada'", "--exit", check=True)


def test_a_program_with_a_thread_at_work_or_polling_is_busy(programs: Path) -> None:
    """With another thread computing it is busy, though its reader waits; a thread waiting
    in select() reads nothing (with stdin the terminal: a thread waiting in select was once
    taken for one waiting on the terminal)."""
    reader = f"{PY} {programs / 'thread_reader.py'}"
    for line, call in ((f"echo piped | {reader} spin", "read"), (f"{reader} poll", "select")):
        start("sh", "-c", line)
        agentty("wait", "--text", "name?", check=True)
        _until_a_thread_is_in(call)
        assert agentty_json("get")["input"]["state"] == "busy", line
        agentty("kill", check=True)


SYSCALLS = {"read": {"0"}, "select": {"7", "23", "270"}}  # x86_64: poll, select, pselect6


def _until_a_thread_is_in(call: str) -> None:
    """Until a thread of the active session's program is blocked in `call` (/proc)."""
    if os.uname().machine != "x86_64":
        pytest.skip("the system call numbers here are x86_64's")
    leader = _leader()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for pid in _descendants(leader):
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    nr = Path(f"/proc/{pid}/task/{tid}/syscall").read_text().split()[0]
                    if nr in SYSCALLS[call]:
                        return
            except (OSError, IndexError):
                continue
        time.sleep(0.02)
    raise AssertionError(f"no thread of the program came to {call}")


def _leader() -> int:
    rec = next(r for r in agentty_json("status")["sessions"] if r["status"] == "running")
    return int(rec["pid"])


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        queue.extend(int(child) for child in children)
    return found


@pytest.mark.skipif(shutil.which("micro") is None, reason="micro is not installed")
def test_a_go_tui_waiting_in_epoll_is_seen_reading(tmp_path: Path) -> None:
    """micro (Go, tcell): no thread reads; the runtime waits for /dev/tty in epoll."""
    start("micro", str(tmp_path / "notes.txt"))
    result = agentty_json("wait", "--input", "--timeout", "20")
    assert result["input"]["foreground"]["name"] == "micro"
    agentty("text", "hello", check=True)
    agentty("wait", "--text", "hello", check=True)
    agentty("kill", check=True)


def test_a_regex_nested_too_deeply_is_refused_in_one_line() -> None:
    """`re` raises RecursionError, not re.error, for such a pattern: a running session's
    worker answered "worker error: maximum recursion depth exceeded" (exit 1), an ended
    session's wait printed a traceback of thousands of lines."""
    deep = "(" * 2000 + ")" * 2000
    for argv in (["cat"], ["sh", "-c", "exit 5"]):
        sid = start(*argv)
        if argv != ["cat"]:
            agentty("wait", "--session", sid, "--exit", check=True)
        refused = agentty("wait", "--session", sid, "--regex", deep, "--timeout", "1")
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.count("\n") == 1, refused.stderr[:500]
        assert "invalid regex" in refused.stderr and "nested too deeply" in refused.stderr
        if argv == ["cat"]:
            agentty("kill", "--session", sid, check=True)


def test_a_wait_for_input_answers_with_the_read_that_fired_it(programs: Path) -> None:
    """The answer's input state is the one that fired the wait: a program that reads only
    now and then (under `sh`, the group's leader) was answered `fired: input` with a later
    look, which found it busy and named `sh`."""
    start("sh", "-c", f"{PY} {programs / 'flicker_reader.py'}; echo done")
    agentty("wait", "--text", "flickering", "--timeout", "20", check=True)
    for _ in range(30):
        result = agentty_json("wait", "--input", "--timeout", "20")
        assert result["fired"] == "input"
        assert result["input"]["state"] == "reading", result["input"]
        assert result["input"]["foreground"]["name"].startswith("python"), result["input"]
    agentty("kill", check=True)


@pytest.mark.skipif(shutil.which("fzf") is None, reason="fzf is not installed")
def test_fzf_is_seen_reading_and_run_picks_with_keys() -> None:
    pick = "printf 'apple\\nbanana\\ncherry\\n' | fzf"
    start("sh", "-c", pick)
    result = agentty_json("wait", "--input", "--timeout", "20")
    assert result["input"]["foreground"]["name"] == "fzf"
    agentty("kill", check=True)
    # Keys once the list is drawn (fzf reads the terminal before it is ready for them), and
    # Enter once the query has narrowed it (fzf matches in the background: an Enter typed
    # with the query would take the line selected before).
    keys = ["--expect", "3/3", "--key", "b a n", "--expect", "1/3", "--key", "Enter"]
    done = agentty("run", "--timeout", "20", *keys, "--", "sh", "-c", pick)
    assert done.returncode == 0 and done.stdout.startswith("banana"), (done.stdout, done.stderr)


def test_cursor_position_query_gets_the_real_position(programs: Path) -> None:
    start(PY, str(programs / "cpr_query.py"))
    result = agentty_json("wait", "--text", "REPLY", "--timeout", "20")
    assert "REPLY b'\\x1b[1;4R'" in result["lines"]
    agentty("kill", check=True)


def test_vim_arrow_keys_use_application_mode(tmp_path: Path) -> None:
    target = tmp_path / "lines.txt"
    target.write_text("".join(f"line {i}\n" for i in range(10)))
    start("vim", "-u", "NONE", "-i", "NONE", "-N", str(target))
    agentty("wait", "--text", "line 9", check=True)
    before = agentty_json("get")
    assert before["modes"]["applicationCursor"] is True
    assert before["cursor"]["row"] == 0
    sent = agentty_json("key", "Down*3", "Right*2")
    after = agentty_json("wait", "--changed-since", str(sent["seq"]), "--stable", "100")
    after = agentty_json("wait", "--stable", "150")
    assert (after["cursor"]["row"], after["cursor"]["col"]) == (3, 2)
    agentty("key", "Esc", ":", "q", "!", "Enter", check=True)
    agentty("wait", "--exit", check=True)


def test_bracketed_paste_reaches_the_program_whole(programs: Path) -> None:
    start(PY, str(programs / "paste_report.py"))
    assert agentty_json("wait", "--text", "READY")["modes"]["bracketedPaste"] is True
    agentty("paste", "line one\nline two", check=True)
    result = agentty_json("wait", "--text", "GOT", "--timeout", "10")
    assert "GOT b'\\x1b[200~line one\\nline two\\x1b[201~'" in result["lines"]
    agentty("kill", check=True)


def test_resize_reaches_the_program(programs: Path) -> None:
    start(PY, str(programs / "winch_report.py"))
    agentty("wait", "--text", "SIZE 80x24", check=True)
    agentty("resize", "--cols", "100", "--rows", "40", check=True)
    result = agentty_json("wait", "--text", "SIZE 100x40", "--timeout", "10")
    assert result["size"] == {"cols": 100, "rows": 40}
    agentty("kill", check=True)


def test_wide_characters_take_two_columns() -> None:
    start("sh", "-c", "printf '日本語x\\n'; sleep 30")
    result = agentty_json("wait", "--text", "x")
    assert result["lines"][0] == "日本語x"
    assert result["match"] == {"row": 0, "col": 6}
    agentty("kill", check=True)


def test_get_ansi_raw_and_scrollback() -> None:
    start(
        "sh",
        "-c",
        "for i in $(seq 1 40); do echo line $i; done; printf '\\033[31mred\\033[0m\\n'; sleep 30",
    )
    agentty("wait", "--text", "red", check=True)
    plain = agentty("get", check=True).stdout
    assert "line 1\n" not in plain and plain.endswith("red\n")
    assert "line 1\n" in agentty("get", "--scrollback", check=True).stdout
    assert agentty("get", "--lines", "2", check=True).stdout == "line 40\nred\n"
    ansi = agentty("get", "--ansi", check=True).stdout
    assert "\x1b[31mred" in ansi or "\x1b[0;31mred" in ansi or "31m" in ansi
    raw = subprocess.run(
        [AGENTTY, "get", "--raw", "--bytes", "20"], capture_output=True, check=True
    )
    assert raw.stdout.endswith(b"\x1b[31mred\x1b[0m\r\n")
    agentty("kill", check=True)


@pytest.mark.parametrize("ended", [False, True], ids=["running", "ended"])
def test_lines_with_scrollback_are_the_last_lines_of_all_of_it(ended: bool) -> None:
    """`--lines N` is the last N lines of history and screen, with `--scrollback` too: the
    whole scrollback came back beside them, and every reader joined the two (the screen's
    rows above the last N were lost from the middle, unsaid)."""
    sid = start("sh", "-c", "seq 1 500; echo done; " + ("exit 0" if ended else "sleep 30"))
    agentty("wait", "--text", "done", *(["--exit"] if ended else []), check=True)
    for way in ("--scrollback", "--lines"), ("--lines",):
        words = ["get", "--session", sid, *way, "3"]
        assert agentty(*words, check=True).stdout == "499\n500\ndone\n", way
        screen = agentty_json(*words)
        assert screen["lines"] == ["499", "500", "done"] and not screen.get("scrollback"), way
    screen = Client().get(sid, lines=3, scrollback=True)
    assert screen["lines"] == ["499", "500", "done"] and not screen.get("scrollback")
    if not ended:
        agentty("kill", "--session", sid, check=True)


def test_text_from_file_and_stdin_with_enter(tmp_path: Path) -> None:
    start("cat")
    payload = tmp_path / "payload.txt"
    payload.write_bytes("from file ünïcode".encode())
    agentty("text", "--file", str(payload), "--enter", check=True)
    agentty("wait", "--text", "from file ünïcode", check=True)
    agentty("text", "--enter", "-", input=b"from stdin", check=True)
    screen = agentty_json("wait", "--regex", "from stdin$")
    assert screen["lines"][:4] == ["from file ünïcode"] * 2 + ["from stdin"] * 2
    agentty("kill", check=True)


def test_signal_goes_to_the_foreground_group() -> None:
    start("sh", "-c", "trap 'echo caught INT' INT; while :; do sleep 0.1; done")
    agentty("wait", "--input", "--stable", "200", check=True)
    result = agentty_json("signal", "INT")
    assert result["signal"] == "SIGINT"
    agentty("wait", "--text", "caught INT", check=True)
    agentty("kill", check=True)


def test_help_json_lists_the_agent_io_commands() -> None:
    schema = json.loads(agentty("help", "--json", check=True).stdout)
    commands = {c["name"]: c for c in schema["commands"]}
    assert {"wait", "paste", "resize", "signal"} <= set(commands)
    wait_opts = {n for o in commands["wait"]["options"] for n in o["names"]}
    assert {
        "--text",
        "--regex",
        "--gone",
        "--stable",
        "--changed-since",
        "--input",
        "--exit",
        "--scrollback",
        "--timeout",
    } <= wait_opts
    get_opts = {n for o in commands["get"]["options"] for n in o["names"]}
    assert {"--ansi", "--raw", "--bytes", "--scrollback", "--lines"} <= get_opts


def test_final_screen_of_a_fast_flood_is_complete(tmp_path: Path) -> None:
    # `cat` exits the moment its last write fits in the PTY, with much of the output still
    # unread; a wait for the exit, already waiting while the flood is parsed, must answer
    # with the final screen, not what was parsed when SIGCHLD arrived.
    flood = tmp_path / "flood.txt"
    flood.write_text("".join(f"{i:08d} flood line\n" for i in range(400_000)) + "END-MARK\n")
    with Session.start(["cat", str(flood)]) as session:  # killed if still running (it ends)
        waited = session.wait(exit=True, timeout=120)
        assert [x for x in waited.screen.lines if x][-2:] == ["00399999 flood line", "END-MARK"]
        assert session.get().text.splitlines()[-2:] == ["00399999 flood line", "END-MARK"]


def test_exit_is_noticed_though_a_background_job_holds_the_terminal() -> None:
    """No end of file comes while the job keeps the PTY open: the exit counts once the
    output has been quiet a moment, and the job is ended with the session."""
    agentty_json("start", "--", "sh", "-c", "trap '' HUP; sleep 1000 & echo parent-done")
    result = agentty_json("wait", "--exit", "--timeout", "10")
    assert result["fired"] == "exit" and result["lines"][0] == "parent-done"


def test_typed_lines_run_in_a_shell_that_brackets_pastes() -> None:
    """Text of several lines goes as a bracketed paste; its last newline was inside the
    paste too, and bash (5.1+ brackets pastes) only kept the lines: nothing ran until an
    extra Enter. The last newline is typed after the paste now, as a typed line's is."""
    start("bash", "--norc", "--noprofile", "-i", extra=("--env", "PS1=$ "))
    agentty("wait", "--text", "$", check=True)
    if not agentty_json("get")["modes"].get("bracketedPaste"):
        agentty("kill", check=True)
        pytest.skip("this bash does not bracket pastes")
    agentty("text", "echo MARK-A\necho MARK-B\n", check=True)
    waited = agentty("wait", "--regex", "^MARK-B$", "--timeout", "10")
    assert waited.returncode == 0, agentty("get").stdout
    assert "MARK-A" in waited.stdout
    agentty("kill", check=True)


def test_a_paste_keeps_its_last_newline_inside(programs: Path) -> None:
    start(PY, str(programs / "paste_report.py"))
    agentty("wait", "--text", "READY", check=True)
    agentty("paste", "line one\nline two\n", check=True)
    result = agentty_json("wait", "--text", "GOT", "--timeout", "10")
    assert "GOT b'\\x1b[200~line one\\nline two\\n\\x1b[201~'" in result["lines"]
    agentty("kill", check=True)

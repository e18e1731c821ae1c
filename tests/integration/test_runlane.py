"""The `run` lane (hotpath.py -> runlane.py) does what the full path does (stdout, stderr and
exit code, byte for byte), through the warm spawner and one connection to the worker, and
leaves nothing of its session behind: no record, no log, no final screen."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import AGENTTY, agentty, agentty_json, wait_until
from tests.integration.test_hotpath import FULL, run

RUN_LANE_CHECK = """
import sys
from agentty_core.cli import hotpath
code = hotpath.run_lane(sys.argv[1:])
loaded = sorted({'json', 're', 'pathlib', 'socket', 'argparse'} & set(sys.modules))
if code is None:
    code = hotpath._with_worker_started_early(sys.argv[1:])
    print(f'CODE=None->{code}', file=sys.stderr)
else:
    print(f'CODE={code} LOADED={",".join(loaded)}', file=sys.stderr)
sys.exit(code)
"""
INSTALLER = """\
read -r -p 'Name: ' name
read -r -p 'Continue? [y/N] ' ok
read -r -s -p 'Password: ' pw; echo
echo "installed for $name ($ok, ${#pw} chars)"
exit 4
"""
MENU = """\
import os, sys, termios, tty
fd = sys.stdin.fileno()
saved = termios.tcgetattr(fd)
tty.setraw(fd)  # a TUI's reading: every key as it comes, no line discipline; set (with its
print("Pick: [a] Apple [b] Banana", end="\\r\\n", flush=True)  # flush) before it draws
got = b""
try:
    while not got.endswith(b"\\r"):
        got += os.read(fd, 64)
finally:
    termios.tcsetattr(fd, termios.TCSADRAIN, saved)
print("GOT", got.hex(" "))
"""
VARYING = {"id", "elapsed_ms", "seq"}


def run_lane(*args: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    """`run ARGS` through the lane (or, when it hands over, the full path, as `agentty`
    does): which one answered, and the process."""
    proc = run([sys.executable, "-c", RUN_LANE_CHECK], "run", *args)
    *said, used = proc.stderr.splitlines(keepends=True)
    proc.stderr = "".join(said)
    return used.strip(), proc


def normalized(proc: subprocess.CompletedProcess[str]) -> tuple[int, object, str]:
    """Exit code, stdout (JSON without the fields that vary between two runs) and stderr
    (ids as ID)."""
    out: object = proc.stdout
    if proc.stdout.startswith("{"):
        out = {k: v for k, v in json.loads(proc.stdout).items() if k not in VARYING}
    return proc.returncode, out, re.sub(r"\b[0-9a-f]{8}\b", "ID", proc.stderr)


def left_behind(home: Path) -> tuple[list[str], list[str]]:
    """The records and the session files in the home (the spawner's own log aside)."""
    recs = [f"{r['id']} {r['status']}" for r in agentty_json("status")["sessions"]]
    files = [p.name for p in (home / "logs").iterdir() if not p.name.startswith("spawner")]
    return recs, files


@pytest.fixture
def spawner_on(monkeypatch: pytest.MonkeyPatch, agentty_home: Path) -> Path:
    from tests.helpers.spawner import ready_spawner

    monkeypatch.setenv("AGENTTY_SPAWNER", "1")
    rec = agentty_json("start", "--", "cat")  # none yet: it launches one
    ready_spawner(agentty_home)
    agentty("kill", "-s", rec["id"], check=True)
    agentty("gc", check=True)
    return agentty_home


def test_run_answers_as_the_full_path_and_leaves_nothing(spawner_on: Path, tmp_path: Path) -> None:
    script = tmp_path / "install.sh"
    script.write_text(INSTALLER)
    answers = ["--expect", "Name:", "--input", "Ada", "--expect", "Continue?", "--input", "y"]
    answers += ["--expect", "Password:", "--input", "s3cret"]
    forms = [  # (the first three cannot end before the lane reaches the worker: they read)
        ([*answers, "--", "bash", str(script)], "CODE=4"),
        (["--json", *answers, "--", "bash", str(script)], "CODE=4"),
        (["--input", "", "--", "sh", "-c", "read x; echo got [$x]"], "CODE=0"),  # an Enter
        (["--cols=30", "--rows", "5", "--cwd", str(tmp_path), "--", "pwd"], "CODE=0"),
        # It ends before the prompt: the rest is not typed, the exit is reported.
        (["--expect", "NEVER", "--input", "x", "--", "sh", "-c", "echo bye; exit 2"], "CODE=2"),
        (["--", "sh", "-c", "kill -TERM $$"], "CODE=143"),
    ]
    for i, (args, expected) in enumerate(forms):
        used, lane = run_lane(*args)
        assert used.startswith(expected), (args, used, lane.stderr)
        if i < 3:
            assert "LOADED= " in used + " ", used  # none of the full path's modules
        full = run(FULL, "run", *args)
        assert normalized(lane) == normalized(full), args
        assert left_behind(spawner_on) == ([], []), args
    assert "installed for Ada (y, 6 chars)" in run_lane(*forms[0][0])[1].stdout


def test_run_answers_a_menu_with_keys_as_the_full_path(spawner_on: Path, tmp_path: Path) -> None:
    menu = tmp_path / "menu.py"
    menu.write_text(MENU)
    program = ["--", sys.executable, str(menu)]
    forms = [
        ["--expect", "Banana", "--key", "Down Enter", *program],
        ["--json", "--expect", "Banana", "--key", "Down Enter", *program],
        ["--key", "Up", "--key", "x Enter", *program],  # each key answer waits for a read
        ["--text", "a b", "--key", "Enter", *program],  # typed as is, no Enter of its own
    ]
    for args in forms:
        used, lane = run_lane(*args)
        assert used.startswith("CODE=0"), (args, used, lane.stderr)
        assert "LOADED= " in used + " ", used  # none of the full path's modules
        full = run(FULL, "run", *args)
        assert normalized(lane) == normalized(full), args
        assert left_behind(spawner_on) == ([], []), args
    assert "GOT 1b 5b 42 0d" in run_lane(*forms[0])[1].stdout  # Down (ESC [ B), then Enter
    assert "GOT 1b 5b 41 78 0d" in run_lane(*forms[2])[1].stdout  # Up, then x and Enter
    assert "GOT 61 20 62 0d" in run_lane(*forms[3])[1].stdout  # a, space, b, then Enter


def test_run_types_text_without_enter_as_the_full_path(spawner_on: Path) -> None:
    """`--text` types into the line a program is reading; the `--input` after it ends the
    line (a canonical reader: both answers go to the same read)."""
    args = ["--text", "abc", "--input", "def", "--", "sh", "-c", 'read -r x; echo "got [$x]"']
    used, lane = run_lane(*args)
    assert used.startswith("CODE=0") and "LOADED= " in used + " ", (used, lane.stderr)
    assert "got [abcdef]" in lane.stdout
    full = run(FULL, "run", *args)
    assert normalized(lane) == normalized(full)
    empty = run(FULL, "run", "--text", "", "--", "cat")
    assert empty.returncode == 2 and "--text needs a text to type" in empty.stderr
    assert left_behind(spawner_on) == ([], [])


PASSWD = """\
import getpass, sys, time
first = getpass.getpass("Password: ")
time.sleep(0.3)  # some work (hashing, say) before it asks again, as passwd does
again = getpass.getpass("Password: ")
print("match" if first == again == "s3cret" else f"MISMATCH {first!r} {again!r}")
sys.exit(0 if first == again == "s3cret" else 1)
"""


def test_run_answers_a_prompt_asked_again_when_it_is_asked(
    spawner_on: Path, tmp_path: Path
) -> None:
    """The same prompt twice (passwd's "Password:" and its confirmation): the first one,
    still on screen, must not send the second answer before the program asks again (it
    would be typed while echo is on, in clear, then flushed by getpass: a hang)."""
    script = tmp_path / "passwd.py"
    script.write_text(PASSWD)
    answer = ["--expect", "Password:", "--input", "s3cret"]
    args = ["--timeout", "10", *answer, *answer, "--", sys.executable, str(script)]
    used, lane = run_lane(*args)
    assert used.startswith("CODE=0"), (used, lane.stdout, lane.stderr)
    assert "match" in lane.stdout and "s3cret" not in lane.stdout
    full = run(FULL, "run", *args)
    assert full.returncode == 0 and "match" in full.stdout, (full.stdout, full.stderr)
    assert normalized(lane) == normalized(full)
    assert left_behind(spawner_on) == ([], [])


def test_run_that_times_out_or_cannot_start_answers_as_the_full_path(spawner_on: Path) -> None:
    never = ["--expect", "NEVER", "--input", "x"]
    forms = [
        (["--timeout", "1", *never, "--", "sh", "-c", "echo w; sleep 30"], "CODE=3"),
        (["--timeout", "0.5", "--", "sleep", "30"], "CODE=3"),
        (["--", "no-such-program-xyz"], "CODE=127"),
        (["--timeout", "0.5", "--key", "Enter", "--", "sleep", "30"], "CODE=3"),  # never reads
    ]
    for args, expected in forms:
        used, lane = run_lane(*args)
        assert used.startswith(expected), (args, used, lane.stderr)
        full = run(FULL, "run", *args)
        assert normalized(lane) == normalized(full), args
    assert "run timed out after 1s waiting for --expect 'NEVER'" in run_lane(*forms[0][0])[1].stderr
    said = run_lane(*forms[3][0])[1].stderr
    assert "waiting for the program to read input (for --key #1)" in said
    # A timed-out run ends and removes its session; a program not found started none.
    assert left_behind(spawner_on) == ([], [])


def test_run_whose_program_ends_before_its_answers_says_so(spawner_on: Path) -> None:
    """The program ended while an answer waited for its prompt: `run` exited with the
    program's code and said nothing, as if every answer had been given."""
    ends = ["--", "sh", "-c", "echo hi; exit 7"]
    for args in (
        ["--expect", "NEVER", "--key", "Enter", *ends],
        ["--input", "x", "--input", "y", *ends],
    ):
        used, lane = run_lane(*args)
        assert used.startswith("CODE=7"), (args, used, lane.stderr)
        full = run(FULL, "run", *args)
        assert normalized(lane) == normalized(full), args
        assert lane.returncode == 7 and lane.stderr.count("\n") == 1, lane.stderr
        assert lane.stderr.startswith("agentty: warning: the program ended while run waited for")
        assert "2 answer(s) not given" in lane.stderr or "--expect 'NEVER'" in lane.stderr
        _, as_json = run_lane("--json", *args)
        assert json.loads(as_json.stdout)["unanswered"] == (1 if "NEVER" in args else 2)
    # All answered: no word of it, no field.
    _, done = run_lane("--json", "--input", "x", "--", "sh", "-c", "read a; echo got $a")
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    assert "unanswered" not in json.loads(done.stdout)
    assert left_behind(spawner_on) == ([], [])


def test_run_whose_program_cannot_be_executed_leaves_nothing(
    spawner_on: Path, tmp_path: Path
) -> None:
    """The program's exec fails in the worker (a `#!` naming no interpreter): the worker
    wrote the session's record before it knew; `run` removes it, as after any ending."""
    script = tmp_path / "badinterp"
    script.write_text("#!/no/such/interpreter\n")
    script.chmod(0o755)
    used, lane = run_lane("--", str(script))
    assert used.startswith("CODE=126"), (used, lane.stderr)
    full = run(FULL, "run", "--", str(script))
    assert normalized(lane) == normalized(full)
    assert "(see " not in lane.stderr  # its log went with it
    assert left_behind(spawner_on) == ([], [])


def test_run_whose_reader_went_away_still_removes_its_session(spawner_on: Path) -> None:
    """`agentty run ... | head -0`: the screen cannot be printed (a closed pipe), and the
    session is removed all the same, on the lane and on the full path."""
    program = "sleep .3; echo hello"
    for command in ([AGENTTY], FULL):
        argv = shlex.join([*command, "run", "--", "sh", "-c", program])
        proc = subprocess.run(
            ["sh", "-c", f"{argv} | true"], capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 0, proc.stderr  # (`true`'s)
        assert left_behind(spawner_on) == ([], []), command


def test_run_whose_reader_goes_away_mid_run_ends_its_program(spawner_on: Path) -> None:
    """stdout a pipe whose reader goes away while the program runs (an ssh channel closed
    by the caller's Ctrl-C: ssh passes no signal on): as a hung-up terminal, the program is
    ended and its session removed, not run to its end for nobody."""
    for command in ([AGENTTY], FULL):
        proc = subprocess.Popen(
            [*command, "run", "--", "sh", "-c", "echo started; sleep 60"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: agentty_json("status")["sessions"], timeout=20)
            assert proc.stdout is not None
            proc.stdout.close()  # the reader goes away
            assert proc.wait(timeout=20) == 129  # 128 + SIGHUP, as a run hung up
        finally:
            proc.kill()
            proc.wait()
        assert left_behind(spawner_on) == ([], []), command


IN_PROCESS_RUNS = """
import select, sys, time
from agentty_core.cli.main import main
for _ in range(2):
    assert main(["run", "--", "true"]) == 0
    sys.stdout.flush()
poller = select.poll()
poller.register(1, 0)
assert poller.poll(20_000), "the reader of stdout never went away"
time.sleep(0.5)  # what a leftover watch would need to send its SIGHUP (none may come)
print("still alive", file=sys.stderr)
"""


def test_run_s_reader_watch_ends_with_the_run(agentty_home: Path) -> None:
    """`run` called in a longer-lived process with stdout a pipe: its reader watch ends
    with the run; a reader that goes away later is none of its business (no SIGHUP)."""
    script = shlex.join([sys.executable, "-c", IN_PROCESS_RUNS])
    proc = subprocess.run(
        ["bash", "-c", f'{script} | (sleep 1); echo "status=${{PIPESTATUS[0]}}"'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "status=0" in proc.stdout and "still alive" in proc.stderr, (proc.stdout, proc.stderr)


def test_other_run_forms_and_a_cold_home_go_the_full_way(
    monkeypatch: pytest.MonkeyPatch, agentty_home: Path
) -> None:
    monkeypatch.setenv("AGENTTY_SPAWNER", "1")
    used, proc = run_lane("--", "true")  # no spawner yet: the full path (which launches it)
    assert used == "CODE=None->0", proc.stderr
    from tests.helpers.spawner import ready_spawner

    ready_spawner(agentty_home)
    used, proc = run_lane("--timeout", "1e2", "--", "true")  # argparse's reading
    assert used == "CODE=None->0", proc.stderr
    used, proc = run_lane("--timeout", "100", "--", "true")
    assert used.startswith("CODE=0"), proc.stderr
    assert left_behind(agentty_home) == ([], [])


def test_the_worker_forgets_its_session_only_once_it_has_ended(agentty_home: Path) -> None:
    """`forget` (what the lane asks at the end) is refused while the program runs: the
    record and the log stay."""
    rec = agentty_json("start", "--", "cat")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(rec["socket"])
        sock.sendall(b'{"v": 1, "method": "forget", "params": {}}\n')
        reply = json.loads(sock.makefile().readline())
    assert reply["ok"] is False and reply["error"]["code"] == "running", reply
    assert left_behind(agentty_home) == ([f"{rec['id']} running"], [f"{rec['id']}.log"])
    agentty("kill", check=True)


def ask(path: str, method: str, params: dict[str, object]) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(json.dumps({"v": 1, "method": method, "params": params}).encode() + b"\n")
        reply: dict[str, object] = json.loads(sock.makefile().readline())
    return reply


def test_a_wait_for_the_exit_can_remove_the_session_at_its_end(agentty_home: Path) -> None:
    """What the lane asks last: the session is removed instead of its exit recorded (one
    locked write where there were two), and the answer has the final screen and says so."""
    rec = agentty_json("start", "--", "sh", "-c", "sleep 0.3; echo done; exit 3")
    reply = ask(rec["socket"], "wait", {"exit": True, "forget": True, "timeout": 10})
    assert reply["ok"] is True, reply
    result = reply["result"]
    assert isinstance(result, dict)
    assert result["fired"] == "exit" and result["forgotten"] is True
    assert result["exitCode"] == 3 and "done" in result["lines"]
    assert left_behind(agentty_home) == ([], [])
    assert (
        not (agentty_home / "active").exists()
        or rec["id"] not in (agentty_home / "active").read_text()
    )


def test_a_wait_that_forgets_takes_the_exit_alone(agentty_home: Path) -> None:
    rec = agentty_json("start", "--", "cat")
    reply = ask(rec["socket"], "wait", {"exit": True, "text": "x", "forget": True, "timeout": 1})
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == "bad_request", reply  # type: ignore[index]
    agentty("kill", check=True)


def test_a_held_lock_at_the_end_records_the_exit_as_before(agentty_home: Path) -> None:
    """The worker only tries the lock for the removal: held, the exit is recorded once it
    is free (as always), the answer (given once the final screen is saved) does not say
    forgotten, and the caller removes it."""
    from tests.reliability.conftest import raw_records, state_lock

    rec = agentty_json("start", "--", "sh", "-c", "sleep 0.3; exit 3")
    with state_lock(agentty_home):
        reply = ask(rec["socket"], "wait", {"exit": True, "forget": True, "timeout": 10})
        (stored,) = raw_records(agentty_home)
        assert stored["status"] == "running"  # the exit is recorded once the lock is free
    assert reply["ok"] is True, reply
    result = reply["result"]
    assert isinstance(result, dict) and "forgotten" not in result and result["exitCode"] == 3
    (found,) = agentty_json("status")["sessions"]
    assert found["id"] == rec["id"] and found["status"] == "exited"


def state_writes(home: Path) -> Iterator[list[str]]:
    """The names renamed into the home while the block runs (inotify: each state write is
    a rename of its temporary file)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    assert fd >= 0
    names: list[str] = []
    try:
        # IN_MOVED_TO, and IN_CREATE in between (the same event twice in a row is merged)
        assert libc.inotify_add_watch(fd, str(home).encode(), 0x80 | 0x100) >= 0
        yield names
        data = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(fd, 65536):
                data += chunk
        while data:  # struct inotify_event: wd, mask, cookie, len, name
            length = int.from_bytes(data[12:16], sys.byteorder)
            names.append(data[16 : 16 + length].rstrip(b"\0").decode())
            data = data[16 + length :]
    finally:
        os.close(fd)


def test_the_lanes_run_writes_the_state_three_times(spawner_on: Path) -> None:
    """The intent, the running record, and at the end the removal: no exit record first
    (for a program that ends after the lane's last wait reached its worker)."""
    with contextlib.contextmanager(state_writes)(spawner_on) as names:
        used, proc = run_lane("--", "sh", "-c", "sleep 0.3")
    assert used.startswith("CODE=0"), (used, proc.stderr)
    assert names.count("sessions.json") == 3, names
    assert left_behind(spawner_on) == ([], [])


def test_run_json_on_a_timeout_and_an_empty_expect(spawner_on: Path) -> None:
    args = ["--json", "--timeout", "0.5", "--", "sh", "-c", "echo said-hi; sleep 30"]
    used, lane = run_lane(*args)
    assert used.startswith("CODE=3"), (used, lane.stderr)
    answer = json.loads(lane.stdout)  # as `wait --json` says a timeout: JSON, not the screen
    assert answer["timeout"] is True and answer["fired"] is None
    assert "said-hi" in answer["lines"]
    full = run(FULL, "run", *args)
    for proc in (lane, full):  # the program's pid and input state vary between two runs
        proc.stdout = json.dumps({k: v for k, v in json.loads(proc.stdout).items() if k != "input"})
    assert normalized(lane) == normalized(full)
    for args in (
        ["--expect", "", "--input", "x", "--", "true"],
        ["--timeout", "3", "--expect", "", "--input", "x", "--", "sh", "-c", "read a"],
    ):
        used, lane = run_lane(*args)
        assert (lane.returncode, lane.stderr) == (
            2,
            "agentty: error: --expect needs a text to wait for (it was empty)\n",
        ), (args, used)
    assert left_behind(spawner_on) == ([], [])  # refused before anything ran


def test_run_keeps_the_program_s_exit_code_when_its_session_cannot_be_removed(
    spawner_on: Path,
) -> None:
    """The state lock held past every timeout at the program's end (by another process):
    `run` still exits with the program's code, says in one line that the ended session was
    left, and `gc` removes it once the lock is free."""
    import threading

    from tests.reliability.conftest import state_lock

    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with state_lock(spawner_on):
            locked.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUN_LANE_CHECK,
            "run",
            "--",
            "sh",
            "-c",
            "sleep 1; echo bye; exit 5",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Started (its record written): then the lock is taken for good.
        wait_until(lambda: agentty_json("status")["sessions"], timeout=10)
        holder.start()
        assert locked.wait(10)
        out, err = proc.communicate(timeout=60)  # the worker's 5 s, then `gc`'s 10 s
    finally:
        release.set()
        holder.join()
    *said, used = err.splitlines()
    assert used.startswith("CODE=5"), err
    assert proc.returncode == 5
    assert "bye" in out
    assert len(said) == 1 and "ended but could not be removed: timed out after 10s" in said[0]
    agentty("gc", check=True)
    assert left_behind(spawner_on) == ([], [])


def test_run_with_stdout_closed_exits_with_the_program_s_code(spawner_on: Path) -> None:
    for command in ([AGENTTY], FULL):
        argv = shlex.join([*command, "run", "--", "sh", "-c", "exit 3"])
        proc = subprocess.run(["sh", "-c", f"{argv} >&-"], capture_output=True, text=True)
        assert (proc.returncode, proc.stderr) == (3, ""), command
        assert left_behind(spawner_on) == ([], []), command


@pytest.mark.parametrize("delay", ["", "sleep 0.5; "])
def test_run_json_has_the_same_fields_whatever_the_timing(delay: str) -> None:
    """A program that ended at once had `input` in `run --json` (the final screen's file),
    one that lived longer did not (the worker's answer)."""
    proc = agentty("run", "--json", "--", "sh", "-c", f"{delay}echo x; exit 3")
    assert proc.returncode == 3
    assert "input" not in json.loads(proc.stdout)


def test_run_json_s_elapsed_ms_is_the_whole_run_s() -> None:
    """It was the last wait's, the exit's (1.9 ms of a run that took 196: an outside
    round)."""
    for command in ([AGENTTY], FULL):
        script = "sleep 0.3; echo name?; read n; echo done"
        proc = run(
            command, "run", "--json", "--expect", "name?", "--input", "x", "--", "sh", "-c", script
        )
        said = json.loads(proc.stdout)
        assert proc.returncode == 0 and "done" in said["lines"], (command, proc.stderr)
        assert said["elapsed_ms"] >= 300 and "match" not in said, (command, said)

"""Start failures, argv modes and the CLI's hot path."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.cli import AGENTTY, agentty, agentty_json


def _no_running_sessions() -> None:
    status = agentty_json("status")
    assert all(s["status"] not in ("running", "starting") for s in status["sessions"])


def test_program_not_found_exits_127() -> None:
    proc = agentty("start", "--", "no-such-program-xyz")
    assert proc.returncode == 127
    assert proc.stderr.strip() == "agentty: error: command not found: no-such-program-xyz"
    _no_running_sessions()


def test_not_executable_exits_126(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")
    proc = agentty("start", "--", str(script))
    assert proc.returncode == 126 and "permission denied" in proc.stderr
    proc = agentty("start", "--", str(tmp_path))
    assert proc.returncode == 126 and "is a directory" in proc.stderr
    _no_running_sessions()


def test_bad_interpreter_exits_126(tmp_path: Path) -> None:
    script = tmp_path / "bad.sh"
    script.write_text("#!/nonexistent/interpreter\necho hi\n")
    script.chmod(0o755)
    proc = agentty("start", "--", str(script))
    assert proc.returncode == 126 and "bad interpreter" in proc.stderr and ".log" in proc.stderr
    _no_running_sessions()


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_bad_cwd_is_refused_before_anything_starts(tmp_path: Path, kind: str) -> None:
    cwd = tmp_path / "nope"
    if kind == "file":
        cwd.write_text("")
    proc = agentty("start", "--cwd", str(cwd), "--", "sleep", "10")
    assert proc.returncode == 1
    assert ("does not exist" if kind == "missing" else "not a directory") in proc.stderr
    assert agentty_json("status")["sessions"] == []


def test_usage_errors_are_one_line_with_exit_2() -> None:
    out_of_range = (["wait", "--exit", "--timeout", "1e9\n"], ["get", "--lines", " 99999999\n"])
    for args in (
        ["start"],
        ["key", "Nope"],
        ["get", "--lines", "abc"],
        ["wait"],
        ["bogus"],
        *out_of_range,
    ):
        proc = agentty(*args)
        assert proc.returncode == 2, args
        assert proc.stderr.startswith("agentty: error: "), proc.stderr
        assert proc.stderr.count("\n") == 1, proc.stderr


def test_no_active_session() -> None:
    proc = agentty("get")
    assert proc.returncode == 2 and "no active session" in proc.stderr


def test_an_empty_session_ref_is_named_as_such() -> None:
    proc = agentty("get", "-s", "")
    assert (proc.returncode, proc.stderr) == (2, "agentty: error: no such session: ''\n")


def test_duplicate_name_is_refused(agentty_home: Path) -> None:
    """The worker is started before the intent record is written (it imports meanwhile):
    a refused record takes that worker and its log away again (the shared fixture fails the
    test on any process left behind)."""
    agentty("start", "--name", "dup", "--", "sleep", "30", check=True)
    proc = agentty("start", "--name", "dup", "--", "sleep", "30")
    assert proc.returncode == 2 and "already named 'dup'" in proc.stderr
    assert len(list((agentty_home / "logs").iterdir())) == 1
    assert len(agentty_json("status")["sessions"]) == 1
    agentty("kill", "--session", "dup", check=True)


def test_a_name_that_is_another_session_s_id_is_refused() -> None:
    """`--session X` tries ids first: a session named after another's id could never be
    reached by its name (and `kill -s X` would end the other one)."""
    first = agentty_json("start", "--", "sleep", "30")["id"]
    proc = agentty("start", "--name", first, "--", "sleep", "30")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"agentty: error: '{first}' is the id of another session; choose a name\n"
    assert [s["id"] for s in agentty_json("status")["sessions"]] == [first]
    agentty("kill", "--session", first, check=True)


def test_unknown_key_sends_nothing() -> None:
    agentty("start", "--", "cat", check=True)
    seq = agentty_json("get")["seq"]
    proc = agentty("key", "a", "Nope")
    assert proc.returncode == 2 and "unknown key 'Nope'" in proc.stderr
    assert agentty_json("get")["seq"] == seq
    agentty("kill", check=True)


def test_shell_mode_is_an_explicit_opt_in() -> None:
    agentty("start", "--shell", "echo $((6*7)); sleep 30", check=True)
    assert "42" in agentty("wait", "--text", "42", check=True).stdout
    agentty("kill", check=True)


def test_environment_and_size() -> None:
    agentty(
        "start",
        "--cols",
        "100",
        "--rows",
        "30",
        "--env",
        "GREETING=hi there",
        "--",
        "sh",
        "-c",
        'echo "$GREETING|$TERM|$AGENTTY_SESSION_ID|$(stty size)"; sleep 30',
        check=True,
    )
    screen = agentty_json("wait", "--text", "|")
    sid = agentty_json("status")["active"]
    assert screen["lines"][0] == f"hi there|xterm-256color|{sid}|30 100"
    assert screen["size"] == {"cols": 100, "rows": 30}
    agentty("kill", check=True)


def test_start_returns_when_the_caller_captures_output() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("agentty")), "start", "--", "sleep", "100"],
        capture_output=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0
    agentty("kill", check=True)


def test_start_leaves_the_callers_other_descriptors_alone() -> None:
    """The worker starts before the command knows its session (see worker_spawn); a pipe
    the caller passed down must still close when the command exits, not when the session
    ends, or `$(agentty start ...)`-style callers would wait forever."""
    read_end, write_end = os.pipe()
    try:
        proc = agentty("start", "--", "sleep", "100", timeout=20, pass_fds=(write_end,))
        os.close(write_end)
        write_end = -1
        assert proc.returncode == 0, proc.stderr
        readable, _, _ = select.select([read_end], [], [], 10)
        assert readable and os.read(read_end, 1) == b""  # EOF: nobody else holds it
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    agentty("kill", check=True)


def test_a_start_refused_after_its_worker_started_leaves_nothing(agentty_home: Path) -> None:
    """The command starts the worker first; refused later (here a bad option), it hands
    that worker no session, and the worker exits on its own without a record or a log."""
    from tests.helpers.census import describe, processes_of_home

    proc = agentty("start", "--cols", "nope", "--", "cat")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    deadline = time.monotonic() + 5
    while (left := processes_of_home(str(agentty_home))) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left, describe(left)
    assert agentty_json("status")["sessions"] == []
    assert not (agentty_home / "logs").exists() or not list((agentty_home / "logs").iterdir())


def _from_shell(script: str) -> subprocess.CompletedProcess[str]:
    """`sh -c SCRIPT`, for a caller whose stdio or umask the shell sets up."""
    return subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, timeout=20, env=os.environ.copy()
    )


def test_start_with_the_callers_stdio_closed() -> None:
    """A pipe created with stdin closed lands on fd 0; the worker still gets its spec."""
    proc = _from_shell(f"exec {AGENTTY} start -- cat <&- >&-")
    assert proc.returncode == 0, proc.stderr
    assert agentty_json("get")["exited"] is False
    agentty("kill", check=True)


def test_modules_in_the_working_directory_do_not_shadow_the_workers(tmp_path: Path) -> None:
    """`start` runs in the agent's project directory; a `logging.py` there (or anything
    named like a module the worker imports) must not be imported by the worker."""
    (tmp_path / "logging.py").write_text("raise SystemExit('the project logging.py ran')\n")
    (tmp_path / "pyte").mkdir()
    (tmp_path / "pyte" / "__init__.py").write_text("raise SystemExit('the project pyte ran')\n")
    proc = agentty("start", "--", "cat", timeout=20, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert agentty_json("get")["exited"] is False
    agentty("kill", check=True)


def test_the_program_gets_the_umask_start_ran_with() -> None:
    """The worker keeps its own files private (umask 077); the program must not inherit
    that, or everything it creates (a build, a pip install) would be unreadable to others."""
    proc = _from_shell(f"umask 027; exec {AGENTTY} start -- sh -c 'umask; exec cat'")
    assert proc.returncode == 0, proc.stderr
    assert agentty_json("wait", "--text", "0027", "--timeout", "10")["fired"] == "text"
    agentty("kill", check=True)


def test_a_worker_that_cannot_import_says_why(tmp_path: Path) -> None:
    """An early worker's output goes nowhere until it knows its log: a failure before that
    (a broken installation, here a pyte that cannot be imported) comes back on the status
    pipe as one line."""
    fake = tmp_path / "pyte"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('pyte is broken here')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = agentty("start", "--", "cat", timeout=20, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "the worker cannot start: ImportError: pyte is broken here" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert all(s["status"] == "failed" for s in agentty_json("status")["sessions"])


def test_library_starts_from_several_threads_leave_the_hosts_descriptors_alone() -> None:
    """Threads of one host (the dashboard, the MCP server) start sessions at once; none
    fails, and a descriptor the host lets its children inherit stays inheritable and is
    held by no worker."""
    from concurrent.futures import ThreadPoolExecutor

    from agentty_core.client import Client

    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        with Client() as client, ThreadPoolExecutor(6) as pool:
            started = list(pool.map(lambda _: client.start(["cat"]), range(6)))
            assert os.get_inheritable(write_end)
            os.close(write_end)
            write_end = -1
            readable, _, _ = select.select([read_end], [], [], 10)
            assert readable and os.read(read_end, 1) == b""
            for rec in started:
                client.kill(str(rec["id"]))
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


HOT_PATH_CHECK = """
import sys
from agentty_core.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({m.split('.')[0] for m in sys.modules} & {
    'textual', 'rich', 'pyte', 'psutil', 'filelock', 'ptyprocess', 'agentty_ui', 'asyncio'})
print('HEAVY=' + ','.join(heavy), file=sys.stderr)
print('ARGPARSE=' + str('argparse' in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args", [["get"], ["text", "x"], ["key", "Enter"], ["wait", "--text", "$", "--timeout", "5"]]
)
def test_hot_path_imports_only_the_standard_library(args: list[str]) -> None:
    agentty("start", "--", "sh", "-c", "echo $; sleep 30", check=True)
    proc = subprocess.run(
        [sys.executable, "-c", HOT_PATH_CHECK, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ.copy(),
    )
    heavy, uses_argparse = proc.stderr.strip().splitlines()[-2:]
    assert heavy == "HEAVY=", proc.stderr
    # The plain forms of get/text/key/wait skip argparse entirely (cli/fast.py).
    assert uses_argparse == "ARGPARSE=False", proc.stderr
    agentty("kill", check=True)


FULL_PATH_CHECK = """
import sys
from agentty_core.cli.hotpath import main
code = main(sys.argv[1:])
slow = sorted(set(sys.modules) & {
    'logging', 'dataclasses', 'inspect', 'typing', 'secrets', 'hashlib', 'shutil', 'tempfile'})
print('SLOW=' + ','.join(slow), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--expect", "Name:", "--input", "Ada", "--", "sh", "-c", "read -p Name: n"],
        ["start", "--name", "full", "--", "sleep", "30"],
    ],
    ids=["run", "start"],
)
def test_full_path_start_leaves_slow_imports_alone(args: list[str]) -> None:
    # On this path every import is paid by the command: these modules alone once cost `run`
    # a third of its time (logging, dataclasses' inspect, secrets' hashlib, shutil ...).
    env = {**os.environ, "AGENTTY_SPAWNER": "0"}  # `start` the full way, not the lane
    proc = subprocess.run(
        [sys.executable, "-c", FULL_PATH_CHECK, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "SLOW=", proc.stderr
    if args[0] == "start":
        agentty("kill", check=True)


def test_help_json_lists_every_command() -> None:
    schema = json.loads(agentty("help", "--json", check=True).stdout)
    names = {c["name"] for c in schema["commands"]}
    assert {
        "help",
        "status",
        "start",
        "attach",
        "get",
        "text",
        "key",
        "wait",
        "kill",
        "logs",
    } <= names
    start = next(c for c in schema["commands"] if c["name"] == "start")
    assert {"--name", "--cwd", "--cols", "--rows", "--env", "--shell"} <= {
        n for o in start["options"] for n in o["names"]
    }
    assert "Ctrl+C" in schema["keys"] and schema["exitCodes"]["3"]


def test_help_json_for_one_command_and_for_none() -> None:
    """`help --json start` is the schema with that command alone; a name that is no command
    is refused in one line, exit 2, as `help NAME` refuses it (it printed every command)."""
    schema = json.loads(agentty("help", "--json", "start", check=True).stdout)
    assert [c["name"] for c in schema["commands"]] == ["start"] and schema["exitCodes"]
    for words in (["help", "--json", "nosuchcmd"], ["help", "nosuchcmd"]):
        proc = agentty(*words)
        assert proc.returncode == 2 and proc.stdout == "", words
        assert proc.stderr == "agentty: error: no such command: nosuchcmd\n", words


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["status", "-q", "--json"], "--quiet cannot be combined with --json"),
        (["get", "--png", "-", "--json"], "--png - cannot be combined with --json"),
    ],
)
def test_options_one_of_which_would_be_ignored_are_refused(words: list[str], message: str) -> None:
    """Each printed the other's output as if `--json` had not been given (exit 0)."""
    start_cat = agentty("start", "--", "cat", check=True)
    proc = agentty(*words)
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert proc.stderr.startswith(f"agentty: error: {message}") and proc.stderr.count("\n") == 1
    agentty("kill", "--session", start_cat.stdout.strip(), check=True)


def test_gc_keeps_lost_sessions_whose_processes_still_run() -> None:
    import signal
    import time

    rec = agentty_json("start", "--", "sh", "-c", "trap '' HUP; sleep 1000 & wait")
    agentty("wait", "--input", "--stable", "100", check=True)
    os.kill(int(rec["workerPid"]), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while agentty_json("status")["sessions"][0]["status"] != "lost":
        assert time.monotonic() < deadline
    gc = agentty_json("gc")
    assert gc == {"removed": [], "keptWithOrphans": [rec["id"]]}
    orphans = agentty_json("orphans")["orphans"]
    assert orphans and {o["session"] for o in orphans} == {rec["id"]}
    agentty("orphans", "--kill", check=True)
    assert agentty_json("gc") == {"removed": [rec["id"]], "keptWithOrphans": []}
    assert agentty_json("status")["sessions"] == []


def test_gc_of_one_session_removes_it_alone_and_never_a_running_one() -> None:
    ended = agentty_json("start", "--name", "done", "--", "true")
    other = agentty_json("start", "--", "true")
    running = agentty_json("start", "--name", "on", "--", "sleep", "1000")
    for sid in (ended["id"], other["id"]):
        agentty("wait", "--exit", "-s", sid, check=True)
    refused = agentty("gc", "-s", "on")
    assert refused.returncode == 1
    assert refused.stderr == (
        f"agentty: error: session {running['id']} is running: "
        f"end it first (agentty kill -s {running['id']})\n"
    )
    assert agentty_json("gc", "--session", "done") == {
        "removed": [ended["id"]],
        "keptWithOrphans": [],
    }
    listed = {rec["id"] for rec in agentty_json("status")["sessions"]}
    assert listed == {other["id"], running["id"]}
    assert agentty("gc", "-s", "done").returncode == 2  # no such session now
    both = agentty("gc", "-s", other["id"], "--older-than", "5")
    assert both.returncode == 2 and "not with --older-than" in both.stderr
    agentty("kill", "-s", "on", check=True)


def test_a_bad_input_is_a_usage_error_whether_or_not_the_session_runs() -> None:
    """What is wrong with the input is said first (exit 2), as on a running session, not
    that the session ended (exit 1)."""
    sid = agentty_json("start", "--", "true")["id"]
    agentty("wait", "--exit", "-s", sid, check=True)
    for args, said in (
        (["signal", "BOGUS"], "unknown signal 'BOGUS'"),
        (["resize", "--cols", "0", "--rows", "5"], "cols must be an integer in 2..1000"),
    ):
        proc = agentty(*args, "-s", sid)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith(f"agentty: error: {said}") and proc.stderr.count("\n") == 1
    ended = agentty("signal", "INT", "-s", sid)
    assert ended.returncode == 1 and "exited" in ended.stderr


def test_start_with_an_inherited_descriptor_above_the_open_file_limit() -> None:
    """A descriptor at or above the soft limit cannot be named in posix_spawn's file
    actions: the start failed ("Bad file descriptor") with a failed record left behind."""
    script = f"exec 300</dev/null; ulimit -n 256; exec {AGENTTY} start -- cat"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert agentty_json("get")["exited"] is False
    agentty("kill", check=True)

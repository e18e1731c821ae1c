"""The fast lane of the agent commands (hotpath.py -> lane.py) does exactly what the full path
does (stdout, stderr and exit code, byte for byte), without importing json, re, pathlib,
socket or argparse, and hands everything else over untouched."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agentty_core.proc import identity
from tests.helpers.cli import AGENTTY, agentty, agentty_json, wait_until

FULL = [
    sys.executable,
    "-c",
    "import sys; from agentty_core.cli.main import main; sys.exit(main())",
]

LANE_CHECK = """
import sys
from agentty_core.cli.hotpath import fast_lane
code = fast_lane(sys.argv[1:])
loaded = sorted({'json', 're', 'pathlib', 'socket', 'argparse'} & set(sys.modules))
print(f'CODE={code} LOADED={",".join(loaded)}', file=sys.stderr)
"""


def run(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
    )


def lane(*args: str) -> str:
    proc = run([sys.executable, "-c", LANE_CHECK], *args)
    return proc.stderr.strip().splitlines()[-1]


def test_get_text_and_key_answer_as_the_full_path_does() -> None:
    agentty_json("start", "--", "sh", "-c", "printf 'one  \\n\\ntwo\\n'; exec cat")
    agentty("wait", "--text", "two", check=True)
    fast, full = run([AGENTTY], "get"), run(FULL, "get")
    assert fast.returncode == full.returncode == 0
    assert fast.stdout == full.stdout == "one\n\ntwo\n"
    typed = run([AGENTTY], "text", "héllo", "wörld")
    assert (typed.returncode, typed.stdout, typed.stderr) == (0, "", "")
    pressed = run([AGENTTY], "key", "Enter")
    assert (pressed.returncode, pressed.stdout, pressed.stderr) == (0, "", "")
    agentty("wait", "--text", "héllo wörld", check=True)
    screen = agentty_json("wait", "--stable", "300", "--timeout", "10")
    # The tty's echo, then cat's copy: sent once, not twice.
    assert sum("héllo wörld" in line for line in screen["lines"]) == 2, screen["lines"]
    agentty("kill", check=True)


def test_the_lane_serves_without_the_heavy_standard_modules() -> None:
    agentty_json("start", "--", "sh", "-c", "echo ready; exec cat")
    agentty("wait", "--text", "ready", check=True)
    assert lane("get") == "CODE=0 LOADED="
    assert lane("key", "Escape") == "CODE=0 LOADED="
    sid = agentty_json("status")["active"]
    assert lane("get", "--session", sid) == "CODE=0 LOADED="
    assert lane("text", "-s", sid, "x") == "CODE=0 LOADED="
    assert lane("send", "-s", sid, "i", "a line", "Esc", ":wq", "Enter") == "CODE=0 LOADED="
    assert lane("get", f"--session={sid}") == "CODE=0 LOADED="
    agentty("kill", check=True)


@pytest.mark.parametrize(
    "args",
    [
        ["get", "-s", "x"],  # no such name
        ["get", "-s", "0123abc"],  # no such prefix
        ["text", "x", "-s", "0123abcd"],
        ["get", "extra"],
        ["get", "--raw"],
        ["text", "-"],
        ["text", "--file", "f"],
        ["paste", "-"],
        ["key"],
        ["wait", "--stable", "0"],
        ["wait", "--scrollback"],
        ["status", "--bogus"],
        [],
    ],
)
def test_other_forms_are_left_to_the_full_path(args: list[str]) -> None:
    agentty_json("start", "--", "cat")
    assert lane(*args).startswith("CODE=None")
    agentty("kill", check=True)


def test_refusals_and_ended_sessions_read_as_the_full_path_says() -> None:
    assert lane("get").startswith("CODE=None")  # no session at all
    assert run([AGENTTY], "get").stderr == run(FULL, "get").stderr != ""
    agentty_json("start", "--", "sh", "-c", "echo bye; sleep 30")
    agentty("wait", "--text", "bye", check=True)
    for args in (["key", "NoSuchKey"], ["get"]):
        fast, full = run([AGENTTY], *args), run(FULL, *args)
        assert (fast.returncode, fast.stdout, fast.stderr) == (
            full.returncode,
            full.stdout,
            full.stderr,
        )
    assert run([AGENTTY], "key", "NoSuchKey").returncode == 2
    agentty("kill", check=True)
    fast, full = run([AGENTTY], "get"), run(FULL, "get")  # the final screen, from the file
    assert (fast.returncode, fast.stdout) == (full.returncode, full.stdout) == (0, "bye\n")
    assert lane("text", "x").startswith("CODE=None")  # no socket: the full path says why


def same(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `args` through the installed command (the lane) and the full path: byte-identical
    stdout, stderr and exit code. Only for requests that change nothing."""
    fast, full = run([AGENTTY], *args), run(FULL, *args)
    timed = re.compile(r'"elapsed_ms": [0-9.]+')  # how long a wait took: its own each time
    assert (fast.returncode, timed.sub("T", fast.stdout), fast.stderr) == (
        full.returncode,
        timed.sub("T", full.stdout),
        full.stderr,
    ), args
    return fast


def test_reading_forms_by_name_prefix_and_json_answer_as_the_full_path() -> None:
    sid = agentty_json(
        "start",
        "--name",
        "py",
        "--",
        "sh",
        "-c",
        "printf 'a\\033[1mb\\033[m  \\n\\303\\251\\n'; exec cat",
    )["id"]
    agentty("wait", "--text", "é", check=True)
    forms = [
        ["get", "--json"],
        ["get", "-s", "py"],
        ["get", "--session", sid[:3], "--json"],
        ["get", "--lines", "1"],
        ["get", "--scrollback", "--json"],
        ["get", "--ansi", "-s", "py"],
        ["wait", "--text", "é"],
        ["wait", "--regex", "^a.?b$", "--json", "-s", "py"],
        ["wait", "--gone", "nothing here", "--session", sid],
        ["wait", "--text", "not there", "--timeout", "0.2"],
        ["wait", "--text", "not there", "--timeout", "0.2", "--json"],
        ["wait", "--regex", "(", "--timeout", "1"],  # the worker's clear error
        ["get", "-s", "nosuch"],
        ["get", "-s", "py", "--raw"],
    ]
    for args in forms:
        assert lane(*args).startswith(
            "CODE=None" if "nosuch" in args or "--raw" in args or "(" in args else "CODE="
        ), args
        same(args)
    for args in (["get", "--json"], ["get", "-s", "py"], ["wait", "--text", "é", "-s", sid[:2]]):
        assert lane(*args) == "CODE=0 LOADED=", args
    agentty("kill", check=True)


def test_ended_sessions_are_read_on_the_lane_as_the_full_path_reads_them() -> None:
    """`wait --exit` and `get` once the program is done (an agent's last calls on a task):
    the final screen and the record, without the full path's imports."""
    sid = agentty_json(
        "start", "--name", "done", "--", "sh", "-c", "printf 'a\\033[1mb\\033[m \\n\\303\\251\\n'"
    )["id"]  # fmt: skip
    agentty("wait", "--exit", check=True)
    killed = agentty_json("start", "--name", "killed", "--", "sh", "-c", "echo up; exec cat")["id"]
    agentty("wait", "--text", "up", check=True)
    agentty("kill", check=True)
    served = [
        ["get"],  # the active session: the killed one
        ["wait", "--exit"],
        ["get", "-s", "done"],
        ["get", "--session", sid[:3], "--json"],
        ["get", "-s", sid, "--lines", "1"],
        ["get", "-s", "done", "--scrollback", "--json"],
        ["get", "-s", "done", "--ansi"],
        ["wait", "--exit", "-s", "done"],
        ["wait", "--exit", "--json", "-s", "done"],
        ["wait", "--text", "é", "-s", "done"],
        ["wait", "--gone", "nothing here", "--json", "-s", "done"],
        ["wait", "--text", "a", "--after", "1", "--exit", "-s", "done"],  # (exit: regardless)
        ["wait", "--exit", "--json", "-s", killed],
        # Every condition a still screen can meet: it meets it at once.
        ["wait", "--changed-since", "0", "--json", "-s", "done"],
        ["wait", "--stable", "500", "-s", "done"],
    ]
    for args in served:
        assert lane(*args) == "CODE=0 LOADED=", args
        same(args)
    assert lane("wait", "--regex", "^é$", "--json", "-s", "done") == "CODE=0 LOADED=re"
    same(["wait", "--regex", "^é$", "--json", "-s", "done"])
    assert agentty_json("wait", "--regex", "^é$", "-s", "done")["fired"] == "regex"
    for args in (
        ["wait", "--text", "not there", "-s", "done"],  # cannot fire: the full path's error
        ["wait", "--regex", "^b", "-s", "done"],
        ["wait", "--regex", "(", "-s", "done"],  # the full path says what is wrong with it
        ["wait", "--changed-since", "999999", "-s", "done"],
        ["wait", "--text", "a", "--after", "999", "--exit", "-s", "done"],  # no seq it had
        ["wait", "--input", "-s", "done"],
        ["get", "-s", "done", "--raw"],
        ["get", "-s", "nosuch"],
    ):
        assert lane(*args).startswith("CODE=None"), args
        same(args)
    os.unlink(agentty_json("status")["home"] + f"/logs/{sid}.final.json")
    assert lane("get", "-s", "done").startswith("CODE=None")  # no final screen: it says so
    same(["get", "-s", "done"])


def test_acting_forms_answer_as_the_full_path() -> None:
    """text, paste, key, send and kill change the session: each path acts on a session of
    its own, started alike, and their outputs (and what the program got) are compared with
    the ids written alike."""
    outs: list[list[tuple[int, str, str]]] = []
    for path in ([AGENTTY], FULL):
        sid = agentty_json("start", "--name", "n" + str(len(outs)), "--", "cat")["id"]
        agentty("wait", "--stable", "100", "--timeout", "10", check=True)
        results = [
            run(path, *args)
            for args in (
                ["text", "--json", "-s", sid[:5], "hé"],
                ["text", "--enter", "-s", sid, "x"],
                ["text"],
                ["paste", "--json", "p"],
                ["key", "--json", "-s", "n" + str(len(outs)), "Enter"],
                ["key", "NoSuchKey"],
                ["send", "--json", "-s", sid, "i", "a line", "Esc", ":wq", "Enter"],
                ["send", "--enter", "C-a", "6*7"],
                ["send", "--literal", "Enter"],
                ["send", "Ctrl+Banana", "x"],
                ["wait", "--stable", "200", "--timeout", "10"],
                ["kill", "--json", "-s", sid[:6]],
                ["kill", "-s", sid],
            )
        ]
        seq = re.compile(r'"seq": [0-9]+')  # screen changes so far: echo timing varies
        outs.append(
            [
                (
                    r.returncode,
                    seq.sub("S", r.stdout.replace(sid, "ID")),
                    r.stderr.replace(sid, "ID"),
                )
                for r in results
            ]
        )
    assert outs[0] == outs[1]


def test_a_send_too_long_for_one_request_sends_nothing() -> None:
    # Its text (1.2 MB, over the protocol's line limit) would be refused by the worker after
    # the key before it was pressed: every step is measured first, on both paths.
    big = ["x" * 100_000] * 12
    outs = []
    for path in ([AGENTTY], FULL):
        sid = agentty_json("start", "--", "cat", "-v")["id"]
        agentty("wait", "--stable", "100", "--timeout", "10", check=True)
        sent = run(path, "send", "C-a", *big)
        outs.append((sent.returncode, sent.stdout, sent.stderr.replace(sid, "ID")))
        agentty("key", "C-b", check=True)
        screen = agentty_json("wait", "--text", "^B", "--timeout", "10")
        assert not any("^A" in line for line in screen["lines"]), screen["lines"]
        agentty("kill", check=True)
    assert outs[0] == outs[1] and outs[0][0] == 2, outs
    assert "`text` sends any length" in outs[0][2], outs


def test_kill_over_the_lane_confirms_the_end_and_prints_as_the_full_path() -> None:
    words = ["sh", "-c", "trap 'exit 7' HUP; echo up; while :; do sleep 0.05; done"]
    for form in (["kill"], ["kill", "--json"]):
        lines = []
        for path in ([AGENTTY], FULL):
            sid = agentty_json("start", "--", *words)["id"]
            agentty("wait", "--text", "up", check=True)
            killed = run(path, *form)
            assert killed.returncode == 0, killed.stderr
            lines.append(killed.stdout.replace(sid, "ID"))
            assert agentty_json("status")["sessions"][-1]["status"] == "exited"
        assert lines[0] == lines[1], form


STATUS_FORMS = (["status"], ["status", "--json"], ["status", "-q"], ["status", "--quiet"])


def same_status(*, lane_takes_it: bool = True) -> None:
    """Every form of `status` prints the same through the lane and the full path; the lane
    answers them itself (or hands every one over)."""
    for args in STATUS_FORMS:
        assert lane(*args) == ("CODE=0 LOADED=" if lane_takes_it else "CODE=None LOADED="), args
        same(args)


def edit_records(home: Path, edit: Callable[[list[dict[str, object]]], None]) -> None:
    """Change `sessions.json` by hand (no agentty command runs meanwhile in these tests)."""
    path = home / "sessions.json"
    doc = json.loads(path.read_bytes())
    edit(doc["sessions"])
    path.write_text(json.dumps(doc, indent=1))


def test_status_answers_as_the_full_path_or_hands_over() -> None:
    assert lane("status").startswith("CODE=None")  # no state file yet: the full path
    agentty_json("start", "--name", "one", "--", "cat")
    gone = agentty_json("start", "--name", "two", "--", "sh", "-c", "exit 3")["id"]
    agentty("wait", "--exit", "-s", gone, check=True)
    agentty_json("start", "--", "sh", "-c", "echo   spaced    words; exec cat")
    agentty("wait", "--text", "spaced", check=True)
    same_status()
    for sid in agentty("status", "-q").stdout.split():
        if len(sid) == 8:
            agentty("kill", "-s", sid, check=True)
    same_status()  # only ended sessions: nobody to ask


def test_status_parity_on_hand_edited_and_odd_records(agentty_home: Path) -> None:
    """Names and commands with control characters and non-ASCII text, a session still
    starting (no worker yet), a record with a field of the wrong type (skipped by both), a
    long name, an active session that no longer exists: the same bytes both ways."""
    sid = agentty_json("start", "--name", "py", "--", "sh", "-c", "echo 'ü\tx'; exec cat")["id"]
    agentty("wait", "--text", "ü", check=True)
    agentty_json("start", "--name", "a-name-longer-than-twelve", "--", "sleep", "1000")

    def add(recs: list[dict[str, object]]) -> None:
        recs[0]["name"] = "n\x1b[31mé"  # by hand: `start` refuses such a name
        recs.append({"id": "0123abcd", "status": "starting", "command": "boot\nme", "pid": None})
        recs.append({"id": "0123abce", "status": "exited", "exitCode": "7", "command": "bad"})
        recs.append({"id": "0123abcf", "status": "failed", "error": "no", "signal": "SIGKILL"})

    edit_records(agentty_home, add)
    same_status()
    (agentty_home / "active").write_text("fedcba98\n")  # a session that is not there
    same_status()
    agentty("kill", "-s", sid, check=True)


def test_status_of_a_corrupt_or_rebuilding_file_goes_the_full_way(agentty_home: Path) -> None:
    """The full path recovers the file (moves it aside, asks the live workers): the lane
    never writes, so it hands over, and afterwards serves the rebuilt file itself."""
    rec = agentty_json("start", "--name", "keep", "--", "cat")
    state = agentty_home / "sessions.json"
    good = state.read_bytes()
    for bad in (b"{not json", b'{"sessions": [1]}', b'{"sessions": [], "x": NaN}'):
        state.write_bytes(bad)
        for args in STATUS_FORMS:
            assert lane(*args).startswith("CODE=None"), (bad, args)
        state.write_bytes(good)
    state.write_bytes(b"{broken")
    for args in (["get", "-s", "keep"], ["text", "-s", "kee", "x"], ["status", "--json"]):
        assert lane(*args).startswith("CODE=None"), args  # not a crash: SystemError once
    assert rec["id"] in agentty("status").stdout  # the full path rebuilt it from the worker
    same_status()
    agentty("kill", check=True)


def test_status_names_the_homes_spawner_as_the_full_path(agentty_home: Path) -> None:
    """`spawner.json` of a live process (here a stand-in, started for the test), of one still
    starting, of a dead one, and one that cannot be read: the table's spawner line and the
    JSON's `spawner` the same both ways."""
    agentty_json("start", "--", "cat")
    stand_in = subprocess.Popen(["sleep", "60"])
    info = agentty_home / "spawner.json"
    try:
        token = identity.start_token(stand_in.pid)
        for doc in (
            {"pid": stand_in.pid, "start": token, "since": "2026-01-01T00:00:00Z", "ready": True},
            {"pid": stand_in.pid, "start": token, "since": "now", "ready": False, "x": [1]},
            {"pid": stand_in.pid, "start": "0:1", "since": "then"},  # not that process
            {"pid": "1", "start": token},
            ["not", "an", "object"],
        ):
            info.write_text(json.dumps(doc))
            same_status()
        info.write_bytes(b"\xff not utf-8")
        for args in STATUS_FORMS[:2]:
            assert lane(*args).startswith("CODE=None"), args  # the full path reads it its way
            same(args)
    finally:
        info.unlink()
        stand_in.kill()
        stand_in.wait()
    agentty("kill", check=True)


def test_status_of_a_dead_worker_goes_the_full_way() -> None:
    record = agentty_json("start", "--", "cat")
    os.kill(record["workerPid"], 9)
    # SIGKILL is delivered in its own time: until then the worker is alive, and rightly so.
    wait_until(lambda: not identity.same_process(record["workerPid"], record["workerStart"]))
    assert lane("status").startswith("CODE=None")  # the full path marks it lost
    full = run(FULL, "status")
    assert "lost" in full.stdout, full.stdout
    assert lane("status").startswith("CODE=None")  # lost: orphans are looked for
    assert lane("status", "--json").startswith("CODE=None")
    assert lane("status", "-q") == "CODE=0 LOADED="  # no orphans there: the lane's
    same(["status", "-q"])
    agentty("kill", check=True)


# ---------------------------------------------------------------- `start` (cli/startlane.py)

START_LANE_CHECK = """
import sys
from agentty_core.cli import hotpath
code = hotpath.start_lane(sys.argv[1:])
if code is None:
    code = hotpath._with_worker_started_early(sys.argv[1:])
    print(f'CODE=None->{code}', file=sys.stderr)
else:
    print(f'CODE={code}', file=sys.stderr)
sys.exit(code)
"""
# What may vary between two starts of the same command: ids, pids, times, start tokens.
VARYING = frozenset(
    ("id", "pid", "workerPid", "startedAt", "lastActiveAt", "workerStart", "workerCreateTime")
) | {"pidStart", "createTime", "socket", "log", "name"}


def start_lane(*args: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    """`start ARGS` through the lane (or, when it hands over, the full path, as `agentty`
    does): which one answered, and the process."""
    proc = run([sys.executable, "-c", START_LANE_CHECK], *args)
    *said, used = proc.stderr.splitlines(keepends=True)
    proc.stderr = "".join(said)
    return used.strip(), proc


def warm_spawner(home: Path) -> None:
    from tests.helpers.spawner import ready_spawner

    assert agentty("start", "--", "cat").returncode == 0  # none yet: it launches one
    ready_spawner(home)


def normalized(proc: subprocess.CompletedProcess[str]) -> tuple[int, object, str]:
    """Exit code, stdout (JSON with the varying fields named, not valued; an id as ID) and
    stderr (ids as ID)."""
    ids = re.compile(r"\b[0-9a-f]{8}\b")
    out: object = ids.sub("ID", proc.stdout)
    if proc.stdout.startswith("{"):
        rec = json.loads(proc.stdout)
        out = [(k, "V" if k in VARYING else v) for k, v in rec.items()]
    return proc.returncode, out, ids.sub("ID", proc.stderr)


@pytest.fixture
def spawner_on(monkeypatch: pytest.MonkeyPatch, agentty_home: Path) -> Path:
    monkeypatch.setenv("AGENTTY_SPAWNER", "1")
    warm_spawner(agentty_home)
    return agentty_home


def test_start_answers_as_the_full_path_with_the_spawner_warm(
    spawner_on: Path, tmp_path: Path
) -> None:
    script = tmp_path / "bad.sh"
    script.write_text("#!/nonexistent/interpreter\necho hi\n")
    script.chmod(0o755)
    forms = [
        (["--", "cat"], "CODE=0"),
        (["--json", "--name", "a{}", "--", "sh", "-c", "echo hi; exec cat"], "CODE=0"),
        (["--json", "--cols=100", "--rows", "30", "--env", "K=V=W", "--", "cat"], "CODE=0"),
        (["--json", "--shell", "exec cat"], "CODE=0"),
        (["--cwd", str(tmp_path), "--json", "--", "cat"], "CODE=0"),
        (["--name", "taken", "--", "cat"], "CODE=2"),  # the first of each pair took it
        (["--name", "bad name", "--", "cat"], "CODE=2"),
        (["--cols", "1", "--", "cat"], "CODE=2"),
        (["--shell", "x", "--", "cat"], "CODE=2"),
        (["--cwd", str(tmp_path / "nope"), "--", "cat"], "CODE=1"),
        (["--", "no-such-program-xyz"], "CODE=127"),
        (["--", str(tmp_path)], "CODE=126"),
        (["--", str(script)], "CODE=126"),  # the worker's own failure, with the log
    ]
    assert agentty("start", "--name", "taken", "--", "cat").returncode == 0
    for args, expected in forms:
        for i, path in enumerate(("lane", "full")):
            words = [a.format(i) for a in args]
            if path == "lane":
                used, lane_proc = start_lane("start", *words)
                assert used == expected, (words, used, lane_proc.stderr)
            else:
                full_proc = run(FULL, "start", *words)
        assert normalized(lane_proc) == normalized(full_proc), args
    # Every failure left nothing running: the live sessions are the ones that started.
    recs = agentty_json("status")["sessions"]
    running = [r for r in recs if r["status"] in ("running", "starting")]
    assert len(running) == 2 + 2 * 5, recs
    assert {r["status"] for r in recs} <= {"running", "failed"}
    for rec in running:
        agentty("kill", "-s", rec["id"], check=True)


@pytest.mark.parametrize(
    "args",
    [
        ["start", "cat"],  # no `--`: argparse's reading
        ["start", "--record", "--", "cat"],
        ["start", "--env", "NOEQUALS", "--", "cat"],  # argparse's own error
        ["start", "--cols", "x", "--", "cat"],
        ["start", "--na", "x", "--", "cat"],  # an abbreviation
        ["start", "--name", "-x", "--", "cat"],
        ["start", "--json"],  # no program
        ["start", "--", "--", "cat"],
    ],
)
def test_other_start_forms_are_left_to_the_full_path(spawner_on: Path, args: list[str]) -> None:
    lane_proc = run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom agentty_core.cli import startlane\n"
            "print(startlane.parse(sys.argv[1:]))",
        ],
        *args,
    )
    assert lane_proc.stdout.strip() == "None", lane_proc.stderr
    for rec in agentty_json("status")["sessions"]:
        if rec["status"] == "running":
            agentty("kill", "-s", rec["id"], check=True)


def test_start_goes_the_full_way_without_a_warm_spawner(
    monkeypatch: pytest.MonkeyPatch, agentty_home: Path
) -> None:
    monkeypatch.setenv("AGENTTY_SPAWNER", "1")
    used, proc = start_lane("start", "--", "cat")  # a fresh home: no spawner yet
    assert used == "CODE=None->0", proc.stderr
    from tests.helpers.spawner import ready_spawner

    ready_spawner(agentty_home)  # that start launched it
    used, proc = start_lane("start", "--", "cat")
    assert used == "CODE=0", proc.stderr
    for sid in agentty("status", "-q").stdout.split():
        agentty("kill", "-s", sid, check=True)


def test_a_full_way_start_ends_without_teardown_yet_runs_its_exit_callbacks(
    tmp_path: Path,
) -> None:
    """`start` and `run` the full way skip the interpreter's teardown once done; what
    registered to run at exit still runs, and the output and exit code are as before."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(  # in the command's process (not its worker's)
        "import atexit, os, sys\n"
        "if sys.argv[0].endswith('agentty'):\n"
        "    atexit.register(lambda: open(os.environ['MARK'], 'a').write('ran\\n'))\n"
    )
    mark = tmp_path / "mark"
    env = dict(os.environ, PYTHONPATH=str(site), MARK=str(mark), AGENTTY_SPAWNER="0")

    def full_way(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AGENTTY, *args], env=env, capture_output=True, text=True, timeout=30, check=False
        )

    started = full_way("start", "--", "cat")
    assert started.returncode == 0 and identity_like(started.stdout.strip()), started
    missing = full_way("start", "--", "no-such-program-here")
    assert missing.returncode == 127 and "command not found" in missing.stderr, missing
    ran = full_way("run", "--", "echo", "hello")
    assert (ran.returncode, ran.stdout) == (0, "hello\n"), ran
    assert mark.read_text() == "ran\n" * 3
    agentty("kill", "-s", started.stdout.strip(), check=True)


def identity_like(text: str) -> bool:
    return len(text) == 8 and all(c in "0123456789abcdef" for c in text)


def test_status_ends_a_cut_name_or_command_with_an_ellipsis() -> None:
    """A column cut at its width said nothing of the rest: `sleep 30 aaaa...` read as the
    whole command line. Both paths cut the same way."""
    from tests.helpers.cli import AGENTTY, agentty, agentty_json

    argv = ["sh", "-c", "exec sleep 30", "x" * 100]
    agentty("start", "--name", "a-rather-long-name", "--", *argv, check=True)
    try:
        command = agentty_json("status")["sessions"][-1]["command"]
        lane, full = run([AGENTTY], "status"), run(FULL, "status")
        assert lane.stdout == full.stdout
        row = lane.stdout.splitlines()[-1]
        assert " a-rather-lo\u2026 " in row  # 12 wide, the ellipsis the 12th
        assert row.endswith("  " + command[:59] + "\u2026")
    finally:
        agentty("kill", check=True)


def test_status_gives_a_resized_session_s_size_now_both_ways() -> None:
    """The file keeps the size a session started with until it ends; the worker knows it
    now: status said 80x24 (and the dashboard's Info tab with it) after a resize to 100x30."""
    sid = agentty_json("start", "--", "cat")["id"]
    agentty("resize", "--cols", "100", "--rows", "30", check=True)
    for way in ([AGENTTY], FULL):
        listed = json.loads(run(way, "status", "--json").stdout)["sessions"]
        assert [(s["cols"], s["rows"]) for s in listed] == [(100, 30)], (way, listed)
    # `attach --json` says so too, and the ended record keeps the size it ended with (as
    # its final screen does): both said 80x24.
    attached = agentty_json("attach", sid)
    assert (attached["cols"], attached["rows"]) == (100, 30), attached
    agentty("kill", check=True)
    for way in ([AGENTTY], FULL):
        listed = json.loads(run(way, "status", "--json").stdout)["sessions"]
        assert [(s["cols"], s["rows"]) for s in listed] == [(100, 30)], (way, listed)
    assert agentty_json("get")["size"] == {"cols": 100, "rows": 30}


def test_send_json_says_the_bytes_it_typed_both_ways() -> None:
    """`text --json` and `key --json` say their bytes; `send --json` said only its seq."""
    agentty_json("start", "--", "cat")
    for way in ([AGENTTY], FULL):
        sent = json.loads(run(way, "send", "--json", "ab", "Enter", "C-a").stdout)
        assert sent["bytes"] == 4 and isinstance(sent["seq"], int), (way, sent)
    agentty("kill", check=True)


def test_status_says_an_ended_session_s_input_as_get_does_both_ways() -> None:
    """README: `get --json` and `status --json` carry `input`; an ended session had none in
    `status` (and `{state: exited, ...}` in `get`)."""
    sid = agentty_json("start", "--", "true")["id"]
    agentty("wait", "--exit", check=True)
    said = agentty_json("get", "-s", sid)["input"]
    assert said["state"] == "exited", said
    for way in ([AGENTTY], FULL):
        listed = json.loads(run(way, "status", "--json").stdout)["sessions"]
        assert [s["input"] for s in listed] == [said], (way, listed)


def test_a_wait_that_timed_out_says_how_long_it_waited_both_ways() -> None:
    """`wait --json` that fires has `elapsed_ms`; one that timed out had none (an agent
    telling a slow program from a wrong condition read the clock itself)."""
    agentty_json("start", "--", "cat")
    for way in ([AGENTTY], FULL):
        timed_out = run(way, "wait", "--json", "--text", "never", "--timeout", "0.4")
        assert timed_out.returncode == 3, (way, timed_out.stderr)
        said = json.loads(timed_out.stdout)
        assert (said["fired"], said["timeout"]) == (None, True), (way, said)
        assert 400 <= said["elapsed_ms"] < 5000, (way, said)
    agentty("kill", check=True)

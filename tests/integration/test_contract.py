"""The original contract's flows and the defects D1..D10 it must make impossible."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.helpers.census import processes_of_home
from tests.helpers.cli import AGENTTY, agentty, agentty_json, wait_until

PYTHON = sys.executable


def start(*args: str) -> str:
    proc = agentty("start", *args, check=True)
    return proc.stdout.strip()


def test_python_repl_flow_from_the_contract() -> None:
    sid = start("--name", "py", "--", PYTHON, "-i", "-q")
    assert agentty("attach", "py", check=True).stdout.startswith("active session: " + sid)
    agentty("wait", "--text", ">>>", check=True)
    agentty("text", "print(2+2)", check=True)
    agentty("key", "Enter", check=True)
    out = agentty("wait", "--regex", r"^4$", check=True).stdout
    assert "4" in out.splitlines()
    screen = agentty("get", "--lines", "20", check=True).stdout
    assert ">>> print(2+2)" in screen and "\n4\n" in screen
    agentty("key", "Ctrl+D", check=True)
    done = agentty_json("wait", "--exit", "--timeout", "10")
    assert done["fired"] == "exit" and done["exitCode"] == 0
    again = agentty("kill")
    assert again.returncode == 1 and "already exited (code 0)" in again.stderr


def test_d1_argv_is_passed_exactly(programs: Path) -> None:
    args = [
        "",
        "a b",
        '"q"',
        "$HOME",
        "*",
        "x\ny",
        "--flag",
        "'single'",
        "tab\there",
        "x" * 100_000,
    ]
    start("--", PYTHON, str(programs / "argv_json.py"), *args)
    screen = agentty_json("wait", "--text", "]", "--timeout", "20")
    assert screen["fired"] == "text"
    raw = agentty_json("get", "--raw", "--bytes", "300000")
    received = json.loads(str(raw["raw"]).split("\r\n")[0])
    assert received == args
    agentty("kill", check=True)


def test_d2_start_returns_only_once_the_program_runs() -> None:
    rec = agentty_json("start", "--", "sleep", "30")
    assert rec["status"] == "running"
    proc = psutil.Process(int(rec["pid"]))
    assert proc.is_running() and proc.name() == "sleep"
    worker = psutil.Process(int(rec["workerPid"]))
    assert worker.is_running() and os.getsid(worker.pid) == worker.pid  # detached
    sock = Path(str(rec["socket"]))
    assert stat.S_ISSOCK(os.lstat(sock).st_mode) and stat.S_IMODE(os.lstat(sock).st_mode) == 0o600
    agentty("kill", check=True)


def test_d3_twenty_concurrent_starts_are_all_recorded() -> None:
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: agentty("start", "--", "sleep", "60"), range(20)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    ids = {r.stdout.strip() for r in results}
    status = agentty_json("status")
    recorded = {s["id"] for s in status["sessions"] if s["status"] == "running"}
    assert len(ids) == 20 and ids <= recorded
    with ThreadPoolExecutor(max_workers=10) as pool:
        kills = list(pool.map(lambda sid: agentty("kill", "--session", sid, "--timeout", "1"), ids))
    assert all(k.returncode == 0 for k in kills), [k.stderr for k in kills]


def test_d4_lock_is_released_when_its_holder_dies(agentty_home: Path) -> None:
    env = dict(os.environ, AGENTTY_FAILPOINTS="state.after_lock=sigkill")
    proc = subprocess.run(
        [str(Path(PYTHON).with_name("agentty")), "start", "--", "sleep", "30"],
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == -9
    before = time.monotonic()
    sid = start("--", "sleep", "30")
    assert time.monotonic() - before < 8  # not a lock timeout (10 s)
    assert agentty_json("status")["active"] == sid
    agentty("kill", check=True)


def test_d5_state_files_are_private(agentty_home: Path) -> None:
    start("--", "sleep", "30")
    for path in agentty_home.rglob("*"):
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        if path.is_dir():
            assert mode == 0o700, path
        else:
            assert mode & 0o077 == 0, path
    agentty("kill", check=True)


@pytest.mark.parametrize(
    "point",
    ["worker.after_intent", "worker.after_spawn", "worker.after_bind", "worker.before_ready"],
)
def test_d6_worker_dying_during_startup_leaves_no_orphan(point: str) -> None:
    env = dict(os.environ, AGENTTY_FAILPOINTS=f"{point}=sigkill")
    proc = subprocess.run(
        [str(Path(PYTHON).with_name("agentty")), "start", "--", "sleep", "1000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "worker died during startup" in proc.stderr and ".log" in proc.stderr
    status = agentty_json("status")
    assert [s["status"] for s in status["sessions"]] == ["failed"]
    # The census fixture checks that no `sleep 1000` survived.


def test_d7_attach_rejects_unknown_and_exited_sessions() -> None:
    bad = agentty("attach", "nosuch")
    assert bad.returncode == 2 and "no such session: nosuch" in bad.stderr
    sid = start("--", "sh", "-c", "echo hi; exit 3")
    agentty("wait", "--exit", check=True)
    exited = agentty("attach", sid)
    assert exited.returncode == 1 and "exited (code 3)" in exited.stderr
    assert agentty("get", "--session", sid, check=True).stdout == "hi\n"


def test_d8_kill_escalates_and_confirms(programs: Path) -> None:
    rec = agentty_json("start", "--", str(programs / "ignore_term.sh"))
    agentty("wait", "--text", "ready", check=True)
    result = agentty_json("kill", "--timeout", "0.3")
    assert result["escalated"] == ["SIGHUP", "SIGTERM", "SIGKILL"]
    assert result["signal"] == "SIGKILL"
    assert (
        not psutil.pid_exists(int(rec["pid"]))
        or psutil.Process(int(rec["pid"])).status() == "zombie"
    )
    status = agentty_json("status")
    assert status["sessions"][0]["status"] == "exited"
    # The worker's log says what the kill took (it said only how the session ended).
    log = agentty("logs", check=True).stdout
    assert " INFO agentty.worker: killed after SIGHUP, SIGTERM, SIGKILL (0.3 s a step)\n" in log


@pytest.mark.parametrize("program", [["sleep", "1000"], ["sh", "-c", "exit 3"]])
def test_the_log_says_the_session_ended_once_kill_or_wait_returns(program: list[str]) -> None:
    """The end's line was written 50 ms after the answers (and as a dict's repr): `logs`
    right after `kill` or `wait --exit` did not show it, most times."""
    for _ in range(3):
        sid = start("--", *program)
        if program[0] == "sleep":
            agentty("kill", "-s", sid, check=True)
            said = f"session {sid} ended: exited (signal SIGHUP)"
        else:
            agentty("wait", "-s", sid, "--exit", check=True)
            said = f"session {sid} ended: exited (code 3)"
        last = agentty("logs", "-s", sid, check=True).stdout.splitlines()[-1]
        assert last.endswith(f" INFO agentty.worker: {said}"), last


def test_kill_all_ends_every_running_session_at_once(agentty_home: Path) -> None:
    """An agent's clean-up in one call: a loop over `status -q` met a named session twice,
    by its id and then by its name, and failed on the second (an outside round)."""
    named = start("--name", "one", "--", "sleep", "300")
    other = start("--", "sh", "-c", "echo up; exec cat")
    ended = start("--", "true")
    agentty("wait", "-s", ended, "--exit", check=True)
    result = agentty_json("kill", "--all", "--timeout", "0.5")
    assert sorted(k["id"] for k in result["killed"]) == sorted([named, other])
    assert result["failed"] == []
    statuses = {s["id"]: s["status"] for s in agentty_json("status")["sessions"]}
    assert statuses == {named: "exited", other: "exited", ended: "exited"}
    again = agentty("kill", "--all")
    assert (again.returncode, again.stdout) == (0, "no running sessions\n"), again.stderr
    both = agentty("kill", "--all", "-s", named)
    assert both.returncode == 2 and "either --session or --all" in both.stderr
    # (a worker exits a moment after its kill's answer)
    wait_until(lambda: processes_of_home(str(agentty_home)) == [], timeout=10)


def test_kill_all_run_inside_a_session_leaves_that_one_and_says_so(
    agentty_home: Path, tmp_path: Path
) -> None:
    """An agent running in a session of the home: its own session's SIGHUP ended the
    command mid-way, and nothing was said of the rest (a review)."""
    other = start("--", "cat")
    out = tmp_path / "out"
    script = f"{AGENTTY} kill --all --json > {out}.json; echo rc=$? > {out}; exec cat"
    inner = start("--", "sh", "-c", script)
    wait_until(lambda: out.exists() and out.read_text().strip() != "", timeout=30)
    assert out.read_text().strip() == "rc=0"
    said = json.loads((tmp_path / "out.json").read_text())
    assert [k["id"] for k in said["killed"]] == [other] and said["skipped"] == [inner], said
    statuses = {s["id"]: s["status"] for s in agentty_json("status")["sessions"]}
    assert statuses == {other: "exited", inner: "running"}
    agentty("kill", "-s", inner, check=True)


def test_kill_all_takes_a_session_removed_meanwhile_for_one_that_ended(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run` removes its session as its program ends: listed running, gone by its turn,
    it failed the command ("no such session", exit 2; a review)."""
    from agentty_core.cli.main import main
    from agentty_core.client import Client

    keep, gone = start("--", "cat"), start("--", "cat")
    listed = Client.sessions

    def listed_then_removed(self: Client, **kw: bool) -> list[Any]:
        found = listed(self, **kw)
        Client().kill(gone, grace=0.5)
        Client().gc_session(gone)
        return found

    monkeypatch.setattr(Client, "sessions", listed_then_removed)
    assert main(["kill", "--all", "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["failed"] == [], said
    ids = {k["id"]: k.get("alreadyEnded", False) for k in said["killed"]}
    assert ids == {keep: False, gone: True}, said


def test_kill_all_ends_what_a_lost_session_left_running(agentty_home: Path) -> None:
    """A session whose worker died can leave its program's children running: `kill -s`
    ends them, `kill --all` said "no running sessions" and left them (a review)."""
    # a child in a session of its own: the process group the worker takes down is not its
    lost = start("--", "sh", "-c", "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo up; wait")
    agentty("wait", "-s", lost, "--text", "up", check=True)

    def record() -> dict[str, Any]:
        return next(s for s in agentty_json("status")["sessions"] if s["id"] == lost)

    os.kill(record()["workerPid"], 9)
    wait_until(lambda: record()["status"] == "lost")
    assert processes_of_home(str(agentty_home)) != []
    result = agentty_json("kill", "--all", "--timeout", "0.5")
    assert [(k["id"], k["status"]) for k in result["killed"]] == [(lost, "lost")], result
    assert len(result["killed"][0]["orphansKilled"]) >= 1, result
    assert processes_of_home(str(agentty_home)) == []
    # once nothing of it runs, it is not killed again
    again = agentty("kill", "--all")
    assert (again.returncode, again.stdout) == (0, "no running sessions\n"), again.stderr


def test_d9_get_returns_the_rendered_screen_of_vim(tmp_path: Path) -> None:
    target = tmp_path / "note.txt"
    start("--cwd", str(tmp_path), "--", "vim", "-u", "NONE", "-i", "NONE", "-N", str(target))
    agentty("wait", "--text", "note.txt", check=True)
    agentty("key", "i", check=True)
    agentty("text", "hello from agentty", check=True)
    agentty("key", "Esc", check=True)
    agentty("wait", "--text", "hello from agentty", check=True)
    screen = agentty("get", check=True).stdout
    assert "\x1b" not in screen and "hello from agentty" in screen.splitlines()[0]
    agentty("text", ":wq", check=True)
    agentty("key", "Enter", check=True)
    agentty("wait", "--exit", "--timeout", "10", check=True)
    assert target.read_text() == "hello from agentty\n"


def test_d10_wait_honours_its_deadline() -> None:
    start("--", "sleep", "30")
    before = time.monotonic()
    proc = agentty("wait", "--text", "never", "--timeout", "0.5")
    elapsed = time.monotonic() - before
    assert proc.returncode == 3 and "timed out after 0.5s waiting for text 'never'" in proc.stderr
    assert elapsed < 5  # a guard against hangs, not a speed target
    agentty("kill", check=True)

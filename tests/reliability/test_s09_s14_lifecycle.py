"""Scenarios S9-S14: program lifecycle and arguments (reliability.md section 4.B)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.reliability.conftest import (
    AGENTTY,
    PYTHON,
    agentty,
    agentty_as_nobody,
    agentty_json,
    alive_of_home,
    gone,
    raw_record,
    raw_records,
    record,
    start,
    wait_until,
)


def test_s09_program_exits_instantly(agentty_home: Path) -> None:
    for _ in range(3):
        rec = start("--", "true")
        done = agentty_json("wait", "--session", rec["id"], "--exit", "--timeout", "10")
        assert done["exitCode"] == 0
        sid: str = rec["id"]

        def exited(sid: str = sid) -> bool:
            return bool(raw_record(agentty_home, sid)["status"] == "exited")

        wait_until(exited)
    rec = start("--", "sh", "-c", "echo hi; exit 3")
    sid = rec["id"]
    agentty("wait", "--session", sid, "--exit", "--timeout", "10", check=True)
    wait_until(lambda: raw_record(agentty_home, sid)["status"] == "exited")
    stored = record(sid)
    assert stored["status"] == "exited" and stored["exitCode"] == 3
    assert agentty("get", "--session", sid, check=True).stdout == "hi\n"
    attach = agentty("attach", sid)
    assert attach.returncode == 1 and f"session {sid} exited (code 3)" in attach.stderr
    kill = agentty("kill", "--session", sid)
    assert kill.returncode == 1 and "already exited (code 3)" in kill.stderr
    # No zombie worker, socket cleaned after the linger.
    wait_until(lambda: alive_of_home(agentty_home) == [])
    wait_until(lambda: not Path(stored["socket"]).exists())
    assert all(r["status"] == "exited" for r in raw_records(agentty_home))


@pytest.mark.parametrize("kind", ["missing", "not_executable", "directory", "bad_interpreter"])
def test_s10_command_cannot_be_executed(agentty_home: Path, tmp_path: Path, kind: str) -> None:
    if kind == "missing":
        target, code, words = "no-such-program-xyz", 127, "command not found: no-such-program-xyz"
    elif kind == "not_executable":
        script = tmp_path / "plain.sh"
        script.write_text("echo hi\n")
        target, code, words = str(script), 126, "permission denied"
    elif kind == "directory":
        target, code, words = str(tmp_path), 126, "is a directory"
    else:
        script = tmp_path / "bad.sh"
        script.write_text("#!/nonexistent/interpreter\necho hi\n")
        script.chmod(0o755)
        target, code, words = str(script), 126, "bad interpreter"
    t0 = time.monotonic()
    proc = agentty("start", "--", target)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr and proc.stderr.count("\n") == 1
    assert all(
        s["status"] not in ("running", "starting") for s in agentty_json("status")["sessions"]
    )
    assert list((agentty_home / "sockets").iterdir()) == []
    assert alive_of_home(agentty_home) == []


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _census_of_workers(stop: threading.Event, seen: set[int], home: str) -> None:
    while not stop.is_set():
        for proc in psutil.process_iter():
            try:
                if (
                    "agentty_core.worker.main" in " ".join(proc.cmdline())
                    and proc.environ().get("AGENTTY_HOME") == home
                ):
                    seen.add(proc.pid)
            except psutil.Error:
                continue


@pytest.mark.parametrize("kind", ["missing", "file", "mode000"])
def test_s11_bad_cwd(agentty_home: Path, tmp_path: Path, kind: str) -> None:
    cwd = tmp_path / "cwd"
    if kind == "file":
        cwd.write_text("")
    elif kind == "mode000":
        # Root ignores modes: the client runs as nobody, with a home of its own.
        home = Path("/tmp") / f"at-nb-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        home.mkdir(mode=0o700)
        os.chown(home, 65534, 65534)
        cwd = Path("/tmp") / f"{home.name}-cwd"
        cwd.mkdir(mode=0o000)
        try:
            proc = agentty_as_nobody(home, "start", "--cwd", str(cwd), "--", "sleep", "1000000")
            assert proc.returncode == 1, proc.stderr
            assert "not accessible" in proc.stderr or "permission denied" in proc.stderr.lower()
            assert str(cwd) in proc.stderr
            assert proc.stderr.count("\n") == 1
            assert list((home / "logs").glob("*.log")) == []
        finally:
            subprocess.run(["rm", "-rf", str(home), str(cwd)], check=False)
        return
    stop, seen = threading.Event(), set[int]()
    watcher = threading.Thread(target=_census_of_workers, args=(stop, seen, str(agentty_home)))
    watcher.start()
    try:
        proc = agentty("start", "--cwd", str(cwd), "--", "sleep", "1000000")
    finally:
        stop.set()
        watcher.join()
    assert proc.returncode == 1, proc.stderr
    expected = "does not exist" if kind == "missing" else "not a directory"
    assert expected in proc.stderr and str(cwd) in proc.stderr
    assert proc.stderr.count("\n") == 1
    # Refused before the program was forked. `agentty start` spawns its worker first (it
    # imports while the command checks the request); one never handed a session is gone
    # before the command returns.
    assert [pid for pid in seen if _alive(pid)] == []
    assert agentty_json("status")["sessions"] == []
    assert list((agentty_home / "logs").iterdir()) == []
    assert list((agentty_home / "sockets").iterdir()) == []


def test_s12_argv_fidelity(agentty_home: Path, programs: Path) -> None:
    args = ["", "a b", '"q"', "$HOME", "*", "x\ny", "--flag", os.fsdecode(b"\xff"), "x" * 100_000]
    agentty("start", "--", PYTHON, str(programs / "argv_json.py"), *args, check=True)
    agentty("wait", "--text", "]", "--timeout", "20", check=True)
    raw = agentty_json("get", "--raw", "--bytes", "400000")
    received = json.loads(str(raw["raw"]).split("\r\n")[0])
    assert received == args
    # The record keeps the argv; `status --json` must still be valid UTF-8 JSON.
    status = subprocess.run([AGENTTY, "status", "--json"], capture_output=True, timeout=30)
    assert status.returncode == 0
    doc = json.loads(status.stdout.decode("utf-8"))
    assert len(doc["sessions"]) == 1


def test_s13_pid_reuse_never_signals_an_unrelated_process(agentty_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTTY_")}
    bystander = subprocess.Popen(["sleep", "1000000"], env=env)
    try:
        victim = start("--", "sleep", "1000000")
        other = start("--", "sleep", "1000000")
        other_socket = os.lstat(other["socket"])
        # Tamper: the victim's record now names the bystander as worker and program.
        doc = json.loads((agentty_home / "sessions.json").read_bytes())
        for rec in doc["sessions"]:
            if rec["id"] == victim["id"]:
                rec["workerPid"] = bystander.pid
                rec["pid"] = bystander.pid
        tmp = agentty_home / "tampered.tmp"
        tmp.write_text(json.dumps(doc))
        tmp.chmod(0o600)
        os.replace(tmp, agentty_home / "sessions.json")
        assert record(victim["id"])["status"] == "lost"
        agentty("kill", "--session", victim["id"], "--timeout", "0.3")
        agentty("gc")
        agentty("orphans", "--kill")
        assert bystander.poll() is None, "an unrelated process was signalled"
        assert psutil.Process(bystander.pid).status() != psutil.STATUS_STOPPED
        assert record(other["id"])["status"] == "running"
        assert os.lstat(other["socket"]).st_ino == other_socket.st_ino
        assert agentty("get", "--session", other["id"]).returncode == 0
    finally:
        bystander.kill()
        bystander.wait()
        # The victim's real worker was never told: end it the orderly way.
        if not gone(victim["workerPid"]):
            os.kill(victim["workerPid"], 15)
            wait_until(lambda: gone(victim["workerPid"]), timeout=15)


def test_s14_clock_jump_changes_no_verdict(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentty_core.client import Client
    from agentty_core.proc import identity

    a = start("--", "sleep", "1000000")
    b = start("--", "sleep", "1000000")
    tokens = {a["id"]: raw_record(agentty_home, a["id"])["workerStart"]}
    real_time, real_boot = time.time, psutil.boot_time
    calls = [0]

    def jumping_time() -> float:
        # Every call jumps the wall clock by +/- 2 h: a deadline on wall time never ends.
        calls[0] += 1
        return real_time() + (7200.0 if calls[0] % 2 else -7200.0)

    result: dict[str, object] = {}
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", jumping_time)
        patch.setattr(psutil, "boot_time", lambda: real_boot() + 7200.0)
        identity._boot_id.cache_clear()
        client = Client()
        assert {r["id"]: r["status"] for r in client.sessions()} == {
            a["id"]: "running",
            b["id"]: "running",
        }
        assert identity.same_process(a["workerPid"], tokens[a["id"]])
        worker = threading.Thread(target=lambda: result.update(client.kill(a["id"], grace=0.3)))
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "kill did not complete across a clock jump"
    assert result.get("status") == "exited", result
    statuses = {s["id"]: s["status"] for s in agentty_json("status")["sessions"]}
    assert statuses == {a["id"]: "exited", b["id"]: "running"}

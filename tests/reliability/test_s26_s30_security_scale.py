"""Scenarios S26-S30: security, environment and scale (reliability.md section 4.E).

S30's dashboard half (two Textual dashboards via `run_test()`) is not part of this CLI
churn; it belongs to the dashboard's own tests."""

from __future__ import annotations

import contextlib
import os
import random
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.helpers.census import processes_of_home
from tests.reliability.conftest import (
    AGENTTY,
    NOBODY,
    agentty,
    agentty_json,
    alive_of_home,
    raw_records,
    start,
    wait_until,
)

CONNECT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print("connect-error", exc.errno)
    sys.exit(0)
s.settimeout(5)
try:
    # The worker may close before we finish writing: that is a refusal too.
    s.sendall(b'{"v":1,"method":"text","params":{"data":"PWNED\\\\n"}}\\n')
    print("reply", len(s.recv(4096)))
except OSError as exc:
    print("recv-error", exc.errno)
"""


def _as_nobody(*args: str) -> str:
    proc = subprocess.run(
        [*NOBODY, sys.executable, "-I", "-S", "-c", CONNECT, *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_s26_another_user_connects(agentty_home: Path) -> None:
    import errno

    rec = start("--", "cat")
    sid, sock = rec["id"], rec["socket"]
    seq = agentty_json("get")["seq"]
    assert _as_nobody(sock) == f"connect-error {errno.EACCES}"
    # Now with the directories deliberately opened: the worker checks SO_PEERCRED.
    modes = {
        p: stat.S_IMODE(os.lstat(p).st_mode) for p in (agentty_home, Path(sock).parent, Path(sock))
    }
    try:
        os.chmod(agentty_home, 0o711)
        os.chmod(Path(sock).parent, 0o777)
        os.chmod(sock, 0o777)
        result = _as_nobody(sock)
    finally:
        for path, mode in modes.items():
            os.chmod(path, mode)
    assert result in ("reply 0", f"recv-error {errno.ECONNRESET}", f"recv-error {errno.EPIPE}"), (
        result
    )
    screen = agentty_json("get")
    assert screen["seq"] == seq and "PWNED" not in "".join(screen["lines"])
    log = (agentty_home / "logs" / f"{sid}.log").read_text()
    assert "refused a connection from uid 65534" in log


@pytest.mark.parametrize(
    "kind", ["0777", "1777", "foreign", "symlink_foreign", "foreign_symlink", "foreign_parent"]
)
def test_s27_unsafe_home(tmp_path: Path, kind: str) -> None:
    base = Path("/tmp") / f"at-u{os.getpid()}{random.randint(0, 9999)}"
    base.mkdir(mode=0o700)
    try:
        home = base / "h"
        if kind == "symlink_foreign":
            target = base / "other"
            target.mkdir(mode=0o700)
            os.chown(target, 65534, 65534)
            home.symlink_to(target)
            inspect = target
        elif kind == "foreign_symlink":
            # Our own private directory, reached through a link another user can re-point.
            target = base / "ours"
            target.mkdir(mode=0o700)
            home.symlink_to(target)
            os.lchown(home, 65534, 65534)
            inspect = target
        elif kind == "foreign_parent":
            parent = base / "theirs"
            parent.mkdir(mode=0o755)
            os.chown(parent, 65534, 65534)
            home = parent / "h"
            home.mkdir(mode=0o700)
            inspect = home
        else:
            home.mkdir()
            os.chmod(home, {"0777": 0o777, "1777": 0o1777}.get(kind, 0o700))
            if kind == "foreign":
                os.chown(home, 65534, 65534)
            inspect = home
        mode_before = stat.S_IMODE(os.stat(inspect).st_mode)
        env = dict(os.environ, AGENTTY_HOME=str(home))
        for args in (["start", "--", "sleep", "1000000"], ["status"]):
            proc = subprocess.run(
                [AGENTTY, *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                stdin=subprocess.DEVNULL,
            )
            assert proc.returncode != 0, (args, proc.stdout)
            assert proc.stderr.count("\n") == 1, proc.stderr
            if kind == "0777":
                assert "unsafe permissions" in proc.stderr and "chmod 700" in proc.stderr
            elif kind == "1777":
                # A shared directory: never advise changing it, name a private one instead.
                assert "shared directory" in proc.stderr and "chmod" not in proc.stderr
            else:
                assert "owned by uid 65534" in proc.stderr, proc.stderr
        assert list(inspect.iterdir()) == []
        assert stat.S_IMODE(os.stat(inspect).st_mode) == mode_before
        assert processes_of_home(str(home)) == []
    finally:
        for leaked in processes_of_home(str(home)):  # a start that wrongly succeeded
            with contextlib.suppress(psutil.Error):
                leaked.kill()
        subprocess.run(["rm", "-rf", str(base)], check=False)


@pytest.mark.parametrize("name", ["sessions.json", "sessions.json.lock", "active"])
def test_s27_planted_symlinks(agentty_home: Path, tmp_path: Path, name: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("victim content\n")
    victim.chmod(0o644)
    (agentty_home / name).symlink_to(victim)
    for args in (["start", "--", "sleep", "1000000"], ["status"], ["get"], ["gc"]):
        agentty(*args)
    assert victim.read_text() == "victim content\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    # Whatever agentty did create is private.
    for path in agentty_home.rglob("*"):
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            continue
        mode = stat.S_IMODE(st.st_mode)
        assert mode == 0o700 if stat.S_ISDIR(st.st_mode) else mode & 0o077 == 0, path


def test_s27_planted_symlink_at_a_log(agentty_home: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("victim content\n")
    rec = start("--", "true")
    agentty("wait", "--session", rec["id"], "--exit", check=True)
    wait_until(lambda: alive_of_home(agentty_home) == [])
    log = agentty_home / "logs" / f"{rec['id']}.log"
    log.unlink()
    log.symlink_to(victim)
    proc = agentty("logs", "--session", rec["id"])
    assert proc.returncode == 1 and "symlink" in proc.stderr
    assert "victim content" not in proc.stdout
    agentty("gc", check=True)
    assert victim.read_text() == "victim content\n"


@pytest.mark.parametrize("length", [100, 200])
def test_s28_very_long_home(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch, length: int
) -> None:
    home = agentty_home
    while len(str(home)) < length - 11:
        home = home / "d123456789"
    home = Path(str(home) + "x" * (length - len(str(home))))
    assert len(str(home)) == length
    monkeypatch.setenv("AGENTTY_HOME", str(home))
    try:
        proc = agentty("start", "--json", "--", "sh", "-c", "echo long-home; exec sleep 1000000")
        if proc.returncode != 0:
            assert "socket path too long" in proc.stderr, proc.stderr
            return
        import json

        rec = json.loads(proc.stdout)
        sock = rec["socket"]
        assert len(os.fsencode(sock)) <= 107
        assert stat.S_ISSOCK(os.lstat(sock).st_mode)
        parent = Path(sock).parent
        assert stat.S_IMODE(os.lstat(parent).st_mode) == 0o700
        assert "long-home" in agentty("wait", "--text", "long-home", check=True).stdout
        assert agentty("kill", check=True).returncode == 0
        wait_until(lambda: processes_of_home(str(home)) == [])
    finally:
        agentty("kill")
        agentty("orphans", "--kill")
        wait_until(lambda: processes_of_home(str(home)) == [])


def test_s29_fifty_concurrent_starts_then_kills(agentty_home: Path) -> None:
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: agentty("start", "--", "sleep", "1000000"), range(50)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    ids = [r.stdout.strip() for r in results]
    assert len(set(ids)) == 50
    recs = raw_records(agentty_home)
    assert len(recs) == 50 and {r["id"] for r in recs} == set(ids)
    assert all(r["status"] == "running" for r in recs)
    with ThreadPoolExecutor(max_workers=10) as pool:
        gets = list(pool.map(lambda sid: agentty("get", "--session", sid), ids))
    assert all(g.returncode == 0 for g in gets), [g.stderr for g in gets if g.returncode]
    with ThreadPoolExecutor(max_workers=50) as pool:
        kills = list(pool.map(lambda sid: agentty("kill", "--session", sid, "--timeout", "1"), ids))
    assert all(k.returncode == 0 for k in kills), [k.stderr for k in kills if k.returncode]
    wait_until(lambda: alive_of_home(agentty_home) == [], timeout=30)
    recs = raw_records(agentty_home)
    assert len(recs) == 50 and all(r["status"] == "exited" for r in recs)


def test_s30_cli_churn(agentty_home: Path) -> None:
    stop = time.monotonic() + 5.0
    started: list[str] = []
    problems: list[str] = []
    lock = threading.Lock()
    ok_failures = ("exited", "already", "is lost", "no such session")

    def check(proc: subprocess.CompletedProcess[str], what: str) -> None:
        if "Traceback" in proc.stderr or proc.returncode not in (0, 1, 2):
            problems.append(f"{what}: {proc.returncode} {proc.stderr[-300:]}")
        elif proc.returncode != 0 and not any(w in proc.stderr for w in ok_failures):
            problems.append(f"{what}: {proc.returncode} {proc.stderr.strip()}")

    def churn(n: int) -> None:
        while time.monotonic() < stop:
            proc = agentty("start", "--", "cat")
            check(proc, "start")
            if proc.returncode != 0:
                continue
            sid = proc.stdout.strip()
            with lock:
                started.append(sid)
            check(agentty("text", "--session", sid, f"hello{n}"), "text")
            check(agentty("key", "--session", sid, "Enter"), "key")
            check(agentty("get", "--session", sid), "get")
            check(agentty("attach", sid), "attach")
            if n % 3 == 0:  # simultaneous kill + get, and a double kill
                with ThreadPoolExecutor(max_workers=3) as pool:
                    futs = [
                        pool.submit(agentty, "kill", "--session", sid, "--timeout", "0.5"),
                        pool.submit(agentty, "get", "--session", sid),
                        pool.submit(agentty, "kill", "--session", sid, "--timeout", "0.5"),
                    ]
                    for fut, what in zip(futs, ("kill", "get", "kill2"), strict=True):
                        check(fut.result(), what)
            else:
                check(agentty("kill", "--session", sid, "--timeout", "0.5"), "kill")

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "deadlock: a churn thread hangs"
    assert problems == []
    recs = {r["id"]: r for r in raw_records(agentty_home)}
    assert set(started) <= set(recs), "a record was lost"
    wait_until(lambda: all(r["status"] == "exited" for r in raw_records(agentty_home)), timeout=20)
    wait_until(lambda: alive_of_home(agentty_home) == [], timeout=20)
    for log in (agentty_home / "logs").glob("*.log"):
        assert "Traceback" not in log.read_text(), log

"""Worker faults around its own writes and its own death (issue 16, items 1, 3, 5, 18).

A full disk under the recorder, a state lock held past the worker's patience, a disk too full
for the exit to be written, and the worker killed in the middle of `kill`. The faults are
real: a small tmpfs mounted over (part of) the home, an `flock` held by another process, a
SIGKILL. Mounting needs root (CI runs as root); elsewhere those scenarios skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import (
    AGENTTY,
    PYTHON,
    agentty,
    alive_of_home,
    gone,
    of_session,
    raw_record,
    record,
    sigkill,
    start,
    wait_until,
)

# Floods ~3 MB (more than the 2 MiB tmpfs holds), then waits for two lines of input and
# exits 7: output after the disk filled must still reach the screen, and the exit the record.
FLOOD_THEN_EXIT = """\
import sys
for i in range(30000):
    sys.stdout.write(f"line {i:06d} " + "x" * 90 + "\\n")
print("FLOOD-DONE", flush=True)
sys.stdin.readline()
print("AFTER-INPUT", flush=True)
sys.stdin.readline()
sys.exit(7)
"""

# Holds an exclusive flock on argv[1] until a line (or EOF) arrives on stdin.
HOLD_LOCK = """\
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""

# Ignores the polite signals (so `kill` has to climb its ladder) and notes the SIGHUP.
STUBBORN = """\
import signal, sys, time
def hup(*_):
    open(sys.argv[1], "w").close()
signal.signal(signal.SIGHUP, hup)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("stubborn-ready", flush=True)
while True:
    time.sleep(0.05)
"""


def _end_everything(home: Path) -> None:
    """End the home's sessions while their files are still reachable (before unmounting)."""
    status = agentty("status", "--json")
    if status.returncode == 0:
        for rec in json.loads(status.stdout)["sessions"]:
            if rec["status"] in ("running", "starting", "lost"):
                agentty("kill", "--session", rec["id"], "--timeout", "0.5")
    agentty("orphans", "--kill")
    from agentty_core.launch.spawner_client import stop

    stop(str(home))  # (a spawner would be waited for in vain below)
    with contextlib.suppress(AssertionError):
        wait_until(lambda: alive_of_home(home) == [], timeout=15)
    for proc in alive_of_home(home):
        with contextlib.suppress(Exception):
            proc.kill()


@contextlib.contextmanager
def tmpfs(path: Path, home: Path, size: str) -> Iterator[None]:
    """A tmpfs of `size` mounted on `path` for the block; skips when mounting is refused."""
    path.mkdir(mode=0o700, exist_ok=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield
    finally:
        _end_everything(home)
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(directory: Path) -> Path:
    """Fill the filesystem holding `directory` to the last byte; the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 16, 1 << 10, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def _exit_code_shown(sid: str) -> object:
    got = agentty("get", "--session", sid, "--json")
    return json.loads(got.stdout).get("exitCode") if got.returncode == 0 else None


def _worker_gone(rec: dict[str, Any]) -> bool:
    return gone(rec["workerPid"])


@pytest.mark.parametrize("ending", ["exit", "kill"])
def test_disk_full_while_recording_stops_only_the_recording(
    agentty_home: Path, ending: str
) -> None:
    with tmpfs(agentty_home / "logs", agentty_home, "2m"):
        rec = start("--record", "--", PYTHON, "-c", FLOOD_THEN_EXIT)
        sid = rec["id"]
        # The screen follows the output past the point where the recording hit ENOSPC.
        agentty(
            "wait",
            "--session",
            sid,
            "--text",
            "FLOOD-DONE",
            "--timeout",
            "60",
            timeout=90,
            check=True,
        )
        agentty("text", "--session", sid, "--enter", "one", check=True)
        agentty("wait", "--session", sid, "--text", "AFTER-INPUT", "--timeout", "30", check=True)
        if ending == "exit":
            agentty("text", "--session", sid, "--enter", "two", check=True)
        else:
            killed = agentty("kill", "--session", sid, "--timeout", "0.5")
            assert killed.returncode == 0, killed.stderr
        # The exit is recorded.
        wait_until(lambda: raw_record(agentty_home, sid)["status"] == "exited", timeout=30)
        stored = record(sid)
        assert stored["status"] == "exited", stored
        if ending == "exit":
            assert stored["exitCode"] == 7, stored
        # The recording stopped, and the record says why.
        assert "no space left on device" in str(stored.get("recordingError")).lower(), stored
        cast = agentty_home / "logs" / f"{sid}.cast"
        assert cast.stat().st_size > 0
        # Its final screen waits for room (the recording took it all); given room, it is
        # saved and the worker ends.
        os.truncate(cast, 0)
        wait_until(lambda: _worker_gone(rec), timeout=15)
        assert of_session(agentty_home, sid) == []
        assert "AFTER-INPUT" in agentty("get", "-s", sid, check=True).stdout


def _hold_lock(home: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [PYTHON, "-c", HOLD_LOCK, str(home / "sessions.json.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def _release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    with contextlib.suppress(OSError):
        holder.stdin.close()
    holder.wait(timeout=10)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("ending", ["exit", "kill"])
def test_exit_is_recorded_after_the_state_lock_was_held_for_12s(
    agentty_home: Path, ending: str
) -> None:
    rec = start("--", "sh", "-c", "read x; echo bye; exit 3")
    sid = rec["id"]
    final = agentty_home / "logs" / f"{sid}.final.json"
    holder = _hold_lock(agentty_home)
    try:
        if ending == "exit":
            agentty("text", "--session", sid, "--enter", "go", check=True)
        else:
            kill = subprocess.Popen(
                [AGENTTY, "kill", "--session", sid, "--timeout", "0.5"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        wait_until(final.exists, timeout=15)  # the program ended; the worker wants the lock
        # The worker waits for the lock without giving up, and answers meanwhile; its loop
        # does not spin on the closed PTY while it waits.
        cpu_before = _cpu_seconds(rec["workerPid"])
        held_from = time.monotonic()
        while time.monotonic() - held_from < 12:
            got = agentty("get", "--session", sid, "--json", timeout=30)
            assert got.returncode == 0, got.stderr
            time.sleep(0.5)  # the fault is the lock held for 12 s, not a wait for a condition
        wall = time.monotonic() - held_from
        assert _cpu_seconds(rec["workerPid"]) - cpu_before < wall / 3, "the worker spins"
    finally:
        _release(holder)
    if ending == "kill":
        _out, err = kill.communicate(timeout=30)
        assert kill.returncode == 0, err
    wait_until(lambda: raw_record(agentty_home, sid)["status"] == "exited", timeout=30)
    stored = record(sid)
    assert stored["status"] == "exited", stored
    if ending == "exit":
        assert stored["exitCode"] == 3, stored
    wait_until(lambda: _worker_gone(rec), timeout=15)


def test_exit_is_recorded_once_a_full_disk_has_space_again(agentty_home: Path) -> None:
    with tmpfs(agentty_home, agentty_home, "1m"):
        rec = start("--", "sh", "-c", "read x; echo bye; exit 3")
        sid = rec["id"]
        filler = _fill(agentty_home)
        agentty("text", "--session", sid, "--enter", "go", check=True)
        # Nothing can be written: the worker keeps the exit and keeps answering.
        wait_until(lambda: _exit_code_shown(sid) == 3, timeout=15)
        assert raw_record(agentty_home, sid)["status"] == "running"
        filler.unlink()
        wait_until(lambda: raw_record(agentty_home, sid)["status"] == "exited", timeout=30)
        stored = record(sid)
        assert (stored["status"], stored["exitCode"]) == ("exited", 3), stored
        wait_until(lambda: _worker_gone(rec), timeout=15)
        assert "bye" in agentty("get", "--session", sid, check=True).stdout


IN_CREATE = 0x100


def _watch_creations(*directories: Path) -> int:
    """An inotify descriptor reporting files created in `directories` (read with
    `_created`): the worker's tries at a write, each a temporary file, counted for real."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
    assert fd >= 0, os.strerror(ctypes.get_errno())
    for directory in directories:
        assert libc.inotify_add_watch(fd, bytes(directory), IN_CREATE) >= 0
    return fd


def _created(fd: int) -> list[str]:
    """The names created since the last call."""
    names: list[str] = []
    while True:
        try:
            buf = os.read(fd, 1 << 16)
        except BlockingIOError:
            return names
        offset = 0
        while offset < len(buf):
            _wd, _mask, _cookie, length = struct.unpack_from("iIII", buf, offset)
            name = buf[offset + 16 : offset + 16 + length].rstrip(b"\0")
            names.append(name.decode())
            offset += 16 + length


def test_a_full_disk_is_retried_on_one_backing_off_schedule(agentty_home: Path) -> None:
    """Past the first EXIT_FIRST_TRY of tries every few ms (for a lock held a moment), the
    tries back off to one a second: the background tries do not start polling all over
    again. The final screen is tried once; then not again (written and thrown away) while
    there is no room for it; and once there is, it is written, before the record."""
    from agentty_core.worker.lifecycle import EXIT_FIRST_TRY

    with tmpfs(agentty_home, agentty_home, "1m"):
        rec = start("--", "sh", "-c", "read x; echo bye; exit 3")
        sid = rec["id"]
        filler = _fill(agentty_home)
        watch = _watch_creations(agentty_home, agentty_home / "logs")
        try:
            agentty("text", "--session", sid, "--enter", "go", check=True)
            wait_until(lambda: _exit_code_shown(sid) == 3, timeout=15)
            # The fault is the disk staying full: past the first tries, then a while more.
            time.sleep(EXIT_FIRST_TRY + 1)
            first = _created(watch)
            time.sleep(4)
            later = _created(watch)
            assert raw_record(agentty_home, sid)["status"] == "running"
            filler.unlink()
            wait_until(lambda: raw_record(agentty_home, sid)["status"] == "exited", timeout=30)
            wait_until(lambda: _worker_gone(rec), timeout=15)
            after = _created(watch)
        finally:
            os.close(watch)
        record_tries = [n for n in later if n.startswith(".sessions.json.")]
        assert 1 <= len(record_tries) <= 10, len(record_tries)  # ~4, one a second; not ~800
        screens = [n for n in first + later + after if ".final.json." in n]
        assert len(screens) == 2, (len(screens), screens[:5])  # no room, no more tries
        stored = record(sid)
        assert (stored["status"], stored["exitCode"]) == ("exited", 3), stored
        assert "bye" in agentty("get", "--session", sid, check=True).stdout


def test_worker_killed_during_kill_is_swept_by_that_kill(
    agentty_home: Path, tmp_path: Path
) -> None:
    hupped = tmp_path / "hupped"
    rec = start("--", PYTHON, "-c", STUBBORN, str(hupped))
    sid = rec["id"]
    agentty("wait", "--session", sid, "--text", "stubborn-ready", check=True)
    outcome: list[subprocess.CompletedProcess[str]] = []
    killer = threading.Thread(
        target=lambda: outcome.append(agentty("kill", "--session", sid, "--timeout", "3"))
    )
    killer.start()
    try:
        wait_until(hupped.exists, timeout=15)  # the worker is on its ladder: SIGHUP sent
        sigkill(rec["workerPid"])
    finally:
        killer.join(timeout=60)
    assert outcome, "kill hung"
    proc = outcome[0]
    assert proc.returncode == 0, proc.stderr
    assert gone(rec["pid"]), "the program survived the kill"
    assert of_session(agentty_home, sid) == []
    assert record(sid)["status"] in ("lost", "exited")


def _exited_with_no_room_for_its_screen(home: Path) -> tuple[dict[str, Any], Path]:
    """A session with a screenful of scrollback that exits once `logs/` is full: its exit
    recorded (the list is on another file system), its final screen not; the filler."""
    rec = start("--", "sh", "-c", "seq 1 20000; echo READY; read x; exit 3")
    agentty("wait", "-s", rec["id"], "--text", "READY", check=True)
    filler = _fill(home / "logs")
    agentty("text", "-s", rec["id"], "--enter", "go", check=True)
    wait_until(lambda: raw_record(home, rec["id"])["status"] == "exited", timeout=30)
    return rec, filler


def test_a_final_screen_that_did_not_fit_is_saved_once_there_is_room(agentty_home: Path) -> None:
    """The record fits (another file system) and the final screen does not: the worker
    ended once the record was written, and the screen was lost for good; `get` and `wait
    --exit` said "no final screen saved" even after the disk had room again."""
    with tmpfs(agentty_home / "logs", agentty_home, "1m"):
        rec, filler = _exited_with_no_room_for_its_screen(agentty_home)
        sid = rec["id"]
        filler.unlink()  # (the worker's tries with the record written: they went before)
        wait_until(lambda: _exit_code_shown(sid) == 3, timeout=30)
        assert "READY" in agentty("get", "-s", sid, check=True).stdout
        wait_until(lambda: _worker_gone(rec), timeout=15)


def test_a_final_screen_is_kept_when_the_exit_was_recorded_late(agentty_home: Path) -> None:
    """The disk full past the first tries (the exit recorded in the background), then room
    for the record and not for the screen: the worker ended once the record was written,
    and the screen was lost for good (an attacker's round)."""
    with tmpfs(agentty_home, agentty_home, "2m"):
        rec = start("--", "sh", "-c", "seq 1 20000; echo READY; read x; exit 3")
        sid = rec["id"]
        agentty("wait", "-s", sid, "--text", "READY", check=True)
        room = agentty_home / "room"  # what the record alone will fit in, once freed
        room.write_bytes(b"\0" * 16 * 1024)
        filler = _fill(agentty_home)
        agentty("text", "-s", sid, "--enter", "go", check=True)
        log = agentty_home / "logs" / f"{sid}.log"
        wait_until(lambda: "cannot record the exit yet" in log.read_text(), timeout=30)
        room.unlink()
        wait_until(lambda: raw_record(agentty_home, sid)["status"] == "exited", timeout=30)
        assert not _worker_gone(rec)  # (still holding the screen: no room for it)
        filler.unlink()
        wait_until(lambda: _worker_gone(rec), timeout=30)
        assert "READY" in agentty("get", "-s", sid, check=True).stdout


def _exited_under_a_file_size_limit(hard: int) -> dict[str, Any]:
    """A session started with a 16 KiB soft file size limit (and `hard`), its screen
    larger, that exits; its start record."""
    import resource

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, hard))

    proc = subprocess.run(
        [AGENTTY, "start", "--json", "--", "sh", "-c", "seq 1 5000; echo READY; read x; exit 3"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limited,
    )
    assert proc.returncode == 0, proc.stderr
    rec: dict[str, Any] = json.loads(proc.stdout)
    agentty("wait", "-s", rec["id"], "--text", "READY", check=True)
    agentty("text", "-s", rec["id"], "--enter", "go", check=True)
    return rec


def test_a_final_screen_over_the_callers_file_size_limit_is_saved(agentty_home: Path) -> None:
    """`ulimit -f` of the caller, inherited by the worker for its program: the final screen
    failed with EFBIG and was lost. The limit is the program's: the worker lifts its own
    soft limit (up to the hard one) for the write."""
    import resource

    rec = _exited_under_a_file_size_limit(resource.RLIM_INFINITY)
    sid = rec["id"]
    wait_until(lambda: _worker_gone(rec), timeout=30)
    assert _exit_code_shown(sid) == 3
    assert "READY" in agentty("get", "-s", sid, check=True).stdout


def test_a_final_screen_waiting_for_room_is_not_saved_for_a_removed_session(
    agentty_home: Path,
) -> None:
    """`gc` removed the session while its worker waited for room for the final screen: the
    worker stops trying, and no screen of nobody's is left behind."""
    with tmpfs(agentty_home / "logs", agentty_home, "1m"):
        rec, filler = _exited_with_no_room_for_its_screen(agentty_home)
        sid = rec["id"]
        agentty("gc", check=True)
        filler.unlink()
        wait_until(lambda: _worker_gone(rec), timeout=15)
        assert not (agentty_home / "logs" / f"{sid}.final.json").exists()


def test_a_recording_that_cannot_start_is_an_error(agentty_home: Path) -> None:
    """`record on` with no room for the recording said "recording stopped" and exited 0
    (`--json` said why, and exited 0 as well)."""
    with tmpfs(agentty_home / "logs", agentty_home, "1m"):
        rec = start("--", "cat")
        filler = _fill(agentty_home / "logs")
        said = agentty("record", "-s", rec["id"], "on")
        assert said.returncode == 1 and said.stdout == "", said
        assert said.stderr.startswith("agentty: error: No space left on device"), said.stderr
        assert said.stderr.count("\n") == 1, said.stderr
        answered = agentty("record", "-s", rec["id"], "on", "--json")
        assert (answered.returncode, answered.stderr) == (1, ""), answered
        assert json.loads(answered.stdout)["recording"] is False
        filler.unlink()
        assert agentty("record", "-s", rec["id"], "on").returncode == 0
        agentty("kill", "-s", rec["id"], check=True)


def test_a_final_screen_over_a_hard_file_size_limit_is_given_up_at_once(
    agentty_home: Path,
) -> None:
    """`ulimit -f` in bash sets the hard limit too: nothing lifts it, and the worker tried
    again for ten minutes, its socket open, for nothing."""
    rec = _exited_under_a_file_size_limit(16 * 1024)
    wait_until(lambda: _worker_gone(rec), timeout=15)
    assert record(rec["id"])["exitCode"] == 3

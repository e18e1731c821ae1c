"""State faults from the outside review (issue 16 #3 reader side, #7, #20), injected for real:
a corrupt `sessions.json` under live workers, hand-edited records, a full disk (tmpfs), a
state lock held by another process."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.reliability.conftest import (
    AGENTTY,
    agentty,
    agentty_json,
    gone,
    raw_records,
    record,
    sigkill,
    start,
    state_lock,
    wait_until,
    write_private,
)


def test_corrupt_state_then_a_worker_records_its_exit(agentty_home: Path, tmp_path: Path) -> None:
    """Issue 16 #7: the first writer after the corruption is a worker recording its exit.
    It used to run the recovery itself, ask every worker (itself too, its loop blocked) and
    write the list without its own record: the exit was lost. Now it keeps its record, and
    the next caller asks the other workers, outside the lock."""
    flag = tmp_path / "go"  # no agentty command may run (and recover) before the worker
    ending = start("--", "sh", "-c", f"until [ -e {flag} ]; do sleep 0.05; done; exit 3")
    other = start("--", "sh", "-c", "echo OTHER-alive; exec sleep 1000000")
    write_private(agentty_home / "sessions.json", b'{"sessions": [{"id": "trunc')
    flag.touch()
    wait_until(lambda: gone(ending["workerPid"]), timeout=20)
    stored = {r["id"]: r for r in raw_records(agentty_home)}  # read before any command
    assert stored[ending["id"]]["status"] == "exited", stored
    assert stored[ending["id"]]["exitCode"] == 3
    assert list(agentty_home.glob("sessions.json.corrupt-*")), "corrupt file not kept aside"
    listed = {s["id"]: s for s in agentty_json("status")["sessions"]}
    assert listed[ending["id"]]["status"] == "exited"
    assert listed[ending["id"]]["exitCode"] == 3
    assert listed[other["id"]]["status"] == "running", listed
    assert "rebuilding" not in json.loads((agentty_home / "sessions.json").read_bytes())
    assert "OTHER-alive" in agentty("get", "--session", other["id"], check=True).stdout


def test_corrupt_state_is_rebuilt_without_holding_the_lock(agentty_home: Path) -> None:
    """Recovery asks the workers while nobody holds the state lock (it used to hold it all
    along): a worker that must write meanwhile is never stuck behind a caller that waits on
    workers. Two stopped workers hold the asking caller up for a second each."""
    stopped = [start("--", "sleep", "1000000") for _ in range(2)]
    ending = start("--", "sh", "-c", "read x; exit 4")
    for rec in stopped:
        os.kill(rec["workerPid"], signal.SIGSTOP)  # its `info` times out (1 s)
    try:
        write_private(agentty_home / "sessions.json", b"\x00garbage")
        status = subprocess.Popen(
            [AGENTTY, "status"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: list(agentty_home.glob("sessions.json.corrupt-*")), timeout=20)
        fd = os.open(agentty_home / "sessions.json.lock", os.O_RDWR)
        try:
            wait_until(lambda: _try_lock(fd), timeout=20)
            # Taken while the caller is still asking the stopped workers.
            assert status.poll() is None, "the lock was held until the recovery ended"
            assert json.loads((agentty_home / "sessions.json").read_bytes())["rebuilding"]
        finally:
            os.close(fd)
        status.wait(timeout=60)
    finally:
        for rec in stopped:
            os.kill(rec["workerPid"], signal.SIGCONT)
    agentty("text", "--session", ending["id"], "--enter", "bye", check=True)
    wait_until(lambda: record(ending["id"])["status"] == "exited", timeout=20)
    assert record(ending["id"])["exitCode"] == 4
    for rec in stopped:  # they did not answer in time: not in the rebuilt list, so end them
        sigkill(rec["pid"])
        worker: int = rec["workerPid"]
        wait_until(functools.partial(gone, worker), timeout=20)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def test_hand_edited_records_are_skipped_reported_and_removed(agentty_home: Path) -> None:
    """Issue 16 #20: a list-typed status, a non-hex id and a naive `endedAt` made `status`
    crash, `gc` fail (so it could not remove them) and `gc --older-than` crash."""
    live = start("--", "sleep", "1000000")
    doc = json.loads((agentty_home / "sessions.json").read_bytes())
    base: dict[str, Any] = {"argv": ["true"], "command": "true", "exitCode": 0, "signal": None}
    doc["sessions"] += [
        {**base, "id": "0000000a", "status": ["exited"], "endedAt": "2020-01-01T00:00:00+00:00"},
        {**base, "id": "not-hex!", "status": "exited", "endedAt": "2020-01-01T00:00:00+00:00"},
        {**base, "id": "0000000c", "status": "exited", "endedAt": "2020-01-01T00:00:00"},
    ]
    write_private(agentty_home / "sessions.json", json.dumps(doc).encode())
    table = agentty("status", check=True).stdout
    assert live["id"] in table and "0000000a" not in table and "not-hex" not in table
    listed = [s["id"] for s in agentty_json("status")["sessions"]]
    assert listed == [live["id"], "0000000c"]
    doctor = agentty("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert not checks["records"]["ok"]
    detail = checks["records"]["detail"]
    assert "status ['exited']" in detail and "'not-hex!'" in detail and "endedAt" in detail
    assert sorted(agentty_json("gc", "--older-than", "60")["removed"]) == [
        "0000000a",
        "0000000c",
        "not-hex!",
    ]
    assert [r["id"] for r in raw_records(agentty_home)] == [live["id"]]
    assert record(live["id"])["status"] == "running"


def _strict(text: str) -> Any:
    """JSON as every parser but Python's reads it: NaN and Infinity are no JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_number_no_json_reader_takes_deep_in_a_record_is_never_printed(
    agentty_home: Path,
) -> None:
    """A hand-edited NaN or 1e999 in a field agentty does not know (kept by every writer)
    went out in `status --json` (and `kill --json`) as NaN and Infinity, which no JSON
    parser but Python's reads. Such a record is malformed, as one with it at the top."""
    live = start("--", "sleep", "1000000")
    doc = json.loads((agentty_home / "sessions.json").read_bytes())
    base: dict[str, Any] = {"argv": ["true"], "command": "true", "exitCode": 0, "signal": None}
    doc["sessions"] += [
        {**base, "id": "0000000a", "status": "exited", "note": {"at": float("nan")}},
        {**base, "id": "0000000b", "status": "exited", "note": [1, [1e999]]},
        {**base, "id": "0000000c", "status": "exited", "note": {"at": 1.5, "tags": ["x"]}},
    ]
    write_private(agentty_home / "sessions.json", json.dumps(doc).encode())
    listed = _strict(agentty("status", "--json", check=True).stdout)["sessions"]
    assert [s["id"] for s in listed] == [live["id"], "0000000c"]
    assert listed[1]["note"] == {"at": 1.5, "tags": ["x"]}  # what is fine is kept whole
    full = subprocess.run(  # the full path (`python -m`) reads the records its own way
        [sys.executable, "-m", "agentty_core", "status", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert [s["id"] for s in _strict(full.stdout)["sessions"]] == [live["id"], "0000000c"]
    checks = {c["name"]: c for c in _strict(agentty("doctor", "--json").stdout)["checks"]}
    assert "#2: note holds a number out of range; #3: note holds" in checks["records"]["detail"]
    killed = _strict(agentty("kill", "--all", "--json", check=True).stdout)
    assert [r["id"] for r in killed["killed"]] == [live["id"]]
    removed = agentty_json("gc")["removed"]
    assert sorted(removed) == sorted(["0000000a", "0000000b", "0000000c", live["id"]])


@pytest.mark.parametrize("bad", ['"seq": 1e999', '"seq": Infinity', '"modes": {"x": NaN}'])
def test_a_final_screen_holding_a_number_no_json_reader_takes_is_never_printed(
    agentty_home: Path, bad: str
) -> None:
    """An ended session's saved screen, hand-edited: `get --json` and `wait --json`
    printed its 1e999 as Infinity (the lane) and its NaN as NaN (the full path). It is
    read as no screen saved, as a file that is no JSON at all is."""
    ended = start("--", "sh", "-c", "echo SAVED; exec sleep 1000000")
    agentty("wait", "--text", "SAVED", check=True)
    agentty("kill", check=True)
    final = agentty_home / "logs" / f"{ended['id']}.final.json"
    assert "SAVED" in agentty("get", check=True).stdout  # (saved, and read)
    text = final.read_text()
    key = bad.split(":")[0]
    head, sep, rest = text.partition(key + ": ")
    assert sep, text[:200]
    rest = rest[rest.index(", ") :] if key == '"seq"' else rest[rest.index("}") + 1 :]
    write_private(final, (head + bad + rest).encode())
    for command in (("get", "--json"), ("wait", "--exit", "--json")):
        got = agentty(*command)
        assert got.returncode == 1, (command, got)
        assert got.stdout == "" and "no final screen saved" in got.stderr, (command, got)


def test_a_value_nested_past_the_readers_limit_loses_no_other_record(agentty_home: Path) -> None:
    """A hand-edited field nested 1200 deep made the whole list corrupt (the reader's
    recursion limit): it was moved aside, and every ended session's record with it. The
    field is left out; the records stay."""
    ended = start("--", "true")
    wait_until(lambda: record(ended["id"])["status"] == "exited", timeout=20)
    live = start("--", "sleep", "1000000")
    doc = json.loads((agentty_home / "sessions.json").read_bytes())
    text = json.dumps(doc).replace('"status": "exited"', '"status": "exited", "note": 0', 1)
    deep = "[" * 1200 + "]" * 1200
    write_private(
        agentty_home / "sessions.json", text.replace('"note": 0', f'"note": {deep}').encode()
    )
    listed = {s["id"]: s for s in agentty_json("status")["sessions"]}
    assert listed[ended["id"]]["status"] == "exited" and "note" not in listed[ended["id"]]
    assert listed[live["id"]]["status"] == "running"
    assert not list(agentty_home.glob("sessions.json.corrupt-*"))
    agentty("kill", check=True)  # a write: the list as read, the field left out
    kept = {r["id"]: r for r in raw_records(agentty_home)}
    assert kept[ended["id"]]["status"] == "exited" and "note" not in kept[ended["id"]]


def test_gc_names_the_first_sessions_it_removed_and_counts_the_rest(agentty_home: Path) -> None:
    """60000 ended sessions: `gc` printed every id on one line, 540 kB (an attacker's
    round). `--json` still lists them all."""
    ended = {"argv": ["true"], "command": "true", "status": "exited", "exitCode": 0}
    ids = [f"{n:08x}" for n in range(1, 26)]
    doc = {"schema_version": 1, "sessions": [{**ended, "id": sid} for sid in ids]}
    write_private(agentty_home / "sessions.json", json.dumps(doc).encode())
    said = agentty("gc", check=True).stdout.splitlines()
    assert said == [
        "removed 25 session(s) with their logs, final screens and recordings: "
        + " ".join(ids[:20])
        + " and 5 more (--json lists them)"
    ], said


@pytest.fixture
def small_disk(agentty_home: Path) -> Iterator[Path]:
    """AGENTTY_HOME on a 4 MiB tmpfs; `fill` it with the returned path's file."""
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(agentty_home)],
        check=True,
    )
    try:
        yield agentty_home / "filler"
    finally:
        with contextlib.suppress(FileNotFoundError):
            (agentty_home / "filler").unlink()
        subprocess.run(["umount", "-l", str(agentty_home)], check=False)


def _fill(filler: Path) -> None:
    with open(filler, "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()


def test_readers_on_a_full_disk_do_not_fail(agentty_home: Path, small_disk: Path) -> None:
    """Issue 16 #3 (readers): with the disk full, `status` and `get` failed outright trying
    to mark a session whose worker died as lost. Reading never fails because a write does."""
    dead = start("--", "sh", "-c", "echo DEAD-screen; exec sleep 1000000")
    sigkill(dead["workerPid"])
    _fill(small_disk)
    status = agentty("status", "--json")
    assert status.returncode == 0, status.stderr
    listed = {s["id"]: s["status"] for s in json.loads(status.stdout)["sessions"]}
    assert listed[dead["id"]] == "lost"
    get = agentty("get", "--session", dead["id"])
    assert get.returncode != 0 and "lost" in get.stderr and "Traceback" not in get.stderr
    assert get.stderr.count("\n") == 1
    small_disk.unlink()
    agentty("orphans", "--kill", check=True)


FULL_PATH = [sys.executable, "-c", "import sys; from agentty_core.cli.main import main; main()"]


def test_status_takes_an_unrecorded_exit_from_the_worker(
    agentty_home: Path, small_disk: Path
) -> None:
    """The disk full, a worker can save neither its program's exit nor the final screen; it
    keeps trying, and `status` (lane and full path, every form) showed the program running.
    The worker knows better: its `info` answer says how the program ended."""
    ending = start("--name", "ending", "--", "sh", "-c", "echo hi; read x; exit 3")
    _fill(small_disk)
    agentty("text", "--session", "ending", "--enter", "bye", check=True)
    wait_until(
        lambda: (
            "cannot record the exit" in (agentty_home / "logs" / f"{ending['id']}.log").read_text()
        )
    )
    assert raw_records(agentty_home)[0]["status"] == "running"  # as the file still says
    for way in ([AGENTTY], FULL_PATH):
        listed = json.loads(_ok(way, "status", "--json"))["sessions"]
        assert [(s["status"], s["exitCode"]) for s in listed] == [("exited", 3)], way
        row = _ok(way, "status").splitlines()[-1].split()
        assert row[1:4] == ["ending", "exited", "3"], way
        assert _ok(way, "status", "-q") == "", way
    from agentty_core import Session  # the Python API's list says it too

    assert [(i.status, i.exit_code) for i in Session.list()] == [("exited", 3)]
    small_disk.unlink()
    wait_until(lambda: raw_records(agentty_home)[0]["status"] == "exited", timeout=30)


def _ok(command: list[str], *args: str) -> str:
    proc = subprocess.run([*command, *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_readers_take_the_exit_from_the_final_screen(agentty_home: Path) -> None:
    """Issue 16 #3 (readers): a worker that cannot record its exit (the state lock held
    elsewhere) saved the final screen with the code; readers show the session exited with
    that code while the worker keeps trying, and after a worker that died before it could
    record it, not `lost`."""
    ending = start("--", "sh", "-c", "echo LAST-words; read x; exit 3")
    with state_lock(agentty_home):
        agentty("text", "--session", ending["id"], "--enter", "bye", check=True)
        final = agentty_home / "logs" / f"{ending['id']}.final.json"
        wait_until(final.exists, timeout=20)
        rec = record(ending["id"])  # reading takes no lock
        assert (rec["status"], rec["exitCode"]) == ("exited", 3), rec
        stored = {r["id"]: r for r in raw_records(agentty_home)}
        assert stored[ending["id"]]["status"] == "running"  # the exit is not recorded yet
        os.kill(ending["workerPid"], signal.SIGKILL)  # a worker that dies before it can
        wait_until(lambda: gone(ending["workerPid"]), timeout=30)
    rec = record(ending["id"])
    assert (rec["status"], rec["exitCode"]) == ("exited", 3), rec
    screen = agentty_json("get", "--session", ending["id"])
    assert screen["exitCode"] == 3 and any("LAST-words" in line for line in screen["lines"])


def test_input_to_an_ended_session_is_refused_in_the_records_words(agentty_home: Path) -> None:
    """Input that reached the worker after its program ended, before the exit was written
    (here: the state lock held elsewhere), was refused as "has exited"; asked a moment
    later, the record said "exited (code 3)". Every caller now reads the same words."""
    from agentty_core.errors import RemoteError
    from agentty_core.ipc.client import Connection

    ending = start("--", "sh", "-c", "read x; exit 3")
    sid = ending["id"]
    with state_lock(agentty_home):
        agentty("text", "--session", sid, "--enter", "bye", check=True)
        final = agentty_home / "logs" / f"{sid}.final.json"
        wait_until(final.exists, timeout=20)
        conn = Connection(str(ending["socket"]), expect_pid=ending["workerPid"])
        with conn, pytest.raises(RemoteError) as refused:
            conn.call("text", {"data": "late"})
        assert refused.value.code == "exited"
        assert refused.value.message == f"session {sid} exited (code 3)"
        during = agentty("text", "--session", sid, "late")
    after = agentty("text", "--session", sid, "late")
    assert during.returncode == after.returncode != 0
    assert during.stderr == after.stderr == f"agentty: error: session {sid} exited (code 3)\n"


@pytest.mark.parametrize("spawner", ["0", "1"], ids=["spawned", "forked"])
def test_a_worker_named_in_the_intent_runs_its_program_without_the_state_lock(
    agentty_home: Path, tmp_path: Path, spawner: str
) -> None:
    """The caller names its worker (pid and start token) in the intent record, as the
    `start` lane's worker names itself: the worker then spawns the program without a state
    write of its own first. Held here between the intent and the program, the state lock
    kept the program from starting until it was let go (one write, ~3 ms, fewer per start)."""
    marker = tmp_path / "ran"
    env = {
        **os.environ,
        "AGENTTY_SPAWNER": spawner,
        "AGENTTY_FAILPOINTS": "worker.before_handlers=sleep:1",  # time to take the lock
    }
    if spawner == "1":  # warm: `run` goes the full way, with a worker the spawner forked
        from tests.helpers.spawner import ready_spawner

        agentty("start", "--", "true", check=True, env=env)
        ready_spawner(agentty_home)
    argv = [AGENTTY, "run", "--timeout", "20", "--", "sh", "-c", f"touch {marker}"]
    running = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def intent_written() -> bool:
        state = agentty_home / "sessions.json"
        return state.exists() and any(r["status"] == "starting" for r in raw_records(agentty_home))

    try:
        wait_until(intent_written)
        with state_lock(agentty_home):
            wait_until(marker.exists, timeout=5)  # the program ran while the lock was held
    finally:
        _, err = running.communicate(timeout=30)
    assert running.returncode == 0, err


@pytest.mark.parametrize("spawner", ["0", "1"])
def test_a_running_session_missing_from_a_valid_list_is_brought_back(
    agentty_home: Path, spawner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sessions.json` replaced by a valid list without a running session (a restored
    backup, a hand edit): `status` said "no sessions", `kill` "no such session", and
    `doctor` called the live worker's socket stale, to be removed. Its worker still answers
    on its socket with its record: every reader takes it back, and writes it down."""
    monkeypatch.setenv("AGENTTY_SPAWNER", spawner)
    kept = start("--", "sh", "-c", "echo KEPT-alive; exec sleep 1000000")
    dropped = start("--", "sh", "-c", "echo DROPPED-alive; exec sleep 1000000")
    agentty("wait", "-s", dropped["id"], "--text", "DROPPED-alive", check=True)
    doc = json.loads((agentty_home / "sessions.json").read_bytes())
    doc["sessions"] = [r for r in doc["sessions"] if r["id"] != dropped["id"]]
    write_private(agentty_home / "sessions.json", json.dumps(doc).encode())

    quiet = agentty("status", "-q", check=True).stdout.split()
    assert sorted(quiet) == sorted([kept["id"], dropped["id"]])
    listed = {s["id"]: s for s in agentty_json("status")["sessions"]}
    assert listed[dropped["id"]]["status"] == "running", listed
    assert listed[dropped["id"]]["workerPid"] == dropped["workerPid"]
    assert dropped["id"] in {r["id"] for r in raw_records(agentty_home)}  # written down
    doctor = agentty("doctor").stdout
    assert "stale" not in doctor, doctor
    assert agentty("kill", "-s", dropped["id"]).returncode == 0
    assert agentty("kill", "-s", kept["id"]).returncode == 0


def test_a_missing_session_is_found_by_its_id_before_any_listing(agentty_home: Path) -> None:
    """`kill` by id of a session missing from the list is not 'no such session'."""
    dropped = start("--", "sleep", "1000000")
    write_private(agentty_home / "sessions.json", b'{"schema_version": 1, "sessions": []}')
    killed = agentty("kill", "-s", dropped["id"])
    assert killed.returncode == 0, killed.stderr
    wait_until(lambda: gone(dropped["workerPid"]), timeout=20)
    assert record(dropped["id"])["status"] == "exited"


def test_gc_removes_the_socket_of_a_dead_worker_missing_from_the_list(agentty_home: Path) -> None:
    """`doctor` calls such a socket stale and says `agentty gc`, which left it (it removed
    only the files of recorded sessions)."""
    dropped = start("--", "sleep", "1000000")
    write_private(agentty_home / "sessions.json", b'{"schema_version": 1, "sessions": []}')
    sigkill(dropped["workerPid"])
    wait_until(lambda: gone(dropped["workerPid"]), timeout=20)
    socket_file = agentty_home / "sockets" / f"{dropped['id']}.sock"
    assert socket_file.exists()
    # Too new to tell from a worker between its bind and its listen: kept by `gc`, and not
    # called stale by `doctor` either (it was, and its fix then did nothing).
    assert "stale" not in agentty("doctor").stdout
    agentty("gc", check=True)
    assert socket_file.exists()
    made = socket_file.stat().st_mtime - 60
    os.utime(socket_file, (made, made))
    assert "stale sockets" in agentty("doctor").stdout
    agentty("gc", check=True)
    assert not socket_file.exists()
    assert "stale" not in agentty("doctor").stdout


def test_doctor_leaves_the_socket_of_a_worker_still_recording_its_exit(agentty_home: Path) -> None:
    """The program ended while another process held the state lock: its worker stays to
    record the exit, answering on its socket. `doctor` called that socket stale, to be
    removed by `agentty gc`."""
    rec = start("--", "sh", "-c", "read x; exit 4")
    final = agentty_home / "logs" / f"{rec['id']}.final.json"
    with state_lock(agentty_home):
        agentty("text", "-s", rec["id"], "--enter", "go", check=True)
        wait_until(final.exists)
        doctor = agentty("doctor", timeout=60).stdout
    assert "stale" not in doctor, doctor
    wait_until(lambda: gone(rec["workerPid"]), timeout=30)


def _shared_socket_dir(tmp_path: Path) -> tuple[dict[str, str], dict[str, str], Path]:
    """This home's environment and another home's, both with one AGENTTY_SOCKET_DIR."""
    shared = tmp_path / "sockets"
    shared.mkdir(mode=0o700)
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    env_here = {**os.environ, "AGENTTY_SOCKET_DIR": str(shared)}
    return env_here, {**env_here, "AGENTTY_HOME": str(other)}, other


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AGENTTY, *args], env=env, capture_output=True, text=True, timeout=60)


def test_homes_that_share_a_socket_directory_keep_their_own_sessions(
    agentty_home: Path, tmp_path: Path
) -> None:
    """Two homes with one AGENTTY_SOCKET_DIR (the long-path advice names one per user): the
    other home's running session, answering on a socket no record here names, was taken
    into this list, and `kill` here ended it."""
    env_here, env_other, other = _shared_socket_dir(tmp_path)
    cli = _cli
    theirs = json.loads(cli(env_other, "start", "--json", "--", "sleep", "1000000").stdout)
    try:
        listed = json.loads(cli(env_here, "status", "--json").stdout)["sessions"]
        assert listed == [], listed
        assert cli(env_here, "kill", "-s", theirs["id"]).returncode == 2  # no such session
        cli(env_here, "gc")
        assert (
            json.loads(cli(env_other, "status", "--json").stdout)["sessions"][0]["status"]
            == "running"
        )
    finally:
        cli(env_other, "kill", "-s", theirs["id"])
        from agentty_core.launch.spawner_client import stop

        stop(str(other))


def test_another_homes_stopped_workers_do_not_hold_up_this_homes_readers(
    agentty_home: Path, tmp_path: Path
) -> None:
    """Every reader asked each socket of the shared directory that no record here names,
    another home's included, and waited half a second for each of its stopped workers."""
    env_here, env_other, _ = _shared_socket_dir(tmp_path)
    theirs = [
        json.loads(_cli(env_other, "start", "--json", "--", "sleep", "1000000").stdout)
        for _ in range(3)
    ]
    for rec in theirs:
        os.kill(rec["workerPid"], signal.SIGSTOP)
    try:
        began = time.monotonic()
        listed = _cli(env_here, "status", "--json")
        took = time.monotonic() - began
        assert json.loads(listed.stdout)["sessions"] == [], listed.stdout
        assert took < 1.0, took  # 3 x 0.5 s and more before
        assert "stale" not in _cli(env_here, "doctor").stdout  # nor are they this home's
    finally:
        for rec in theirs:
            os.kill(rec["workerPid"], signal.SIGCONT)
            _cli(env_other, "kill", "-s", rec["id"])


def test_homes_that_share_a_socket_directory_keep_their_own_spawners(
    agentty_home: Path, tmp_path: Path
) -> None:
    """Both homes' spawners listened on one `spawner.sock`: the second took it over from the
    first, whose home then said it had none running."""
    from agentty_core.launch.spawner_client import stop
    from tests.helpers.spawner import ready_spawner

    env_here, env_other, other = _shared_socket_dir(tmp_path)
    env_here["AGENTTY_SPAWNER"] = env_other["AGENTTY_SPAWNER"] = "1"
    try:
        for env, home in ((env_here, agentty_home), (env_other, other)):
            assert _cli(env, "start", "--", "true").returncode == 0  # launches its spawner
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("AGENTTY_SOCKET_DIR", env["AGENTTY_SOCKET_DIR"])
                ready_spawner(home)
        pids = []
        for env in (env_here, env_other):
            forked = json.loads(_cli(env, "start", "--json", "--", "sleep", "100").stdout)
            assert "agentty_core.worker.spawner" in " ".join(
                psutil.Process(forked["workerPid"]).cmdline()
            )
            _cli(env, "kill", "-s", forked["id"])
            spawner = json.loads(_cli(env, "status", "--json").stdout)["spawner"]
            assert spawner is not None and spawner["ready"] is True, spawner
            pids.append(spawner["pid"])
        assert pids[0] != pids[1] and all(map(psutil.pid_exists, pids)), pids
    finally:
        for env, home in ((env_here, agentty_home), (env_other, other)):
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("AGENTTY_SOCKET_DIR", env["AGENTTY_SOCKET_DIR"])
                stop(str(home))


def test_a_malformed_record_of_a_running_session_is_not_listed_again(agentty_home: Path) -> None:
    """A hand-edited record of a running session is skipped by readers, so its socket looked
    unrecorded: every command took the lock, rewrote the file (adding nothing: the id is
    there) and warned that the session was listed again."""
    rec = start("--", "sleep", "1000000")
    doc = json.loads((agentty_home / "sessions.json").read_bytes())
    doc["sessions"][0]["name"] = 5  # malformed: a name is a string
    write_private(agentty_home / "sessions.json", json.dumps(doc).encode())
    before = (agentty_home / "sessions.json").stat().st_mtime_ns
    for _ in range(2):
        listed = agentty("status", "--json", check=True)
        assert "listed again" not in listed.stderr, listed.stderr
    assert (agentty_home / "sessions.json").stat().st_mtime_ns == before
    assert json.loads(listed.stdout)["sessions"] == []
    assert "1 malformed or repeated record" in agentty("doctor").stdout  # reported there
    assert agentty("kill", "-s", rec["id"]).returncode == 2  # skipped by every reader


def test_a_time_without_its_offset_is_read_as_utc_and_doctor_names_the_fix_that_works(
    agentty_home: Path,
) -> None:
    """A hand-edited `startedAt` without its UTC offset: every reader uses the record (gc
    reads the time as UTC), yet `doctor` said `agentty gc` would remove it, and gc left it."""
    rec = start("--", "true")
    wait_until(lambda: agentty_json("status")["sessions"][0]["status"] == "exited")
    doc = json.loads((agentty_home / "sessions.json").read_bytes())
    doc["sessions"][0]["startedAt"] = doc["sessions"][0]["startedAt"].removesuffix("+00:00")
    write_private(agentty_home / "sessions.json", json.dumps(doc).encode())
    assert [r["id"] for r in agentty_json("status")["sessions"]] == [rec["id"]]
    doctor = agentty("doctor").stdout
    assert "no UTC offset" in doctor and f"edit {agentty_home / 'sessions.json'}" in doctor, doctor
    assert "agentty gc" not in doctor, doctor


def test_a_session_missing_from_the_list_that_ends_before_it_is_written_back_stays(
    agentty_home: Path,
) -> None:
    """Missing from the list (a hand edit), and not written back by its readers (the lock
    held, a full disk): killed, its worker found no record to write the exit into and the
    session vanished, its log and final screen left where `gc` never looks. The readers
    also said it was listed again when it was not."""
    rec = start("--", "sh", "-c", "echo MISSING-ONE; exec sleep 1000000")
    agentty("wait", "-s", rec["id"], "--text", "MISSING-ONE", check=True)
    write_private(agentty_home / "sessions.json", b'{"schema_version": 1, "sessions": []}')
    with state_lock(agentty_home):
        killed = agentty("kill", "-s", rec["id"], "--timeout", "0.5")
        assert killed.returncode == 0, killed.stderr
        assert "listed again" not in killed.stderr, killed.stderr
    wait_until(lambda: gone(rec["workerPid"]), timeout=30)
    (listed,) = agentty_json("status")["sessions"]
    assert listed["id"] == rec["id"] and listed["status"] == "exited", listed
    assert "MISSING-ONE" in agentty("get", "-s", rec["id"], check=True).stdout


def test_a_stopped_worker_missing_from_the_list_can_still_be_seen_and_ended(
    agentty_home: Path,
) -> None:
    """Missing from a readable list and not answering (stopped): `status` said "no
    sessions", `kill` "no such session", though a corrupt list lists such a session."""
    rec = start("--name", "stopped-one", "--", "sleep", "1000000")
    write_private(agentty_home / "sessions.json", b'{"schema_version": 1, "sessions": []}')
    os.kill(rec["workerPid"], signal.SIGSTOP)
    try:
        (listed,) = agentty_json("status")["sessions"]
        assert listed["id"] == rec["id"] and listed["status"] == "running", listed
        killed = agentty("kill", "-s", rec["id"], "--timeout", "0.5")
        assert killed.returncode == 0, killed.stderr
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(rec["workerPid"], signal.SIGCONT)
    wait_until(lambda: gone(rec["workerPid"]), timeout=30)


@pytest.mark.parametrize("spawner", ["0", "1"])
def test_a_name_of_a_session_missing_from_the_list_is_not_given_again(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch, spawner: str
) -> None:
    """`start --name web` checked names against the list as stored: with the first `web`
    missing from it, a second `web` started, and `-s web` then picked one of the two."""
    monkeypatch.setenv("AGENTTY_SPAWNER", spawner)
    if spawner == "1":
        from tests.helpers.spawner import warm

        warm(agentty_home)
        agentty("kill", check=True)
    first = start("--name", "web", "--", "sleep", "1000000")
    write_private(agentty_home / "sessions.json", b'{"schema_version": 1, "sessions": []}')
    second = agentty("start", "--name", "web", "--", "sleep", "1000000")
    assert second.returncode == 2, second
    assert second.stderr == "agentty: error: a running session is already named 'web'\n"
    agentty("kill", "-s", first["id"], check=True)


def test_the_status_lane_hands_over_only_a_socket_somebody_listens_on(
    agentty_home: Path,
) -> None:
    """The lane handed every `status` to the full path while a socket no record named was
    there: a malformed record's session (the full path counts it as known) or a dead
    worker's socket not swept yet. Three to four times the lane's time, for the same
    answer."""
    from tests.integration.test_hotpath import FULL, LANE_CHECK

    malformed = start("--", "sleep", "1000000")
    doc = json.loads((agentty_home / "sessions.json").read_bytes())
    doc["sessions"][0]["name"] = 5
    dead = start("--", "sleep", "1000001")
    doc["sessions"] = [doc["sessions"][0]]  # the dead one is missing
    write_private(agentty_home / "sessions.json", json.dumps(doc).encode())
    sigkill(dead["workerPid"])
    wait_until(lambda: gone(dead["workerPid"]))
    for args in (["status"], ["status", "--json"]):
        lane = subprocess.run(
            [sys.executable, "-c", LANE_CHECK, *args], capture_output=True, text=True
        )
        assert lane.stderr.splitlines()[-1].startswith("CODE=0 "), lane.stderr
        full = subprocess.run([*FULL, *args], capture_output=True, text=True)
        assert (
            full.stdout == subprocess.run([AGENTTY, *args], capture_output=True, text=True).stdout
        )
    os.kill(malformed["workerPid"], signal.SIGTERM)
    wait_until(lambda: gone(malformed["workerPid"]), timeout=30)


def test_a_warning_is_one_line_said_as_agentty_says_everything(agentty_home: Path) -> None:
    """The list rebuilt or a session brought back was said as logging's bare message."""
    rec = start("--", "sleep", "1000000")
    write_private(agentty_home / "sessions.json", b'{"schema_version": 1, "sessions": []}')
    said = agentty("status").stderr
    assert said == (
        f"agentty: warning: {agentty_home / 'sessions.json'} did not list running session(s) "
        f"{rec['id']}: listed again\n"
    )
    agentty("kill", "-s", rec["id"], check=True)


def test_a_stopped_session_missing_from_the_list_keeps_its_name(agentty_home: Path) -> None:
    """Listed while its worker was stopped, the session was written back without its name
    (its processes do not tell it), and once the worker ran again `start --name` gave the
    name to a second session."""
    rec = start("--name", "web", "--", "sleep", "1000000")
    write_private(agentty_home / "sessions.json", b'{"schema_version": 1, "sessions": []}')
    os.kill(rec["workerPid"], signal.SIGSTOP)
    try:
        (listed,) = agentty_json("status")["sessions"]
        assert listed["id"] == rec["id"], listed
    finally:
        os.kill(rec["workerPid"], signal.SIGCONT)
    (listed,) = agentty_json("status")["sessions"]
    assert listed["name"] == "web", listed
    second = agentty("start", "--name", "web", "--", "sleep", "1000000")
    assert second.returncode == 2, second
    agentty("kill", "-s", "web", check=True)


@pytest.mark.parametrize("pointer", [b"0123abcd\n", b"\x1b[31mjunk\n"], ids=["gone", "garbage"])
def test_doctor_says_the_active_pointer_names_no_session(
    agentty_home: Path, pointer: bytes
) -> None:
    """Commands without --session find no session then; doctor said nothing of it."""
    sid = agentty_json("start", "--", "cat")["id"]
    (agentty_home / "active").write_bytes(pointer)
    doctor = agentty("doctor", "--json")
    active = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}["active"]
    assert doctor.returncode == 1 and not active["ok"], active
    assert "names no recorded session" in active["detail"] and "\x1b" not in active["detail"]
    assert active["fix"] == "agentty attach ID"
    agentty("attach", sid, check=True)
    assert {c["name"]: c for c in agentty_json("doctor")["checks"]}["active"]["ok"]
    agentty("kill", "--session", sid, check=True)


def test_doctor_says_how_many_ended_sessions_every_start_rewrites(agentty_home: Path) -> None:
    """Every start and exit reads and writes sessions.json whole: with hundreds of ended
    sessions that is most of a start's time, and only `gc` makes it small again."""
    from agentty_core.cli.doctor import MANY_ENDED
    from agentty_core.paths import Home
    from agentty_core.state.store import StateStore

    sid = agentty_json("start", "--", "cat")["id"]
    agentty("kill", "--session", sid, check=True)
    (ended,) = agentty_json("status")["sessions"]

    def pad(sessions: list[Any]) -> None:
        sessions.extend({**ended, "id": f"{i:08x}"} for i in range(MANY_ENDED - 1))

    def state_check() -> dict[str, Any]:
        found: dict[str, Any] = {c["name"]: c for c in agentty_json("doctor")["checks"]}
        return dict(found["state"])

    StateStore(Home.resolve(agentty_home)).mutate(pad)
    state = state_check()
    assert state["ok"] and f"{MANY_ENDED} of them ended" in state["detail"], state
    assert "agentty gc" in state["detail"], state
    agentty("gc", check=True)
    state = state_check()
    assert state["ok"] and "ended" not in state["detail"], state

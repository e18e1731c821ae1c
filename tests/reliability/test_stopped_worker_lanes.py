"""A worker that is alive but never answers (SIGSTOP): the CLI's lanes give the full path's
answer after the full path's own wait, once, instead of waiting it out and then handing the
command to the full path to wait it out again."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentty_core.spawning import stopped
from tests.helpers.cli import (
    AGENTTY,
    agentty,
    agentty_json,
    run_holds,
    signals_default,
    wait_until,
)
from tests.integration.test_hotpath import LANE_CHECK

WAIT = 5.0  # the full path's wait for a worker's answer (lane.TIMEOUT, Client's default)


def _stopped_worker(argv: list[str]) -> tuple[str, int]:
    rec = agentty_json("start", "--json", "--", *argv)
    os.kill(int(rec["workerPid"]), signal.SIGSTOP)
    return str(rec["id"]), int(rec["workerPid"])


def _timed(command: list[str], *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    began = time.monotonic()
    proc = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    return time.monotonic() - began, proc


def _said_stopped(worker: int) -> str:
    return (
        f"agentty: error: worker did not answer in time: it is stopped (pid {worker};"
        f" kill -CONT {worker} resumes it, agentty kill ends the session)"
    )


def test_get_and_wait_say_it_in_the_lane(agentty_home: Path) -> None:
    """Seen stopped before anything is sent: said at once (it waited the full path's 5 s
    to say "did not answer", and not why), with what resumes or ends it."""
    sid, worker = _stopped_worker(["cat"])
    wait_until(lambda: stopped(worker))
    try:
        for args in (["get"], ["wait", "--text", "never", "--timeout", "1"]):
            took, lane = _timed([sys.executable, "-c", LANE_CHECK], *args)
            *said, used = lane.stderr.splitlines()
            assert used.startswith("CODE=1 "), (args, lane.stderr)  # answered, not handed on
            assert said == [_said_stopped(worker)]
            assert took < WAIT / 2, took
    finally:
        os.kill(worker, signal.SIGCONT)
        agentty("kill", "-s", sid, check=True)


@pytest.mark.parametrize(
    "args",
    [["text", "typed"], ["key", "x"], ["paste", "typed"], ["send", "typed", "Enter"]],
    ids=["text", "key", "paste", "send"],
)
def test_input_to_a_stopped_worker_is_refused_at_once_and_never_typed(
    agentty_home: Path, args: list[str]
) -> None:
    """Nothing is sent to a worker seen stopped: once it runs again, nothing was typed."""
    sid, worker = _stopped_worker(["cat"])
    wait_until(lambda: stopped(worker))
    try:
        took, lane = _timed([sys.executable, "-c", LANE_CHECK], *args)
        *said, used = lane.stderr.splitlines()
        assert used.startswith("CODE=1 "), lane.stderr
        assert said == [_said_stopped(worker)]
        assert took < WAIT / 2, took
    finally:
        os.kill(worker, signal.SIGCONT)
    time.sleep(0.3)  # (what it would type, it types as soon as it runs)
    assert agentty_json("get", "--json")["lines"][0] == ""
    agentty("kill", "-s", sid, check=True)


def test_the_full_path_says_a_worker_is_stopped_after_its_wait(
    agentty_home: Path, tmp_path: Path
) -> None:
    """`text --file` (the full path's Client) sends in parts: the send stalled, and said
    "worker stopped answering: Resource temporarily unavailable" (EAGAIN's words); the API's
    wait ran out with "did not answer" and nothing of why."""
    from agentty_core.client import Client
    from agentty_core.errors import WorkerUnreachable

    sid, worker = _stopped_worker(["cat"])
    wait_until(lambda: stopped(worker))
    big = tmp_path / "big.txt"
    big.write_text("y" * 2_000_000)
    try:
        _, proc = _timed([AGENTTY], "text", "--file", str(big))
        assert (proc.returncode, proc.stderr) == (1, _said_stopped(worker) + "\n")
        with pytest.raises(WorkerUnreachable) as caught:
            Client().text(sid, "typed")
        assert "agentty: error: " + str(caught.value) == _said_stopped(worker)
    finally:
        os.kill(worker, signal.SIGCONT)
        agentty("kill", "-s", sid, check=True)


def test_kill_of_a_stopped_worker_ends_it_from_outside_at_once(agentty_home: Path) -> None:
    """The lane sees the worker stopped instead of waiting out the ping (5 s), and the
    outside ladder's SIGHUP comes with SIGCONT, as a shell's to its stopped jobs: the worker
    runs again, sees its program end and records it. Before, the HUP's grace (2 s) was
    waited out for the stopped worker, which only SIGTERM's SIGCONT woke: 7.5 s in all.
    (Before that: the kill's own wait and a second ping, 23 s.)"""
    sid, _ = _stopped_worker(["sleep", "1000"])
    took, proc = _timed([AGENTTY], "kill", "--json", "-s", sid)
    assert proc.returncode == 0, proc.stderr
    killed = json.loads(proc.stdout)
    assert killed["escalated"] == ["SIGHUP"], killed
    assert took < WAIT, took
    rec = agentty_json("status")["sessions"][0]
    assert (rec["status"], rec["signal"]) == ("exited", "SIGHUP"), rec


def test_the_api_kill_of_a_stopped_worker_does_not_wait_for_its_ping(agentty_home: Path) -> None:
    """`Client.kill` (the MCP server's) pinged the stopped worker first and waited 5 s."""
    from agentty_core.client import Client
    from agentty_core.spawning import stopped

    sid, worker = _stopped_worker(["sleep", "1000"])
    wait_until(lambda: stopped(worker))  # (SIGSTOP takes a moment to land on a busy worker)
    began = time.monotonic()
    killed = Client().kill(sid)
    assert time.monotonic() - began < WAIT
    assert killed["escalated"] == ["SIGHUP"] and killed["signal"] == "SIGHUP", killed


STUBBORN = [
    "bash",
    "-c",
    "trap 'echo got-HUP' HUP; trap 'echo got-TERM' TERM; echo up; while :; do sleep 0.1; done",
]


@pytest.mark.parametrize("way", ["cli", "api"])
def test_a_worker_stopped_during_its_kill_does_not_hold_the_kill(
    agentty_home: Path, way: str
) -> None:
    """The worker stopped after it took the kill (its program ignoring HUP and TERM): the
    caller waited for its answer to the end (grace x 3 + 10 s: 18 s, 190 s at --timeout
    60). It looks every second whether the worker runs, and ends the session from outside
    once it does not (its SIGCONT lets the worker record the end)."""
    from agentty_core.client import Client
    from agentty_core.spawning import stopped

    rec = agentty_json("start", "--json", "--", *STUBBORN)
    agentty("wait", "--text", "up", check=True)
    import threading

    answers: list[object] = []

    def kill() -> None:
        if way == "api":
            answers.append(Client().kill(rec["id"]))
            return
        done = subprocess.run([AGENTTY, "kill", "--json"], capture_output=True, text=True)
        answers.append(json.loads(done.stdout) if done.returncode == 0 else done)

    began = time.monotonic()
    killing = threading.Thread(target=kill)
    killing.start()
    agentty("wait", "--text", "got-HUP", check=True)  # the kill is under way
    os.kill(int(rec["workerPid"]), signal.SIGSTOP)
    wait_until(lambda: stopped(int(rec["workerPid"])))
    killing.join(timeout=60)
    killed = answers[0]
    assert isinstance(killed, dict), killed
    assert time.monotonic() - began < 12, killed  # (2 + 2 + 2 s of ladder: 18 s before)
    ended = agentty_json("status")["sessions"][0]
    # Its SIGCONT lets the worker record the end, unless (a loaded machine) the outside
    # ladder's SIGKILL comes first: then it is lost, and said so.
    assert (ended["status"], ended["signal"]) in (("exited", "SIGKILL"), ("lost", None)), ended


def test_run_with_a_stopped_worker_ends_once(agentty_home: Path, tmp_path: Path) -> None:
    """`run`'s lane: the exit wait is never answered; the session is ended from outside and
    removed, with the full path's message and exit code, once its --timeout is up."""
    from tests.helpers.spawner import ready_spawner

    env = dict(os.environ, AGENTTY_SPAWNER="1")
    agentty("start", "--", "true", env=env, check=True)
    ready_spawner(agentty_home)
    agentty("gc", check=True)
    began = time.monotonic()
    proc = subprocess.Popen(
        [AGENTTY, "run", "--timeout", "2", "--", "sleep", "30"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Stopped once `run` holds its session (ready, waiting for the exit): stopped before it
    # said it is ready, the worker fails the start instead (tested with the spawner).
    wait_until(lambda: run_holds(agentty_home), timeout=30)
    recs = agentty_json("status")["sessions"]
    os.kill(int(recs[0]["workerPid"]), signal.SIGSTOP)
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - began
    assert proc.returncode == 1
    assert err == _said_stopped(int(recs[0]["workerPid"])) + "\n"
    # 18 s before (the full path's wait on top), then 7.5: its --timeout and the answer's
    # 5 s grace; the worker is looked at once the wait's own time is up.
    assert took < 2 + WAIT, took
    assert agentty_json("status")["sessions"] == []


LANE_SLOW_READER = """
import sys, time
from agentty_core.cli import hotread
from agentty_core.cli.hotpath import fast_lane
real = hotread.read_reply
waited = []
def slow(sock, **kwargs):
    if not waited:  # both answers (the ping's, the kill's) are in before the first read
        waited.append(time.sleep(0.5))
    return real(sock, **kwargs)
hotread.read_reply = slow
code = fast_lane(sys.argv[1:])
print(f"CODE={code}", file=sys.stderr)
sys.exit(code or 0)
"""


def test_a_kill_whose_answers_come_in_one_read(agentty_home: Path) -> None:
    """The ping's answer and the kill's, read at once by a slow caller: the second is kept
    for the second read (it was dropped, and the full path then said 'already exited')."""
    rec = agentty_json("start", "--json", "--", "sleep", "1000")
    _, proc = _timed([sys.executable, "-c", LANE_SLOW_READER], "kill", "-s", str(rec["id"]))
    assert proc.stderr.splitlines()[-1] == "CODE=0", proc.stderr
    assert proc.stdout.startswith(f"killed {rec['id']}")


def test_run_whose_output_fails_on_a_timeout_still_ends_its_session(agentty_home: Path) -> None:
    proc = subprocess.Popen(
        # A screen larger than stdout's buffer: written, not only buffered, before the end.
        [
            AGENTTY,
            "run",
            "--timeout",
            "2",
            "--cols",
            "500",
            "--rows",
            "100",
            "--",
            "sh",
            "-c",
            "yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | head -c 200000; sleep 30",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # nobody reads what it prints: its write fails
    assert proc.wait(timeout=60) != 0
    assert agentty_json("status")["sessions"] == []
    from tests.helpers.census import processes_of_home

    wait_until(lambda: processes_of_home(str(agentty_home)) == [], timeout=15)


def test_status_goes_without_a_stopped_workers_fields_in_the_lane(agentty_home: Path) -> None:
    """Every form of `status` asks the running workers (a program may have ended unrecorded):
    one that does not answer in time is gone without, as the full path does, not handed on
    to the full path to be waited for again."""
    from tests.integration.test_hotpath import FULL

    sid, worker = _stopped_worker(["cat"])
    try:
        for args in (["status"], ["status", "-q"], ["status", "--json"]):
            _, lane = _timed([sys.executable, "-c", LANE_CHECK], *args)
            assert lane.stderr.splitlines()[-1].startswith("CODE=0 "), (args, lane.stderr)
            _, fast = _timed([AGENTTY], *args)
            _, full = _timed(FULL, *args)
            assert fast.stdout == full.stdout and sid in fast.stdout, args
    finally:
        os.kill(worker, signal.SIGCONT)
        agentty("kill", "-s", sid, check=True)


def test_input_that_timed_out_is_not_typed_when_the_worker_resumes(agentty_home: Path) -> None:
    """`text`, `key` and `signal` to a stopped worker fail (exit 1, "did not answer": it is
    stopped); their
    requests stayed in the socket and were done once it ran again: a caller who retried
    typed twice. A request now says until when its caller waits; a late one is not done."""
    from tests.integration.test_hotpath import FULL

    sid, worker = _stopped_worker(["sh", "-c", "stty -echo; exec cat"])
    try:
        for way in ([AGENTTY], FULL):
            _, typed = _timed(way, "text", "-s", sid, "--enter", "typed-late")
            _, pressed = _timed(way, "key", "-s", sid, "x", "Enter")
            for proc in (typed, pressed):  # the same words on both paths
                assert proc.returncode == 1, proc.stderr
                assert proc.stderr == _said_stopped(worker) + "\n"
        _, interrupted = _timed(FULL, "signal", "-s", sid, "INT")
        assert interrupted.returncode == 1, interrupted.stderr
    finally:
        os.kill(worker, signal.SIGCONT)
    _only_what_is_typed_now(sid)


def test_async_input_that_timed_out_is_not_typed_either(agentty_home: Path) -> None:
    """The async connection (the MCP server's, the asyncio API's) says until when it waits
    too."""
    import asyncio

    from agentty_core.errors import WorkerUnreachable
    from agentty_core.ipc.aio_client import AsyncConnection

    sid, worker = _stopped_worker(["sh", "-c", "stty -echo; exec cat"])
    socket_path = str(agentty_home / "sockets" / f"{sid}.sock")

    async def type_late() -> None:
        conn = await AsyncConnection.open(socket_path, timeout=5.0, expect_pid=worker)
        try:
            await conn.call("text", {"data": "typed-late\n"}, timeout=0.5)
        finally:
            conn.close()

    try:
        try:
            asyncio.run(type_late())
        except WorkerUnreachable:
            pass
        else:
            raise AssertionError("a stopped worker answered")
    finally:
        os.kill(worker, signal.SIGCONT)
    agentty("text", "-s", sid, "--enter", "on-time", check=True)
    agentty("wait", "-s", sid, "--text", "on-time", check=True)
    assert agentty("get", "-s", sid, check=True).stdout.split() == ["on-time"]
    agentty("kill", "-s", sid, check=True)


RAW_LATE_READER = (
    "import os, sys, time, tty; tty.setraw(0); print('raw-ready', end='\\r\\n', flush=True); "
    "time.sleep(6); got = os.read(0, 100); print('GOT', repr(got), end='\\r\\n', flush=True); "
    "time.sleep(100)"
)


def test_text_with_enter_resumed_at_the_last_moment_is_done_and_answered_or_neither(
    agentty_home: Path,
) -> None:
    """A stopped worker resumed just before its caller's wait ran out took `text --enter`
    in time, typed the text, gave a program reading raw its Enter ENTER_GAP later, and
    answered after the caller had said "did not answer in time": typed all the same. A
    caller told it failed must find nothing typed; one told it was done, all of it."""
    from agentty_core.errors import AgenttyError
    from agentty_core.ipc.client import Connection

    rec = agentty_json("start", "--json", "--", sys.executable, "-c", RAW_LATE_READER)
    sid, worker = str(rec["id"]), int(rec["workerPid"])
    agentty("wait", "-s", sid, "--text", "raw-ready", check=True)
    conn = Connection(str(agentty_home / "sockets" / f"{sid}.sock"), timeout=5.0)
    os.kill(worker, signal.SIGSTOP)
    try:
        waited = 1.0
        resumed_before_the_end = 0.15  # inside the last ENTER_GAP (0.25 s) of the wait

        def resume() -> None:
            time.sleep(waited - resumed_before_the_end)
            os.kill(worker, signal.SIGCONT)

        import threading

        threading.Thread(target=resume, daemon=True).start()
        try:
            conn.call("text", {"data": "x", "enter": True}, timeout=waited)
            done = True
        except AgenttyError:
            done = False
    finally:
        os.kill(worker, signal.SIGCONT)
        conn.close()
    agentty("wait", "-s", sid, "--text", "GOT", "--timeout", "15", check=True)
    screen = agentty("get", "-s", sid, check=True).stdout
    typed = "GOT b'x\\r'" in screen
    assert typed == done, (done, screen)
    agentty("kill", "-s", sid, check=True)


def test_a_send_step_that_timed_out_is_not_done_when_the_worker_goes_on(
    agentty_home: Path,
) -> None:
    """`send`'s later steps were stamped with the first one's time and TIMEOUT per step:
    the second could be waited for 5 s and given up on (exit 1), yet be done until 10 s
    after the first. A worker slow after the first step (7 s) typed it all the same, and a
    caller that tried again pressed Enter twice."""
    from tests.integration.test_hotpath import FULL

    env = {**os.environ, "AGENTTY_FAILPOINTS": "worker.answered_text=sleep:7"}
    rec = json.loads(
        subprocess.run(
            [AGENTTY, "start", "--json", "--", "sh", "-c", "stty -echo; exec cat"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    sid = rec["id"]
    for way in ([AGENTTY], FULL):
        began = time.monotonic()
        sent = subprocess.run(
            [*way, "send", "-s", sid, "abc", "Enter"], capture_output=True, text=True, timeout=60
        )
        assert sent.returncode == 1, sent.stderr
        assert sent.stderr == "agentty: error: worker did not answer in time\n"
        time.sleep(max(0.0, began + 8 - time.monotonic()))  # the worker has read the Enter
        screen = agentty("get", "-s", sid, check=True).stdout
        assert "abc" not in screen, (way, screen)  # (cat writes a line once Enter ends it)
    agentty("kill", "-s", sid, check=True)


MANY = 65  # more than the lane asks at once (hotstatus.BATCH) and than the full path's threads


def test_many_stopped_workers_cost_status_one_wait(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stopped worker is gone without after the one INFO_TIMEOUT every ask shares, not
    after a timeout of its own per batch of asks (2 s in the lane and 5 s on the full path
    with 65 stopped, before)."""
    from agentty_core.client import Client
    from tests.helpers.spawner import warm

    monkeypatch.setenv("AGENTTY_SPAWNER", "1")  # forked workers: 65 of them start fast and small
    warm(agentty_home)
    workers = [int(agentty_json("start", "--json", "--", "cat")["workerPid"]) for _ in range(MANY)]
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        lane_took, lane = _timed([sys.executable, "-c", LANE_CHECK], "status", "--json")
        assert lane.stderr.splitlines()[-1].startswith("CODE=0 "), lane.stderr
        began = time.monotonic()
        listed = Client().sessions(live_info=True)
        full_took = time.monotonic() - began
        assert sum(r["status"] == "running" for r in listed) == MANY + 1
        # One shared wait of a second, and a little for each ask after it; slack for a busy
        # machine below the wait that came before it.
        assert lane_took < 1.8, lane_took
        assert full_took < 2.5, full_took
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    for rec in listed:
        agentty("kill", "-s", str(rec["id"]), check=True)


def test_input_of_a_caller_that_is_gone_is_not_typed_when_the_worker_resumes(
    agentty_home: Path,
) -> None:
    """`send` or `text --enter` interrupted (Ctrl-C) while the worker was stopped: their
    request stayed in the socket, in time by its `until`, and was typed once the worker ran
    again, after the caller had exited 130 (`send`: its text without its Enter). The full
    path's: the lane sends nothing to a worker it sees stopped (one stopped just after it
    looked is the worker's own case, the same as this)."""
    from tests.integration.test_hotpath import FULL

    sid, worker = _stopped_worker(["sh", "-c", "stty -echo; exec cat"])
    try:
        for args in (
            ["send", "-s", sid, "GONE1", "Enter"],
            ["text", "-s", sid, "--enter", "GONE2"],
        ):
            proc = subprocess.Popen(
                [*FULL, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                preexec_fn=signals_default,
            )
            wait_until(functools.partial(_waiting_for_answer, proc.pid))  # its request sent
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 130
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()
            proc.stderr.close()
    finally:
        os.kill(worker, signal.SIGCONT)
    _only_what_is_typed_now(sid)


def _only_what_is_typed_now(sid: str) -> None:
    """Typed once the worker runs again, a line is all the screen shows: nothing came
    before it; then the session ends."""
    agentty("text", "-s", sid, "--enter", "on-time", check=True)
    agentty("wait", "-s", sid, "--text", "on-time", check=True)
    screen = agentty("get", "-s", sid, check=True).stdout
    assert screen.split() == ["on-time"], screen
    agentty("kill", "-s", sid, check=True)


def _waiting_for_answer(pid: int) -> bool:
    """Is process `pid` blocked reading a Unix socket (its request sent, the answer awaited)?"""
    try:
        return Path(f"/proc/{pid}/wchan").read_text() == "unix_stream_read_generic"
    except OSError:
        return False


def test_doctor_says_a_worker_or_the_spawner_is_stopped(agentty_home: Path) -> None:
    """A stopped worker passed as "every worker alive" (its session answered nothing), and
    a stopped spawner as "ready" (every start waited for it, then went the direct way)."""
    from tests.helpers.spawner import ready_spawner

    sid, worker = _stopped_worker(["cat"])
    env = {**os.environ, "AGENTTY_SPAWNER": "1"}
    try:
        agentty("start", "--", "cat", env=env, check=True)  # launches the spawner
        spawner = int(ready_spawner(agentty_home)["pid"])
        os.kill(spawner, signal.SIGSTOP)
        try:
            doctor = agentty("doctor", "--json")  # (exit 1: a check failed)
            checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
        finally:
            os.kill(spawner, signal.SIGCONT)
    finally:
        os.kill(worker, signal.SIGCONT)
    sessions, spawned = checks["sessions"], checks["spawner"]
    assert not sessions["ok"] and f"{sid} (worker {worker})" in sessions["detail"], sessions
    assert sessions["fix"] == f"kill -CONT {worker}, or agentty kill --session {sid}", sessions
    assert not spawned["ok"] and f"pid {spawner} is stopped" in spawned["detail"], spawned
    assert spawned["fix"] == f"kill -CONT {spawner}", spawned
    for rec in agentty_json("status")["sessions"]:
        if rec["status"] == "running":
            agentty("kill", "--session", rec["id"], check=True)


def test_doctor_names_a_stopped_worker_beside_a_dead_one(agentty_home: Path) -> None:
    """A dead worker's line was said alone: the stopped one beside it went unmentioned (an
    attack round)."""
    dead = agentty_json("start", "--", "cat")
    os.kill(int(dead["workerPid"]), signal.SIGKILL)
    sid, worker = _stopped_worker(["cat"])
    try:
        doctor = agentty("doctor", "--json")
    finally:
        os.kill(worker, signal.SIGCONT)
    sessions = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}["sessions"]
    assert f"died: {dead['id']}" in sessions["detail"], sessions
    assert f"stopped: {sid} (worker {worker})" in sessions["detail"], sessions
    assert "orphans --kill" in sessions["fix"] and f"kill -CONT {worker}" in sessions["fix"]
    agentty("kill", "--session", sid, check=True)
    agentty("orphans", "--kill", check=True)

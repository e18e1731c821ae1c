"""`agentty run` ends what it started on every way out: SIGINT (Ctrl-C), SIGTERM, SIGHUP.

Issue #16.8: on Ctrl-C `run` exited 130 and left the program running (and SIGTERM or SIGHUP
killed `run` outright, cleanup and all). The signal is sent for real to a real `agentty run`
process, at the moment its program runs; afterwards no process of the home may be left and
no record either (`run` removes its session)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import psutil
import pytest

from tests.helpers.census import describe, processes_of_home
from tests.helpers.cli import run_holds
from tests.reliability.conftest import AGENTTY, wait_until


def _program_runs(home: Path) -> bool:
    """The session's program (`sleep`) is up: the moment to interrupt `run`."""
    for proc in processes_of_home(str(home)):
        try:
            if proc.name() == "sleep":
                return True
        except Exception:
            continue
    return False


@pytest.fixture(params=["full", "lane"])
def way(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, agentty_home: Path
) -> set[int]:
    """`run` the full way (no spawner) or on its lane (`cli/runlane.py`, the spawner warm);
    the spawner's own processes, which outlive a `run` by design."""
    if request.param == "full":
        return set()
    from tests.helpers.cli import agentty, agentty_json
    from tests.helpers.spawner import helpers, ready_spawner

    monkeypatch.setenv("AGENTTY_SPAWNER", "1")
    rec = agentty_json("start", "--", "cat")
    info = ready_spawner(agentty_home)
    agentty("kill", "-s", rec["id"], check=True)
    agentty("gc", check=True)
    return {info["pid"], *helpers(agentty_home)}


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name
)
def test_run_ends_its_session_when_signalled(
    agentty_home: Path, way: set[int], signum: int
) -> None:
    _signal_run(agentty_home, signum, os.environ, way)


def test_a_signal_during_start_ends_the_session_once_started(
    agentty_home: Path, way: set[int]
) -> None:
    """The program runs but `start` has not returned (its worker is held before `ready`):
    the signal is noted, and the session ended as soon as `run` knows its id."""
    env = {**os.environ, "AGENTTY_FAILPOINTS": "worker.before_ready=sleep:3"}
    _signal_run(agentty_home, signal.SIGINT, env, way)


def _signal_run(agentty_home: Path, signum: int, env: Mapping[str, str], spared: set[int]) -> None:
    run = subprocess.Popen(
        [AGENTTY, "run", "--timeout", "120", "--", "sh", "-c", "echo started; exec sleep 120"],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: _program_runs(agentty_home), timeout=30)
        run.send_signal(signum)
        _, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 128 + signum, err
    # `run` returns once the kill is confirmed; the worker itself may take a moment to exit.
    deadline = time.monotonic() + 5

    def left_over() -> list[psutil.Process]:
        from tests.helpers.spawner import helpers

        spared.update(helpers(agentty_home))  # a new spare, forked meanwhile
        return [p for p in processes_of_home(str(agentty_home)) if p.pid not in spared]

    while (left := left_over()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, describe(left)
    state = agentty_home / "sessions.json"
    sessions = json.loads(state.read_text())["sessions"] if state.exists() else []
    assert sessions == []
    assert signal.Signals(signum).name in err  # says why it stopped


def test_run_killed_outright_leaves_no_program(agentty_home: Path, way: set[int]) -> None:
    """SIGKILL (a harness's timeout): no handler of `run` runs. Its session is held by a
    connection of its own, which the kernel closes with the process: the worker ends it.
    The record stays (nobody is left to remove it): exited, by SIGHUP."""
    run = subprocess.Popen(
        [AGENTTY, "run", "--timeout", "120", "--", "sh", "-c", "exec sleep 120"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:  # once held: killed before (a loaded machine), HOLD_WAIT would end it, tested below
        wait_until(lambda: _program_runs(agentty_home) and run_holds(agentty_home), timeout=30)
    finally:
        run.kill()
        run.wait()

    def left_over() -> list[psutil.Process]:
        from tests.helpers.spawner import helpers

        way.update(helpers(agentty_home))
        return [p for p in processes_of_home(str(agentty_home)) if p.pid not in way]

    def ended() -> dict[str, object] | bool:
        (session,) = json.loads((agentty_home / "sessions.json").read_text())["sessions"]
        return session if session["status"] != "running" else False

    session = wait_until(ended, timeout=10)
    assert isinstance(session, dict)
    assert (session["status"], session["signal"]) == ("exited", "SIGHUP")
    wait_until(lambda: not left_over(), timeout=10)


@pytest.mark.parametrize("spawner", ["0", "1"])
def test_a_session_started_to_be_held_that_nobody_holds_is_ended(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch, spawner: str
) -> None:
    """`run` killed in the milliseconds between its session's start and its hold: nothing
    ended the program. A session started `held` that no connection holds within the
    worker's HOLD_WAIT (10 s) is ended by its worker."""
    from agentty_core.client import Client
    from agentty_core.worker.requests import HOLD_WAIT

    monkeypatch.setenv("AGENTTY_SPAWNER", spawner)
    client = Client()
    if spawner == "1":  # (the lane's way: a worker forked by the spawner)
        client.start(["true"])
        from tests.helpers.spawner import ready_spawner

        ready_spawner(agentty_home)
    held = client.start(["sleep", "1022"], held=True, activate=False)
    kept = client.start(["sleep", "1023"], held=True, activate=False)
    holder = client.hold(kept["id"])
    try:
        ended = wait_until(
            lambda: client.resolve(held["id"])["status"] == "exited", timeout=HOLD_WAIT + 10
        )
        assert ended
        assert client.resolve(held["id"])["signal"] == "SIGHUP"
        assert client.resolve(kept["id"])["status"] == "running"  # held: it runs on
    finally:
        holder.close()
    wait_until(lambda: client.resolve(kept["id"])["status"] == "exited", timeout=10)


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name
)
def test_a_signal_while_the_spawner_is_asked_in_vain_starts_nothing(
    agentty_home: Path, signum: int
) -> None:
    """The spawner stopped: `run` asks it, gives up, and goes the full way. A signal that
    came meanwhile was dropped with the lane's handlers: the program was started and ran
    until --timeout, and `run` exited 3 (an attacker's round)."""
    from tests.helpers.cli import agentty
    from tests.helpers.spawner import ready_spawner

    env = {**os.environ, "AGENTTY_SPAWNER": "1"}
    agentty("start", "--", "true", env=env, check=True)
    spawner = ready_spawner(agentty_home)["pid"]
    agentty("gc", check=True)
    os.kill(spawner, signal.SIGSTOP)
    try:
        run = subprocess.Popen(
            [AGENTTY, "run", "--timeout", "20", "--", "sh", "-c", "echo started; sleep 30"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: _catches_sigterm(run.pid))  # the lane's handlers: asking it
        run.send_signal(signum)
        out, err = run.communicate(timeout=30)
    finally:
        os.kill(spawner, signal.SIGCONT)
    assert (run.returncode, out) == (128 + signum, ""), err
    assert (
        err
        == f"agentty: error: run stopped by {signal.Signals(signum).name}: nothing was started\n"
    )
    state = agentty_home / "sessions.json"
    assert json.loads(state.read_text())["sessions"] == []


def _catches_sigterm(pid: int) -> bool:
    """`run`'s handlers are in (`cli.run.Signals`): it is asking the stopped spawner, for
    the 0.25 s it gives one that makes no progress."""
    with open(f"/proc/{pid}/status") as f:
        caught = next(line for line in f if line.startswith("SigCgt:")).split()[1]
    return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))

"""The warm spawner against what an attacker (or an unlucky machine) does to it: a stopped
intermediate process, a caller whose I/O priority, OOM score or personality the spawner
does not share, a spawner launched from an odd context, a client that trickles its
request, a nonsense idle setting. Each case: the start still succeeds (directly where the
spawner cannot serve it), within a bounded wait, and nothing is left behind."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from agentty_core.launch import spawner_client
from agentty_core.ownership import lock_held
from tests.helpers.census import processes_of_home
from tests.helpers.cli import AGENTTY, agentty, signals_default, wait_until
from tests.helpers.spawner import (
    forked,
    gone,
    ready_spawner,
    spawner_info,
    start,
    succeeded_by,
    warm,
)

pytestmark = pytest.mark.usefixtures("spawner_on")


def stopped_of_home(home: Path) -> list[int]:
    found = []
    for proc in processes_of_home(str(home)):
        with contextlib.suppress(psutil.Error):
            if proc.status() == psutil.STATUS_STOPPED:
                found.append(proc.pid)
    return found


def start_from(
    wrapper: list[str], *, cwd: Path | None = None, preexec: Callable[[], None] | None = None
) -> dict[str, Any]:
    proc = subprocess.run(
        [*wrapper, AGENTTY, "start", "--json", "--", "cat"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        preexec_fn=preexec or signals_default,
    )
    assert proc.returncode == 0, proc.stderr
    rec: dict[str, Any] = json.loads(proc.stdout)
    return rec


# ----------------------------------------------------------------- 1: a stopped middle


def test_a_stopped_middle_is_given_up_on_quickly_and_holds_nothing(agentty_home: Path) -> None:
    """The intermediate process of the double fork stops (SIGSTOP, a debugger): the caller,
    told its pid, gives up on it within the spawner's short wait, not the answer's long one;
    the stopped middles are ended; the home's lock is not theirs, so once the spawner is
    gone a new one is launched."""
    env = dict(os.environ, AGENTTY_FAILPOINTS="spawner.middle=sigstop")
    start("cat", env=env)  # launches a spawner whose middles stop
    old = ready_spawner(agentty_home)
    began = time.monotonic()
    rec = start("cat")
    took = time.monotonic() - began
    assert not forked(rec)
    assert took < 2.5, f"the start waited {took:.2f}s for a stopped middle"
    wait_until(lambda: not stopped_of_home(agentty_home), timeout=10)
    assert spawner_client.stop(str(agentty_home))
    wait_until(lambda: not lock_held(str(agentty_home / "spawner.lock")), timeout=10)
    assert "spawner: none running" in agentty("status").stdout
    assert not forked(start("cat"))  # this one launches the next spawner
    new = ready_spawner(agentty_home)
    assert new["pid"] != old["pid"]
    assert forked(start("cat"))


def test_a_worker_forked_for_a_request_has_a_workers_name(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The middle names itself `agentty-middle`; the worker it forks takes the name back
    (the spawner's: a worker's, as a spare's worker has)."""
    monkeypatch.setenv("AGENTTY_FAILPOINTS", "spare.settled=sigstop")  # no spare: forked for
    info = warm(agentty_home)
    rec = start("cat")
    assert forked(rec)
    assert psutil.Process(rec["workerPid"]).name() == psutil.Process(info["pid"]).name()
    assert spawner_client.stop(str(agentty_home))
    wait_until(lambda: not stopped_of_home(agentty_home), timeout=15)


def test_a_stopped_middle_left_behind_is_ended_by_the_next_spawner(agentty_home: Path) -> None:
    """A middle stopped when its spawner was killed outright is nobody's: found by its name
    (`agentty-middle`) and state, as stopped spares and makers are."""
    from agentty_core import spawning
    from agentty_core.worker import spare

    script = (
        "import os, signal\n"
        f"open('/proc/self/comm', 'w').write({spawning.MIDDLE_NAME!r})\n"
        "os.kill(os.getpid(), signal.SIGSTOP)\n"
    )
    import sys

    proc = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ))
    try:
        wait_until(lambda: psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED)
        assert proc.pid in spare.end_stopped_leftovers(str(agentty_home))
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


# ----------------------------------------------------------------- 2: the caller's priorities


IONICE = pytest.param(["ionice", "-c", "3"], id="ionice")
CHOOM = pytest.param(["choom", "-n", "500", "--"], id="choom")
SETARCH = pytest.param(["setarch", os.uname().machine, "-R"], id="setarch")
CHRT = pytest.param(["chrt", "--idle", "0"], id="chrt")  # SCHED_IDLE: no privilege needed


def context_of(pid: int) -> tuple[Any, str, str]:
    proc = psutil.Process(pid)
    oom = Path(f"/proc/{pid}/oom_score_adj").read_text().strip()
    personality = Path(f"/proc/{pid}/personality").read_text().strip()
    return proc.ionice(), oom, personality


@pytest.mark.parametrize("wrapper", [IONICE, CHOOM, SETARCH, CHRT])
def test_a_caller_with_other_priorities_gets_them(agentty_home: Path, wrapper: list[str]) -> None:
    """I/O priority, OOM score adjustment, personality and scheduling policy are inherited
    by a direct spawn: a spawner whose own differ does not fork for that caller."""
    if not shutil.which(wrapper[0]) or (wrapper[0] == "choom" and os.geteuid() != 0):
        pytest.skip(f"needs {wrapper[0]}")
    info = warm(agentty_home)
    probe = subprocess.run(
        [*wrapper, "sh", "-c", "cat /proc/self/oom_score_adj /proc/self/personality"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    rec = start_from(wrapper)
    assert not forked(rec)
    ionice, oom, personality = context_of(rec["workerPid"])
    assert [oom, personality] == probe
    if wrapper[0] == "ionice":
        assert ionice.ioclass == psutil.IOPRIO_CLASS_IDLE
    if wrapper[0] == "chrt":  # (and the program's, as the worker's)
        assert os.sched_getscheduler(rec["workerPid"]) == os.SCHED_IDLE
        assert os.sched_getscheduler(rec["pid"]) == os.SCHED_IDLE
    assert spawner_info(agentty_home) == info  # refused, not stepped down
    assert forked(start("cat"))


# ----------------------------------------------------------------- 3: the first caller's context


def test_the_spawner_keeps_no_directory_busy(agentty_home: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "mnt"
    workdir.mkdir()
    start_from([], cwd=workdir)
    info = ready_spawner(agentty_home)
    assert psutil.Process(info["pid"]).cwd() == "/"
    rec = start_from([], cwd=workdir)
    assert forked(rec) and psutil.Process(rec["workerPid"]).cwd() == str(workdir)


def _niced() -> None:
    signals_default()
    os.nice(10)


def _few_files() -> None:
    signals_default()
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def _idle_scheduled() -> None:
    signals_default()
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


@pytest.mark.parametrize(
    "launcher", [_niced, _few_files, _idle_scheduled], ids=["nice", "nofile", "sched-idle"]
)
def test_a_spawner_that_cannot_serve_a_normal_caller_steps_down(
    agentty_home: Path, launcher: Callable[[], None]
) -> None:
    """Launched at a higher nice value or lower hard limit than a later caller's, it cannot
    give that caller its own: the start goes the direct way, promptly, and the spawner makes
    way for one launched from that caller."""
    start_from([], preexec=launcher)
    old = ready_spawner(agentty_home)
    began = time.monotonic()
    assert not forked(start("cat"))
    assert time.monotonic() - began < 5.0
    succeeded_by(agentty_home, old)


def test_refused_requests_do_not_keep_the_spawner_alive(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTTY_SPAWNER_IDLE", "2")
    info = warm(agentty_home)
    path = str(agentty_home / "sockets" / "spawner.sock")
    deadline = time.monotonic() + 8
    while not gone(info["pid"]) and time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(1)
            sock.connect(path)
            sock.sendall(b"not a request\n")
            sock.recv(4096)  # refused: malformed
        time.sleep(0.3)
    assert gone(info["pid"]), "refused requests kept the idle spawner alive"


# ----------------------------------------------------------------- 4: a slow client


def test_a_trickling_client_does_not_hold_the_spawner(agentty_home: Path) -> None:
    """A request sent a byte at a time is given REQUEST_TIMEOUT in all, not per byte."""
    from agentty_core.worker.spawner import REQUEST_TIMEOUT

    warm(agentty_home)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(agentty_home / "sockets" / "spawner.sock"))
        began = time.monotonic()
        dropped = None
        while time.monotonic() - began < REQUEST_TIMEOUT + 4:
            try:
                sock.send(b"{")
            except OSError:
                dropped = time.monotonic() - began
                break
            sock.settimeout(0.5)
            try:
                if sock.recv(1) == b"":
                    dropped = time.monotonic() - began
                    break
            except TimeoutError:
                pass
        assert dropped is not None and dropped < REQUEST_TIMEOUT + 1.0, dropped
    assert forked(start("cat"))


# ----------------------------------------------------------------- 5: the idle setting


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "0", "soon"])
def test_a_nonsense_idle_setting_means_the_default(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from agentty_core.worker.spawner import IDLE

    monkeypatch.setenv("AGENTTY_SPAWNER_IDLE", value)
    info = warm(agentty_home)
    assert info["idle"] == IDLE
    assert forked(start("cat"))  # (NaN crashed it at its first wait: the start went direct)
    assert spawner_info(agentty_home) == info
    log = (agentty_home / "logs" / "spawner.log").read_text()
    assert "Traceback" not in log, log

"""The one session reaper (`agentty_core.pytest_plugin.reap`), used by the plugin's fixture
and by this suite's conftests: it ends what a test left, and with `leftovers=False` keeps
what a process census must see."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agentty_core.pytest_plugin import reap
from tests.helpers.census import processes_of_home
from tests.helpers.cli import agentty_json, signals_default, wait_until


@pytest.fixture
def stray(agentty_home: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process carrying the home's marker for a session the records do not name (what a
    worker's survivors look like once their record is gone)."""
    env = dict(os.environ, AGENTTY_HOME=str(agentty_home), AGENTTY_SESSION_ID="0badcafe")
    proc = subprocess.Popen(["sleep", "1000000"], env=env, stdin=subprocess.DEVNULL)
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def pids_of_home(home: Path) -> set[int]:
    return {p.pid for p in processes_of_home(str(home))}


def status_of(session_id: str) -> str:
    for rec in agentty_json("status")["sessions"]:
        if rec["id"] == session_id:
            return str(rec["status"])
    raise AssertionError(f"no record for {session_id}")


def test_reap_ends_running_and_lost_sessions_and_every_marked_leftover(
    agentty_home: Path, stray: subprocess.Popen[bytes]
) -> None:
    running = agentty_json("start", "--", "sleep", "1000000")
    lost = agentty_json("start", "--", "sh", "-c", "trap '' HUP; sleep 1000001; :")
    wait_until(lambda: len(pids_of_home(agentty_home)) >= 6)  # 2 workers, sleep, sh + sleep, stray
    os.kill(lost["workerPid"], signal.SIGKILL)  # its HUP-ignoring sleep outlives it
    wait_until(lambda: status_of(lost["id"]) == "lost")
    assert status_of(running["id"]) == "running"

    reap(agentty_home)

    stray.wait(timeout=10)  # ended by the reaper: collected here, so not a zombie
    wait_until(lambda: pids_of_home(agentty_home) == set())


def test_reap_without_leftovers_keeps_what_a_census_must_see(
    agentty_home: Path, stray: subprocess.Popen[bytes]
) -> None:
    rec = agentty_json("start", "--", "sleep", "1000000")

    reap(agentty_home, leftovers=False)

    wait_until(lambda: pids_of_home(agentty_home) == {stray.pid})
    assert status_of(rec["id"]) not in ("running", "starting", "lost")


def test_reap_of_a_home_with_unreadable_records_still_ends_leftovers(
    agentty_home: Path, stray: subprocess.Popen[bytes]
) -> None:
    (agentty_home / "sessions.json").write_bytes(b"\xff not json")

    reap(agentty_home)

    stray.wait(timeout=10)  # the reaper raised nothing, and swept by marker all the same


PLUGIN_TEST = """
import os, time

def test_long(agentty_session):
    agentty_session(["sleep", "{seconds}"])
    agentty_session(["sh", "-c", "exec sleep {seconds}"])
    print("started", os.environ["AGENTTY_HOME"], flush=True)
    time.sleep(600)

def test_gc_in_the_test(agentty_session):
    import subprocess, sys
    s = agentty_session(["true"])
    s.wait(exit=True, timeout=20)
    subprocess.run([sys.executable, "-m", "agentty_core", "gc"], check=True)

def test_the_cli_sees_the_test_s_home(agentty_session):
    import subprocess, sys
    s = agentty_session(["cat"])
    listed = subprocess.run([sys.executable, "-m", "agentty_core", "status", "-q"],
                            capture_output=True, text=True, timeout=60)
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, s.id + "\\n", "")
    assert os.environ["AGENTTY_SPAWNER_IDLE"] == "30"  # (its spawner ends soon, left alone)

def test_that_fails_with_its_screen(agentty_session):
    s = agentty_session(["sh", "-c", "echo the-program-said-this; exec cat"])
    s.wait(text="the-program-said-this", timeout=20)
    s.wait(text="never-said", timeout=0.5)
"""


def _sleeping(seconds: int) -> list[psutil.Process]:
    """`sleep SECONDS` processes (argv[0] as given, or the path it was found at)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmdline = p.info["cmdline"] or []
        if cmdline[1:] == [str(seconds)] and os.path.basename(cmdline[0]) == "sleep":
            found.append(p)
    return found


def _plugin_tests(
    tmp_path: Path, keyword: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """PLUGIN_TEST's tests named by `keyword`, run by a pytest of their own (with `env`
    added to this one's environment, and AGENTTY_SESSION_ID as a caller in a session has)."""
    import sys

    (tmp_path / "test_plugin_use.py").write_text(PLUGIN_TEST.format(seconds=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")} | env
    env.setdefault("AGENTTY_SESSION_ID", "0badf00d")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", keyword, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_plugin_s_home_is_the_test_s_whatever_the_caller_s_environment(
    tmp_path: Path,
) -> None:
    """The home is exported for the `agentty` commands a test runs: with AGENTTY_HOST set
    in the caller's environment they went over ssh to it (exit 4, an outside round)."""
    run = _plugin_tests(tmp_path, "sees_the", AGENTTY_HOST="nosuchhost.invalid")
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_failed_test_s_report_has_its_sessions_screens(tmp_path: Path) -> None:
    """A wait that timed out said only what it waited for; the screen that would say why
    was not shown (an outside round)."""
    run = _plugin_tests(tmp_path, "fails_with")
    assert run.returncode == 1, run.stdout + run.stderr
    section = re.split(r"-+ agentty session [0-9a-f]{8} -+\n", run.stdout)[1]
    assert "the-program-said-this" in section, run.stdout
    assert "\x1b" not in run.stdout, run.stdout  # (a screen holds no escape: none is printed)


def test_a_failed_test_s_home_is_kept_when_asked(tmp_path: Path) -> None:
    """Its logs and recordings went with it (an outside round): --agentty-keep-failed keeps
    a failed test's home, named in its report; its sessions end all the same."""
    run = _plugin_tests(tmp_path, "fails_with", "--agentty-keep-failed")
    assert run.returncode == 1, run.stdout + run.stderr
    found = re.search(r"kept \(--agentty-keep-failed\): (\S+)", run.stdout)
    assert found is not None, run.stdout
    home = Path(found.group(1))
    try:
        assert [p.suffix for p in (home / "logs").glob("*.log")] == [".log"], home
        assert processes_of_home(str(home)) == []
    finally:
        shutil.rmtree(home, ignore_errors=True)
    passed = _plugin_tests(tmp_path, "sees_the", "--agentty-keep-failed")
    assert passed.returncode == 0 and "kept" not in passed.stdout, passed.stdout


def test_the_plugin_s_sessions_end_with_a_pytest_ended_by_sigterm(tmp_path: Path) -> None:
    """No teardown runs for a pytest a CI timeout ends with SIGTERM: its sessions ran on
    (an attack round). They are held now, and end with the process. A session the test
    removed itself (`agentty gc`) is no teardown error either."""
    import select
    import sys

    seconds = 2000 + os.getpid() % 1000  # (this test's own, among tests run side by side)
    (tmp_path / "test_plugin_use.py").write_text(PLUGIN_TEST.format(seconds=seconds))
    env = {
        k: v for k, v in os.environ.items() if k != "AGENTTY_HOME" and not k.startswith("PYTEST_")
    }
    gc_run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "gc_in"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert gc_run.returncode == 0, gc_run.stdout + gc_run.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-k", "long"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=signals_default,
    )
    try:
        assert proc.stdout is not None
        line = ""
        out = proc.stdout
        wait_until(lambda: select.select([out], [], [], 0)[0], timeout=60)
        while "started" not in line:
            line = proc.stdout.readline()  # (its lines come together: it printed one)
            assert line, "pytest ended before its test started its sessions"
        home = Path(line.split()[-1])
        wait_until(lambda: len(_sleeping(seconds)) == 2, timeout=20)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        wait_until(lambda: not _sleeping(seconds), timeout=20)
    finally:
        proc.kill()
        for p in _sleeping(seconds):
            p.kill()
    reap(home)  # (the home's warm spawner, which no teardown stopped)
    shutil.rmtree(home, ignore_errors=True)

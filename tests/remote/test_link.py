"""The host's link (`remote/link.py`, `remote/linkd.py`, `remote/serve.py`) against a real
sshd: the same output and exit codes as the ssh way, used from the second call on, and
falling back to the ssh way when it is killed, stopped, or its host goes away."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import agentty_core
from agentty_core.ownership import lock_held
from agentty_core.remote import link as linkmod
from agentty_core.remote.hosts import resolve
from agentty_core.spawning import LOCK_NAME
from tests.helpers.cli import AGENTTY, agentty, signals_default, wait_until
from tests.remote.conftest import HOST, Link

PYTHON = sys.executable
WAIT = 30.0  # seconds for a link, a sshd and a remote agentty under load


@pytest.fixture
def linked(link: Link, agentty_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Link]:
    """`link` with AGENTTY_LINK on; every link of the home is ended at teardown (before the
    ssh masters and the census)."""
    monkeypatch.setenv("AGENTTY_LINK", "1")
    # This machine's ~/.bashrc may print on stderr (pyenv's rehash, say) on every ssh call,
    # and only once for the link: skip it, as the bench host does (bench/bench_remote.py).
    link.sshd.stop()
    with open(link.sshd.root / "sshd_config", "a") as config:
        config.write("AcceptEnv SHLVL\n")
    link.sshd.start()
    norc = link.sshd.root / "ssh_config_norc"
    norc.write_text(link.sshd.ssh_config().read_text() + "  SetEnv SHLVL=1\n")
    write_linked_hosts(link, AGENTTY)
    try:
        yield link
    finally:
        linkmod.stop(str(agentty_home))


def write_linked_hosts(link: Link, agentty: str) -> None:
    """hosts.toml for `linked`: ssh without the user's start-up files, `agentty` there."""
    norc = link.sshd.root / "ssh_config_norc"
    (link.config_dir / "agentty" / "hosts.toml").write_text(
        f'[hosts.{HOST}]\nssh = "box"\nssh_config = "{norc}"\n'
        f'agentty = "{agentty}"\nhome = "{link.remote_home}"\n'
    )


def run_on(*args: str, link: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTTY_LINK": "1" if link else "0"}
    return agentty("--host", HOST, *args, env=env, timeout=timeout)


def stats(home: Path) -> dict[str, object] | None:
    return linkmod.stats(resolve(HOST), str(home))


def link_up(home: Path) -> dict[str, object]:
    found = wait_until(lambda: stats(home), timeout=WAIT)
    assert isinstance(found, dict)
    return found


def served(home: Path) -> int:
    found = stats(home)
    assert found is not None
    value = found["served"]
    assert isinstance(value, int)
    return value


def start_python(link: Link) -> str:
    started = run_on("start", "--json", "--name", "py", "--", PYTHON, "-q", link=False)
    assert started.returncode == 0, started.stderr
    assert run_on("wait", "--text", ">>>", "--timeout", "30", link=False).returncode == 0
    return str(json.loads(started.stdout)["id"])


def same(a: subprocess.CompletedProcess[str], b: subprocess.CompletedProcess[str]) -> None:
    assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)


def test_parity_with_the_ssh_way_and_the_link_serves(linked: Link, agentty_home: Path) -> None:
    sid = start_python(linked)
    first = run_on("get")  # no link yet: the ssh way, then the link starts
    assert first.returncode == 0, first.stderr
    before = served(agentty_home) if link_up(agentty_home) else 0
    for args in (
        ("get",),
        ("get", "--json"),
        ("status", "--json"),
        ("get", "-s", "nosuch"),  # an error: its line and exit code
        ("wait", "--text", "never", "--timeout", "0.2"),  # exit 3, the screen on stdout
        ("key", "Ctrl+Banana"),  # a usage error
        ("frobnicate",),  # argparse's own error
    ):
        via_link, via_ssh = run_on(*args), run_on(*args, link=False)
        if args == ("status", "--json"):  # the same but for the moment it was taken
            assert json.loads(via_link.stdout)["sessions"][0]["id"] == sid
            assert via_link.returncode == via_ssh.returncode == 0
            continue
        same(via_link, via_ssh)
    typed = run_on("text", "--json", "--enter", "print(6*7)")
    assert typed.returncode == 0, typed.stderr
    assert isinstance(json.loads(typed.stdout)["seq"], int)
    assert run_on("wait", "--regex", "^42$", "--timeout", "30").returncode == 0
    got = run_on("get")
    same(got, run_on("get", link=False))
    assert "42" in got.stdout
    assert served(agentty_home) == before + 9  # every call above but frobnicate's: the link
    killed = run_on("kill", "--json")
    assert killed.returncode == 0, killed.stderr
    assert json.loads(killed.stdout)["id"] == sid
    again = run_on("kill", "--json", "-s", sid)
    same(again, run_on("kill", "--json", "-s", sid, link=False))
    assert again.returncode != 0


def test_one_remote_server_serves_every_call(linked: Link, agentty_home: Path) -> None:
    start_python(linked)
    run_on("get")
    remote_pid = link_up(agentty_home)["remotePid"]
    assert isinstance(remote_pid, int)
    server = psutil.Process(remote_pid)
    assert server.cmdline()[-1] == "_serve"
    count = served(agentty_home)
    for _ in range(5):
        assert run_on("get").returncode == 0
    assert served(agentty_home) == count + 5
    assert link_up(agentty_home)["remotePid"] == remote_pid  # the same process served all
    doctor = json.loads(run_on("doctor", "--json").stdout)
    [check] = [c for c in doctor["checks"] if c["name"] == "link"]
    assert f"remote agentty _serve pid {remote_pid}" in check["detail"], check
    assert run_on("kill").returncode == 0


def test_socket_is_private(linked: Link, agentty_home: Path) -> None:
    run_on("status")
    link_up(agentty_home)
    path = linkmod.socket_path(resolve(HOST), str(agentty_home))
    assert path is not None
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(os.path.dirname(path)).st_mode) == 0o700


def test_killed_link_falls_back_and_comes_back(linked: Link, agentty_home: Path) -> None:
    start_python(linked)
    run_on("get")
    pid = link_up(agentty_home)["pid"]
    assert isinstance(pid, int)
    reference = run_on("get", link=False)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(pid) or _zombie(pid), timeout=WAIT)
    same(run_on("get"), reference)  # the ssh way; a new link starts
    wait_until(lambda: (s := stats(agentty_home)) and s["pid"] != pid, timeout=WAIT)
    same(run_on("get"), reference)
    assert run_on("kill").returncode == 0


def test_stopped_link_falls_back(linked: Link, agentty_home: Path) -> None:
    start_python(linked)
    run_on("get")
    pid = link_up(agentty_home)["pid"]
    assert isinstance(pid, int)
    reference = run_on("get", link=False)
    os.kill(pid, signal.SIGSTOP)
    try:
        same(run_on("get"), reference)
        typed = run_on("text", "--enter", "print(3*3)")  # not sent twice
        assert typed.returncode == 0, typed.stderr
        assert run_on("wait", "--regex", "^9$", "--timeout", "30").returncode == 0
    finally:
        os.kill(pid, signal.SIGCONT)
    assert served(agentty_home) == 0  # the link never had them
    screen = run_on("get", link=False).stdout
    assert screen.count("print(3*3)") == 1
    assert run_on("kill").returncode == 0


def test_remote_server_killed_falls_back(linked: Link, agentty_home: Path) -> None:
    start_python(linked)
    run_on("get")
    found = link_up(agentty_home)
    pid, remote_pid = found["pid"], found["remotePid"]
    assert isinstance(pid, int) and isinstance(remote_pid, int)
    os.kill(remote_pid, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(pid) or _zombie(pid), timeout=WAIT)
    reference = run_on("get", link=False)
    same(run_on("get"), reference)
    assert run_on("kill").returncode == 0


def test_a_wait_the_link_lost_is_asked_again_in_the_time_it_has_left(
    linked: Link, agentty_home: Path
) -> None:
    """The link stopped mid-wait: given up on once its heartbeats stop (STALL, 10 s), the
    wait went the ssh way again with all of its --timeout, and took it twice (20 s)."""
    import time

    start_python(linked)
    run_on("get")
    pid = link_up(agentty_home)["pid"]
    assert isinstance(pid, int)
    env = {**os.environ, "AGENTTY_LINK": "1"}
    began = time.monotonic()
    waiting = subprocess.Popen(
        [AGENTTY, "--host", HOST, "wait", "--text", "NEVER", "--timeout", "10"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1)
    os.kill(pid, signal.SIGSTOP)
    try:
        _, err = waiting.communicate(timeout=60)
    finally:
        os.kill(pid, signal.SIGCONT)
    took = time.monotonic() - began
    assert waiting.returncode == 3, err
    assert "timed out after" in err
    assert took < 16, took  # the link's STALL and a call's cost; 21 s before
    assert run_on("kill").returncode == 0


def test_with_time_spent_reads_the_timeout_as_argparse_does() -> None:
    from agentty_core.remote.transport import with_time_spent

    assert with_time_spent(["wait", "--timeout", "10"], 4) == ["wait", "--timeout", "6.000"]
    assert with_time_spent(["wait", "--timeout=10"], 4) == ["wait", "--timeout=6.000"]
    assert with_time_spent(["wait", "--ti", "10", "--timeout", "8"], 4) == [
        "wait", "--ti", "10", "--timeout", "4.000",
    ]  # fmt: skip
    assert with_time_spent(["wait", "--text=--timeout"], 4) == [
        "wait", "--text=--timeout", "--timeout", "26.000",
    ]  # fmt: skip
    assert with_time_spent(["wait", "--timeout", "3"], 4) == ["wait", "--timeout", "0.000"]
    for odd in ("nan", "inf", "soon"):
        assert with_time_spent(["wait", "--timeout", odd], 4) == ["wait", "--timeout", odd]
    assert with_time_spent(["wait", "--timeout", "10"], 0.01) == ["wait", "--timeout", "10"]


def test_stopped_remote_server_is_given_up_on(linked: Link, agentty_home: Path) -> None:
    """The far side's server stopped (SIGSTOP) while the link and ssh live: the link's
    heartbeats to the caller must not stand for it. Its own beats stop; the link gives the
    host up, and the call goes the ssh way instead of waiting forever."""
    start_python(linked)
    run_on("get")
    found = link_up(agentty_home)
    pid, remote_pid = found["pid"], found["remotePid"]
    assert isinstance(pid, int) and isinstance(remote_pid, int)
    reference = run_on("get", link=False)
    os.kill(remote_pid, signal.SIGSTOP)
    try:
        same(run_on("get", timeout=60), reference)  # it hung here, past any timeout
        wait_until(lambda: not psutil.pid_exists(pid) or _zombie(pid), timeout=WAIT)
    finally:
        os.kill(remote_pid, signal.SIGCONT)
    assert run_on("kill", link=False).returncode == 0


def test_sshd_stopped_gives_the_same_error(linked: Link, agentty_home: Path) -> None:
    start_python(linked)
    run_on("get")
    pid = link_up(agentty_home)["pid"]
    assert isinstance(pid, int)
    linked.sshd.stop()
    down = run_on("get")
    assert down.returncode == 4, down.stderr
    assert down.stderr.startswith(f"agentty: error: {HOST}: cannot connect")
    assert len(down.stderr.strip().splitlines()) == 1
    wait_until(lambda: not psutil.pid_exists(pid) or _zombie(pid), timeout=WAIT)
    same(run_on("get"), down)
    linked.sshd.start()
    assert run_on("kill").returncode == 0


def test_idle_link_exits(linked: Link, agentty_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTY_LINK_IDLE", "1")
    run_on("status")
    found = link_up(agentty_home)
    pid, remote_pid = found["pid"], found["remotePid"]
    assert isinstance(pid, int) and isinstance(remote_pid, int)
    wait_until(lambda: not psutil.pid_exists(pid) or _zombie(pid), timeout=WAIT)
    wait_until(lambda: not psutil.pid_exists(remote_pid), timeout=WAIT)
    path = linkmod.socket_path(resolve(HOST), str(agentty_home))
    assert path is not None and not os.path.exists(path)


def test_off_by_default_in_tests(link: Link, agentty_home: Path) -> None:
    assert agentty("--host", HOST, "status").returncode == 0
    assert not (agentty_home / "links").exists()


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def test_a_call_through_the_link_imports_no_heavy_module(linked: Link, agentty_home: Path) -> None:
    """The link's caller side is on every `--host` call: the interpreter's C modules only
    (no json, re, pathlib, collections, subprocess, socket, typing), as the fast lane."""
    run_on("status")
    link_up(agentty_home)
    heavy = ("json", "re", "pathlib", "collections", "subprocess", "socket", "typing", "asyncio")
    code = (
        "import sys\n"
        "from agentty_core.cli import remote\n"
        f"code = remote.main(['--host', {HOST!r}, 'status'])\n"
        f"print(code, sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
    )
    before = served(agentty_home)
    proc = subprocess.run(
        [PYTHON, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
        stdin=subprocess.DEVNULL,
    )
    assert proc.stderr.strip().splitlines()[-1] == "0 []", proc.stderr
    assert served(agentty_home) == before + 1


BOOT = "import sys; from agentty_core.cli.hotpath import main; sys.exit(main())"


def test_an_upgrade_there_ends_the_link(linked: Link, agentty_home: Path, tmp_path: Path) -> None:
    """agentty changed on disk on the host: the far side refuses (nothing runs there), the
    call goes the ssh way once, the link ends, and the next call starts a new one.

    The host runs a copy of the package, and the copy is what changes: touching the one
    every other test runs made their links refuse too (a `wait` through another test's
    link went the ssh way, under xdist, at random)."""
    code = tmp_path / "code"
    package = Path(agentty_core.__file__).parent
    shutil.copytree(package, code / "agentty_core", ignore=shutil.ignore_patterns("__pycache__"))
    wrapper = code / "agentty"
    wrapper.write_text(
        f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(code))} PYTHONDONTWRITEBYTECODE=1 "
        f'exec {shlex.quote(PYTHON)} -c {shlex.quote(BOOT)} "$@"\n'
    )
    wrapper.chmod(0o755)
    write_linked_hosts(linked, str(wrapper))
    start_python(linked)
    run_on("get")
    found = link_up(agentty_home)
    pid, remote_pid = found["pid"], found["remotePid"]
    assert isinstance(pid, int) and isinstance(remote_pid, int)
    assert str(code) in Path(f"/proc/{remote_pid}/environ").read_text(errors="replace")
    marker = code / "agentty_core" / "remote" / ".upgrade-test"
    marker.write_text("")  # the package directory's mtime changes, as an install's would
    marker.unlink()
    typed = run_on("text", "--enter", "print(5*5)")
    assert typed.returncode == 0, typed.stderr
    assert run_on("wait", "--regex", "^25$", "--timeout", "30").returncode == 0
    wait_until(lambda: not psutil.pid_exists(pid) or _zombie(pid), timeout=WAIT)
    wait_until(lambda: not psutil.pid_exists(remote_pid), timeout=WAIT)
    assert run_on("get", link=False).stdout.count("print(5*5)") == 1  # sent once
    run_on("get")
    assert wait_until(lambda: (s := stats(agentty_home)) and s["pid"] != pid, timeout=WAIT)
    assert run_on("kill").returncode == 0


def test_a_local_file_travels_through_the_link(linked: Link, agentty_home: Path) -> None:
    start_python(linked)
    run_on("get")
    link_up(agentty_home)
    before = served(agentty_home)
    source = linked.config_dir / "input.py"
    source.write_text("print(8*8)\n")
    typed = run_on("text", "--file", str(source))
    assert typed.returncode == 0, typed.stderr
    assert run_on("wait", "--regex", "^64$", "--timeout", "30").returncode == 0
    assert served(agentty_home) == before + 2
    assert run_on("kill").returncode == 0


@contextlib.contextmanager
def waiting_through_link(home: Path, text: str) -> Iterator[subprocess.Popen[bytes]]:
    """`wait --text TEXT` through the link, once the host holds it (the link's `pending`);
    killed at the end if it is still waiting."""
    waiting = subprocess.Popen(
        [AGENTTY, "--host", HOST, "wait", "--text", text, "--timeout", "60"],
        preexec_fn=signals_default,  # interrupted with SIGINT by some tests
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "AGENTTY_LINK": "1"},
    )

    def held() -> bool:
        if waiting.poll() is not None:  # answered the ssh way, say: no use waiting on
            said = waiting.stderr.read() if waiting.stderr else b""
            raise AssertionError(f"wait ended ({waiting.returncode}): {said!r}")
        return bool((s := stats(home)) and s["pending"] == 1)

    try:
        wait_until(held, timeout=WAIT)
        yield waiting
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()


def python_behind_link(link: Link, home: Path) -> int:
    """A Python prompt on the host, and the link up (its pid)."""
    start_python(link)
    run_on("get")
    pid = link_up(home)["pid"]
    assert isinstance(pid, int)
    return pid


def test_calls_run_concurrently(linked: Link, agentty_home: Path) -> None:
    """A long `wait` in flight through the link holds up nothing: `get` is answered
    meanwhile (each request runs in a child of its own there)."""
    python_behind_link(linked, agentty_home)
    with waiting_through_link(agentty_home, "done-waiting") as waiting:
        got = run_on("get")
        assert got.returncode == 0, got.stderr
        assert waiting.poll() is None  # still waiting, answered by nobody yet
        assert run_on("text", "--enter", "print('done' + '-waiting')").returncode == 0
        out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert b"done-waiting" in out
    assert run_on("kill").returncode == 0


def test_an_interrupted_call_is_cancelled_there(linked: Link, agentty_home: Path) -> None:
    python_behind_link(linked, agentty_home)
    with waiting_through_link(agentty_home, "never") as waiting:
        waiting.send_signal(signal.SIGINT)
        waiting.communicate(timeout=30)
    assert waiting.returncode == 130
    wait_until(lambda: (s := stats(agentty_home)) and s["pending"] == 0, timeout=WAIT)
    assert run_on("kill").returncode == 0


def test_the_command_transport_has_a_link_too(linked: Link, agentty_home: Path) -> None:
    """`command = [...]` (docker exec -i, kubectl exec -i ...): the same link over its stdio;
    AGENTTY_HOST set for the caller is not handed on to the far side."""
    (linked.config_dir / "agentty" / "hosts.toml").write_text(
        f'[hosts.box]\ncommand = ["env", "AGENTTY_HOME={linked.remote_home}"]\n'
        f'agentty = "{AGENTTY}"\n'
    )
    env = {**os.environ, "AGENTTY_LINK": "1", "AGENTTY_HOST": "box"}
    first = agentty("status", "--json", env=env)
    assert first.returncode == 0, first.stderr
    box = resolve("box")
    found = wait_until(lambda: linkmod.stats(box, str(agentty_home)), timeout=WAIT)
    assert isinstance(found, dict)
    again = agentty("status", "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["home"] == str(linked.remote_home)
    after = linkmod.stats(box, str(agentty_home))
    assert after is not None and after["served"] == 1


def test_a_link_started_inside_a_session_carries_no_marker_of_it(
    linked: Link, agentty_home: Path
) -> None:
    """A program of a session (an agent) uses a host: the link it starts is the home's, and
    outlives the session (its end skips what agentty runs detached). It carried the
    session's marker, so `orphans` and `doctor` called it a survivor of the session."""
    (linked.config_dir / "agentty" / "hosts.toml").write_text(
        f'[hosts.box]\ncommand = ["env", "AGENTTY_HOME={linked.remote_home}"]\n'
        f'agentty = "{AGENTTY}"\n'
    )
    env = {**os.environ, "AGENTTY_LINK": "1", "AGENTTY_SESSION_ID": "0badc0de"}
    assert agentty("--host", "box", "status", "--json", env=env).returncode == 0
    box = resolve("box")
    wait_until(lambda: linkmod.stats(box, str(agentty_home)), timeout=WAIT)
    links = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "agentty_core.remote.linkd" in " ".join(p.info["cmdline"] or [])
        and p.environ().get("AGENTTY_HOME") == str(agentty_home)
    ]
    assert links and all("AGENTTY_SESSION_ID" not in p.environ() for p in links)


def test_start_and_kill_through_the_link(linked: Link, agentty_home: Path) -> None:
    run_on("status")
    link_up(agentty_home)
    before = served(agentty_home)
    started = run_on("start", "--json", "--name", "py2", "--", PYTHON, "-q")
    assert started.returncode == 0, started.stderr
    sid = json.loads(started.stdout)["id"]
    assert run_on("wait", "--text", ">>>", "--timeout", "30").returncode == 0
    killed = run_on("kill", "--json", "-s", sid)
    assert killed.returncode == 0, killed.stderr
    assert served(agentty_home) == before + 3
    # The remote `start` launched the host's warm spawner: one still importing at teardown
    # is not found by the reaper (see bench_start), so wait until it is up, or none starts.
    # (One start only: starts in quick succession can launch a second spawner, which waits
    # for the first one's lock for 2 s before it exits, longer than the census's grace.)
    from agentty_core.launch import spawner_client

    root = str(linked.remote_home)
    wait_until(
        lambda: (
            ((found := spawner_client.info(root)) is not None and found.get("ready") is True)
            or not lock_held(os.path.join(root, LOCK_NAME))
        ),
        timeout=WAIT,
    )


def end_link(home: Path) -> None:
    """Make the link end by removing its socket; return once it is ending (its log says
    so): no new request is taken, the ones the host has are answered first."""
    path = linkmod.socket_path(resolve(HOST), str(home))
    assert path is not None
    os.unlink(path)
    log = Path(path + ".log")
    wait_until(lambda: "socket removed or replaced: exiting" in log.read_text(), timeout=WAIT)


def test_an_ending_link_answers_what_the_host_has(linked: Link, agentty_home: Path) -> None:
    pid = python_behind_link(linked, agentty_home)
    with waiting_through_link(agentty_home, "done-waiting") as waiting:
        end_link(agentty_home)
        assert psutil.pid_exists(pid) and not _zombie(pid)  # draining, not gone
        assert run_on("text", "--enter", "print('done' + '-waiting')").returncode == 0
        out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert b"done-waiting" in out
    wait_until(lambda: not psutil.pid_exists(pid) or _zombie(pid), timeout=WAIT)
    assert run_on("kill", link=False).returncode == 0


def test_an_ending_link_whose_caller_leaves_exits(linked: Link, agentty_home: Path) -> None:
    """The drain wakes for a caller that leaves too (its request is dropped, and done): it
    waits for nothing more, and the link ends without waiting for an answer."""
    pid = python_behind_link(linked, agentty_home)
    with waiting_through_link(agentty_home, "done-waiting") as waiting:
        end_link(agentty_home)
        waiting.send_signal(signal.SIGINT)
        waiting.communicate(timeout=30)
    assert waiting.returncode == 130
    wait_until(lambda: not psutil.pid_exists(pid) or _zombie(pid), timeout=WAIT)
    assert run_on("kill", link=False).returncode == 0


@contextlib.contextmanager
def stalling_link(home: Path, *, before_ready: float, after_go: float) -> Iterator[list[bytes]]:
    """A link at the host's socket that stalls (a starved process): `before_ready` seconds
    before it says it is ready, `after_go` after the caller's go, then answers FAKE. The
    list gets what the caller said after the ready (b"go\\n", or b"" for nothing)."""
    import socket
    import threading

    path = linkmod.socket_path(resolve(HOST), str(home))
    assert path is not None
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    said: list[bytes] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.makefile("rb").readline()  # the request
            threading.Event().wait(before_ready)
            try:
                conn.sendall(b"?\n")
                conn.settimeout(5)
                said.append(conn.makefile("rb").readline())
                threading.Event().wait(after_go)
                conn.sendall(b"+\n=0 5 0\nFAKE\n")
            except OSError:
                said.append(b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield said
    finally:
        thread.join(timeout=15)
        server.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


def test_a_link_that_stalls_before_it_is_ready_never_sends(
    linked: Link, agentty_home: Path
) -> None:
    """The caller gives up (and goes the ssh way) before the link says it is ready: the
    link, starved for a while, then gets no go, so the command is not sent twice."""
    start_python(linked)
    with stalling_link(agentty_home, before_ready=1.5, after_go=0) as said:
        typed = run_on("text", "--enter", "print('once')")
        assert typed.returncode == 0, typed.stderr
    assert said == [b""]  # no go: this link sends nothing
    assert run_on("wait", "--regex", "^once$", link=False).returncode == 0
    assert run_on("get", link=False).stdout.count("print('once')") == 1
    assert run_on("kill", link=False).returncode == 0


def test_a_caller_that_said_go_waits_for_a_slow_link(linked: Link, agentty_home: Path) -> None:
    """After its go the caller is committed: a link slow to confirm (past the time a
    caller waits for it to be ready) is waited for, not doubled by the ssh way."""
    with stalling_link(agentty_home, before_ready=0, after_go=1.5) as said:
        typed = run_on("text", "--enter", "print('x')")
    assert said == [b"go\n"]
    assert (typed.returncode, typed.stdout) == (0, "FAKE\n"), typed.stderr


OLD_LINK = """
import fcntl, os, socket, sys
path = sys.argv[1]
lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(lock, fcntl.LOCK_EX)
os.ftruncate(lock, 0)
os.write(lock, str(os.getpid()).encode())
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(8)
print("ready", flush=True)
while True:
    conn, _ = server.accept()
    conn.recv(65536)
    conn.sendall(b"-version\\n")  # what a link of an older agentty says to a newer caller
    conn.close()
"""


def test_an_older_agentty_s_link_gives_way_to_a_new_one(linked: Link, agentty_home: Path) -> None:
    """After an upgrade, the link still running the old code refuses the new callers'
    requests: the first such call ends it (the call itself goes the ssh way), and the next
    link runs the new code."""
    start_python(linked)
    path = linkmod.socket_path(resolve(HOST), str(agentty_home))
    assert path is not None
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    old = subprocess.Popen([PYTHON, "-c", OLD_LINK, path], stdout=subprocess.PIPE, text=True)
    try:
        assert old.stdout is not None and old.stdout.readline() == "ready\n"
        got = run_on("get")
        assert got.returncode == 0 and ">>>" in got.stdout, got.stderr
        assert old.wait(timeout=10) != 0  # ended (SIGTERM)
    finally:
        old.kill()
        old.wait()
    new = link_up(agentty_home)
    assert new["pid"] != old.pid
    assert run_on("kill", link=False).returncode == 0


def test_an_answer_through_the_link_to_a_full_stdout_is_one_line(
    linked: Link, agentty_home: Path
) -> None:
    """The link's answer is written with os.write, past the stdout guard: a traceback."""
    run_on("status")
    link_up(agentty_home)
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [AGENTTY, "--host", HOST, "status"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stderr == "agentty: error: cannot write the output: No space left on device\n"


def test_a_stopped_master_under_the_link_is_replaced(linked: Link, agentty_home: Path) -> None:
    """The link's channel is on the master too: the link gives up on it, and the call
    going the ssh way finds the master silent and replaces it (it hung with no limit)."""
    from tests.remote.test_faults import assert_stopped_master_replaced

    assert_stopped_master_replaced(agentty_home, {**os.environ, "AGENTTY_LINK": "1"})


def _to_full(*args: str, link: bool) -> subprocess.CompletedProcess[str]:
    """`agentty --host lo ARGS > /dev/full`."""
    env = {**os.environ, "AGENTTY_LINK": "1" if link else "0"}
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [AGENTTY, "--host", HOST, *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
        )


def test_a_stdout_that_cannot_be_written_fails_the_call_both_ways(
    linked: Link, agentty_home: Path
) -> None:
    """The ssh way handed ssh our stdout: `> /dev/full` was ssh's failure, unseen (exit 0),
    and a `start` whose id nobody could read left its session running there. Now as a
    local call and as the link: exit 1 in one line, and the session is ended."""
    start_python(linked)
    run_on("get")  # the ssh way; the link starts for the next calls
    link_up(agentty_home)
    for way in (False, True):
        got = _to_full("get", "-s", "py", link=way)
        assert got.returncode == 1, (way, got)
        assert got.stderr == "agentty: error: cannot write the output: No space left on device\n"
        started = _to_full("start", "--", "sleep", "300", link=way)
        assert started.returncode == 1, (way, started)
        assert started.stderr.endswith("No space left on device; the session was ended\n")
        sessions = json.loads(run_on("status", "--json").stdout)["sessions"]
        sleeping = [s for s in sessions if s["argv"] == ["sleep", "300"]]
        assert [s["status"] for s in sleeping] == ["exited"] * (2 if way else 1), sleeping
        env = {**os.environ, "AGENTTY_LINK": "1" if way else "0"}
        closed = subprocess.run(  # no id asked for: the session stays, as a local start's
            [AGENTTY, "--host", HOST, "start", "--", "sleep", "301"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
            preexec_fn=lambda: os.close(1),
        )
        assert (closed.returncode, closed.stderr) == (0, ""), (way, closed)
    sessions = json.loads(run_on("status", "--json").stdout)["sessions"]
    assert [s["status"] for s in sessions if s["argv"] == ["sleep", "301"]] == ["running"] * 2
    for s in sessions:
        if s["status"] == "running":
            assert run_on("kill", "-s", s["id"]).returncode == 0


SHRUGS = (  # a program that outlives a `kill`'s grace: it marks its signals and runs on
    "import pathlib, signal, sys, time; "
    "[signal.signal(s, lambda *_: pathlib.Path(sys.argv[1]).touch()) "
    "for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)]; "
    "pathlib.Path(sys.argv[1] + '.ready').touch(); "
    "time.sleep(600)"
)


def test_an_acting_command_the_link_lost_says_it_may_have_run(
    linked: Link, agentty_home: Path, tmp_path: Path
) -> None:
    """The link dropped while the host ran a `kill` (its ssh killed): the error said "run
    the command again", though the host had it (input typed that way came twice; an
    attack round). A command that acts says it may have been carried out, to check first."""
    termed = tmp_path / "termed"
    started = run_on("start", "--", PYTHON, "-c", SHRUGS, str(termed), link=False)
    assert started.returncode == 0, started.stderr
    wait_until(Path(f"{termed}.ready").exists, timeout=WAIT)
    run_on("status")  # the ssh way; the link starts after it
    pid = link_up(agentty_home)["pid"]
    assert isinstance(pid, int)
    (ssh,) = psutil.Process(pid).children()
    killing = subprocess.Popen(
        [AGENTTY, "--host", HOST, "kill", "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AGENTTY_LINK": "1"},
    )
    try:
        wait_until(termed.exists, timeout=WAIT)  # the host is carrying it out
        ssh.kill()
        _, err = killing.communicate(timeout=60)
    finally:
        killing.kill()
        killing.wait()
    assert killing.returncode == 4, err
    assert err.count("\n") == 1, err
    assert "may have been carried out" in err and "run the command again" not in err, err
    assert run_on("kill", "--timeout", "1", link=False).returncode in (0, 1)

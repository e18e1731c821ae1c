"""Faults of the link, injected for real: sshd gone mid-session, a host that never answers,
a host key that does not match. Each is the transport's exit code (4) and one line."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import AGENTTY, agentty, wait_until
from tests.remote.conftest import HOST, Link

PYTHON = sys.executable


def run_on(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return agentty("--host", HOST, *args, timeout=timeout)


def test_sshd_stopped_mid_session_then_back(link: Link) -> None:
    started = run_on("start", "--name", "py", "--", PYTHON, "-q")
    assert started.returncode == 0, started.stderr
    assert run_on("wait", "--text", ">>>").returncode == 0
    link.sshd.stop()  # the listener and the master's connection: the machine's sshd is gone
    down = run_on("get")
    assert down.returncode == 4, down.stderr
    assert down.stderr.startswith(f"agentty: error: {HOST}: cannot connect")
    assert len(down.stderr.strip().splitlines()) == 1
    assert run_on("text", "--enter", "print(7*6)").returncode == 4
    # The remote session kept running all along.
    env = {**os.environ, "AGENTTY_HOME": str(link.remote_home)}
    status = json.loads(agentty("status", "--json", env=env, check=True).stdout)
    assert [s["status"] for s in status["sessions"]] == ["running"]
    link.sshd.start()
    assert run_on("text", "--enter", "print(7*6)").returncode == 0
    back = run_on("wait", "--regex", "^42$")
    assert back.returncode == 0, back.stderr


def test_blackholing_host_times_out(link: Link) -> None:
    """A port that accepts connections and never says a word: bounded by ConnectTimeout."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        port = hole.getsockname()[1]
        env = {**os.environ, "AGENTTY_CONNECT_TIMEOUT": "2"}
        proc = agentty("--host", f"ssh://nobody@127.0.0.1:{port}", "status", env=env, timeout=60)
    assert proc.returncode == 4, proc.stderr
    assert "no answer within 2 s" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_wrong_host_key_is_refused(link: Link) -> None:
    other = link.sshd.root / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = link.sshd.root / "wrong_known_hosts"
    pub = (link.sshd.root / "other_key.pub").read_text().split()[:2]
    known.write_text(f"[127.0.0.1]:{link.sshd.port} {' '.join(pub)}\n")
    config = link.sshd.ssh_config(known_hosts=known)
    (link.config_dir / "agentty" / "hosts.toml").write_text(
        f'[hosts.{HOST}]\nssh = "box"\nssh_config = "{config}"\nagentty = "agentty"\n'
    )
    proc = run_on("status")
    assert proc.returncode == 4, proc.stderr
    assert "refused the host key" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    # No master came up on a refused key, so nothing is left to end.


def test_unknown_host_key_is_refused_too(link: Link) -> None:
    empty = link.sshd.root / "empty_known_hosts"
    empty.write_text("")
    config = link.sshd.ssh_config(known_hosts=empty)
    (link.config_dir / "agentty" / "hosts.toml").write_text(
        f'[hosts.{HOST}]\nssh = "box"\nssh_config = "{config}"\n'
    )
    proc = run_on("status")
    assert proc.returncode == 4
    assert "refused the host key" in proc.stderr


def test_auth_refused(link: Link) -> None:
    (link.sshd.root / "authorized_keys").write_text("")
    proc = run_on("status")
    assert proc.returncode == 4
    assert "authentication refused" in proc.stderr
    assert "BatchMode" in proc.stderr


def test_a_cold_burst_of_calls_shares_one_connection(link: Link, agentty_home: Path) -> None:
    """20 calls at once at a host with no ssh master yet: each ssh tried to become the
    master, and sshd refused the connections over its MaxStartups (10 unauthenticated at a
    time by default): some calls failed with exit 4. One master is made first now, under a
    lock of the host's, and every call is a channel on it."""
    procs = [
        subprocess.Popen(
            [AGENTTY, "--host", HOST, "status", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(20)
    ]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    failed = [(code, err.strip()) for code, _, err in results if code != 0]
    assert not failed, failed
    assert all(json.loads(out)["sessions"] == [] for _, out, _ in results)
    assert not [err for _, _, err in results if err.strip()]  # no ControlSocket warnings


def test_a_burst_at_a_host_that_is_down_fails_each_call_in_one_line(link: Link) -> None:
    """The callers that waited for a master that could not start are told what ssh said
    (one line, exit 4), without a connection of their own."""
    link.sshd.stop()
    procs = [
        subprocess.Popen(
            [AGENTTY, "--host", HOST, "get"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    for p in procs:
        assert p.wait(timeout=60) == 4
        err = p.stderr.read()  # type: ignore[union-attr]
        assert err.startswith(f"agentty: error: {HOST}: cannot connect"), err
        assert len(err.strip().splitlines()) == 1


def test_a_master_slow_to_connect_keeps_to_the_callers_limit(
    tmp_path: Path, agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`capture(timeout=1)` (the dashboard's polls, doctor) waited for the master's own
    connect timeout and grace first (15 s by default), unkillable by its caller."""
    import time

    from agentty_core.errors import TransportError
    from agentty_core.remote import transport
    from agentty_core.remote.hosts import Host

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ssh").write_text("#!/bin/sh\nexec sleep 30\n")
    (fake / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    host = Host("slow", destination="slow.invalid")
    began = time.monotonic()
    with pytest.raises(TransportError) as raised:
        transport.capture(host, ["status", "--json"], agentty_home, timeout=1.0)
    assert raised.value.reason == "timeout"
    assert time.monotonic() - began < transport.connect_timeout()  # its limit, not ssh's


def _master_pid(socket_path: Path) -> int:
    import psutil

    (pid,) = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if f"ControlPath={socket_path}" in (p.info["cmdline"] or []) and "-N" in p.info["cmdline"]
    ]
    return pid


def test_a_stopped_master_is_replaced(link: Link, agentty_home: Path) -> None:
    """A stopped ssh master still accepts connections (the kernel does it for it) and never
    greets them: every call hung with no limit. It is seen silent, killed (it is ours) and
    replaced. (Through the link: `test_link.py`.)"""
    assert_stopped_master_replaced(agentty_home, {**os.environ, "AGENTTY_LINK": "0"})


def assert_stopped_master_replaced(agentty_home: Path, env: dict[str, str]) -> None:
    import psutil

    assert agentty("--host", HOST, "status", "-q", env=env, timeout=60).returncode == 0
    (control,) = [p for p in (agentty_home / "ssh").glob("*") if p.is_socket()]
    master = _master_pid(control)
    os.kill(master, signal.SIGSTOP)
    try:
        again = agentty("--host", HOST, "status", "--json", env=env, timeout=60)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["sessions"] == []
        assert not psutil.pid_exists(master) or psutil.Process(master).status() == "zombie"
        assert _master_pid(control) != master
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(master, signal.SIGCONT)


def test_a_burst_at_a_host_that_stalls_after_its_banner_says_so_in_each_call(
    link: Link,
) -> None:
    """ssh gets the banner, then nothing: the master is given up on when its time is up,
    and ssh has said nothing. Each caller says it timed out, in one pair of brackets: the
    one that started it said "((...))", those that waited read an empty reason ("ssh ended
    without a message"), or ran out of time a moment before the reason was written."""
    import threading

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        held: list[socket.socket] = []

        def greet() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                conn.sendall(b"SSH-2.0-OpenSSH_9.0\r\n")
                held.append(conn)

        threading.Thread(target=greet, daemon=True).start()
        env = {**os.environ, "AGENTTY_CONNECT_TIMEOUT": "2", "AGENTTY_LINK": "0"}
        procs = [
            subprocess.Popen(
                [AGENTTY, "--host", f"ssh://nobody@127.0.0.1:{port}", "status", "-q"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        said = [p.communicate(timeout=60)[1] for p in procs]
        for conn in held:
            conn.close()
    assert [p.returncode for p in procs] == [4] * 4, said
    for err in said:
        assert err.count("\n") == 1, err
        assert "ssh connection timed out: not up within 7 s" in err, err
        assert "((" not in err, err
        assert err.count(" within ") == 1, err  # one limit: not "within 2 s (... 7 s)"


def test_a_silent_master_that_is_not_stopped_keeps_its_socket(
    link: Link, agentty_home: Path
) -> None:
    """A master that does not greet but runs (slow, say) is not ours to end: its socket
    stays (ssh removes its ControlPath as it exits, whoever's socket is there by then, so a
    successor's would go with it), and the call fails in its time."""
    import time

    from agentty_core.remote.hosts import resolve
    from agentty_core.remote.transport import control_path

    path = control_path(resolve(HOST), str(agentty_home))
    assert path is not None
    Path(path).parent.mkdir(mode=0o700, exist_ok=True)
    with socket.socket(socket.AF_UNIX) as silent:  # accepts (the kernel does), never greets
        silent.bind(path)
        silent.listen(16)
        inode = os.stat(path).st_ino
        env = {**os.environ, "AGENTTY_LINK": "0", "AGENTTY_CONNECT_TIMEOUT": "2"}
        began = time.monotonic()
        proc = agentty("--host", HOST, "status", "-q", env=env, timeout=60)
        assert time.monotonic() - began < 20
        assert proc.returncode == 4, proc.stderr
        assert os.stat(path).st_ino == inode
    os.unlink(path)


def _masters_of(control: str) -> list[int]:
    """Every ssh master on `control`: one we started (`-f -N`, its argv as given) or one a
    plain ssh forked itself (ControlMaster=auto, ControlPersist: titled `ssh: PATH [mux]`)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        words = proc.info["cmdline"] or []
        if (f"ControlPath={control}" in words and "-N" in words) or " ".join(words).strip() == (
            f"ssh: {control} [mux]"
        ):
            found.append(proc.pid)
    return found


def _stop_all(pids: list[int]) -> list[int]:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    return pids


def _end_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            os.kill(pid, signal.SIGCONT)


def test_a_stopped_master_a_plain_ssh_forked_itself_is_replaced(
    link: Link, agentty_home: Path
) -> None:
    """A master a plain ssh became (ControlMaster=auto with ControlPersist: it forks and
    titles itself `ssh: PATH [mux]`, its `-N`-less argv gone) was not recognised as ours:
    stopped, it was never cleared, and every call failed after 11 s (an attack round)."""
    import time

    from agentty_core.remote.hosts import resolve
    from agentty_core.remote.transport import control_path

    path = control_path(resolve(HOST), str(agentty_home))
    assert path is not None
    plain = [
        "ssh", "-F", str(link.sshd.ssh_config()), "-o", "BatchMode=yes",
        "-o", "ControlMaster=auto", "-o", f"ControlPath={path}", "-o", "ControlPersist=300",
        "--", "box", "true",
    ]  # fmt: skip
    subprocess.run(plain, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=True)
    masters = _stop_all(wait_until(lambda: _masters_of(path), timeout=10))
    try:
        began = time.monotonic()
        env = {**os.environ, "AGENTTY_LINK": "0"}
        again = agentty("--host", HOST, "status", "--json", env=env, timeout=60)
        assert again.returncode == 0, again.stderr
        assert time.monotonic() - began < 8
        assert all(_gone(pid) for pid in masters)
    finally:
        _end_all(masters)


def _gone(pid: int) -> bool:
    import psutil

    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    return True


def test_a_call_that_outlives_a_stalled_master_leaves_no_master_of_its_own(
    link: Link, agentty_home: Path
) -> None:
    """The sshd end of the master stalls (SIGSTOP): a call waits for the keepalives to
    drop the master, then its ssh connects on its own, and under ControlMaster=auto it
    became the new master (`ssh: PATH [mux]`), which nothing cleared once stopped in
    turn: every later call failed (exit 4, 'no answer within 5 s (... not up within 10
    s)'). Its repro from an attack round, end to end."""
    import time

    import psutil

    from agentty_core.remote.hosts import resolve
    from agentty_core.remote.transport import control_path

    env = {**os.environ, "AGENTTY_LINK": "0"}
    assert agentty("--host", HOST, "status", "-q", env=env, timeout=60).returncode == 0
    path = control_path(resolve(HOST), str(agentty_home))
    assert path is not None and _masters_of(path)
    assert link.sshd.proc is not None
    stalled = _stop_all([p.pid for p in psutil.Process(link.sshd.proc.pid).children(True)])
    try:
        first = agentty("--host", HOST, "status", "-q", env=env, timeout=90)
        assert first.returncode == 0, first.stderr
        masters = _stop_all(_masters_of(path))  # whatever master there is now
        try:
            began = time.monotonic()
            again = agentty("--host", HOST, "status", "--json", env=env, timeout=60)
            assert again.returncode == 0, again.stderr
            assert time.monotonic() - began < 8
        finally:
            _end_all(masters)
    finally:
        _end_all(stalled)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_call_told_to_stop_while_the_master_connects_ends_it(
    link: Link, agentty_home: Path, signum: int
) -> None:
    """Interrupted while the master it started was still connecting (a host that
    blackholes), the call exited 128+N and left its `ssh -f -N` running, an orphan, until
    its connect timeout (an attack round)."""
    from tests.helpers.cli import signals_default

    with socket.socket() as hole:  # accepts (the kernel does) and never says a word
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        port = hole.getsockname()[1]
        env = {**os.environ, "AGENTTY_CONNECT_TIMEOUT": "20", "AGENTTY_LINK": "0"}
        proc = subprocess.Popen(
            [AGENTTY, "--host", f"ssh://nobody@127.0.0.1:{port}", "status"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=signals_default,
        )
        control = str(agentty_home / "ssh")
        try:
            starting = wait_until(lambda: _starting_masters(control), timeout=30)
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=10)
            assert proc.returncode == 128 + signum, err
            assert "Traceback" not in err, err
            assert all(_gone(pid) for pid in starting), "the master outlived its call"
        finally:
            proc.kill()
            proc.wait()
            _end_all(_starting_masters(control))


def _starting_masters(directory: str) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        words = proc.info["cmdline"] or []
        if "-N" in words and any(w.startswith(f"ControlPath={directory}/") for w in words):
            found.append(proc.pid)
    return found

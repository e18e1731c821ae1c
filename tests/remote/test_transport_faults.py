"""A `command` transport (`docker exec -i box`'s place) that fails, hangs or is killed: each
call ends in a bounded time, in one line with exit code 4, and leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agentty_core.errors import TransportError
from agentty_core.remote.client import RemoteClient
from agentty_core.remote.hosts import Host
from agentty_core.remote.transport import control_path, share_master
from tests.helpers.cli import AGENTTY, signals_default, wait_until

# Runs instead of the remote agentty: a shell that leaves a child holding its pipes (the
# way a `command` prefix's process, or the ssh master a channel's pipes were handed to,
# holds them), then hangs, or is killed.
# (Each with its sleep of its own length: tests run side by side count their own.)
HANGS = "sleep 3601 & wait"
ABORTED = "sleep 3602 & wait"
KILLED = "sleep 3603 & kill -9 $$"


def shell_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **scripts: str) -> None:
    """A hosts.toml of `command` hosts, each a shell running its script instead of the
    remote agentty (what it is given is in "$@"), for this test."""
    config = tmp_path / "config"
    (config / "agentty").mkdir(parents=True, exist_ok=True)
    entries = "".join(
        f'[hosts.{name}]\ncommand = ["sh", "-c", {json.dumps(script)}, "sh"]\n'
        for name, script in scripts.items()
    )
    (config / "agentty" / "hosts.toml").write_text(entries)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("AGENTTY_LINK", "0")  # the call itself, not the kept link


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    shell_hosts(tmp_path, monkeypatch, hangs=HANGS, aborted=ABORTED, killed=KILLED)
    yield
    for proc in psutil.process_iter(["cmdline"]):  # left by a killed transport (or a failing fix)
        cmdline = proc.info["cmdline"] or []
        orphaned = proc.ppid() in (1, os.getpid())  # (not another test's, still in its shell)
        if cmdline[:1] == ["sleep"] and cmdline[1:] in (["3601"], ["3602"], ["3603"]) and orphaned:
            proc.kill()


def _sleepers() -> list[psutil.Process]:
    """The stand-in transport's children still running (a killed one its parent has not
    reaped yet is a zombie: dead, and counted as one under load)."""
    return [
        p
        for p in psutil.process_iter(["cmdline", "status"])
        if p.info["cmdline"] == ["sleep", "3601"] and p.info["status"] != psutil.STATUS_ZOMBIE
    ]


def test_a_call_given_up_on_ends_in_its_time_and_ends_what_the_transport_started(
    hosts: None,
) -> None:
    """The timeout killed the transport and then read its pipes to their end: a process it
    left held them, and the call (`doctor --host`, the dashboard's poll) never ended."""
    before = len(_sleepers())
    began = time.monotonic()
    with pytest.raises(TransportError) as failed:
        RemoteClient("hangs").cli(["status"], timeout=1.0)
    assert time.monotonic() - began < 5
    assert failed.value.reason == "timeout" and "no answer within 1 s" in str(failed.value)
    assert len(_sleepers()) == before  # its child went with it


def test_an_aborted_call_ends_at_once(hosts: None) -> None:
    """A dashboard that quits aborts its calls: the poll's thread stayed blocked on the
    pipes the transport's child held (the dashboard's process lived on after `q`)."""
    client = RemoteClient("aborted")
    failed: list[BaseException] = []

    def poll() -> None:
        try:
            client.cli(["status"], timeout=600)
        except Exception as exc:
            failed.append(exc)

    thread = threading.Thread(target=poll)
    thread.start()
    wait_until(lambda: bool(client._running))  # the call is in flight
    client.abort()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert failed and isinstance(failed[0], TransportError), failed


@pytest.mark.parametrize("form", ["plain", "given input", "run"])
def test_a_killed_transport_is_a_lost_link_in_one_line_at_once(
    hosts: None, tmp_path: Path, form: str
) -> None:
    """Killed by a signal, the transport exited -9: the CLI exited 247 without a word, and
    only once the process that held its stderr ended. `text --file` sends the file on the
    transport's stdin, `run` reads its answer itself: the same end, the same line."""
    typed = tmp_path / "typed.txt"
    typed.write_text("hello\n")
    words = {
        "plain": ["status"],
        "given input": ["text", "--file", str(typed)],
        "run": ["run", "--", "true"],
    }[form]
    began = time.monotonic()
    # (stdout is the caller's, passed through: the shell's child holds it, as it would hold a
    # terminal; a pipe read here to its end would wait for that child.)
    done = subprocess.run(
        [AGENTTY, "--host", "killed", *words],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - began < 10
    assert done.returncode == 4, (done.returncode, done.stderr)
    assert done.stderr.count("\n") == 1, done.stderr
    assert "killed: 'sh' was ended by signal 9" in done.stderr, done.stderr
    # The answer is lost, not the command: it may have run there (input typed), and "run
    # the command again" would have typed it twice.
    assert "may have run there" in done.stderr and "again" in done.stderr, done.stderr
    assert "run the command again" not in done.stderr, done.stderr


def test_doctor_shows_the_remote_side_s_words_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote `agentty --version` and `doctor` that print escape sequences (a title set, a
    bell): doctor's report printed them as they came."""
    fake = r"printf 'agentty 0.0.1\033]0;TITLE\007\n'; printf 'warn\033[5m\n' >&2"
    shell_hosts(tmp_path, monkeypatch, fake=fake)
    done = subprocess.run(
        [AGENTTY, "doctor", "--host", "fake"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout, done.stdout
    assert r"agentty 0.0.1\x1b]0;TITLE\x07 there" in done.stdout, done.stdout
    assert r"no report (warn\x1b[5m)" in done.stdout, done.stdout


def test_a_command_prefix_that_fails_is_the_link_s_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`docker exec -i box` to a stopped container: its own error line and exit 1 were taken
    for the remote agentty's answer (the dashboard and doctor showed it as the remote
    agentty's error). Where the call's stdout is seen (not a CLI call passed through to
    ours), nothing on it and no word of agentty's is the link's failure. A prefix's own
    warning next to agentty's answer is not: kubectl's "Defaulted container" with a remote
    doctor that found a fault (exit 1, its report on stdout)."""
    from agentty_core.remote import transport
    from agentty_core.remote.hosts import resolve

    unsafe = tmp_path / "unsafe-home"
    unsafe.mkdir(mode=0o755)
    unsafe.chmod(0o755)
    daemon = "echo 'Error response from daemon: container box is not running' >&2; exit 1"
    kube = (  # ("$1" is the remote agentty's name, "agentty": this one runs instead)
        "echo 'Defaulted container app out of: app, sidecar' >&2; shift; "
        f'AGENTTY_HOME={unsafe} exec {AGENTTY} "$@"'
    )
    shell_hosts(tmp_path, monkeypatch, box=daemon, kube=kube)
    with pytest.raises(TransportError) as failed:
        RemoteClient("box").cli(["status"], timeout=10)
    assert failed.value.reason == "failed"
    assert "box: 'sh' failed (exit 1: Error response from daemon" in str(failed.value)
    code, out, err = transport.capture(resolve("kube"), ["doctor", "--json"], str(tmp_path))
    assert code == 1 and b"unsafe" in out.lower(), (code, out, err)


def test_a_transport_ended_by_sigpipe_is_not_a_lost_link() -> None:
    """SIGPIPE means our own reader went away (`agentty --host box get | head`), not the
    link: no "run the command again" line for it."""
    import signal

    from agentty_core.remote import transport
    from agentty_core.remote.hosts import Host

    box = Host("box", command=("docker", "exec", "-i", "box"))
    assert transport.killed(box, -signal.SIGPIPE) is None
    assert transport.killed(box, 1) is None
    lost = transport.killed(box, -signal.SIGKILL)
    assert lost is not None and lost.reason == "lost"


STARTER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1] + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
if sys.argv[3]:
    with open(sys.argv[1] + ".failed", "w") as f:
        f.write(sys.argv[3])
"""


@contextlib.contextmanager
def starting_master(lets_go_after: float, reason: str) -> Iterator[tuple[Host, Path, str]]:
    """Another process holding the lock of an ssh host's master for real, as the caller
    starting it does: it lets go after `lets_go_after` s, having written `reason` (if any)
    as the master's failure. Yields the host, its home (short: a socket's path must fit)
    and the master's path."""
    import shutil
    import tempfile

    host = Host("h", destination="nobody@192.0.2.1")
    home = Path(tempfile.mkdtemp(prefix="h-", dir="/tmp"))
    path = control_path(host, home)
    assert path is not None
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, path, str(lets_go_after), reason],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None and starter.stdout.readline() == "held\n"
        yield host, home, path
    finally:
        starter.kill()
        starter.wait()
        shutil.rmtree(home)


def test_a_caller_whose_wait_runs_out_as_the_master_fails_takes_its_reason() -> None:
    """The caller starting the master gives up on it at its deadline, then ends its ssh and
    writes why; one that waited for the host's lock with the same limit ran out a moment
    before that, connected on its own and said 'ssh ended without a message' (a CI failure).
    Here the reason is written 0.2 s after our limit."""
    reason = "ssh connection timed out: not up within 1 s"
    with starting_master(1.2, reason) as (host, home, _), pytest.raises(TransportError) as failed:
        share_master(host, home, within=1.0)
    assert reason in str(failed.value)


def test_a_caller_whose_starter_let_go_without_a_reason_after_its_limit_goes_alone() -> None:
    """The starter let go of the host's lock within the caller's grace, after its limit,
    and wrote no reason (interrupted, say): the caller started a master of its own with a
    deadline already past, killed it at once and said 'not up within 1 s' (a reason it
    made up, and left in `.failed` for every other caller). Its time is up: it goes on its
    own, as before the grace, and leaves no reason behind."""
    with starting_master(1.3, "") as (host, home, path):
        share_master(host, home, within=1.0)  # returns: the call connects on its own
        assert not os.path.exists(path + ".failed")


def test_the_transport_s_failure_is_one_line_with_its_words_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The remote shell's last line names why it failed ("agentty: not found"); a title set
    in it reached the caller's terminal as it came (an attack round). The remote side's
    own error lines, passed on, are escaped too: a command prefix's warning may hold any."""
    notfound = r"printf 'sh: \033]0;PWNED\007\033[2Jagentty: not found\n' >&2; exit 127"
    loud = r"printf 'warn \033]52;c;aGk=\007\n' >&2; exit 1"
    shell_hosts(tmp_path, monkeypatch, notfound=notfound, loud=loud)
    for host, code in (("notfound", 4), ("loud", 1)):
        done = subprocess.run(
            [AGENTTY, "--host", host, "status"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == code, done
        assert "\x1b" not in done.stderr and "\x07" not in done.stderr, done.stderr
        assert done.stderr.endswith("\n") and done.stderr.count("\n") == 1, done.stderr
    assert r"\x1b]0;PWNED\x07" in done.stderr or r"\x1b]52;c;aGk=\x07" in done.stderr


@pytest.mark.parametrize(
    ("name", "report"),
    [
        ("no-ok", '{"checks": [{"name": "state", "detail": "fine"}]}'),
        ("deep", "[" * 100_000 + "]" * 100_000),
        ("odd-types", '{"checks": [{"name": ["x"], "ok": "yes", "detail": 5, "fix": null}]}'),
    ],
    ids=["no-ok", "deep", "odd-types"],
)
def test_doctor_takes_an_odd_remote_report_as_a_failed_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, report: str
) -> None:
    """A remote doctor of another version: a check without `ok` was a KeyError traceback,
    a report nested past the parser's depth a RecursionError one."""
    (tmp_path / "report").write_text(report + "\n")
    script = f'case "$*" in *--version*) echo "agentty 0.0.1";; *) cat {tmp_path}/report;; esac'

    shell_hosts(tmp_path, monkeypatch, fake=script)
    done = subprocess.run(
        [AGENTTY, "doctor", "--host", "fake"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr and done.stderr == "", done.stderr
    assert "FAIL  remote " in done.stdout, done.stdout


def test_doctor_given_two_hosts_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--host a doctor --host b` checked a and said nothing of b."""
    shell_hosts(tmp_path, monkeypatch, a="exit 0", b="exit 0")
    done = subprocess.run(
        [AGENTTY, "--host", "a", "doctor", "--host", "b"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert "--host given more than once" in done.stderr, done.stderr


@pytest.mark.parametrize("signum", [2, 15, 1], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_call_told_to_stop_ends_its_transport_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    """A signal to agentty alone (a harness's timeout, not a terminal's Ctrl-C to the whole
    group): SIGINT was ignored until the remote call ended by itself, SIGTERM ended agentty
    and left ssh (here a stand-in) running its call (an attack round)."""
    shell_hosts(tmp_path, monkeypatch, slow="exec sleep 3604")
    proc = subprocess.Popen(
        [AGENTTY, "--host", "slow", "wait", "--text", "never", "--timeout", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=signals_default,  # (a test runner's worker may ignore SIGINT)
    )
    try:
        wait_until(lambda: _sleeping(3604, proc.pid), timeout=30)
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 128 + signum, (proc.returncode, err)
        assert not _sleeping(3604, proc.pid), "the transport outlived the call"
    finally:
        proc.kill()
        for child in _sleepers_of(3604):
            child.kill()


def _sleepers_of(seconds: int) -> list[psutil.Process]:
    return [
        p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", str(seconds)]
    ]


def _sleeping(seconds: int, parent: int) -> bool:
    """Whether the stand-in transport of `parent` still runs (or is a zombie not reaped)."""
    for p in _sleepers_of(seconds):
        with contextlib.suppress(psutil.Error):
            if p.ppid() == parent and p.status() != psutil.STATUS_ZOMBIE:
                return True
    return False


def test_a_host_s_answer_nested_too_deep_or_without_end_is_a_transport_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Python API raised a bare RecursionError on a JSON answer nested past the
    parser's depth, and kept a 1 GB answer whole in memory (2 GB of RSS; an attack round)."""
    from agentty_core.remote import transport

    (tmp_path / "deep").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    shell_hosts(
        tmp_path,
        monkeypatch,
        deep=f"cat {tmp_path}/deep",
        endless="exec cat /dev/zero",
        loud="exec cat /dev/zero >&2",
    )
    with pytest.raises(TransportError, match="no JSON answer"):
        RemoteClient("deep").cli(["status"], timeout=10)
    monkeypatch.setattr(transport, "MAX_CAPTURE", 1 << 20)
    for host in ("endless", "loud"):
        with pytest.raises(TransportError, match="its answer is over 1 MiB"):
            RemoteClient(host).cli(["status"], timeout=30)
    assert not [
        p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["cat", "/dev/zero"]
    ]


def test_run_there_reads_its_answer_as_the_other_commands_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run --host` missed today's fixes of the other paths (a review): an answer nested
    too deep was a RecursionError traceback, and the host's stderr came as it was."""
    (tmp_path / "deep").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    shell_hosts(
        tmp_path, monkeypatch, deep=f"cat {tmp_path}/deep; printf 'x\\033]0;PWN\\007\\n' >&2"
    )
    done = subprocess.run(
        [AGENTTY, "--host", "deep", "run", "--", "true"], capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in done.stderr and "\x1b" not in done.stderr, done.stderr
    assert r"x\x1b]0;PWN\x07" in done.stderr, done.stderr


def test_output_still_in_the_pipe_when_the_transport_ends_reaches_a_slow_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ssh way passes the remote stdout on itself: writing to a slow reader took the
    LINGER after the transport's end, and what was still in the pipe was dropped, exit 0
    (a review). Here a `command` prefix leaves its writer running as it exits."""
    shell_hosts(tmp_path, monkeypatch, box="head -c 400000 /dev/zero | tr '\\0' x & exit 0")
    proc = subprocess.Popen(
        [AGENTTY, "--host", "box", "status"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    received = 0
    while chunk := os.read(proc.stdout.fileno(), 4096):  # slowly: 4 KiB every 10 ms
        received += len(chunk)
        time.sleep(0.01)
    proc.wait(timeout=60)
    assert received == 400_000, received

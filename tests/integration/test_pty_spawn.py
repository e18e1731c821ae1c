"""The program's start on its PTY, both ways (`proc.ptyhost`): posix_spawn of setpriv and
ptyprocess's fork give the program the same process (its own session, the PTY as its
controlling terminal and stdio, cwd, umask, default signals, an empty mask, nothing of ours
open) and both end it when the process that started it is SIGKILLed. Which way a program
goes is pinned too: only a surely executable one goes the fast way."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agentty_core.errors import SpawnError
from agentty_core.proc import ptyhost
from agentty_core.proc.execcheck import execs_surely
from tests.helpers.cli import wait_until

REPORT = r"""
import json, os
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
stat = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
umask = os.umask(0); os.umask(umask)
print(json.dumps({
    "pid": os.getpid(), "sid": os.getsid(0), "pgid": os.getpgid(0),
    "tty_nr": int(stat[4]), "tpgid": int(stat[5]),
    "tty": [os.ttyname(fd) for fd in (0, 1, 2)], "fds": sorted(os.listdir("/proc/self/fd")),
    "ignored": int(status["SigIgn"], 16), "blocked": int(status["SigBlk"], 16),
    "cwd": os.getcwd(), "umask": umask, "env": os.environ.get("PROBE"),
    "ctty": os.open("/dev/tty", os.O_RDWR) >= 0,
}), flush=True)
"""
WAYS: dict[str, Callable[..., ptyhost.PtyChild | None]] = {
    "fast": lambda argv, **kw: ptyhost._spawn_fast(ptyhost.setpriv() or "", argv, **kw),
    "forked": lambda argv, **kw: ptyhost._spawn_forked(argv, **kw),
}
needs_setpriv = pytest.mark.skipif(ptyhost.setpriv() is None, reason="no setpriv --pdeathsig")


def _read_line(fd: int, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                buf += os.read(fd, 65536)
            except BlockingIOError:
                continue
    return buf


@needs_setpriv
@pytest.mark.parametrize("way", sorted(WAYS))
def test_both_ways_give_the_program_the_same_process(way: str, tmp_path: Path) -> None:
    inherited_r, inherited_w = os.pipe()
    os.set_inheritable(inherited_w, True)  # as the worker's status pipe on fd 3 is
    # A disposition the caller ignored is kept (as exec keeps it); SIGHUP is reset.
    old_usr2 = signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    old_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        child = WAYS[way](
            [os.path.realpath(sys.executable), "-c", REPORT],
            cwd=str(tmp_path),
            env={**os.environ, "PROBE": "seen"},
            cols=100,
            rows=30,
            umask=0o027,
        )
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        signal.signal(signal.SIGHUP, old_hup)
        signal.signal(signal.SIGUSR2, old_usr2)
        os.close(inherited_w)
    assert child is not None
    try:
        report = json.loads(_read_line(child.fd).decode().strip().splitlines()[-1])
        assert report["pid"] == child.pid == report["sid"] == report["pgid"]
        assert report["tty"] == [child.tty_name] * 3
        assert report["tty_nr"] == os.stat(child.tty_name).st_rdev
        assert report["tpgid"] == child.pid and report["ctty"] is True
        # Nothing of ours, the inheritable pipe above included (3: the listing's own).
        assert report["fds"] == ["0", "1", "2", "3"]
        assert report["cwd"] == str(tmp_path) and report["umask"] == 0o027
        assert report["env"] == "seen"
        assert report["blocked"] == 0
        ignored = {sig for sig in signal.Signals if report["ignored"] & 1 << (sig - 1)}
        # (Python, the program here, ignores SIGPIPE and SIGXFSZ itself.)
        reset = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT}
        assert signal.SIGUSR2 in ignored and not ignored & reset
        assert os.get_terminal_size(child.fd) == os.terminal_size((100, 30))
    finally:
        os.close(inherited_r)
        os.waitpid(child.pid, 0)
        if child.owner is None:  # else ptyprocess's object closes it
            os.close(child.fd)


@pytest.mark.parametrize("spawner", ["0", "1"], ids=["direct", "spawner"])
def test_what_python_ignores_itself_is_default_in_the_program(spawner: str, tmp_path: Path) -> None:
    """Python ignores SIGPIPE and SIGXFSZ at its start: `agentty` and its worker do, and a
    program they start kept SIGXFSZ ignored (`dd` past `ulimit -f` wrote short and exited 1
    where a shell's child is killed by the signal, 153). Both are default for the program."""
    from tests.helpers.cli import agentty

    probe = "ulimit -f 1; dd if=/dev/zero of=big bs=4k count=4 2>/dev/null; echo $?"
    env = {**os.environ, "AGENTTY_SPAWNER": spawner}
    for _ in range(2):  # (the first start launches the spawner, the second is forked by it)
        words = [
            "run",
            "--cwd",
            str(tmp_path),
            "--",
            "sh",
            "-c",
            "grep SigIgn /proc/self/status; " + probe,
        ]
        out = agentty(*words, env=env)
        assert out.returncode == 0, out.stderr
        ignored_line, code = out.stdout.split()[-2:]
        ignored = int(ignored_line, 16)
        assert not ignored & (1 << (signal.SIGXFSZ - 1) | 1 << (signal.SIGPIPE - 1)), out.stdout
        assert code == str(128 + signal.SIGXFSZ), out.stdout


@needs_setpriv
@pytest.mark.parametrize("way", sorted(WAYS))
def test_the_program_dies_with_the_process_that_started_it(way: str) -> None:
    """PR_SET_PDEATHSIG: the program ignores SIGHUP (the hangup of its PTY does not end it),
    its starter is SIGKILLed, and it is gone."""
    starter = rf"""
import os, select, sys, time
sys.path.insert(0, {str(Path(__file__).parents[2])!r})
from agentty_core.errors import SpawnError
from agentty_core.proc import ptyhost
from agentty_core.proc.execcheck import execs_surely
program = "import signal, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); " \
    "print('up', flush=True); time.sleep(60)"
argv = [{os.path.realpath(sys.executable)!r}, "-c", program]
kw = dict(cwd="/", env=dict(os.environ), cols=80, rows=24, umask=0o022)
if {way!r} == "fast":
    child = ptyhost._spawn_fast(ptyhost.setpriv(), argv, **kw)
else:
    child = ptyhost._spawn_forked(argv, **kw)
buf = b""
while b"up" not in buf:
    select.select([child.fd], [], [])
    buf += os.read(child.fd, 100)
print(child.pid, flush=True)
time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    program = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_until(lambda: not _running(program), timeout=5)  # it dies with its starter


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_only_a_surely_executable_program_goes_the_fast_way(tmp_path: Path) -> None:
    def script(name: str, text: str, mode: int = 0o755) -> str:
        path = tmp_path / name
        path.write_text(text)
        path.chmod(mode)
        return str(path)

    elf = os.path.realpath(sys.executable)
    assert execs_surely(elf)
    assert execs_surely(script("ok", f"#!{elf} -u\nprint(1)\n"))
    assert execs_surely(script("env", "#!/usr/bin/env python3\n"))
    inner = script("inner", f"#!{elf}\n")
    assert not execs_surely(script("nested", f"#!{inner}\n"))  # a script's script
    assert not execs_surely(script("missing", "#!/no/such/interpreter\n"))
    assert not execs_surely(script("relative", "#!python3\n"))
    assert not execs_surely(script("empty", "#!\n"))
    assert not execs_surely(script("plain", "echo no shebang\n"))  # ENOEXEC
    assert not execs_surely(str(tmp_path / "gone"))
    if os.geteuid() != 0:  # root reads it anyway
        assert not execs_surely(script("unreadable", f"#!{elf}\n", 0o311))
    foreign = _patched(elf, tmp_path / "foreign", lambda data: data[:18] + b"\xb7\x00" + data[20:])
    assert not execs_surely(foreign)  # an aarch64 binary here: ENOEXEC
    assert not execs_surely(_without_its_loader(elf, tmp_path / "noloader"))
    assert not execs_surely(script("via-noloader", f"#!{tmp_path / 'noloader'}\n"))
    if os.path.exists("/sbin/ldconfig"):  # static: no loader to look for
        assert execs_surely(os.path.realpath("/sbin/ldconfig"))


def _patched(source: str, target: Path, change: Callable[[bytes], bytes]) -> str:
    target.write_bytes(change(Path(source).read_bytes()))
    target.chmod(0o755)
    return str(target)


def _without_its_loader(elf: str, target: Path) -> str:
    """A copy of `elf` whose PT_INTERP names a loader that is not there."""

    def rename_loader(data: bytes) -> bytes:
        start = data.index(b"/lib")  # the loader's path: the first string in the file
        end = data.index(b"\0", start)
        return data[:start] + b"/nonexistent/ld.so".ljust(end - start, b"\0") + data[end:]

    return _patched(elf, target, rename_loader)


@needs_setpriv
def test_a_binary_without_its_loader_fails_the_start(tmp_path: Path) -> None:
    """Its exec fails (ENOENT): the forked way reports it, as start always did."""
    program = _without_its_loader(os.path.realpath(sys.executable), tmp_path / "noloader")
    with pytest.raises(SpawnError, match="bad interpreter") as caught:
        ptyhost.spawn([program], str(tmp_path), dict(os.environ), 80, 24, umask=0o022)
    assert caught.value.exit_code == 126


@needs_setpriv
def test_a_failed_exec_is_still_an_error_of_the_start(tmp_path: Path) -> None:
    """A script whose interpreter is missing takes the forked way: start fails with the
    message and exit code it always had, not a session that ends at once."""
    bad = tmp_path / "bad"
    bad.write_text("#!/no/such/interpreter\n")
    bad.chmod(0o755)
    with pytest.raises(SpawnError, match="bad interpreter") as caught:
        ptyhost.spawn([str(bad)], str(tmp_path), dict(os.environ), 80, 24, umask=0o022)
    assert caught.value.exit_code == 126

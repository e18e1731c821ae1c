"""A real sshd on 127.0.0.1 for the `--host` tests: a free port, a throwaway host key and
user key, the remote side in its own AGENTTY_HOME. Nothing leaves this machine; every
process (sshd, its connections, the ssh masters, remote sessions) ends at teardown."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from agentty_core.pytest_plugin import reap
from tests.helpers.census import describe, processes_of_home, sweep_home
from tests.helpers.cli import AGENTTY

SSHD = shutil.which("sshd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
SSH = shutil.which("ssh")
HOST = "lo"  # the hosts.toml entry every test uses


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "agentty-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Sshd:
    """One sshd on 127.0.0.1:port; stop() ends it and every connection it serves."""

    root: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "sshd.log"
        _keygen(self.root / "host_key")
        _keygen(self.root / "user_key")
        # SHLVL=1: the user's shell runs each command without its ~/.bashrc (bash reads it
        # for a top-level shell that sshd started). This machine's own start-up files (a
        # pyenv set-up, say, with a lock that a killed session leaves behind) are no part
        # of what is tested, and made remote calls stall for seconds.
        key = (self.root / "user_key.pub").read_text()
        (self.root / "authorized_keys").write_text(f'environment="SHLVL=1" {key}')
        (self.root / "sshd_config").write_text(
            f"ListenAddress 127.0.0.1\nPort {self.port}\n"
            f"HostKey {self.root}/host_key\nPidFile {self.root}/sshd.pid\n"
            f"AuthorizedKeysFile {self.root}/authorized_keys\n"
            "PermitRootLogin yes\nStrictModes no\nUsePAM no\nUseDNS no\n"
            "PermitUserEnvironment SHLVL\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PrintMotd no\nPrintLastLog no\nAllowAgentForwarding no\nX11Forwarding no\n"
        )
        host_pub = (self.root / "host_key.pub").read_text().split()[:2]
        (self.root / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {' '.join(host_pub)}\n")

    def ssh_config(self, known_hosts: Path | None = None) -> Path:
        path = self.root / ("ssh_config" if known_hosts is None else "ssh_config_other")
        path.write_text(
            "Host *\n  HostName 127.0.0.1\n"
            f"  Port {self.port}\n  User {os.environ.get('USER') or 'root'}\n"
            f"  IdentityFile {self.root}/user_key\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {known_hosts or self.root / 'known_hosts'}\n"
            "  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n"
        )
        return path

    def start(self) -> None:
        assert SSHD is not None
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.root / "sshd_config")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.skip(f"sshd did not start here: {self.log.read_text()[-300:]}")
            with socket.socket() as s, contextlib.suppress(OSError):
                s.connect(("127.0.0.1", self.port))
                return
            time.sleep(0.05)
        self.stop()
        pytest.skip("sshd did not listen within 15 s")

    def stop(self) -> None:
        """The listener and every connection it forked (the masters' far ends) end, as when
        the machine's sshd goes away; sessions started through it keep running."""
        if self.proc is None:
            return
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(self.proc.pid)
            # Stopped first: a connection it accepted after the children were listed would
            # outlive it and answer a poll or two (a host "down" that came back up).
            parent.suspend()
            for child in parent.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if child.name() == "sshd" or "sshd" in " ".join(child.cmdline()[:1]):
                        child.kill()
        self.proc.kill()
        self.proc.wait()
        self.proc = None


@pytest.fixture
def sshd() -> Iterator[Sshd]:
    if SSHD is None or SSH is None:
        pytest.skip("openssh-server (sshd) is not installed; .ci/run installs it")
    if not os.path.isdir("/run/sshd"):
        if os.getuid() != 0:
            pytest.skip("sshd needs /run/sshd (its privilege separation directory)")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="sshd-", dir="/tmp"))
    server = Sshd(root, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _callers(home: Path) -> list[psutil.Process]:
    """The home's agentty commands still running (not its workers, nor their programs)."""
    found = []
    for proc in processes_of_home(str(home)):
        with contextlib.suppress(psutil.Error):
            if any(arg.endswith("/agentty") for arg in proc.cmdline()[:2]):
                found.append(proc)
    return found


@pytest.fixture
def remote_home() -> Iterator[Path]:
    """The remote side's AGENTTY_HOME; its sessions are killed and counted at teardown."""
    home = Path(tempfile.mkdtemp(prefix="atr-", dir="/tmp"))
    os.chmod(home, 0o700)
    yield home
    # A remote `agentty` whose answer the test has may still be on its way out, launching
    # the home's warm spawner: let it finish, or the spawner comes up after the reaper.
    deadline = time.monotonic() + 10
    while _callers(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    # The one reaper: the remote home's sessions and its warm spawner (the remote agentty
    # runs under sshd's environment, where the tests' AGENTTY_SPAWNER=0 does not reach).
    reap(home, leftovers=False)
    left = sweep_home(str(home))
    shutil.rmtree(home, ignore_errors=True)
    if left:
        pytest.fail(f"test left remote processes behind: {describe(left)}")


@dataclass
class Link:
    """The test's view of a configured remote host: its hosts.toml name and homes."""

    name: str
    config_dir: Path
    remote_home: Path
    sshd: Sshd

    def write_hosts(self, extra: str = "") -> None:
        (self.config_dir / "agentty").mkdir(exist_ok=True)
        (self.config_dir / "agentty" / "hosts.toml").write_text(
            f'[hosts.{HOST}]\nssh = "box"\nssh_config = "{self.sshd.ssh_config()}"\n'
            f'agentty = "{AGENTTY}"\nhome = "{self.remote_home}"\n' + extra
        )


@pytest.fixture
def link(
    sshd: Sshd, remote_home: Path, agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Link]:
    """hosts.toml with the entry `lo` (the sshd above, this venv's agentty, remote_home);
    the ssh master is ended at teardown (`ssh -O exit`)."""
    config = Path(tempfile.mkdtemp(prefix="cfg-", dir="/tmp"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("AGENTTY_CONNECT_TIMEOUT", "5")
    monkeypatch.delenv("AGENTTY_HOST", raising=False)
    result = Link(HOST, config, remote_home, sshd)
    result.write_hosts()
    try:
        yield result
    finally:
        end_masters(agentty_home)
        shutil.rmtree(config, ignore_errors=True)


def end_masters(home: Path) -> None:
    """`ssh -O exit` on every control socket of the home's ssh/ directory."""
    for path in sorted((home / "ssh").glob("*")) if (home / "ssh").is_dir() else []:
        if path.is_socket():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={path}", "-O", "exit", "x"],
                capture_output=True,
                check=False,
                timeout=10,
            )

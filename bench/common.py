"""Shared helpers of the benchmark scripts: results rows, statistics, private homes, tmux.

Every script measures agentty against a peer in the same process run, so the ratios are
taken on the same machine at the same moment. Targets are reported, never asserted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agentty_core.client import Client
from agentty_core.errors import AgenttyError
from agentty_core.launch import spawner_client
from agentty_core.paths import Home

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
AGENTTY = str(VENV_BIN / "agentty")
PYTHON = sys.executable
TMUX = shutil.which("tmux")
CSI = chr(27) + "["  # escape sequences in generated output
TMUX_HINT = "tmux not found: install it with `apt-get install tmux` to get this row"


@dataclass
class Row:
    """One line of the results table: agentty's figure, its peer's, and the target."""

    bench: str
    name: str
    unit: str
    median: float | None
    p95: float | None = None
    peer: str = ""
    peer_median: float | None = None
    target: str = ""
    ok: bool | None = None  # None: no target, or not measurable
    note: str = ""
    samples: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.median is None or not self.peer_median:
            return None
        return self.median / self.peer_median

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def skipped(bench: str, name: str, reason: str, target: str = "") -> Row:
    return Row(bench, name, "", None, target=target, note=f"skipped: {reason}")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def ms_row(bench: str, name: str, samples: Sequence[float], **kw: object) -> Row:
    """A row from samples in seconds, reported in milliseconds."""
    values = [s * 1000 for s in samples]
    row = Row(bench, name, "ms", median(values), p95(values), samples=len(values))
    for key, value in kw.items():
        setattr(row, key, value)
    return row


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_quiet(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one whole process, its output discarded; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr!r}")
    return elapsed


@contextlib.contextmanager
def agentty_home() -> Iterator[Path]:
    """A fresh private AGENTTY_HOME for this block; every session in it is killed after."""
    root = Path(tempfile.mkdtemp(prefix="atb-", dir="/tmp"))
    os.chmod(root, 0o700)
    old = os.environ.get("AGENTTY_HOME")
    os.environ["AGENTTY_HOME"] = str(root)
    try:
        yield root
    finally:
        spawner_client.stop(str(root))  # a `start` in it launched the home's warm spawner
        kill_all(root)
        if old is None:
            os.environ.pop("AGENTTY_HOME", None)
        else:
            os.environ["AGENTTY_HOME"] = old
        shutil.rmtree(root, ignore_errors=True)


def spawner_ready(root: Path) -> None:
    """Wait until the home's spawner answers (it imports for a while on a loaded machine)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = spawner_client.info(str(root))
        if info and info.get("ready"):
            return
        time.sleep(0.02)
    raise RuntimeError("the spawner was not ready within 60 s")


def warm_home(root: Path) -> None:
    """The home as an agent's is after its first `start`: the warm spawner ready (as the
    tmux peers' server is running), that first session ended."""
    rec = client(root).start(["true"])  # finds no spawner: launches one
    spawner_ready(root)
    client(root).wait(str(rec["id"]), exit=True, timeout=10)


def client(root: Path) -> Client:
    return Client(Home.resolve(root))


def kill_all(root: Path) -> None:
    """Kill every live session of the home `root` (only ours: the home is a temp dir)."""
    c = client(root)
    live = [
        str(r["id"]) for r in c.sessions() if r.get("status") in ("running", "starting", "lost")
    ]

    def kill(session_id: str) -> None:
        with contextlib.suppress(AgenttyError):
            c.kill(session_id, grace=1.0)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(kill, live))


class Tmux:
    """A private tmux server (own socket dir, no config) for one benchmark."""

    def __init__(self, history_limit: int = 2000) -> None:
        assert TMUX is not None
        self.dir = tempfile.mkdtemp(prefix="atb-tmux-", dir="/tmp")
        os.chmod(self.dir, 0o700)
        conf = Path(self.dir, "tmux.conf")
        conf.write_text(
            f"set -g history-limit {history_limit}\nset -g remain-on-exit on\n"
            "set -g status off\nset -sg escape-time 0\n"
        )
        self.socket = str(Path(self.dir, "s"))
        self.base = [TMUX, "-S", self.socket, "-f", str(conf)]

    def cmd(self, *args: str) -> list[str]:
        return [*self.base, *args]

    def run(self, *args: str) -> str:
        proc = subprocess.run(self.cmd(*args), capture_output=True, text=True, check=True)
        return proc.stdout

    def new_session(self, name: str, command: str, cols: int = 80, rows: int = 24) -> None:
        self.run("new-session", "-d", "-s", name, "-x", str(cols), "-y", str(rows), command)

    def capture(self, target: str) -> str:
        return self.run("capture-pane", "-p", "-t", target)

    def server_pid(self) -> int:
        return int(self.run("display-message", "-p", "#{pid}").strip())

    def close(self) -> None:
        subprocess.run(self.cmd("kill-server"), capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Tmux:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def poll(fn: Callable[[], bool], timeout: float, interval: float = 0.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        if interval:
            time.sleep(interval)
    return False


def main_for(run: Callable[[bool], list[Row]]) -> None:
    """`python bench/X.py [--quick]`: run one script alone and print its rows."""
    quick = "--quick" in sys.argv
    from bench.report import table

    print(table(run(quick)))

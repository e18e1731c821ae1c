"""8. Agent tasks end to end: six scripted tasks an agent does with an interactive program,
each done three ways in the same run:

- agentty's CLI, one process per call, the way an agent's shell tool runs it (waits, no sleeps),
  in a home as an agent's is after its first `start` (the warm spawner ready; a cold first
  start costs what row 5's cold start says, once per home and idle period);
- tmux the way agents drive it today: `send-keys`, then `capture-pane -p` every 0.15 s until
  the screen shows what the next step needs;
- pexpect in-process (a library call each; no separate process per call), for reference.

Each row gives agentty's median wall time per task against the tmux poller's, with the
number of calls each made and the poller's sleeps in the note. Target: agentty's wall time
<= the poller's on every task, with no more calls and zero sleeps.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    AGENTTY,
    TMUX,
    TMUX_HINT,
    Row,
    Tmux,
    agentty_home,
    median,
    skipped,
    warm_home,
)

B = "8 tasks"
POLL = 0.15  # the poll interval of the tmux agents we compared with
INSTALLER = """\
read -r -p 'Name: ' name
read -r -p 'Continue? [y/N] ' ok
read -r -s -p 'Password: ' pw; echo
echo "installed for $name ($ok, ${#pw} chars)"
"""
# The build's length is not known to the agents: each round's is another, spread over one
# poll interval (0.5-0.63 s), the same for every way of doing it. (One fixed length put the
# poller's every check at the same moment of the build: early by a hair, or just in time.)
BUILD = "import time; print('compiling...', flush=True); time.sleep({}); print('BUILD-OK')"
BUILD_FROM, BUILD_SPREAD = 0.5, POLL


@dataclass
class Tally:
    """Calls and sleeps of one way of doing one task."""

    calls: int = 0
    sleeps: int = 0
    notes: list[str] = field(default_factory=list)


class Agentty:
    """An agent using the agentty CLI: every call is one process."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def __call__(self, *args: str, ok: tuple[int, ...] = (0,)) -> str:
        self.tally.calls += 1
        proc = subprocess.run([AGENTTY, *args], capture_output=True, text=True, check=False)
        if proc.returncode not in ok:
            raise RuntimeError(f"agentty {' '.join(args)}: {proc.returncode} {proc.stderr!r}")
        return proc.stdout


class TmuxAgent:
    """An agent driving tmux: send-keys, then poll capture-pane every POLL seconds."""

    def __init__(self, tmux: Tmux, tally: Tally) -> None:
        self.tmux = tmux
        self.tally = tally

    def run(self, *args: str) -> str:
        self.tally.calls += 1
        return self.tmux.run(*args)

    def start(self, command: str) -> None:
        self.run("new-session", "-d", "-s", "t", "-x", "80", "-y", "24", command)

    def send(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", "t", *(["-l"] if literal else []), *keys)

    def until(self, ready: Callable[[str], bool], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.run("capture-pane", "-p", "-t", "t")
            if ready(screen):
                return screen
            if time.monotonic() > deadline:
                raise RuntimeError(f"tmux agent timed out; screen:\n{screen}")
            self.tally.sleeps += 1
            time.sleep(POLL)

    def until_exit(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.run("list-panes", "-t", "t", "-F", "#{pane_dead}").strip() != "1":
            if time.monotonic() > deadline:
                raise RuntimeError("tmux agent: the program did not exit")
            self.tally.sleeps += 1
            time.sleep(POLL)
        self.tmux.run("kill-session", "-t", "t")


@dataclass
class Task:
    """One task: a fresh working directory, then the same job done by each kind of agent."""

    name: str
    prepare: Callable[[Path, float], None]  # the work directory; where in its rounds (0..1)
    with_agentty: Callable[[Agentty, Path], None]
    with_tmux: Callable[[TmuxAgent, Path], None]
    with_pexpect: Callable[[Path], int]  # returns its library calls
    check: Callable[[Path], bool]
    needs: tuple[str, ...] = ()


# --- vim: insert a line and save ------------------------------------------------------------
VIM = ["vim", "-Nu", "NONE", "-i", "NONE", "notes.txt"]


def vim_agentty(a: Agentty, d: Path) -> None:
    # One shot: each answer waits until vim reads (`--text`: typed, no Enter of its own).
    a(
        "run", "--cwd", str(d),
        "--key", "i", "--text", "hello from an agent", "--key", "Esc", "--input", ":wq",
        "--", *VIM,
    )  # fmt: skip


def vim_tmux(t: TmuxAgent, d: Path) -> None:
    t.start(f"cd {d} && {' '.join(VIM)}")
    t.until(lambda s: "notes.txt" in s)
    t.send("i")
    t.send("hello from an agent", literal=True)
    t.send("Escape", ":wq", "Enter")
    t.until_exit()


def vim_pexpect(d: Path) -> int:
    import pexpect

    child = pexpect.spawn(VIM[0], VIM[1:], cwd=str(d), dimensions=(24, 80))
    child.expect("notes.txt")
    child.send("ihello from an agent\x1b:wq\r")
    child.expect(pexpect.EOF)
    return 4


# --- a Python REPL computation --------------------------------------------------------------
def repl_agentty(a: Agentty, d: Path) -> None:
    a("start", "--name", "t", "--", sys.executable, "-q")
    a("wait", "--text", ">>>")
    a("text", "--enter", "print(6 * 7)")
    a("wait", "--regex", "^42$")
    a("key", "Ctrl+D")
    a("wait", "--exit")


def repl_tmux(t: TmuxAgent, d: Path) -> None:
    t.start(f"{sys.executable} -q")
    t.until(lambda s: ">>>" in s)
    t.send("print(6 * 7)", literal=True)
    t.send("Enter")
    t.until(lambda s: "\n42\n" in s)
    t.send("C-d")
    t.until_exit()


def repl_pexpect(d: Path) -> int:
    import pexpect

    child = pexpect.spawn(sys.executable, ["-q"], dimensions=(24, 80))
    child.expect(">>> ")
    child.sendline("print(6 * 7)")
    child.expect("\n42\r\n")
    child.sendeof()
    child.expect(pexpect.EOF)
    return 6


# --- an installer's prompts, one of them a password -----------------------------------------
def installer_prepare(d: Path, at: float) -> None:
    (d / "install.sh").write_text(INSTALLER)


def installer_agentty(a: Agentty, d: Path) -> None:
    a(
        "run",
        "--expect", "Name:", "--input", "Ada",
        "--expect", "Continue?", "--input", "y",
        "--expect", "Password:", "--input", "s3cret",
        "--", "bash", str(d / "install.sh"),
    )  # fmt: skip


def installer_tmux(t: TmuxAgent, d: Path) -> None:
    t.start(f"bash {d / 'install.sh'}")
    for prompt, answer in (("Name:", "Ada"), ("Continue?", "y"), ("Password:", "s3cret")):
        t.until(lambda s, p=prompt: p in s)  # type: ignore[misc]  # default binds the prompt
        t.send(answer, literal=True)
        t.send("Enter")
    t.until_exit()


def installer_pexpect(d: Path) -> int:
    import pexpect

    child = pexpect.spawn("bash", [str(d / "install.sh")], dimensions=(24, 80))
    for prompt, answer in (("Name:", "Ada"), ("Continue", "y"), ("Password:", "s3cret")):
        child.expect(prompt)
        child.sendline(answer)
    child.expect(pexpect.EOF)
    return 8


# --- git rebase -i: swap the last two commits ----------------------------------------------
GIT_ENV = {
    "GIT_AUTHOR_NAME": "a",
    "GIT_AUTHOR_EMAIL": "a@example.invalid",
    "GIT_COMMITTER_NAME": "a",
    "GIT_COMMITTER_EMAIL": "a@example.invalid",
    "GIT_EDITOR": "vim -Nu NONE -i NONE",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def git(d: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", *args], cwd=d, env=env, capture_output=True, text=True, check=True
    ).stdout


def rebase_prepare(d: Path, at: float) -> None:
    git(d, "init", "-q", "-b", "main")
    for name in ("one", "two", "three"):
        (d / name).write_text(name)
        git(d, "add", name)
        git(d, "commit", "-q", "-m", name)


def rebase_check(d: Path) -> bool:
    return git(d, "log", "--format=%s").split() == ["two", "three", "one"]


def rebase_agentty(a: Agentty, d: Path) -> None:
    env = [f"--env={k}={v}" for k, v in GIT_ENV.items()]
    a("start", "--name", "t", "--cwd", str(d), *env, "--", "git", "rebase", "-i", "HEAD~2")
    a("wait", "--input")
    a("send", "d", "d", "p", ":wq", "Enter")
    a("wait", "--exit")


def rebase_tmux(t: TmuxAgent, d: Path) -> None:
    exports = " ".join(f"{k}='{v}'" for k, v in GIT_ENV.items())
    t.start(f"cd {d} && env {exports} git rebase -i HEAD~2")
    t.until(lambda s: "pick" in s)
    t.send("d", "d", "p", ":wq", "Enter")
    t.until_exit()


def rebase_pexpect(d: Path) -> int:
    import pexpect

    env = {**os.environ, **GIT_ENV}
    child = pexpect.spawn("git", ["rebase", "-i", "HEAD~2"], cwd=str(d), env=env)
    child.expect("pick")
    child.send("ddp:wq\r")
    child.expect(pexpect.EOF)
    return 4


# --- a build of unknown length ---------------------------------------------------------------
def build_prepare(d: Path, at: float) -> None:
    (d / "build.py").write_text(BUILD.format(round(BUILD_FROM + at * BUILD_SPREAD, 3)))


def build_agentty(a: Agentty, d: Path) -> None:
    a("start", "--name", "t", "--", sys.executable, str(d / "build.py"))
    a("wait", "--text", "BUILD-OK", "--regex", "error|failed", "--exit")
    a("wait", "--exit")


def build_tmux(t: TmuxAgent, d: Path) -> None:
    t.start(f"{sys.executable} {d / 'build.py'}")
    t.until(lambda s: "BUILD-OK" in s)
    t.until_exit()


def build_pexpect(d: Path) -> int:
    import pexpect

    child = pexpect.spawn(sys.executable, [str(d / "build.py")])
    child.expect("BUILD-OK")
    child.expect(pexpect.EOF)
    return 4


# --- a dialog menu ---------------------------------------------------------------------------
DIALOG = ["dialog", "--menu", "Pick a fruit", "12", "40", "3", "a", "Apple", "b", "Banana"]


def dialog_agentty(a: Agentty, d: Path) -> None:
    argv = ["sh", "-c", f'{shlex.join(DIALOG)} 2>"{d}/choice"']
    a("run", "--expect", "Banana", "--key", "Down Enter", "--", *argv)  # a one-shot menu


def dialog_tmux(t: TmuxAgent, d: Path) -> None:
    t.start(f'{shlex.join(DIALOG)} 2>"{d}/choice"')
    t.until(lambda s: "Banana" in s and "<Cancel>" in s)
    t.send("Down", "Enter")
    t.until_exit()


def dialog_pexpect(d: Path) -> int:
    import pexpect

    child = pexpect.spawn("sh", ["-c", f'{shlex.join(DIALOG)} 2>"{d}/choice"'])
    child.expect("Cancel")
    child.send("\x1bOB")  # ncurses sets application cursor keys
    child.send("\r")
    child.expect(pexpect.EOF)
    return 4


def _nothing(d: Path, at: float) -> None:
    pass


TASKS = [
    Task("vim: insert a line, save", _nothing, vim_agentty, vim_tmux, vim_pexpect,
         lambda d: (d / "notes.txt").read_text() == "hello from an agent\n", ("vim",)),
    Task("python REPL: 6*7", _nothing, repl_agentty, repl_tmux, repl_pexpect,
         lambda d: True),
    Task("installer: 3 prompts, a password", installer_prepare, installer_agentty,
         installer_tmux, installer_pexpect, lambda d: True, ("bash",)),
    Task("git rebase -i: swap two commits", rebase_prepare, rebase_agentty, rebase_tmux,
         rebase_pexpect, rebase_check, ("git", "vim")),
    Task("build of unknown length", build_prepare, build_agentty, build_tmux, build_pexpect,
         lambda d: True),
    Task("dialog menu: pick the 2nd", _nothing, dialog_agentty, dialog_tmux, dialog_pexpect,
         lambda d: (d / "choice").read_text() == "b", ("dialog",)),
]  # fmt: skip


def _timed(task: Task, way: Callable[[Path], object], at: float) -> float:
    work = Path(tempfile.mkdtemp(prefix="atb-task-", dir="/tmp"))
    try:
        task.prepare(work, at)
        start = time.perf_counter()
        way(work)
        elapsed = time.perf_counter() - start
        if not task.check(work):
            raise RuntimeError(f"{task.name}: the task's result is wrong")
        return elapsed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _one_task(task: Task, n: int, tmux: Tmux | None, pexpect_ok: bool) -> Row:
    mine, theirs = Tally(), Tally()
    times: dict[str, list[float]] = {"agentty": [], "tmux": [], "pexpect": []}
    pexpect_failed = 0
    for i in range(n):
        at = i / n
        with agentty_home() as root:
            warm_home(root)
            mine.calls = 0
            times["agentty"].append(_timed(task, lambda d: task.with_agentty(Agentty(mine), d), at))
        if tmux:
            theirs.calls = theirs.sleeps = 0
            agent = TmuxAgent(tmux, theirs)
            times["tmux"].append(
                _timed(task, lambda d, a=agent: task.with_tmux(a, d), at)  # type: ignore[misc]
            )
        if pexpect_ok:
            try:
                times["pexpect"].append(_timed(task, task.with_pexpect, at))
            except Exception:  # the reference's own hiccup (a ^D lost to the REPL's tty
                pexpect_failed += 1  # mode switch, seen once): a sample less, not the row
    row = Row(B, task.name, "ms", median(times["agentty"]) * 1000, samples=n)
    row.extra = {"agentty_calls": mine.calls}
    notes = [f"agentty {mine.calls} calls, 0 sleeps, spawner warm"]
    if tmux:
        row.peer = "tmux + 0.15 s polling"
        row.peer_median = median(times["tmux"]) * 1000
        row.extra |= {"tmux_calls": theirs.calls, "tmux_sleeps": theirs.sleeps}
        notes.append(f"tmux {theirs.calls} calls, {theirs.sleeps} sleeps")
        row.target = "<= poller's time, <= its calls"
        row.ok = row.median is not None and row.median <= row.peer_median
        row.ok = row.ok and mine.calls <= theirs.calls
    if times["pexpect"]:
        row.extra["pexpect_ms"] = median(times["pexpect"]) * 1000
        notes.append(f"pexpect in-process {row.extra['pexpect_ms']:.0f} ms")
    if pexpect_failed:
        notes.append(f"pexpect failed in {pexpect_failed} of {n} rounds")
    row.note = "; ".join(notes)
    return row


def run(quick: bool) -> list[Row]:
    n = 1 if quick else 7
    try:
        import pexpect  # noqa: F401

        pexpect_ok = True
    except ImportError:
        pexpect_ok = False
    tmux = Tmux() if TMUX else None
    rows: list[Row] = []
    try:
        for task in TASKS:
            missing = [p for p in task.needs if shutil.which(p) is None]
            if missing:
                rows.append(skipped(B, task.name, f"{', '.join(missing)} not installed"))
                continue
            rows.append(_one_task(task, n, tmux, pexpect_ok))
    finally:
        if tmux:
            tmux.close()
    if not tmux:
        rows.append(skipped(B, "tmux poller", TMUX_HINT))
    return rows


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)

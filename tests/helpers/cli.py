"""Running the installed `agentty` command the way an agent would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

AGENTTY = str(Path(sys.executable).with_name("agentty"))


def agentty(
    *args: str,
    input: bytes | None = None,
    timeout: float = 60,
    check: bool = False,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Run `agentty ARGS...` with the test's environment (or `env`); stdout/stderr captured
    as text."""
    proc = subprocess.run(
        [AGENTTY, *args],
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy() if env is None else env,
        stdin=None if input is not None else subprocess.DEVNULL,
        cwd=cwd,
        pass_fds=pass_fds,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"agentty {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc


def agentty_json(*args: str, timeout: float = 60) -> dict[str, Any]:
    """`agentty ARGS --json`, parsed. `Any`: tests index freely into the JSON they check."""
    # Right after the command name, so that it never lands in `start`'s program argv.
    proc = agentty(args[0], "--json", *args[1:], timeout=timeout, check=True)
    value = json.loads(proc.stdout)
    assert isinstance(value, dict)
    return value


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Poll `predicate` until it is true; its true value (what was waited for, a link's
    stats, say). Fails with a clear message at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {predicate}")


def run_holds(home: Path) -> bool:
    """A worker of the home took `run`'s hold (its log says so): the session started and is
    ready, and `run` waits for its end."""
    return any("held: " in log.read_text() for log in (home / "logs").glob("*.log"))


def signals_default() -> None:
    """`preexec_fn` for a command a test interrupts with SIGINT, SIGTERM or SIGHUP: a
    harness run in the background (`cmd &` in a script) ignores SIGINT, one under `nohup`
    SIGHUP, its children inherit that, and agentty leaves an ignored signal ignored (a
    Python started with SIGINT ignored has no Ctrl-C at all)."""
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)

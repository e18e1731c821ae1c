"""pytest plugin (entry point `pytest11`): the `agentty_session` fixture factory.

    def test_repl(agentty_session):
        py = agentty_session(["python3", "-q"])
        py.wait(text=">>>")

Each test gets a private `AGENTTY_HOME` (also exported to the environment, so `agentty`
commands the test runs see the same sessions), and everything it started is killed at
teardown, even sessions whose worker already died, the way libtmux's plugin reaps tmux.
The factory's sessions are also held (`Client.hold`): a pytest ended by a signal no
teardown runs for (a CI job's timeout sends SIGTERM) still ends them.
`reap` is that teardown on its own, for test suites with fixtures of their own (agentty's
included).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentty_core.client import Client
from agentty_core.errors import AgenttyError
from agentty_core.ipc.client import Connection
from agentty_core.paths import Home
from agentty_core.session import GONE, Session

SPAWNER_IDLE = 30  # seconds (see agentty_home_path)
KEEP_OPTION = "--agentty-keep-failed"
# What a test's fixtures leave on its item for the report and the teardown.
_STARTED = pytest.StashKey[list[Session]]()  # the sessions it started
_HOME = pytest.StashKey[Path]()  # its home
_FAILED = pytest.StashKey[bool]()  # its call failed


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("agentty").addoption(
        KEEP_OPTION,
        action="store_true",
        help="keep a failed test's agentty home (its sessions' logs, final screens and "
        "recordings) and name it in the test's report; its sessions still end",
    )


@pytest.fixture
def agentty_home_path(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Path]:
    """A private, short (socket paths are limited to 107 bytes) AGENTTY_HOME for one test;
    removed afterwards, but kept for a failed test with --agentty-keep-failed."""
    root = Path(tempfile.mkdtemp(prefix="agentty-", dir="/tmp"))
    request.node.stash[_HOME] = root
    os.chmod(root, 0o700)
    monkeypatch.setenv("AGENTTY_HOME", str(root))
    # What else would send the test's `agentty` commands elsewhere: another host (they
    # went over ssh), another socket directory, a session of the caller's own.
    for name in ("AGENTTY_HOST", "AGENTTY_SOCKET_DIR", "AGENTTY_SESSION_ID"):
        monkeypatch.delenv(name, raising=False)
    # The home's warm spawner outlives a pytest killed outright (no teardown runs): it ends
    # after a short quiet time instead of ten minutes.
    monkeypatch.setenv("AGENTTY_SPAWNER_IDLE", str(SPAWNER_IDLE))
    yield root
    reap(root)
    if not (request.node.stash.get(_FAILED, False) and _keeping(request.config)):
        shutil.rmtree(root, ignore_errors=True)


def _keeping(config: pytest.Config) -> bool:
    return bool(config.getoption(KEEP_OPTION, default=False))


@pytest.fixture
def agentty_session(
    agentty_home_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Session]]:
    """A factory: `agentty_session(argv, name=..., cwd=..., size=..., env=...)` -> Session.
    A test that fails has the screens of the sessions it started in its report."""
    home = Home.resolve(agentty_home_path)
    started: list[Session] = []
    request.node.stash[_STARTED] = started
    holds: list[Connection] = []

    def start(argv: Sequence[str], **options: object) -> Session:
        session = Session.start(argv, home=home, **options)  # type: ignore[arg-type]  # options are Session.start's keywords
        started.append(session)
        if isinstance(session.client, Client):
            with contextlib.suppress(AgenttyError):  # (it may have ended already)
                holds.append(session.client.hold(session.id))
        return session

    try:
        yield start
    finally:
        try:
            for session in started:
                with contextlib.suppress(*GONE):  # ended, or removed by the test (`gc`)
                    session.kill(grace=0.5)  # (one that will not die is the test's error)
        finally:
            for hold in holds:
                hold.close()


@pytest.hookimpl(hookwrapper=True)  # (the old style: pluggy before 1.2 has no other)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """The screens of a failed test's sessions, as they are when it failed, in its report
    (a wait that timed out said only what it waited for), and its home when it is kept."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
        for session in item.stash.get(_STARTED, []):
            report.sections.append((f"agentty session {session.id}", _screen_of(session)))
        home = item.stash.get(_HOME, None)
        if home is not None and _keeping(item.config):
            report.sections.append(("agentty home", f"kept ({KEEP_OPTION}): {home}\n"))


def _screen_of(session: Session) -> str:
    try:
        screen = session.get()
    except AgenttyError as exc:
        return f"(its screen cannot be read: {exc})"
    from agentty_core.screen_text import controls_escaped

    rows = [controls_escaped(line) for line in screen.text.splitlines()]
    return "\n".join(rows) + "\n"


def reap(root: Path, *, grace: float = 0.5, leftovers: bool = True) -> None:
    """End what a test left running in the agentty home `root`: each session still running,
    starting or lost, through `kill` as an agent would (a lost one's survivors included).

    With `leftovers` (the default), then every other process carrying the home's marker too:
    survivors of sessions that ended, or that the records no longer name. Without it those
    stay, for a process census to report as the leaks they are. The home's warm spawner
    is stopped first, so no worker is forked meanwhile.

    agentty's own errors (a corrupt or locked state, a worker that will not die) are not
    raised: what this could not end is still running, and a census sees it.
    """
    from agentty_core.client import Client
    from agentty_core.errors import AgenttyError
    from agentty_core.launch import spawner_client
    from agentty_core.proc.orphans import end, marked_processes

    home = Home(root.absolute())  # unchecked: a test may have left it in any state
    spawner_client.stop(str(home.root))  # first: no new worker is forked meanwhile
    client = Client(home)
    try:
        with contextlib.suppress(AgenttyError):
            for rec in client.sessions():
                if rec.get("status") in ("running", "starting", "lost"):
                    with contextlib.suppress(AgenttyError):
                        client.kill(rec["id"], grace=grace)
    finally:
        client.close()
    if leftovers and (survivors := marked_processes(home)):
        end(survivors, grace=grace, again=lambda: marked_processes(home))
    sockets = home.socket_dir()
    if sockets != home.sockets_dir and not os.environ.get("AGENTTY_SOCKET_DIR"):
        # A long home's short fallback in /tmp, not removed with the home: gone once empty.
        with contextlib.suppress(OSError):
            sockets.rmdir()

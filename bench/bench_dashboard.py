"""7. Dashboard: time to the first frame of the Textual app with 50 live sessions, and its
CPU while the grid shows 20 sessions that print continuously (~50 lines/s each), both
through `App.run_test()` (headless: composing and rendering count, writing to a terminal
does not). Skipped, with the reason, while `agentty_ui` has no app to import.
Across hosts: the first frame listing 3 hosts x 20 sessions, and the same with one host
blackholing (its poll never answers: the others must not wait for it).
Targets: first frame <= 1 s; CPU <= 30% of one core; across hosts <= 1.5 s."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agentty_core.launch import spawner_client
from agentty_core.remote.client import RemoteClient
from bench.common import AGENTTY, Row, agentty_home, client, kill_all, median, skipped

B = "7 dashboard"
NAME = "first frame, 50 sessions (App.run_test)"
CPU_NAME = "CPU, grid of 20 sessions printing"
HOSTS_NAME = "first frame, 3 hosts x 20 sessions"
DOWN_NAME = "first frame, 3 hosts x 20 sessions, one host down"
HOSTS_NOTE = (
    "hosts: the `command` transport (`env AGENTTY_HOME=...` + this agentty) to 3 other homes "
    "on this machine, no ssh; time until every reachable host's sessions are listed "
    "(extra: the app's own first frame)"
)
DOWN_NOTE = (
    "the third host is ssh to a port that accepts and never answers (blackholing): the time "
    "until the other two hosts' 40 sessions are listed while its poll hangs"
)
PRINTER = (
    "import itertools, time\n"
    "for i in itertools.count():\n"
    "    print(f'line {i:08d} ' + 'x' * 60, flush=True)\n"
    "    time.sleep(0.02)\n"
)


def _app_class() -> type | None:
    """The dashboard's App subclass, wherever agentty_ui defines it."""
    try:
        from textual.app import App
    except ImportError:
        return None
    for module_name in ("agentty_ui.app", "agentty_ui"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, App) and value is not App:
                return value
    return None


async def _first_frame(app_cls: type) -> float:
    start = time.perf_counter()
    app = app_cls()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        return time.perf_counter() - start


async def _grid_cpu(app_cls: type, seconds: float, sessions: int) -> float:
    """Share of one core the app's process used while the grid was up (opened once every
    session is listed: opened earlier, it would show fewer panes, or none)."""
    from agentty_ui.widgets.session_list import SessionList

    app = app_cls()
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        table = app.query_one(SessionList)
        deadline = time.monotonic() + 60
        while table.row_count < sessions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{table.row_count} of {sessions} sessions listed")
            await asyncio.sleep(0.01)
        await pilot.press("g")
        await asyncio.sleep(1.0)  # every pane subscribed and drawn once
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        return (time.process_time() - cpu) / (time.perf_counter() - wall)


def _cpu_row(app_cls: type, quick: bool) -> Row:
    with agentty_home() as root:
        c = client(root)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda _: c.start([sys.executable, "-c", PRINTER]), range(20)))
        share = asyncio.run(_grid_cpu(app_cls, 2.0 if quick else 10.0, 20))
    return Row(
        B, CPU_NAME, "% of a core", share * 100, target="<= 30%", ok=share <= 0.30, samples=1
    )


@contextlib.contextmanager
def _host_homes(count: int, sessions: int) -> Iterator[list[Path]]:
    """`count` homes standing in for hosts, each with `sessions` running `cat`."""
    roots = [Path(tempfile.mkdtemp(prefix="atb-host-", dir="/tmp")) for _ in range(count)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for root in roots:
                os.chmod(root, 0o700)
                start = client(root).start
                list(pool.map(lambda _, start=start: start(["cat"]), range(sessions)))
        yield roots
    finally:
        for root in roots:
            spawner_client.stop(str(root))
            kill_all(root)
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _blackhole() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        yield int(hole.getsockname()[1])


async def _hosts_frame(hosts: list[RemoteClient], rows: int) -> tuple[float, float]:
    """(the app's first frame, the first frame listing `rows` sessions), in seconds."""
    from agentty_ui.app import create_app
    from agentty_ui.widgets.session_list import SessionList

    start = time.perf_counter()
    app = create_app(hosts=hosts)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        first = time.perf_counter() - start
        table = app.query_one(SessionList)
        deadline = time.monotonic() + 60
        while table.row_count < rows:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{table.row_count} of {rows} sessions listed")
            await asyncio.sleep(0.005)
        await pilot.pause()
        return first, time.perf_counter() - start


def _hosts_rows(quick: bool) -> list[Row]:
    from agentty_core.remote.hosts import Host

    repeat = 1 if quick else 3
    out: list[Row] = []
    with agentty_home(), _host_homes(3, 20) as roots, _blackhole() as port:
        hosts = [
            Host(f"h{i}", command=("env", f"AGENTTY_HOME={root}"), agentty=AGENTTY)
            for i, root in enumerate(roots)
        ]
        down = Host("down", destination="127.0.0.1", port=port)
        for name, chosen, rows, note in (
            (HOSTS_NAME, hosts, 60, HOSTS_NOTE),
            (DOWN_NAME, [*hosts[:2], down], 40, DOWN_NOTE),
        ):
            firsts, fulls = [], []
            for _ in range(repeat):
                clients = [RemoteClient(h, timeout=3.0) for h in chosen]
                first, full = asyncio.run(_hosts_frame(clients, rows))
                firsts.append(first)
                fulls.append(full)
            out.append(
                Row(
                    B,
                    name,
                    "ms",
                    median(fulls) * 1000,
                    max(fulls) * 1000,
                    target="<= 1500 ms",
                    ok=median(fulls) <= 1.5,
                    note=note,
                    samples=repeat,
                    extra={"app_first_frame_ms": median(firsts) * 1000},
                )
            )
    return out


def run(quick: bool) -> list[Row]:
    app_cls = _app_class()
    if app_cls is None:
        return [skipped(B, NAME, "agentty_ui has no Textual App yet", "<= 1 s")]
    with agentty_home() as root:
        c = client(root)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda _: c.start(["cat"]), range(50)))
        try:
            elapsed = asyncio.run(_first_frame(app_cls))
        except Exception as exc:  # the app is being written: report, do not fail the suite
            return [skipped(B, NAME, f"the app did not start: {exc!r}"[:200], "<= 1 s")]
    row = Row(B, NAME, "ms", elapsed * 1000, target="<= 1000 ms", ok=elapsed <= 1.0, samples=1)
    return [row, _cpu_row(app_cls, quick), *_hosts_rows(quick)]


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)

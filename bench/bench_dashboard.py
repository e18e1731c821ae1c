"""7. Dashboard: time to the first frame of the Textual app with 50 live sessions, and its
CPU while the grid shows 20 sessions that print continuously (~50 lines/s each), both
through `App.run_test()` (headless: composing and rendering count, writing to a terminal
does not). Skipped, with the reason, while `agentty_ui` has no app to import.
Targets: first frame <= 1 s; CPU <= 30% of one core."""

from __future__ import annotations

import asyncio
import importlib
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import Row, agentty_home, client, skipped

B = "7 dashboard"
NAME = "first frame, 50 sessions (App.run_test)"
CPU_NAME = "CPU, grid of 20 sessions printing"
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


async def _grid_cpu(app_cls: type, seconds: float) -> float:
    """Share of one core the app's process used while the grid was up."""
    app = app_cls()
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        await pilot.press("g")
        await asyncio.sleep(1.0)  # every pane subscribed and drawn once
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        return (time.process_time() - cpu) / (time.perf_counter() - wall)


def _cpu_row(app_cls: type, quick: bool) -> Row:
    import sys

    with agentty_home() as root:
        c = client(root)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda _: c.start([sys.executable, "-c", PRINTER]), range(20)))
        share = asyncio.run(_grid_cpu(app_cls, 3.0 if quick else 10.0))
    return Row(
        B, CPU_NAME, "% of a core", share * 100, target="<= 30%", ok=share <= 0.30, samples=1
    )


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
    return [row, _cpu_row(app_cls, quick)]


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)

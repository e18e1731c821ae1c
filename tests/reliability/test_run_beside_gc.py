"""`run` beside a `gc` of the same home (an agent's clean-up, another agent's): `gc` removed
the session `run` was ending, between its program's exit and `run` reading it, and `run`
failed with "no such session" (exit 2) or "no final screen saved" (exit 1) instead of the
program's code and screen, 1 in 8 runs of a program that exits at once (an attack round).
A session that a live `run` holds is not `gc`'s: `run` removes it itself, a moment later."""

from __future__ import annotations

import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.reliability.conftest import AGENTTY


@pytest.fixture(params=["full", "lane"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """`run` the full way (no spawner) or on its lane (the home's spawner warm)."""
    monkeypatch.setenv("AGENTTY_SPAWNER", "1" if request.param == "lane" else "0")
    return str(request.param)


def test_run_keeps_its_program_s_code_and_screen_beside_gc(agentty_home: Path, way: str) -> None:
    stop = threading.Event()

    def collect() -> None:
        while not stop.is_set():
            subprocess.run([AGENTTY, "gc"], capture_output=True, timeout=60)

    def one_run(i: int) -> subprocess.CompletedProcess[str]:
        argv = [AGENTTY, "run", "--", "sh", "-c", f"echo done-{i}; exit 5"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    collector = threading.Thread(target=collect)
    collector.start()
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            runs = list(pool.map(one_run, range(45)))
    finally:
        stop.set()
        collector.join()
    failed = [(p.returncode, p.stderr) for p in runs if p.returncode != 5 or p.stderr]
    assert not failed, failed
    assert all(f"done-{i}" in p.stdout for i, p in enumerate(runs))

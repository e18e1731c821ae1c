"""Integration fixtures: sessions started through the real CLI, always cleaned up."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentty_core.pytest_plugin import reap


@pytest.fixture(autouse=True)
def kill_all_sessions(agentty_home: Path) -> Iterator[None]:
    """Kill the sessions the test left running, so the census only fails on real leaks (a
    process that outlived its ended session stays for it to see); then fail the test if any
    worker logged a traceback."""
    yield
    reap(Path(os.environ["AGENTTY_HOME"]), leftovers=False)  # the home `agentty` sees now
    for log in (agentty_home / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"{log.name} has a traceback:\n{text[-3000:]}"

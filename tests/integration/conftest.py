"""Integration fixtures: sessions started through the real CLI, always cleaned up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import agentty


@pytest.fixture(autouse=True)
def kill_all_sessions(agentty_home: Path) -> Iterator[None]:
    """Kill what the test left running, so the census only fails on real leaks; then fail
    the test if any worker logged a traceback."""
    yield
    _kill_everything()
    for log in (agentty_home / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"{log.name} has a traceback:\n{text[-3000:]}"


def _kill_everything() -> None:
    status = agentty("status", "--json")
    if status.returncode != 0:
        return
    import json

    for rec in json.loads(status.stdout)["sessions"]:
        if rec["status"] in ("running", "starting", "lost"):
            agentty("kill", "--session", rec["id"], "--timeout", "0.5")

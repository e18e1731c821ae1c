"""Integration fixtures: sessions started through the real CLI, always cleaned up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.cli import agentty


@pytest.fixture(autouse=True)
def kill_all_sessions() -> Iterator[None]:
    """Kill what the test left running, so the census only fails on real leaks."""
    yield
    status = agentty("status", "--json")
    if status.returncode != 0:
        return
    import json

    for rec in json.loads(status.stdout)["sessions"]:
        if rec["status"] in ("running", "starting", "lost"):
            agentty("kill", "--session", rec["id"], "--timeout", "0.5")

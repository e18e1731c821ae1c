"""UI fixtures: real sessions through the real client, all killed after each test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot

from agentty_core.client import Client
from agentty_core.proc.usage import Usage, UsageSampler
from agentty_core.pytest_plugin import reap
from agentty_core.state.records import Record


@pytest.fixture
def client() -> Iterator[Client]:
    """A client of the test's home; whatever it left running is killed afterwards."""
    client = Client(timeout=3.0)
    yield client
    reap(client.home.root)


async def wait_for(
    pilot: Pilot[None], predicate: Callable[[], object], timeout: float = 10.0
) -> None:
    """Let the app run until `predicate()` holds; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


FROZEN_START = "2026-01-02T03:04:05+00:00"
FROZEN_NOW = 1767323045.0 + 125.0  # FROZEN_START plus 2m05s


class StableClient(Client):
    """Shows sessions under fixed ids and times, so snapshots are the same on every run.

    Ids are aliased (`s0000001`, ...) in what `sessions()` returns and mapped back in
    `resolve()`, which every other call goes through."""

    def __init__(self) -> None:
        super().__init__(timeout=3.0)
        self.fake: dict[str, str] = {}
        self.real: dict[str, str] = {}

    def sessions(self, *, live_info: bool = False) -> list[Record]:
        out: list[Record] = []
        for rec in super().sessions():
            real = rec["id"]
            fake = self.fake.setdefault(real, f"{len(self.fake) + 1:08x}")
            self.real[fake] = real
            out.append({**rec, "id": fake, "startedAt": FROZEN_START, "lastActiveAt": FROZEN_START})
        return out

    def resolve(self, ref: str | None) -> Record:
        return super().resolve(self.real.get(ref, ref) if ref else ref)

    def orphans(self) -> list[Any]:
        return []


class FixedSampler(UsageSampler):
    def sample_all(self, pids: dict[str, int]) -> dict[str, Usage]:
        return {sid: Usage(1.0, 12 * 1024 * 1024, 1) for sid in pids}

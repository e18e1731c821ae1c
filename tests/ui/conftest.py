"""UI fixtures: real sessions through the real client, all killed after each test."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from agentty_core.client import Client
from agentty_core.proc.usage import Usage, UsageSampler
from agentty_core.pytest_plugin import reap
from agentty_core.remote.client import RemoteClient
from agentty_core.remote.hosts import Host
from agentty_core.state.records import Record
from tests.helpers.cli import AGENTTY


@pytest.fixture
def client() -> Iterator[Client]:
    """A client of the test's home; whatever it left running is killed afterwards."""
    client = Client(timeout=3.0)
    yield client
    reap(client.home.root)


@pytest.fixture
def other_homes() -> Iterator[Callable[[], Path]]:
    """Makes AGENTTY_HOMEs standing in for hosts (reached by the `command` transport);
    their sessions are killed afterwards."""
    made: list[Path] = []

    def make() -> Path:
        home = Path(tempfile.mkdtemp(prefix="ath-", dir="/tmp"))
        os.chmod(home, 0o700)
        made.append(home)
        return home

    yield make
    for home in made:
        reap(home)
        shutil.rmtree(home, ignore_errors=True)


def command_host(name: str, home: Path) -> Host:
    """A host whose agentty runs here on another home: the `command` transport, no ssh."""
    return Host(name, command=("env", f"AGENTTY_HOME={home}"), agentty=AGENTTY)


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


def frozen(rec: Record, fake: str) -> Record:
    """A record under its fixed id, its times fixed: start, last activity, and end if any."""
    out: Record = {**rec, "id": fake, "startedAt": FROZEN_START, "lastActiveAt": FROZEN_START}
    if rec.get("endedAt"):
        out["endedAt"] = FROZEN_START
    return out


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
            out.append(frozen(rec, fake))
        return out

    def resolve(self, ref: str | None) -> Record:
        return super().resolve(self.real.get(ref, ref) if ref else ref)

    def orphans(self) -> list[Any]:
        return []


class FixedSampler(UsageSampler):
    def sample_all(self, pids: dict[str, int]) -> dict[str, Usage]:
        return {sid: Usage(1.0, 12 * 1024 * 1024, 1) for sid in pids}


class StableRemoteClient(RemoteClient):
    """`StableClient` for a host: its sessions shown under fixed ids (from `first`) and
    times; `_id` and `resolve` map the ids back."""

    def __init__(self, host: Host, first: int) -> None:
        super().__init__(host, timeout=3.0)
        self.first = first
        self.fake: dict[str, str] = {}
        self.real: dict[str, str] = {}

    def sessions(self, *, live_info: bool = False) -> list[Record]:
        out: list[Record] = []
        for rec in super().sessions():
            real = rec["id"]
            fake = self.fake.setdefault(real, f"{self.first + len(self.fake):08x}")
            self.real[fake] = real
            out.append(frozen(rec, fake))
        return out

    def _id(self, ref: str | None) -> str:
        return self.real.get(ref, ref) if ref else super()._id(ref)

    def resolve(self, ref: str | None) -> Record:
        return super().resolve(self.real.get(ref, ref) if ref else ref)

"""The warm spawner, as tests see it: launched by a first `start`, found by its description."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil
import pytest

from agentty_core.launch import spawner_client
from tests.helpers.cli import agentty, wait_until

READY = 60.0  # the spawner imports asyncio, pyte and agentty: slow on a loaded machine


def spawner_info(home: Path) -> dict[str, Any] | None:
    return spawner_client.info(str(home))


def ready_spawner(home: Path) -> dict[str, Any]:
    """Wait until the home's spawner answers; return its description."""
    found: dict[str, Any] = {}

    def ready() -> bool:
        info = spawner_info(home)
        if info and info.get("ready"):
            found.update(info)
            return True
        return False

    wait_until(ready, timeout=READY)
    return found


def warm(home: Path) -> dict[str, Any]:
    """A first `start` (spawned directly: it launches the spawner), then the ready spawner."""
    rec = start("cat")
    assert not forked(rec)
    return ready_spawner(home)


def start(*argv: str, **kwargs: Any) -> dict[str, Any]:
    proc = agentty("start", "--json", "--", *argv, **kwargs)
    assert proc.returncode == 0, proc.stderr
    rec: dict[str, Any] = json.loads(proc.stdout)
    return rec


def warm_if(forked_way: bool, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """For a test run both ways: with the spawner on and warm (`forked_way`), or as every
    other test runs, with it off."""
    if forked_way:
        monkeypatch.setenv("AGENTTY_SPAWNER", "1")
        warm(home)


def succeeded_by(home: Path, old: dict[str, Any]) -> None:
    """After a start that found the spawner `old` stepping down (spawned directly, by this
    caller): `old` goes, a successor is ready, and it forks the next start."""
    wait_until(lambda: gone(old["pid"]), timeout=15)
    new = ready_spawner(home)
    assert new["pid"] != old["pid"]
    assert forked(start("cat"))


def forked(rec: dict[str, Any]) -> bool:
    """Was the session's worker forked by the spawner (its command line is the spawner's)?"""
    cmdline = " ".join(psutil.Process(rec["workerPid"]).cmdline())
    assert "agentty_core.worker." in cmdline
    return "agentty_core.worker.spawner" in cmdline


def spares(home: Path) -> set[int]:
    """The spawner's spare workers, waiting for its next request (`worker/spare.py`)."""
    from agentty_core.worker import spare

    return _named(home, spare.NAME)


def private_mib(pid: int) -> float:
    """A process's own memory (USS): a spare holds the pages its maker learned (> 2 MiB)."""
    return float(psutil.Process(pid).memory_full_info().uss) / (1 << 20)


def makers(home: Path) -> set[int]:
    """The spawner's spare maker (`worker/maker.py`): one while the spawner serves. (A
    spare is named after it for a moment after its fork, until it names itself.)"""
    from agentty_core.worker import maker

    info = spawner_info(home)
    found = set()
    for pid in _named(home, maker.NAME):
        try:
            if info is not None and psutil.Process(pid).ppid() == info["pid"]:
                found.add(pid)
        except psutil.Error:
            continue
    return found


def helpers(home: Path) -> set[int]:
    """The spawner's own processes besides itself: its spare and its spare maker."""
    return spares(home) | makers(home)


def _named(home: Path, name: str) -> set[int]:
    from tests.helpers.census import processes_of_home

    found = set()
    for proc in processes_of_home(str(home)):
        try:
            if proc.name() == name:
                found.add(proc.pid)
        except psutil.Error:
            continue
    return found


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True

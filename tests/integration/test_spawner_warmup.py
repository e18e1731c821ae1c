"""The warm spawner's warm-up (`worker/warmup.py`): a worker it forks for an idle session
imports nothing the spawner had not imported already. A module imported after the fork is
loaded again in every worker's private memory (its code, its dict, its functions), which
is what the spawner exists to share.

The spawner here is the real one, started the way `spawner_client` starts it, with an
audit hook added first: every `import` event (a module found and loaded, not one taken
from `sys.modules`) in a process other than the spawner is written down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentty_core.client import Client
from agentty_core.launch import spawner_client
from tests.helpers.cli import agentty, agentty_json, wait_until
from tests.helpers.spawner import forked, ready_spawner, start

AUDIT = """\
import os
import sys

_SPAWNER = os.getpid()
_OUT = {out!r}


def _audit(event, args):
    if event == "import" and os.getpid() != _SPAWNER:
        with open(os.path.join(_OUT, "imports-%d" % os.getpid()), "a") as f:
            f.write("%s\\n" % (args[0],))


sys.addaudithook(_audit)
"""


@pytest.fixture
def audited_spawner(
    agentty_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The home's spawner, its children's imports written to the returned directory."""
    monkeypatch.setenv("AGENTTY_SPAWNER", "1")
    out = tmp_path / "imports"
    out.mkdir()
    boot = AUDIT.format(out=str(out)) + spawner_client.SPAWNER_BOOT
    log = open(tmp_path / "spawner.log", "wb")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-c", boot],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        ready_spawner(agentty_home)
        yield out
    finally:
        spawner_client.stop(str(agentty_home))
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _imports(out: Path, pid: int) -> list[str]:
    path = out / f"imports-{pid}"
    return path.read_text().split() if path.exists() else []


def _answers(session: str) -> None:
    """A round trip: the worker's start-up has run to its end (its loop is serving)."""
    wait_until(lambda: "lines" in agentty_json("get", "-s", session), timeout=15)


def test_a_forked_idle_worker_imports_nothing(audited_spawner: Path) -> None:
    """Both ways through the spawner: the `start` lane (the worker writes its intent record
    itself) and the library's start asking it for a worker."""
    lane = start("cat")
    with Client() as client:
        lib: dict[str, Any] = dict(client.start(["cat"]))
    for rec in (lane, lib):
        assert forked(rec)
        _answers(str(rec["id"]))
    for rec in (lane, lib):
        assert _imports(audited_spawner, int(rec["workerPid"])) == [], rec["id"]
    for rec in (lane, lib):
        agentty("kill", "-s", str(rec["id"]), check=True)


def test_the_audit_sees_an_import_after_the_fork(audited_spawner: Path) -> None:
    """The test above can fail: a worker that imports something is caught (the program's
    environment asks for another emulator backend, loaded on demand)."""
    proc = agentty("start", "--json", "--", "cat", env={**os.environ, "AGENTTY_EMULATOR": "avt"})
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)
    assert forked(rec)
    _answers(str(rec["id"]))
    assert _imports(audited_spawner, int(rec["workerPid"])), "the avt backend is not preloaded"
    agentty("kill", "-s", str(rec["id"]), check=True)

"""`doctor` on a home whose file system is full: it said every check was ok while every
`start` failed ("No space left on device writing sessions.json") and a worker whose program
ended retried its exit record."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import agentty
from tests.reliability.test_worker_io_faults import _fill, tmpfs


def test_doctor_says_the_home_s_disk_is_full_and_what_to_do(agentty_home: Path) -> None:
    with tmpfs(agentty_home, agentty_home, "2m"):
        agentty("start", "--", "cat", check=True)
        healthy = agentty("doctor")
        assert "ok    disk space:" in healthy.stdout, healthy.stdout
        filler = _fill(agentty_home)
        try:
            full = agentty("doctor")
            assert full.returncode == 1
            assert f"FAIL  disk space: 0.0 MiB free on the file system of {agentty_home}" in (
                full.stdout
            ), full.stdout
            assert "fix: free space there, or set AGENTTY_HOME elsewhere" in full.stdout
        finally:
            filler.unlink()
        assert "ok    disk space:" in agentty("doctor").stdout
        agentty("kill", check=True)

"""A caller whose working directory was removed under it: `start` and `run` say so in one
line (exit 1, as for a --cwd that does not exist), on the warm spawner's lane and directly,
instead of a traceback; an absolute --cwd still works from there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import AGENTTY
from tests.helpers.spawner import warm


def _from_gone_dir(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    gone = tmp_path / "gone"
    gone.mkdir(exist_ok=True)
    # The shell enters the directory, removes it, then runs agentty from it.
    script = f'cd "{gone}" && rmdir "{gone}" && exec "$@"'
    return subprocess.run(
        ["sh", "-c", script, "sh", AGENTTY, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("spawner", ["warm", "off"])
def test_start_and_run_from_a_removed_directory(
    agentty_home: Path, tmp_path: Path, spawner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTTY_SPAWNER", "0" if spawner == "off" else "1")
    env = dict(os.environ)
    if spawner == "warm":
        warm(agentty_home)
    for args in (["start", "--", "cat"], ["run", "--", "true"]):
        done = _from_gone_dir(tmp_path, args, env)
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines() == [
            "agentty: error: the current directory no longer exists (give --cwd DIR)"
        ]
    done = _from_gone_dir(tmp_path, ["run", "--cwd", str(tmp_path), "--", "pwd"], env)
    assert done.returncode == 0, done
    assert str(tmp_path) in done.stdout

"""A start whose program cannot be executed (a script's interpreter missing: exit 126) leaves
a worker log that says so and nothing else.

The caller ends a worker whose start failed with SIGTERM; the worker, already on its way
out, began a kill of nothing for it and exited with that task pending: two "Task was
destroyed but it is pending!" errors in every such session's log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import agentty
from tests.helpers.spawner import warm_if


@pytest.mark.parametrize("spawner", ["direct", "forked"])
def test_a_bad_interpreter_is_said_once_and_cleanly(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spawner: str
) -> None:
    warm_if(spawner == "forked", agentty_home, monkeypatch)
    script = tmp_path / "script"
    script.write_text("#!/nonexistent/interp\necho hi\n")
    script.chmod(0o755)
    proc = agentty("start", "--", str(script))
    assert proc.returncode == 126
    assert proc.stderr.startswith(f"agentty: error: bad interpreter: {script}")
    sid = proc.stderr.rsplit("/", 1)[1].split(".log", 1)[0]
    log = agentty("logs", "-s", sid, check=True).stdout
    assert "bad interpreter" in log or "starting session" in log
    assert "ERROR" not in log and "Task was destroyed" not in log, log

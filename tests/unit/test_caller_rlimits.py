"""The caller's resource limits as the `start` lane reads them (`spawning.rlimits`, from
/proc/self/limits): every one of the kernel's, equal to what getrlimit says, the lowered
ones and RLIMIT_LOCKS (which `resource` has no name for) included."""

from __future__ import annotations

import json
import subprocess
import sys

READ = """
import json, resource, sys
for num, soft, hard in json.loads(sys.argv[1]):
    resource.setrlimit(num, (soft, hard))
from agentty_core import spawning
read = spawning.rlimits()
spawning.open = lambda *a, **k: open("/nonexistent")  # /proc unreadable: `resource`'s reading
fallback = spawning.rlimits()
print(json.dumps({"read": read, "fallback": fallback,
                  "getrlimit": [[n, *resource.getrlimit(n)] for n in range(16)]}))
"""


def _read(lowered: list[list[int]]) -> dict[str, list[list[int]]]:
    out = subprocess.run(
        [sys.executable, "-c", READ, json.dumps(lowered)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    found: dict[str, list[list[int]]] = json.loads(out)
    return found


def test_every_limit_is_read_as_getrlimit_gives_it() -> None:
    found = _read([[4, 0, 0], [7, 64, 128], [10, 50, 60]])  # CORE, NOFILE, LOCKS
    assert found["read"] == found["getrlimit"]
    assert [7, 64, 128] in found["read"] and [10, 50, 60] in found["read"]
    assert [n for n, _, _ in found["read"]] == list(range(16))


def test_without_proc_the_limits_resource_names_are_read() -> None:
    found = _read([[7, 64, 128]])
    named = {n for n, _, _ in found["fallback"]}
    assert named == set(range(16)) - {10}  # RLIMIT_LOCKS has no name there
    assert all(row in found["getrlimit"] for row in found["fallback"])

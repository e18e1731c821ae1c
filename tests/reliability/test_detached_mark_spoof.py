"""A program cannot pass for another session's worker by its argv.

A worker's kill spares the processes agentty runs detached (a nested home's workers and
spawner: not its own to end), told by their command line. Any argv that held the mark
(`runpy.run_module('agentty_core.`) was spared, so a program's daemon so named outlived
`run` and `kill`. Only the exact `-c` program agentty writes is spared now.
"""

from __future__ import annotations

import psutil

from agentty_core.spawning import detached_argv, detached_boot
from tests.helpers.cli import agentty, wait_until

DAEMON = "sleep 317; :"


def _daemons() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if len(cmdline) > 2 and cmdline[2] == DAEMON:
            found.append(proc)
    return found


def test_a_daemon_named_like_a_detached_worker_is_ended_with_its_session() -> None:
    fake = "runpy.run_module('agentty_core.worker.main"
    script = f"setsid -f sh -c '{DAEMON}' \"{fake}\"; echo started"
    try:
        proc = agentty("run", "--timeout", "20", "--", "sh", "-c", script)
        assert proc.returncode == 0 and "started" in proc.stdout, proc
        wait_until(lambda: not _daemons(), timeout=5)
    finally:
        for leftover in _daemons():
            leftover.kill()


def test_only_agentty_s_own_boot_reads_as_detached() -> None:
    boot = detached_boot("worker.main").encode()
    assert detached_argv(b"/usr/bin/python3\0-c\0" + boot + b"\0")
    assert detached_argv(b"python\0-c\0" + detached_boot("remote.linkd").encode() + b"\0spec\0")
    assert not detached_argv(b"sh\0-c\0sleep 1; :\0runpy.run_module('agentty_core.x\0")
    assert not detached_argv(b"python\0-c\0" + boot + b"# and more\0")
    assert not detached_argv(b"python\0-c\0" + detached_boot("worker.other").encode() + b"\0")

"""The worker's event loop: asyncio's, less a cost paid by every start.

asyncio checks each signal a handler is added for against `signal.valid_signals()`, which
builds an enum member for every one of the 64 signals on each call: the worker's four
handlers (SIGTERM, SIGINT, SIGCHLD, SIGUSR1) cost 0.8 ms of every `start`'s wait. The set
of valid signals does not change while a process runs: read once (in the spawner, for every
worker it forks), it answers the same.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Coroutine
from typing import TypeVar

T = TypeVar("T")

if sys.platform != "win32":  # (the worker runs on POSIX only; mypy checks every platform)

    class WorkerLoop(asyncio.SelectorEventLoop):
        _VALID = frozenset(signal.valid_signals())

        def _check_signal(self, sig: int) -> None:
            if sig not in self._VALID:  # asyncio's own errors for the rest
                super()._check_signal(sig)  # type: ignore[misc]  # private, POSIX only


def run(main: Coroutine[object, object, T]) -> T:
    """`asyncio.run(main)` on a WorkerLoop (3.11's Runner takes the loop's class; 3.10 runs
    asyncio's own)."""
    runner = getattr(asyncio, "Runner", None)
    if runner is None:
        return asyncio.run(main)
    with runner(loop_factory=WorkerLoop) as running:
        result: T = running.run(main)
        return result

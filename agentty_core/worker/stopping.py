"""When a stop may end the spawner: only while it waits, never between two steps.

The spawner's SIGTERM handler raises SystemExit. Raised just anywhere, it came between
steps that must go together: a spare's end received from the maker but not yet kept, and
the stopped spare, which cannot read its end of file, stayed for good (seen in CI); raised
inside a finalizer or an at-fork handler, it is printed as "ignored" and the spawner went
on serving. So the spawner holds SIGTERM and SIGINT (blocked: delivered later, never lost)
and lets them in where it waits for its next request; every process it forks starts with
them let in again.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

STOPPING = frozenset({signal.SIGTERM, signal.SIGINT})


@contextlib.contextmanager
def held() -> Iterator[None]:
    """SIGTERM and SIGINT held for the block, delivered (their handlers run) as it ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def let_in() -> Iterator[None]:
    """Inside `held`: where a stop may end us. One held meanwhile ends us as the block
    starts (`pthread_sigmask` runs the handlers of what it unblocked before it returns),
    one that comes during the block as it ends at the latest: never after it."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPPING)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)


def fork() -> int:
    """`os.fork` with both held across it (an at-fork handler must not be interrupted); the
    child starts with them let in, whatever its parent held, and with their default actions:
    the spawner's handler, raising there, would run the spawner's own clean-up in the child
    (its socket and description removed)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)
    pid = -1
    try:
        pid = os.fork()
    finally:
        if pid == 0:
            for sig in STOPPING:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, old - STOPPING)
        else:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pid

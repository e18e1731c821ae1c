"""Work that must finish even when its call is cancelled, and that the server waits for.

A call cancelled by its client (or by the client leaving) may still have work to do on its
way out: a `run` ends its program and removes its session. That work goes on in a task of
its own, held here (the event loop holds tasks only weakly: one nobody else held could
vanish midway), and the server waits for it, within a bound, before it leaves: it left at
once, and the ended session's record stayed behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

_HELD: set[asyncio.Future[Any]] = set()


def keep(work: Awaitable[T]) -> asyncio.Future[T]:
    """`work` as a task (or the task it is), held until it is done."""
    task = asyncio.ensure_future(work)
    _HELD.add(task)
    task.add_done_callback(_HELD.discard)
    return task


def pending() -> bool:
    return bool(_HELD)


async def settled(within: float) -> None:
    """Wait for the held work, at most `within` seconds (work held meanwhile counts too)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while _HELD and (left := deadline - loop.time()) > 0:
        await asyncio.wait(set(_HELD), timeout=left)

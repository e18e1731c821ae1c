"""Waiting on conditions inside an event loop, for tests of the asyncio clients."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    """Let the loop run until `predicate` holds; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"condition not met within {timeout}s"
        await asyncio.sleep(0.005)


def awaits_its_answer(task: asyncio.Task[object]) -> bool:
    """The task's request is written and drained, and it waits for the worker's answer:
    the chain of awaits from the task down has reached the connection's `wait_for` on the
    answer line (`AsyncConnection.call`)."""
    names = []
    awaited: object = task.get_coro()
    while awaited is not None:
        code = getattr(awaited, "cr_code", None)
        if code is None:
            break
        names.append(code.co_name)
        awaited = getattr(awaited, "cr_await", None)
    return "call" in names and "wait_for" in names

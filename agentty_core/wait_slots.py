"""The share of a worker's connections this process's waits may hold.

A worker serves 64 connections, and a pending `wait` holds one. Waits past WAIT_SLOTS on one
session queue here, each within its own timeout, so that input and `get` always find a
connection: every `Session` of the process on that session shares one count (threads), and
every `AsyncSession` in one event loop another (tasks). Per object, 64 threads waiting on one
`Session`, or three `AsyncSession`s of 25 waits each, took every connection, and `text`
failed ("too many connections") while the waits timed out.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING

from agentty_core.client_calls import WAIT_SLOTS

if TYPE_CHECKING:  # (loaded by its users: a `Session` alone never imports asyncio)
    import asyncio

# Each count is kept while a wait holds it or queues on it, and no longer (a long-lived
# process that drove many sessions kept one for each). One made again starts full: no wait
# of the process holds a slot of that worker then.
_threads: weakref.WeakValueDictionary[str, threading.BoundedSemaphore] = (
    weakref.WeakValueDictionary()
)
_threads_lock = threading.Lock()
_loops: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, weakref.WeakValueDictionary[str, asyncio.Semaphore]
] = weakref.WeakKeyDictionary()


def for_threads(worker: str) -> threading.BoundedSemaphore:
    """The wait slots of the worker at socket `worker`, for this process's threads."""
    with _threads_lock:
        slots = _threads.get(worker)
        if slots is None:
            slots = _threads[worker] = threading.BoundedSemaphore(WAIT_SLOTS)
        return slots


def for_this_loop(worker: str) -> asyncio.Semaphore:
    """The wait slots of the worker at socket `worker`, for the running loop's tasks (an
    asyncio semaphore serves one loop)."""
    import asyncio

    per_worker = _loops.setdefault(asyncio.get_running_loop(), weakref.WeakValueDictionary())
    slots = per_worker.get(worker)
    if slots is None:
        slots = per_worker[worker] = asyncio.Semaphore(WAIT_SLOTS)
    return slots


def _forget_the_parents() -> None:
    """In a forked child: the counts are of the parent's waits (and its lock may be held)."""
    global _threads_lock
    _threads_lock = threading.Lock()
    _threads.clear()
    _loops.clear()


os.register_at_fork(after_in_child=_forget_the_parents)

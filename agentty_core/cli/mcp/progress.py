"""Progress notifications while a tool waits: a client that asked for them (a progress
token in the call) hears every PROGRESS_EVERY seconds how long the wait has gone on, of
how long it may. Some clients time a request out (60 s by default in one SDK) and start the
count again on progress: a build's wait of ten minutes failed there as a transport error,
not as the `timedOut` result it is (an outside round). A client that asked for none gets
none (the SDK's `report_progress` is a no-op then)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any, TypeVar

from mcp.server.mcpserver.context import Context

PROGRESS_EVERY = 5.0  # seconds
T = TypeVar("T")

# The call being answered (`arguments.CheckedServer.call_tool` sets it): the tools reach
# it without a parameter of their own for it.
CALL: ContextVar[Context[Any, Any] | None] = ContextVar("agentty_mcp_call", default=None)


async def reporting(waiting: Awaitable[T], most: float) -> T:
    """`waiting`'s result, with a progress notification every PROGRESS_EVERY seconds until
    it comes: the seconds waited, of `most`."""
    task = asyncio.ensure_future(waiting)
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=PROGRESS_EVERY)
            if done:
                return task.result()
            call = CALL.get()
            if call is not None:
                waited = loop.time() - began
                said = f"waiting: {waited:.0f} s of at most {most:g}"
                await call.report_progress(round(waited, 1), most, said)
    finally:
        if not task.done():
            task.cancel()

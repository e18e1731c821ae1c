"""MCP: what an agent pays through `agentty mcp` with the official SDK's stdio client.

Rows: server start to `list_tools` answered (a fresh `agentty mcp` per sample: the SDK import
dominates), `get` over MCP (median of many, one session), and a REPL round trip over MCP
(`type_text` with enter, then `wait` for the answer's own line, `^N$`, which the echoed
`>>> ...` line cannot match). The round trip is two calls: send-and-wait in one call (issue
13 item 5) is another branch's; when it lands, this row becomes one `type_text` with `wait`.
No peer is measured: the MCP terminal servers compared in issue 13 are not installed here.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from bench.common import AGENTTY, Row, agentty_home, ms_row, skipped

if TYPE_CHECKING:
    from mcp import ClientSession

B = "9 mcp"


@asynccontextmanager
async def _client() -> AsyncIterator[ClientSession]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=AGENTTY, args=["mcp"], env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def _start_to_list(n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        async with _client() as session:
            await session.list_tools()
            out.append(time.perf_counter() - start)
    return out


async def _loop(n: int, once: Callable[[int], Awaitable[None]]) -> list[float]:
    for i in range(5):  # warm-up
        await once(-1 - i)
    out = []
    for i in range(n):
        start = time.perf_counter()
        await once(i)
        out.append(time.perf_counter() - start)
    return out


async def _session_rows(n: int) -> tuple[list[float], list[float]]:
    async with _client() as session:
        await session.call_tool("start", {"argv": [sys.executable, "-q"]})
        ready = await session.call_tool("wait", {"text": ">>>", "timeout": 30})
        assert not ready.is_error, ready.content

        async def get(_: int) -> None:
            result = await session.call_tool("get", {})
            assert not result.is_error

        async def repl(i: int) -> None:
            value = 1000 + i if i >= 0 else 100 - i
            sent = await session.call_tool("type_text", {"text": f"{value}*2", "enter": True})
            assert not sent.is_error, sent.content
            seq = (sent.structured_content or {})["seq"]
            args = {"regex": f"^{value * 2}$", "changed_since": seq, "timeout": 10}
            # changed_since ORs: the echo can fire it first; wait again for the answer.
            answer = await session.call_tool("wait", args)
            while f"\n{value * 2}" not in "\n" + str((answer.structured_content or {})["screen"]):
                answer = await session.call_tool("wait", {"regex": f"^{value * 2}$", "timeout": 10})

        gets = await _loop(n, get)
        repls = await _loop(max(10, n // 5), repl)
        await session.call_tool("kill", {})
    return gets, repls


def run(quick: bool) -> list[Row]:
    try:
        import anyio
        import mcp  # noqa: F401
    except ImportError:
        return [skipped(B, "MCP rows", "pip install -e '.[mcp]'")]
    n_start, n = (2, 20) if quick else (10, 300)
    with agentty_home():
        starts = anyio.run(_start_to_list, n_start)
        gets, repls = anyio.run(_session_rows, n)
    return [
        ms_row(B, "agentty mcp start to list_tools answered", starts),
        ms_row(B, "get over MCP (stdio, SDK client)", gets),
        ms_row(B, "REPL round trip over MCP: type_text + wait", repls),
    ]


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)

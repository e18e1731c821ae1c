"""The MCP server's typing locks (`backend.TypingLocks`): calls typing into one session go one
at a time, and the table keeps only sessions being typed to."""

from __future__ import annotations

import asyncio

from agentty_core.cli.mcp.backend import TypingLocks


def test_calls_to_one_session_never_overlap_while_others_come_and_go() -> None:
    """The table was pruned of the locks not `locked()` once it held 256: a lock just
    released to a waiter not yet running was dropped, and a call arriving then typed at
    once beside that waiter (a review)."""

    async def main() -> tuple[int, int]:
        locks = TypingLocks()
        inside = most = 0

        async def call(key: tuple[int, str], hold: float) -> None:
            nonlocal inside, most
            async with locks.holding(key):
                if key[1] == "s":
                    inside += 1
                    most = max(most, inside)
                await asyncio.sleep(hold)
                if key[1] == "s":
                    inside -= 1

        calls = []
        for i in range(600):  # past the old table's 256, each session typed to once
            calls.append(call((1, f"other{i}"), 0))
            if i % 3 == 0:
                calls.append(call((1, "s"), 0.001 * (i % 5)))
        await asyncio.gather(*calls)
        return most, len(locks)

    assert asyncio.run(main()) == (1, 0)


def test_a_waiter_keeps_the_lock_its_holder_let_go() -> None:
    """A call arriving while the released lock's waiter has not run yet waits for it."""

    async def main() -> list[str]:
        locks = TypingLocks()
        order: list[str] = []
        release = asyncio.Event()

        async def first() -> None:
            async with locks.holding((1, "s")):
                await release.wait()
                order.append("first")

        async def second() -> None:
            async with locks.holding((1, "s")):
                order.append("second in")
                await asyncio.sleep(0.01)
                order.append("second out")

        async def third() -> None:
            async with locks.holding((1, "s")):
                order.append("third")

        a = asyncio.create_task(first())
        await asyncio.sleep(0)
        b = asyncio.create_task(second())
        await asyncio.sleep(0)
        release.set()
        await a  # released to `second`, which has not run yet
        c = asyncio.create_task(third())
        await asyncio.gather(b, c)
        assert len(locks) == 0
        return order

    assert asyncio.run(main()) == ["first", "second in", "second out", "third"]

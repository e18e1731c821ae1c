"""The dashboard shuts down cleanly whenever a poll falls due."""

from __future__ import annotations

from typing import Any

from agentty_core.client import Client
from agentty_ui.app import AgenttyApp, create_app


async def test_a_poll_due_while_the_screens_are_pruned_finds_nothing_missing(
    client: Client,
) -> None:
    # Shutdown prunes each screen's widgets while the screen is still on the stack and the
    # app's timers still tick: CI saw the poll timer land there and raise NoMatches. The
    # tick is placed there for certain by polling right after each prune.
    ticks: list[bool] = []
    app = create_app(client, poll_interval=30)
    prune = AgenttyApp._prune

    async def prune_then_tick(self: AgenttyApp, *nodes: Any, parent: Any = None) -> None:
        await prune(self, *nodes, parent=parent)
        if self.screen_stack:
            self.poll_local()
            ticks.append(True)

    app._prune = prune_then_tick.__get__(app)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
    assert ticks  # the poll did fall due mid-shutdown, and raised nothing

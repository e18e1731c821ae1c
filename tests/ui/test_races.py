"""Races between the dashboard's background threads and the person moving around.

A subscribe is slow in the field when the machine is busy and the feed thread is not
scheduled; here a client holds one session's subscribe until the test lets it go, so the
slow answer arrives exactly when the view has already moved on. Everything else is real."""

from __future__ import annotations

import threading

from textual.worker import WorkerState

from agentty_core.client import Client
from agentty_core.ipc.subscription import Subscription
from agentty_ui.app import AgenttyApp, create_app
from agentty_ui.widgets.session_list import SessionList
from agentty_ui.widgets.terminal_view import TerminalView
from tests.ui.conftest import wait_for

SIZE = (110, 36)


class GatedClient(Client):
    """Subscribing to `gated` waits (in the caller's thread) until `release` is set."""

    def __init__(self, gated: str) -> None:
        super().__init__(timeout=3.0)
        self.gated = gated
        self.waiting = threading.Event()
        self.release = threading.Event()

    def subscribe(self, ref: str | None, *, interval: float | None = None) -> Subscription:
        if ref == self.gated:
            self.waiting.set()
            self.release.wait(30)
        return super().subscribe(ref, interval=interval)


def feeding(app: AgenttyApp) -> bool:
    """Whether a thread still feeds the main live view."""
    view = app.main.query_one("#screen", TerminalView)
    return any(
        w.node is view
        and w.group == "feed"
        and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
        for w in app.workers
    )


async def test_a_slow_subscribe_never_takes_over_another_sessions_view(client: Client) -> None:
    b = str(client.start(["sh", "-c", "echo beta-final"], name="b")["id"])
    a = str(client.start(["sh", "-c", "echo alpha-live; exec cat"], name="a")["id"])
    client.wait(a, text="alpha-live", timeout=10)
    slow = GatedClient(a)
    app = create_app(slow, poll_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(SessionList)
        view = app.query_one("#screen", TerminalView)
        await wait_for(pilot, lambda: table.row_count == 2 and app.records[b]["status"] == "exited")
        table.select(b)
        await wait_for(pilot, lambda: app.selected == b and "beta-final" in view.text)
        table.select(a)
        await wait_for(pilot, lambda: app.selected == a and slow.waiting.is_set())
        table.select(b)
        await wait_for(pilot, lambda: app.selected == b and "beta-final" in view.text)
        slow.release.set()
        # A's subscribe answers now, after the view moved on from A: dropped, and its
        # thread ends (before the fix, A's screen replaced B's final one).
        await wait_for(pilot, lambda: "alpha-live" in view.text or not feeding(app), 30)
        assert "beta-final" in view.text
        assert "alpha-live" not in view.text
        assert view.live is None

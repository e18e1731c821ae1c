"""`r` resizes the session to the Screen tab's view, whichever tab is shown."""

from __future__ import annotations

import pytest
from textual.widgets import TabbedContent

from agentty_core.client import Client
from agentty_ui.app import create_app
from agentty_ui.widgets.terminal_view import TerminalView
from tests.ui.conftest import wait_for


def size_of(client: Client, sid: str) -> tuple[object, object]:
    size = client.get(sid)["size"]
    assert isinstance(size, dict)
    return size["cols"], size["rows"]


@pytest.mark.parametrize("tab", ["tab-screen", "tab-scrollback", "tab-log", "tab-info"])
async def test_resize_fits_the_screen_view_from_any_tab(client: Client, tab: str) -> None:
    """From a tab other than Screen the view measured 0x0: the session became 2x2, and the
    toast said 0x0."""
    sid = str(client.start(["cat"], name="sized")["id"])
    app = create_app(client, poll_interval=0.2)
    async with app.run_test(size=(100, 34), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.selected == sid)
        tabs = app.query_one("#tabs", TabbedContent)
        tabs.active = tab
        await pilot.pause()
        await pilot.press("r")
        await wait_for(pilot, lambda: size_of(client, sid) != (80, 24))
        cols, rows = size_of(client, sid)
        assert isinstance(cols, int) and isinstance(rows, int)
        view = app.query_one("#screen", TerminalView)
        assert tabs.active == "tab-screen"  # what it was sized to is in view
        assert (cols, rows) == tuple(view.content_region.size)
        assert cols >= 20 and rows >= 5
        messages = [n.message for n in app._notifications]
        assert f"resized {sid} to {cols}x{rows}" in messages


async def test_resize_of_an_ended_session_says_why_it_does_nothing(client: Client) -> None:
    """`r` on an exited row did nothing and said nothing (`enter` and `k` say why; an
    outside round)."""
    sid = str(client.start(["true"], name="done")["id"])
    client.wait(sid, exit=True)
    app = create_app(client, poll_interval=0.2)
    async with app.run_test(size=(100, 34), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.selected == sid and app.record is not None)
        await wait_for(pilot, lambda: app.record is not None and app.record["status"] == "exited")
        await pilot.press("r")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        said = f"session {sid} is exited: only a running session can be resized"
        assert said in messages, messages

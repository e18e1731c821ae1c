"""Text a session provides (its argv, command, name) is shown as it is, never as markup:
`[@click=app.quit]` in a program's name must not become a link that quits the dashboard."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from typing import Any

from agentty_core.client import Client
from agentty_ui.app import AgenttyApp, create_app
from agentty_ui.messages import SessionStarted
from agentty_ui.screens.confirm import ConfirmScreen
from agentty_ui.screens.grid import GridScreen, MiniPane
from agentty_ui.widgets.session_list import SessionList
from tests.ui.conftest import wait_for

HOSTILE = "[@click=app.quit]sleep"


def shown(app: AgenttyApp) -> str:
    """The plain text on the screen, read from an SVG export."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]*>", "", svg)).replace("\xa0", " ")


async def test_session_text_is_shown_literally(client: Client, tmp_path: Path) -> None:
    program = tmp_path / HOSTILE
    sleep = shutil.which("sleep")
    assert sleep is not None
    program.symlink_to(sleep)
    sid = str(client.start([str(program), "30"])["id"])
    app = create_app(client, poll_interval=0.2)
    async with app.run_test(size=(110, 36), notifications=True) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: sid in table.rows and app.selected == sid)
        await wait_for(pilot, lambda: HOSTILE in shown(app))  # the Program column
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmScreen)
        assert HOSTILE in str(app.screen.query_one(".dialog-body").render())
        await pilot.press("escape", "g")
        assert isinstance(app.screen, GridScreen)
        title = app.screen.query_one(MiniPane).query_one(".mini-title")
        assert HOSTILE in str(title.render())
        await pilot.press("escape")
        app.post_message(SessionStarted(sid, f"{program} 30"))
        await wait_for(pilot, lambda: any(HOSTILE in n.message for n in app._notifications))
        assert all(not n.markup for n in app._notifications if HOSTILE in n.message)
        assert app.is_running


def test_a_program_s_own_words_are_shown_escaped() -> None:
    """An argv or an orphan's command line holding escape sequences: the program column and
    the orphan banner wrote them to the terminal as they came (a title set, a bell)."""
    import os

    import psutil

    from agentty_core.proc.orphans import Orphan
    from agentty_ui.model import program_of
    from agentty_ui.widgets.orphan_banner import describe

    hostile = "a\x1b]0;TITLE\x07b\u202e"
    record: Any = {"argv": [f"/bin/{hostile}"]}
    assert program_of(record) == r"a\x1b]0;TITLE\x07b\u202e"
    orphan = Orphan(1, "deadbeef", hostile, 5.0, psutil.Process(os.getpid()))
    assert r"a\x1b]0;TITLE\x07b\u202e" in describe([orphan], [])


async def test_notifications_are_shown_escaped(client: Client) -> None:
    """A failed call's error quotes what a program or a transport printed: the notification
    wrote its escape sequences to the terminal as they came."""
    from agentty_ui.messages import CallFinished

    app = create_app(client, poll_interval=0.2)
    async with app.run_test(size=(110, 36), notifications=True) as pilot:
        app.post_message(
            CallFinished("Kill \x1b[5m", "box: 'sh' failed (\x1b]0;T\x07)", failed=True)
        )
        await wait_for(pilot, lambda: any("failed" in n.message for n in app._notifications))
        (note,) = [n for n in app._notifications if "failed" in n.message]
        assert note.message == r"box: 'sh' failed (\x1b]0;T\x07)" and note.title == r"Kill \x1b[5m"

"""Text a session provides (its argv, command, name) is shown as it is, never as markup:
`[@click=app.quit]` in a program's name must not become a link that quits the dashboard."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from typing import Any

from textual.widgets import Static

from agentty_core.client import Client
from agentty_core.state.records import Record
from agentty_ui.app import AgenttyApp, create_app
from agentty_ui.messages import SessionStarted
from agentty_ui.screens.confirm import ConfirmScreen
from agentty_ui.screens.grid import GridScreen, MiniPane
from agentty_ui.widgets.session_list import SessionList
from agentty_ui.widgets.session_pane import describe as describe_record
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


SEQUENCE = "\x1b]0;PWN\x07\n[red]x"  # sets the title, breaks the row, and is markup
ESCAPED = r"\x1b]0;PWN\x07\n[red]x"


class Renamed(Client):
    """Names its sessions as `agentty start` would refuse to (a hand-edited record, a
    host's older agentty)."""

    def sessions(self, *, live_info: bool = False) -> list[Record]:
        return [{**r, "name": f"n{SEQUENCE}"} for r in super().sessions(live_info=live_info)]


async def test_a_session_s_record_is_shown_escaped_everywhere(
    client: Client, tmp_path: Path
) -> None:
    """Its cwd, name (and any string of its record) quote what a program or a person chose:
    the Info tab wrote the cwd's escape sequences to the terminal and broke its row there."""
    cwd = tmp_path / f"d{SEQUENCE}"
    cwd.mkdir()
    sid = str(client.start(["sleep", "30"], cwd=str(cwd))["id"])
    app = create_app(Renamed(timeout=3.0), poll_interval=0.2)
    async with app.run_test(size=(110, 36)) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: sid in table.rows and app.selected == sid)
        info = str(app.query_one("#info", Static).render())
        assert f"cwd  {tmp_path}/d{ESCAPED}\n" in info
        assert f"name  n{ESCAPED}\n" in info
        assert str(table.get_cell(sid, "name")) == f"n{ESCAPED}"
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmScreen)
        assert f"n{ESCAPED}" in str(app.screen.query_one(".dialog-body").render())
        await pilot.press("escape", "g")
        assert isinstance(app.screen, GridScreen)
        title = str(app.screen.query_one(MiniPane).query_one(".mini-title").render())
        assert f"n{ESCAPED}" in title


def test_every_field_of_the_info_tab_is_escaped() -> None:
    record: Any = {"id": "deadbeef@h\x1b[5m", "error": "no\x1b]0;T\x07\n", "status": "x\x9b"}
    info = describe_record(record)
    assert r"h\x1b[5m" in info and r"no\x1b]0;T\x07\n" in info and r"x\x9b" in info
    assert all(line.isprintable() for line in info.split("\n"))

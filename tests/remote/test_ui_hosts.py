"""The dashboard with a remote host over the real sshd: its sessions listed under a host
column, live and typed into through the relay, killed, their logs read there; the host marked
down with the link's reason when sshd stops (this machine's sessions go on updating), and
back by itself when sshd returns."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Select, TabbedContent

from agentty_core.client import Client
from agentty_core.pytest_plugin import reap
from agentty_core.remote.client import RemoteClient
from agentty_ui.app import KEYS_HELD_FOR, AgenttyApp, create_app
from agentty_ui.screens.confirm import ConfirmScreen
from agentty_ui.screens.new_session import NewSessionScreen
from agentty_ui.widgets.host_bar import HostBadge, HostBar
from agentty_ui.widgets.log_view import LogView
from agentty_ui.widgets.session_list import SessionList
from agentty_ui.widgets.terminal_view import TerminalView
from tests.remote.conftest import HOST, Link
from tests.ui.conftest import wait_for

PYTHON = sys.executable
SIZE = (120, 36)


@pytest.fixture
def local() -> Iterator[Client]:
    client = Client(timeout=3.0)
    yield client
    reap(client.home.root)


@pytest.fixture
def remote(link: Link) -> Iterator[RemoteClient]:
    """The client the test uses to look at the host behind the dashboard's back."""
    client = RemoteClient(HOST)
    yield client
    client.close()


def make_app(local: Client) -> AgenttyApp:
    return create_app(
        local, hosts=[RemoteClient(HOST, timeout=3.0)], poll_interval=0.2, host_poll_interval=0.3
    )


def cell(app: AgenttyApp, key: str, column: str) -> str:
    table = app.query_one(SessionList)
    return str(table.get_cell(key, column)) if key in table.rows else ""


def screen_text(app: AgenttyApp) -> str:
    return app.query_one("#screen", TerminalView).text


def remote_screen(remote: RemoteClient, sid: str) -> str:
    lines = remote.get(sid).get("lines")
    return "\n".join(str(line) for line in lines) if isinstance(lines, list) else ""


def badge(app: AgenttyApp, host: str | None) -> HostBadge:
    return next(b for b in app.query(HostBadge) if b.host == host)


async def test_remote_sessions_listed_typed_into_and_killed(
    link: Link, local: Client, remote: RemoteClient
) -> None:
    here = str(local.start(["cat"], name="here")["id"])
    sid = str(remote.start(["cat"], name="there")["id"])
    key = f"{sid}@{HOST}"
    app = make_app(local)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        table = app.query_one(SessionList)
        # Both homes answer on their own: wait for both rows (the host's may come first).
        await wait_for(pilot, lambda: cell(app, key, "status") == "running", 30)
        await wait_for(pilot, lambda: cell(app, here, "status") == "running", 30)
        assert cell(app, key, "host") == HOST and cell(app, key, "id") == sid
        assert cell(app, key, "name") == "there"
        assert cell(app, here, "host") == "local"
        assert table.ordered_rows[0].key.value == here  # grouped: this machine first
        assert str(badge(app, HOST).render()) == f"● {HOST} 1"
        # Attach and type: the keys reach the remote program, the live view shows its echo.
        table.select(key)
        await wait_for(pilot, lambda: app.selected == key)
        await pilot.press("enter")
        assert app.attached
        await pilot.press(*"far away", "enter")
        await wait_for(pilot, lambda: "far away\nfar away" in screen_text(app), 30)
        assert "far away\nfar away" in remote_screen(remote, sid)
        await pilot.press("ctrl+right_square_bracket")
        # The input bar goes the same way.
        await pilot.press("i", *"by the bar", "enter", "escape")
        await wait_for(pilot, lambda: "by the bar\nby the bar" in remote_screen(remote, sid), 30)
        # The worker log is read on the host.
        app.query_one(TabbedContent).active = "tab-log"
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: any(sid in line for line in log.lines), 30)
        app.query_one(TabbedContent).active = "tab-screen"
        # Kill, through the modal.
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: cell(app, key, "status") == "exited", 30)
        assert remote.resolve(sid)["status"] == "exited"
        assert local.resolve(here)["status"] == "running"


async def test_new_session_on_a_chosen_host(
    link: Link, local: Client, remote: RemoteClient
) -> None:
    app = make_app(local)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.query_one(HostBar).states[HOST].state == "up", 30)
        await pilot.press("n")
        dialog = app.screen
        assert isinstance(dialog, NewSessionScreen)
        dialog.query_one("#host", Select).value = 1  # the host (0 is this machine)
        await pilot.pause()
        assert dialog.query_one("#cwd").value == ""  # type: ignore[attr-defined]
        hint = dialog.query_one("#cwd").placeholder  # type: ignore[attr-defined]
        assert hint == "the host's default (its user's home)"
        dialog.query_one("#command").focus()
        await pilot.press(*"sh -c 'echo made over there; exec cat'", "tab", *"far", "enter")
        await wait_for(pilot, lambda: any(r.get("name") == "far" for r in remote.sessions()), 30)
        sid = next(str(r["id"]) for r in remote.sessions() if r.get("name") == "far")
        await wait_for(pilot, lambda: app.selected == f"{sid}@{HOST}", 30)
        await wait_for(pilot, lambda: "made over there" in screen_text(app), 30)
        assert local.sessions() == []
        remote.kill(sid, grace=0.5)


async def test_host_down_with_its_reason_then_back(
    link: Link, local: Client, remote: RemoteClient
) -> None:
    sid = str(remote.start(["cat"], name="there")["id"])
    key = f"{sid}@{HOST}"
    app = make_app(local)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        bar = app.query_one(HostBar)
        await wait_for(pilot, lambda: cell(app, key, "status") == "running", 30)
        app.query_one(SessionList).select(key)
        await wait_for(pilot, lambda: app.query_one("#screen", TerminalView).live == key, 30)
        link.sshd.stop()
        # A poll in flight as sshd went may say the connection dropped; the next ones say
        # why the host is down now, and that is what stays.
        await wait_for(pilot, lambda: bar.down.get(HOST, "").startswith(f"{HOST}: cannot"), 30)
        assert bar.states[HOST].state == "down"
        assert "down" in str(badge(app, HOST).render())
        assert bar.down[HOST] in str(bar.query_one("#host-down").render())
        await wait_for(pilot, lambda: cell(app, key, "status") == "unreachable")
        await wait_for(pilot, lambda: "the host is down" in screen_text(app))
        # Actions on its sessions say why, and do nothing.
        await pilot.press("enter")
        assert not app.attached
        # This machine's sessions go on updating meanwhile.
        here = str(local.start(["cat"], name="here")["id"])
        await wait_for(pilot, lambda: cell(app, here, "status") == "running")
        local.kill(here, grace=0.5)
        await wait_for(pilot, lambda: cell(app, here, "status") == "exited")
        assert HOST in bar.down
        # sshd is back: so is the host, by itself, and its session is live again.
        link.sshd.start()
        await wait_for(pilot, lambda: cell(app, key, "status") == "running", 30)
        assert HOST not in bar.down and bar.states[HOST].state == "up"
        assert not bar.query_one("#host-down").display
        app.query_one(SessionList).select(key)
        await wait_for(pilot, lambda: app.query_one("#screen", TerminalView).live == key, 30)
        await pilot.pause(KEYS_HELD_FOR)  # (keys after the refused attach above do nothing)
        await pilot.press("enter", *"back again", "enter", "ctrl+right_square_bracket")
        await wait_for(pilot, lambda: "back again\nback again" in screen_text(app), 30)
        remote.kill(sid, grace=0.5)


async def test_a_host_down_reason_is_shown_escaped(
    local: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transport that fails saying escape sequences (a title set, blinking): the
    dashboard's host-down line wrote them to the terminal as they came."""
    from tests.remote.test_transport_faults import shell_hosts

    fails = r"printf 'Error: \033]0;TITLE\007 \033[5mBLINK\n' >&2; exit 1"
    shell_hosts(tmp_path, monkeypatch, fails=fails)
    app = create_app(
        local, hosts=[RemoteClient("fails", timeout=3.0)], poll_interval=0.2, host_poll_interval=0.3
    )
    async with app.run_test(size=SIZE) as pilot:
        bar = app.query_one(HostBar)
        await wait_for(pilot, lambda: "fails" in bar.down, 30)
        line = str(bar.query_one("#host-down").render())
        assert "\x1b" not in line and "\x07" not in line, repr(line)
        assert r"\x1b]0;TITLE\x07" in line, line

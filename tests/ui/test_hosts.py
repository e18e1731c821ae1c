"""The dashboard with hosts, reached by the `command` transport (other homes on this
machine, no ssh; the real sshd's tests are tests/remote/test_ui_hosts.py): grouped by host,
filtered, a host that is down says why, and one that never answers holds up nobody."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from agentty_core.client import Client
from agentty_core.remote.client import RemoteClient
from agentty_core.remote.hosts import Host
from agentty_core.state.records import Record
from agentty_ui.app import AgenttyApp, create_app
from agentty_ui.widgets.filter_bar import FilterBar
from agentty_ui.widgets.host_bar import HostBar
from agentty_ui.widgets.session_list import SessionList
from tests.helpers.cli import AGENTTY
from tests.ui.conftest import command_host, wait_for

SIZE = (120, 36)
Homes = Callable[[], Path]


def make_app(client: Client, *hosts: Host) -> AgenttyApp:
    clients = [RemoteClient(h, timeout=3.0) for h in hosts]
    return create_app(client, hosts=clients, poll_interval=0.2, host_poll_interval=0.3)


def shown(app: AgenttyApp) -> list[str]:
    """The names of the sessions listed, in table order."""
    table = app.query_one(SessionList)
    return [str(table.get_cell(row.key, "name")) for row in table.ordered_rows]


async def test_grouped_by_host_and_filtered(client: Client, other_homes: Homes) -> None:
    one, two = other_homes(), other_homes()
    RemoteClient(command_host("one", one)).start(["cat"], name="beta")
    client.start(["cat"], name="alpha")
    RemoteClient(command_host("two", two)).start(["cat"], name="gamma")
    RemoteClient(command_host("one", one)).start(["cat"], name="delta")
    app = make_app(client, command_host("one", one), command_host("two", two))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(shown(app)) == 4, 30)
        assert shown(app) == ["alpha", "beta", "delta", "gamma"]  # here, one, two
        table = app.query_one(SessionList)
        hosts = [str(table.get_cell(row.key, "host")) for row in table.ordered_rows]
        assert hosts == ["local", "one", "one", "two"]
        await pilot.press("slash", *"two")
        await wait_for(pilot, lambda: shown(app) == ["gamma"])
        assert app.selected is not None and app.selected.endswith("@two")
        await pilot.press("escape")  # clears
        await wait_for(pilot, lambda: len(shown(app)) == 4)
        assert not app.query_one(FilterBar).display
        assert isinstance(app.focused, SessionList)
        # Words are ANDed, across columns; enter keeps the filter and returns to the list.
        await pilot.press("slash", *"one cat", "enter")
        await wait_for(pilot, lambda: shown(app) == ["beta", "delta"])
        assert app.query_one(FilterBar).display and isinstance(app.focused, SessionList)
        # New sessions that match appear in their group; the others stay hidden.
        RemoteClient(command_host("one", one)).start(["cat"], name="epsilon")
        client.start(["cat"], name="zeta")
        await wait_for(pilot, lambda: shown(app) == ["beta", "delta", "epsilon"], 30)


class HeldLivePoll(Client):
    """This machine's client whose polls with live fields wait until `release` is set; the
    listing read from the state file alone does not wait."""

    def __init__(self) -> None:
        super().__init__(timeout=3.0)
        self.release = threading.Event()

    def sessions(self, *, live_info: bool = False) -> list[Record]:
        if live_info:
            self.release.wait(30)
        return super().sessions(live_info=live_info)


async def test_this_machines_rows_are_listed_before_any_live_poll(
    client: Client, other_homes: Homes
) -> None:
    """The order that made tests/remote's host test flaky, forced: a host answers while
    this machine's first live poll is still out (slow under load). This machine's rows are
    listed anyway, from the state file, with their Host cell, and the live fields follow."""
    one = other_homes()
    RemoteClient(command_host("one", one)).start(["cat"], name="there")
    here = str(client.start(["cat"], name="here")["id"])
    held = HeldLivePoll()
    app = make_app(held, command_host("one", one))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: sorted(shown(app)) == ["here", "there"], 30)
            table = app.query_one(SessionList)
            hosts = [str(table.get_cell(row.key, "host")) for row in table.ordered_rows]
            assert hosts == ["local", "one"]
            assert str(table.get_cell(here, "status")) == "running"
            assert str(table.get_cell(here, "mem")) == ""  # not sampled yet
            held.release.set()
            await wait_for(pilot, lambda: str(table.get_cell(here, "mem")) != "", 30)
    finally:
        held.release.set()


async def test_a_host_that_is_down_says_why(client: Client, other_homes: Homes) -> None:
    client.start(["cat"], name="here")
    gone = Host("gone", command=("/nonexistent/agentty-link",))
    app = make_app(client, gone)
    async with app.run_test(size=SIZE) as pilot:
        bar = app.query_one(HostBar)
        await wait_for(pilot, lambda: "gone" in bar.down)
        assert bar.down["gone"].startswith("gone: cannot run '/nonexistent/agentty-link'")
        assert "✗ gone: cannot run" in str(bar.query_one("#host-down").render())
        await wait_for(pilot, lambda: shown(app) == ["here"])


async def test_a_host_that_never_answers_holds_up_nobody(
    client: Client, other_homes: Homes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six of them: their polls are in flight for the whole test (each holding a thread),
    the others are listed and updated, and quitting ends the polls (the census of the home
    finds no process left behind)."""
    monkeypatch.setenv("AGENTTY_CONNECT_TIMEOUT", "300")
    one = other_homes()
    RemoteClient(command_host("one", one)).start(["cat"], name="beta")
    client.start(["cat"], name="alpha")
    silent = [Host(f"silent{i}", command=("sh", "-c", "exec sleep 600", "sh")) for i in range(6)]
    app = make_app(client, *silent, command_host("one", one))
    async with app.run_test(size=SIZE) as pilot:
        bar = app.query_one(HostBar)
        await wait_for(pilot, lambda: shown(app) == ["alpha", "beta"], 30)
        client.start(["cat"], name="gamma")
        RemoteClient(command_host("one", one)).start(["cat"], name="delta")
        await wait_for(pilot, lambda: shown(app) == ["alpha", "gamma", "beta", "delta"], 30)
        assert all(bar.states[h.name].state == "connecting" for h in silent)
        assert bar.states["one"].state == "up" and bar.states[None].count == 2


def test_ui_flags_pick_the_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`agentty ui` hands --host/--no-local to the dashboard, which reads hosts.toml."""
    from agentty_ui.__main__ import host_clients
    from tests.helpers.cli import agentty

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "agentty").mkdir()
    (tmp_path / "agentty" / "hosts.toml").write_text(
        '[hosts.b]\nssh = "me@b.example"\n[hosts.a]\ncommand = ["docker", "exec", "-i", "a"]\n'
    )
    assert [c.host.name for c in host_clients(None)] == ["b", "a"]  # file order
    assert [c.host.name for c in host_clients(["a", "me@c", "a"])] == ["a", "me@c"]
    assert host_clients(["me@c"])[0].host.destination == "me@c"
    # Through the command: nothing to show is refused before any UI starts.
    (tmp_path / "agentty" / "hosts.toml").unlink()
    refused = agentty("ui", "--no-local")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "agentty: error: --no-local leaves nothing to show: name a --host or add hosts.toml"
    )
    bad = agentty("ui", "--host=-oProxyCommand=x")
    assert bad.returncode == 2 and "never an ssh option" in bad.stderr


async def test_grid_and_prune_take_in_the_hosts(client: Client, other_homes: Homes) -> None:
    from agentty_ui.screens.confirm import ConfirmScreen
    from agentty_ui.screens.grid import GridScreen, MiniPane
    from agentty_ui.widgets.terminal_view import TerminalView

    box = command_host("box", other_homes())
    remote = RemoteClient(box)
    live = str(remote.start(["sh", "-c", "echo from-the-box; exec cat"], name="live")["id"])
    done = str(remote.start(["true"], name="done")["id"])
    remote.wait(done, exit=True, timeout=30)
    here = str(client.start(["sh", "-c", "echo from-here; exec cat"], name="here")["id"])
    app = make_app(client, box)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(shown(app)) == 3, 30)
        await pilot.press("g")
        assert isinstance(app.screen, GridScreen)
        panes = {p.session_id: p for p in app.screen.query(MiniPane)}
        assert set(panes) == {here, f"{live}@box"}  # running ones only
        assert panes[f"{live}@box"].label.startswith("live@box ")
        await wait_for(
            pilot,
            lambda: "from-the-box" in panes[f"{live}@box"].query_one(TerminalView).text,
            30,
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, GridScreen))
        await pilot.press("p")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: shown(app) == ["here", "live"], 30)
        assert [r["id"] for r in remote.sessions()] == [live]


async def test_a_host_down_while_attached_is_said_so_not_an_end(
    client: Client, other_homes: Homes, tmp_path: Path
) -> None:
    """The dashboard detached saying the session "ended", while it ran on, on a host that
    went down (a review)."""
    home, flag = other_homes(), tmp_path / "down"
    link = tmp_path / "link"
    link.write_text(f'#!/bin/sh\n[ -e {flag} ] && {{ echo down >&2; exit 1; }}\nexec "$@"\n')
    link.chmod(0o755)
    host = Host("one", command=(str(link), "env", f"AGENTTY_HOME={home}"), agentty=AGENTTY)
    remote = RemoteClient(host, timeout=3.0)
    sid = f"{remote.start(['cat'])['id']}@one"
    app = make_app(client, host)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: sid in table.rows)
        table.select(sid)
        await wait_for(pilot, lambda: app.selected == sid)
        await pilot.press("enter")
        assert app.attached
        flag.touch()
        await wait_for(pilot, lambda: not app.attached)
        await pilot.pause(0.5)
        said = [(n.title, n.message) for n in app._notifications]
        assert any(title == "Host down" and sid in text for title, text in said), said
        assert not any("ended" in text for _, text in said), said
    flag.unlink()

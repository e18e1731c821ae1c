"""What the dashboard says after an action: words, not Python values; errors where the
person typed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest
from textual.widgets import Input, Static

from agentty_core.client import Client
from agentty_ui.app import AgenttyApp, create_app
from agentty_ui.screens.confirm import ConfirmScreen
from agentty_ui.screens.new_session import NewSessionScreen
from agentty_ui.widgets.orphan_banner import OrphanBanner
from agentty_ui.widgets.session_list import SessionList
from tests.ui.conftest import wait_for

SIZE = (110, 36)


def make_app(client: Client) -> AgenttyApp:
    return create_app(client, poll_interval=0.2)


def messages(app: AgenttyApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def test_ending_orphans_says_what_it_ended_in_words(client: Client) -> None:
    """The toast was `ended {'killed': [24309, 24310], 'escalated': [...]}`."""
    rec = client.start(["sh", "-c", "trap '' HUP; sleep 1000000 & echo child $!; wait"])
    sid, worker = str(rec["id"]), rec["workerPid"]
    assert isinstance(worker, int)
    lines = client.wait(sid, regex=r"child \d+", timeout=10)["lines"]
    assert isinstance(lines, list)
    child = int(next(line for line in lines if "child" in line).split()[1])
    os.kill(worker, signal.SIGKILL)
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        banner = app.query_one(OrphanBanner)
        await wait_for(pilot, lambda: banner.orphans)
        await pilot.press("e")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: any(m.startswith("End orphans") for m in messages(app)))
        said = next(m for m in messages(app) if m.startswith("End orphans"))
        assert said.startswith(f"End orphans: ended 1 orphaned process: {child} (sent SIGHUP")
        assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"


async def test_killing_a_lost_session_says_what_it_ended_in_words(client: Client) -> None:
    """A lost session with nothing left running: the toast was `<id>: ended []`."""
    rec = client.start(["sleep", "1000000"], name="gone")
    sid, worker = str(rec["id"]), rec["workerPid"]
    assert isinstance(worker, int)
    os.kill(worker, signal.SIGKILL)  # its program dies with it (PDEATHSIG)
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(
            pilot, lambda: sid in app.records and app.records[sid].get("status") == "lost"
        )
        app.query_one(SessionList).select(sid)
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: any(m.startswith("Kill") for m in messages(app)))
        said = next(m for m in messages(app) if m.startswith("Kill"))
        assert said == f"Kill: {sid} was lost (its worker was gone): no process was left to end"


async def test_a_start_that_fails_keeps_the_dialog_and_what_was_typed(client: Client) -> None:
    """The dialog closed before the start was refused: an invalid name lost the command
    line, the name and the directory typed."""
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("n")
        dialog = app.screen
        assert isinstance(dialog, NewSessionScreen)
        await pilot.press(*"cat", "tab", *"[bold red]x[/]", "enter")
        await pilot.pause(0.5)
        assert app.screen is dialog
        error = dialog.query_one("#new-error", Static)
        await wait_for(pilot, lambda: "invalid session name" in str(error.render()))
        assert app.screen is dialog
        assert dialog.query_one("#command", Input).value == "cat"
        assert dialog.query_one("#name", Input).value == "[bold red]x[/]"
        assert client.sessions() == []
        name = dialog.query_one("#name", Input)
        name.value = "fixed"  # corrected, it starts
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is not dialog)
        await wait_for(pilot, lambda: [r.get("name") for r in client.sessions()] == ["fixed"])
        await wait_for(pilot, lambda: app.selected == client.sessions()[0]["id"])


async def test_a_start_under_way_is_not_cancelled_out_of_sight(client: Client) -> None:
    """Escape while a start was under way closed the dialog and the start went on: its
    session came up (or failed) without a word (a review). The dialog stays until it is
    done, then says so as ever."""
    import threading

    app = make_app(client)
    go = threading.Event()
    real_start = app._start

    def held_start(new: object) -> object:
        go.wait(10)
        return real_start(new)  # type: ignore[arg-type]

    app._start = held_start  # type: ignore[method-assign,assignment]
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("n")
        dialog = app.screen
        assert isinstance(dialog, NewSessionScreen)
        await pilot.press(*"cat", "enter")
        await wait_for(pilot, lambda: dialog.starting)
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert app.screen is dialog  # (not cancelled: a start cannot be taken back)
        go.set()
        await wait_for(pilot, lambda: app.screen is not dialog)
        await wait_for(pilot, lambda: [r.get("command") for r in client.sessions()] == ["cat"])
        await wait_for(pilot, lambda: any("started" in n.message for n in app._notifications))


async def test_a_directory_given_with_a_tilde_is_the_users_home(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No shell reads the field: `~` was taken as a directory of that name
    ("cwd does not exist: /work/main/~")."""
    (tmp_path / "src").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("n")
        dialog = app.screen
        assert isinstance(dialog, NewSessionScreen)
        dialog.query_one("#command", Input).value = "cat"
        dialog.query_one("#cwd", Input).value = "~/src"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is not dialog)
        await wait_for(
            pilot, lambda: [r.get("cwd") for r in client.sessions()] == [str(tmp_path / "src")]
        )

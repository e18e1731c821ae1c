"""Snapshots of the main views: real sessions with fixed output, ids and times frozen."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import Input

from agentty_core.remote.hosts import Host
from agentty_ui.app import AgenttyApp, create_app
from agentty_ui.screens.grid import GridScreen, MiniPane
from agentty_ui.widgets.host_bar import HostBar
from agentty_ui.widgets.session_list import SessionList
from agentty_ui.widgets.terminal_view import TerminalView
from tests.ui.conftest import (
    FROZEN_NOW,
    FixedSampler,
    StableClient,
    StableRemoteClient,
    command_host,
    wait_for,
)

SIZE = (100, 30)
COLOURS = (
    r"printf '\033[1;31mred bold\033[0m \033[32mgreen\033[0m \033[44;97m blue bg \033[0m "
    r"\033[4munder\033[0m \033[7mrev\033[0m 漢字\n'; exec cat"
)


def stable_app(*programs: tuple[str, list[str]]) -> tuple[AgenttyApp, StableClient]:
    client = StableClient()
    for name, argv in programs:
        client.start(argv, name=name)
    app = create_app(client, clock=lambda: FROZEN_NOW, sampler=FixedSampler())
    return app, client


def ready(app: AgenttyApp, count: int, text: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: app.query_one(SessionList).row_count == count)
        await wait_for(
            pilot, lambda: app.query_one(SessionList).get_cell_at(Coordinate(0, 7)) != ""
        )
        await wait_for(pilot, lambda: text in app.query_one("#screen", TerminalView).text)

    return run_before


def test_overview(snap_compare: object, client: object) -> None:
    app, _ = stable_app(("colours", ["sh", "-c", COLOURS]), ("idle", ["cat"]))
    assert snap_compare(app, terminal_size=SIZE, run_before=ready(app, 2, "under"))  # type: ignore[operator]


def test_attached(snap_compare: object, client: object) -> None:
    app, _ = stable_app(("colours", ["sh", "-c", COLOURS]))

    async def run_before(pilot: Pilot[None]) -> None:
        await ready(app, 1, "under")(pilot)
        await pilot.press("enter", *"typed", "enter")
        await wait_for(pilot, lambda: "typed\ntyped" in app.query_one("#screen", TerminalView).text)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)  # type: ignore[operator]


def test_kill_modal(snap_compare: object, client: object) -> None:
    app, _ = stable_app(("colours", ["sh", "-c", COLOURS]))

    async def run_before(pilot: Pilot[None]) -> None:
        await ready(app, 1, "under")(pilot)
        await pilot.press("k")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)  # type: ignore[operator]


def test_input_bar(snap_compare: object, client: object) -> None:
    """The bar names the session it types into."""
    app, _ = stable_app(("colours", ["sh", "-c", COLOURS]), ("idle", ["cat"]))

    async def run_before(pilot: Pilot[None]) -> None:
        await ready(app, 2, "under")(pilot)
        await pilot.press("i", *"echo hi")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)  # type: ignore[operator]


def test_new_session_error_in_a_short_window(snap_compare: object, client: object) -> None:
    """At 80x24 the form is compact: its error and its buttons in view, its own keys below."""
    app, _ = stable_app(("idle", ["cat"]))

    async def run_before(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: app.query_one(SessionList).row_count == 1)
        await pilot.press("n", *"no-such-program-xyz", "enter")
        error = app.screen.query_one("#new-error")
        await wait_for(pilot, lambda: "not found" in str(error.render()))
        app.screen.query_one("#cwd", Input).value = "/work"  # (the checkout's own, frozen)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)  # type: ignore[operator]


async def open_grid(app: AgenttyApp, pilot: Pilot[None], count: int) -> list[MiniPane]:
    """The grid opened over `count` sessions, every tile showing its screen."""
    await ready(app, count, "under")(pilot)
    await pilot.press("g")
    await wait_for(pilot, lambda: isinstance(app.screen, GridScreen))
    panes = list(app.screen.query(MiniPane))
    await wait_for(pilot, lambda: all(p.query_one(TerminalView).text.strip() for p in panes))
    return panes


def test_grid(snap_compare: object, client: object) -> None:
    app, _ = stable_app(
        ("colours", ["sh", "-c", COLOURS]),
        ("hello", ["sh", "-c", "echo hello from a pane; exec cat"]),
    )

    async def run_before(pilot: Pilot[None]) -> None:
        await open_grid(app, pilot, 2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)  # type: ignore[operator]


def test_grid_tile_shorter_than_its_screen(snap_compare: object, client: object) -> None:
    """The log's tile is shorter than its 24 rows: it shows the rows at the cursor (the
    newest lines), the other tiles their tops."""
    app, _ = stable_app(
        ("colours", ["sh", "-c", COLOURS]),
        ("hello", ["sh", "-c", "echo hello from a pane; exec cat"]),
        ("log", ["sh", "-c", "seq 1 40; exec cat"]),
    )

    async def run_before(pilot: Pilot[None]) -> None:
        panes = await open_grid(app, pilot, 3)
        log = next(p for p in panes if p.label.startswith("log"))
        await wait_for(pilot, lambda: "40" in log.query_one(TerminalView).text)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)  # type: ignore[operator]


def test_help(snap_compare: object, client: object) -> None:
    app, _ = stable_app()
    assert snap_compare(app, terminal_size=SIZE, press=["question_mark"])  # type: ignore[operator]


def test_help_in_a_narrow_window(snap_compare: object, client: object) -> None:
    """At 60 columns the dialog was wider than the window: its text cut mid-word."""
    app, _ = stable_app()
    assert snap_compare(app, terminal_size=(60, 15), press=["question_mark"])  # type: ignore[operator]


def test_hosts(snap_compare: object, client: object, other_homes: Callable[[], Path]) -> None:
    """A host column, sessions grouped by host, and a host that is down with its reason."""
    build = StableRemoteClient(command_host("build", other_homes()), 0x101)
    build.start(["sh", "-c", "echo serving on :8000; exec cat"], name="server")
    build.start(["cat"], name="tests")
    gone = StableRemoteClient(Host("gone", command=("/nonexistent/agentty-link",)), 0x201)
    local = StableClient()
    colours = str(local.start(["sh", "-c", COLOURS], name="colours")["id"])
    app = create_app(local, hosts=[build, gone], clock=lambda: FROZEN_NOW, sampler=FixedSampler())

    async def run_before(pilot: Pilot[None]) -> None:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: table.row_count == 3)
        # The first row is selected when the list first shows: a host's answer may come
        # before this machine's, its row selected then. The picture is of this one's, by
        # the id the list shows (the client's stable alias: the real one is in no row).
        table.select(local.fake[colours])
        await wait_for(pilot, lambda: app.selected == local.fake[colours])
        await ready(app, 3, "under")(pilot)
        await wait_for(pilot, lambda: "gone" in app.query_one(HostBar).down)
        await wait_for(pilot, lambda: app.query_one(HostBar).states["build"].count == 2)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)  # type: ignore[operator]


def test_empty_home(snap_compare: object, client: object) -> None:
    app, _ = stable_app()

    async def run_before(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: app.query_one("#empty-hint").display)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)  # type: ignore[operator]

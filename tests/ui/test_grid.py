"""The grid (`g`): what its keys act on, what it leaves selected, and its layout."""

from __future__ import annotations

from textual.containers import Grid
from textual.pilot import Pilot
from textual.widgets import Label

from agentty_core.client import Client
from agentty_ui.app import AgenttyApp, create_app
from agentty_ui.screens.confirm import ConfirmScreen
from agentty_ui.screens.grid import GridScreen, MiniPane
from agentty_ui.widgets.filter_bar import FilterBar
from agentty_ui.widgets.input_bar import InputBar
from agentty_ui.widgets.session_list import SessionList
from agentty_ui.widgets.terminal_view import TerminalView
from tests.ui.conftest import wait_for

SIZE = (110, 36)
MIN_TILE_HEIGHT = 8  # rows: a title and a few of the screen's


def make_app(client: Client) -> AgenttyApp:
    return create_app(client, poll_interval=0.2)


async def open_grid(app: AgenttyApp, pilot: Pilot[None], count: int) -> GridScreen:
    await wait_for(pilot, lambda: app.query_one(SessionList).row_count == count)
    await pilot.press("g")
    assert isinstance(app.screen, GridScreen)
    await pilot.pause()
    return app.screen


def tile(screen: GridScreen, session_id: str) -> MiniPane:
    return next(p for p in screen.query(MiniPane) if p.session_id == session_id)


async def test_kill_in_the_grid_asks_about_the_focused_tile(client: Client) -> None:
    """`k` named the session selected in the list under the grid, not the tile in focus."""
    a = str(client.start(["cat"], name="alpha")["id"])
    b = str(client.start(["cat"], name="beta")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.query_one(SessionList).row_count == 2)
        app.query_one(SessionList).select(a)
        await wait_for(pilot, lambda: app.selected == a)
        grid = await open_grid(app, pilot, 2)
        grid.set_focus(tile(grid, b))
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmScreen)
        question = str(app.screen.query_one(".dialog-body", Label).render())
        assert b in question and "beta" in question and a not in question
        await pilot.press("y")
        await wait_for(pilot, lambda: client.resolve(b)["status"] == "exited")
        assert client.resolve(a)["status"] == "running"
        assert isinstance(app.screen, GridScreen)


async def test_the_grid_offers_only_what_works_there(client: Client) -> None:
    """r resized the list's hidden selection, i and / opened bars on the hidden main screen,
    n started a session the grid never showed: none is offered in the grid, nor shown in
    its footer."""
    a = str(client.start(["cat"], name="alpha")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.selected == a)
        size = client.get(a)["size"]
        grid = await open_grid(app, pilot, 1)
        await pilot.press("r", "i", "slash", "n", "p", "s", "e")
        await pilot.pause(0.3)
        assert app.screen is grid
        assert not app.main.query_one(InputBar).has_class("-visible")
        assert not app.main.query_one(FilterBar).has_class("-visible")
        assert client.get(a)["size"] == size
        offered = {b.binding.action for b in grid.active_bindings.values()}
        assert not offered & {"input", "resize", "filter", "new", "prune", "scrollback"}
        assert {"open", "kill"} <= offered
        assert len(client.sessions()) == 1


async def test_leaving_the_grid_selects_the_chosen_session_in_a_visible_row(
    client: Client,
) -> None:
    """The chosen tile's session was selected though the filter hid its row: the list
    highlighted another row, and `k` acted on the hidden one."""
    a = str(client.start(["cat"], name="alpha")["id"])
    b = str(client.start(["cat"], name="beta")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("slash", *"alpha", "enter")
        await wait_for(pilot, lambda: table.row_count == 1 and app.selected == a)
        await pilot.press("g")
        grid = app.screen
        assert isinstance(grid, GridScreen)
        await pilot.pause()
        await pilot.click(tile(grid, b))
        await wait_for(pilot, lambda: app.screen is app.main)
        await pilot.pause()
        assert app.selected == b
        assert table.selected_id == b  # shown, and highlighted: the filter made way


async def test_a_grid_of_many_sessions_scrolls_tiles_of_a_useful_size(client: Client) -> None:
    """60 sessions at 120x40 drew 60 empty frames: every tile squeezed into the screen, in
    3 columns whatever the width."""
    for i in range(20):
        client.start(["sh", "-c", f"echo tile-{i}; exec cat"], name=f"t{i}")
    app = make_app(client)
    async with app.run_test(size=(120, 40)) as pilot:
        grid = await open_grid(app, pilot, 20)
        panes = list(grid.query(MiniPane))
        assert all(p.outer_size.height >= MIN_TILE_HEIGHT for p in panes)
        container = grid.query_one(Grid)
        assert container.max_scroll_y > 0  # the rest is a scroll away
        grid.set_focus(panes[-1])
        await wait_for(pilot, lambda: container.scroll_offset.y > 0)
        last = panes[-1].query_one(TerminalView)
        await wait_for(pilot, lambda: "tile-" in last.text)
    wide = make_app(client)
    async with wide.run_test(size=(220, 40)) as pilot:
        grid = await open_grid(wide, pilot, 20)
        assert grid.query_one(Grid).styles.grid_size_columns == 5  # all of them fit
        assert all(p.outer_size.height >= MIN_TILE_HEIGHT for p in grid.query(MiniPane))
        assert grid.query_one(Grid).max_scroll_y == 0


async def test_the_grid_follows_sessions_started_and_ended_while_it_is_up(
    client: Client,
) -> None:
    """Its tiles were made once: a session started meanwhile never showed, one killed kept
    its tile and last screen with nothing to say it ended (an outside round)."""
    a = str(client.start(["cat"], name="alpha")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        grid = await open_grid(app, pilot, 1)
        b = str(client.start(["sh", "-c", "echo late-tile; exec cat"], name="beta")["id"])
        await wait_for(pilot, lambda: len(grid.query(MiniPane)) == 2)
        view = tile(grid, b).query_one(TerminalView)
        await wait_for(pilot, lambda: "late-tile" in view.text)
        client.kill(a, grace=0.5)
        await wait_for(pilot, lambda: tile(grid, a).has_class("-ended"))
        title = str(tile(grid, a).query_one(".mini-title", Label).render())
        assert title.startswith("ended · ") and not tile(grid, b).has_class("-ended")


async def test_the_first_tile_of_an_empty_grid_takes_the_keys(client: Client) -> None:
    """A tile added to an empty grid was not focused: enter and k did nothing until an
    arrow key (a review)."""
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        grid = app.screen
        assert isinstance(grid, GridScreen)
        await pilot.pause()
        sid = str(client.start(["cat"], name="late")["id"])
        await wait_for(pilot, lambda: len(grid.query(MiniPane)) == 1)
        await wait_for(pilot, lambda: isinstance(grid.focused, MiniPane))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is app.main and app.selected == sid)

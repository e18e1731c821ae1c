"""Every running session at once, each a live mini terminal; choose one to open it.

The tiles follow the home: a session started meanwhile gets one (`add_tiles`, from the
app's polls), and one that ends keeps its tile, marked ended, with its last screen.

The panes are paced by the screen: their streams only buffer, and one timer applies every
pane's buffered events together, so the grid costs one repaint a frame, not one per pane.
Their workers are asked for no more events than that (`subscribe {"interval"}`): one per
frame, each with every row changed since the last, instead of ~30 a second to decode.
"""

from __future__ import annotations

import math
from typing import ClassVar

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Label

from agentty_core.errors import AgenttyError
from agentty_core.screen_text import printable

from .. import heap
from ..fleet import Subscribes
from ..widgets.footer import AdaptiveFooter
from ..widgets.terminal_view import TerminalView

GRID_FRAME = 0.15  # seconds: ~7 frames a second is plenty to watch many sessions at once
# The smallest a tile is made: a title and a few rows of its screen. Tiles that would be
# smaller to fit the screen (60 sessions at 120x40 were empty frames) scroll instead.
MIN_TILE_WIDTH = 40
MIN_TILE_HEIGHT = 8
EMPTY = "No running sessions yet: one started meanwhile shows here (esc, then n, starts one)."


class MiniPane(Vertical, can_focus=True):
    """One session in the grid: a title and its live screen (no cursor, no scrollbars).

    Its keys act on its own session: the list's selection lies hidden under the grid."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open"),
        Binding("k", "kill", "Kill"),
    ]

    class Chosen(Message):
        def __init__(self, session_id: str) -> None:
            super().__init__()
            self.session_id = session_id

    class KillAsked(Message):
        """Kill the tile's session (the app asks first)."""

        def __init__(self, session_id: str) -> None:
            super().__init__()
            self.session_id = session_id

    class _Final(Message):
        """The final screen of a session that ended before the tile could follow it."""

        def __init__(self, lines: list[str]) -> None:
            super().__init__()
            self.lines = lines

    def __init__(self, client: Subscribes, session_id: str, label: str) -> None:
        super().__init__(classes="mini-pane")
        self.client = client
        self.session_id = session_id
        self.label = label

    def compose(self) -> ComposeResult:
        yield Label(self.label, classes="mini-title", markup=False)  # session text
        yield TerminalView(
            show_cursor=False, paced=True, push_interval=GRID_FRAME, classes="mini-term"
        )

    def on_mount(self) -> None:
        view = self.query_one(TerminalView)
        view.can_focus = False
        view.follow(self.client, self.session_id)

    def on_terminal_view_ended(self, message: TerminalView.Ended) -> None:
        """The session ended: the tile says so (it kept its last screen and looked alive);
        one that ended before the tile could follow it (the list it was chosen from is a
        poll old) gets its final screen, as the open session's pane shows it."""
        view = self.query_one(TerminalView)
        if message.session_id != self.session_id:
            return
        if not self.has_class("-ended"):
            self.add_class("-ended")  # (said first: a long command's label is cut short)
            self.query_one(".mini-title", Label).update(f"ended · {self.label}")
        if not view.seen:
            self._final_screen()

    @work(thread=True, exclusive=True, group="final")
    def _final_screen(self) -> None:
        try:
            screen = self.client.get(self.session_id)
        except AgenttyError as exc:
            lines = [f"({printable(str(exc))})"]
        else:
            found = screen.get("lines")
            lines = [str(line) for line in found] if isinstance(found, list) else []
        self.post_message(self._Final(lines))

    def on_mini_pane__final(self, message: _Final) -> None:
        message.stop()
        view = self.query_one(TerminalView)
        if not view.seen:  # (its stream may have come back meanwhile)
            view.show_lines(message.lines)

    def action_open(self) -> None:
        self.post_message(self.Chosen(self.session_id))

    def action_kill(self) -> None:
        self.post_message(self.KillAsked(self.session_id))

    def on_click(self, event: events.Click) -> None:
        self.post_message(self.Chosen(self.session_id))


class TileGrid(Grid):
    """The tiles, in as many columns as fit at `MIN_TILE_WIDTH` (a square-ish grid when
    they all fit), filling the height; rows `MIN_TILE_HEIGHT` high, scrolled, when they
    cannot all fit."""

    def on_resize(self, event: events.Resize) -> None:
        self.lay_out(event.size.width, event.size.height)

    def lay_out(self, width: int, height: int) -> None:
        count = max(len(self.query_children(MiniPane)), 1)
        fit_columns = max(width // MIN_TILE_WIDTH, 1)
        fit_rows = max(height // MIN_TILE_HEIGHT, 1)
        wanted = max(math.ceil(math.sqrt(count)), math.ceil(count / fit_rows))
        columns = min(count, fit_columns, wanted)
        rows = math.ceil(count / columns)
        self.styles.grid_size_columns = columns
        self.styles.grid_size_rows = rows
        self.styles.grid_rows = None if rows * MIN_TILE_HEIGHT <= height else str(MIN_TILE_HEIGHT)

    @property
    def columns(self) -> int:
        return self.styles.grid_size_columns or 1


class GridScreen(Screen[str | None]):
    """Dismissed with the chosen session id, or None.

    Of the app's own actions only `APP_ACTIONS` work here: the others act on the list's
    selection, or on bars, hidden under the grid (the tiles have their own keys)."""

    APP_ACTIONS: ClassVar[frozenset[str]] = frozenset({"help", "quit"})

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,g", "dismiss(None)", "Back"),
        Binding("right,l", "app.focus_next", "Next", show=False),
        Binding("left,h", "app.focus_previous", "Previous", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("up", "move(-1)", "Up", show=False),
    ]

    def __init__(
        self, client: Subscribes, sessions: list[tuple[str, str]], selected: str | None = None
    ) -> None:
        super().__init__()
        self.client = client
        self.sessions = sessions
        self.selected = selected  # its tile has the focus first (the list's selection)
        self._closed = False

    def compose(self) -> ComposeResult:
        with TileGrid(id="grid"):
            for session_id, label in self.sessions:
                yield MiniPane(self.client, session_id, label)
            if not self.sessions:
                yield Label(EMPTY, id="grid-empty")
        yield AdaptiveFooter()

    def add_tiles(self, sessions: list[tuple[str, str]]) -> None:
        """A tile for each of `sessions` (running ones, from a poll) that has none yet."""
        grids = self.query(TileGrid)
        if not grids:
            return  # not composed yet (it adds every session it was made with), or closing
        grid = grids.first()
        shown = {pane.session_id for pane in self.query(MiniPane)}
        new = [MiniPane(self.client, sid, label) for sid, label in sessions if sid not in shown]
        if not new:
            return
        self.query("#grid-empty").remove()
        grid.mount_all(new)
        self.call_after_refresh(lambda: grid.lay_out(grid.size.width, grid.size.height))
        if self.focused is None:  # (the first tile of an empty grid: its keys work at once)
            self.call_after_refresh(self.set_focus, new[0])

    def on_mount(self) -> None:
        # One clock for every pane: what their streams brought is applied together, one
        # repaint a frame, rather than each pane on its own timer (a repaint each).
        self.set_interval(GRID_FRAME, self._frame)
        self.call_after_refresh(self._freeze)
        chosen = [p for p in self.query(MiniPane) if p.session_id == self.selected]
        if chosen:  # (the first tile got it: the session selected in the list was elsewhere)
            self.call_after_refresh(self.set_focus, chosen[0])

    def _freeze(self) -> None:
        if not self._closed:  # (closed before its first frame: nothing to keep)
            heap.freeze_long_lived()  # its panes live as long as it

    def on_unmount(self) -> None:
        self._closed = True
        heap.thaw()

    def _frame(self) -> None:
        with self.app.batch_update():
            for view in self.query(TerminalView):
                view.flush()

    def action_move(self, rows: int) -> None:
        """Focus the tile `rows` rows below (above, when negative) the focused one."""
        tiles = list(self.query(MiniPane))
        if not tiles:
            return
        here = tiles.index(self.focused) if self.focused in tiles else 0
        step = rows * self.query_one(TileGrid).columns
        self.set_focus(tiles[max(0, min(len(tiles) - 1, here + step))])

    def on_mini_pane_chosen(self, message: MiniPane.Chosen) -> None:
        self.dismiss(message.session_id)

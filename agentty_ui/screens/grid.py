"""Every running session at once, each a live mini terminal; choose one to open it.

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
from textual.widgets import Footer, Label

from agentty_core.errors import AgenttyError
from agentty_core.screen_text import printable

from .. import heap
from ..fleet import Subscribes
from ..widgets.terminal_view import TerminalView

GRID_FRAME = 0.15  # seconds: ~7 frames a second is plenty to watch many sessions at once


class MiniPane(Vertical, can_focus=True):
    """One session in the grid: a title and its live screen (no cursor, no scrollbars)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Open")]

    class Chosen(Message):
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
        """A session that ended before its tile could follow it (the list it was chosen
        from is a poll old): its final screen, as the open session's pane shows it."""
        view = self.query_one(TerminalView)
        if message.session_id == self.session_id and not view.seen:
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

    def on_click(self, event: events.Click) -> None:
        self.post_message(self.Chosen(self.session_id))


class GridScreen(Screen[str | None]):
    """Dismissed with the chosen session id, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,g", "dismiss(None)", "Back"),
        Binding("right,l", "app.focus_next", "Next", show=False),
        Binding("left,h", "app.focus_previous", "Previous", show=False),
    ]

    def __init__(self, client: Subscribes, sessions: list[tuple[str, str]]) -> None:
        super().__init__()
        self.client = client
        self.sessions = sessions
        self._closed = False

    def compose(self) -> ComposeResult:
        with Grid(id="grid"):
            for session_id, label in self.sessions:
                yield MiniPane(self.client, session_id, label)
            if not self.sessions:
                yield Label("No running sessions. Press n to start one.", id="grid-empty")
        yield Footer()

    def on_mount(self) -> None:
        # One clock for every pane: what their streams brought is applied together, one
        # repaint a frame, rather than each pane on its own timer (a repaint each).
        self.set_interval(GRID_FRAME, self._frame)
        grid = self.query_one(Grid)
        count = max(len(self.sessions), 1)
        columns = min(3, math.ceil(math.sqrt(count)))
        grid.styles.grid_size_columns = columns
        grid.styles.grid_size_rows = math.ceil(count / columns)
        self.call_after_refresh(self._freeze)

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

    def on_mini_pane_chosen(self, message: MiniPane.Chosen) -> None:
        self.dismiss(message.session_id)

"""The table of sessions: updated in place from each poll, so the cursor never jumps.

With hosts shown, a Host column comes first and rows are grouped by home (this machine,
then each host in hosts.toml order); `filter` hides the rows that do not match it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from agentty_core.proc.usage import Usage, format_bytes
from agentty_core.state.records import Record

from ..fleet import host_label, split_key
from ..model import (
    command_of,
    end_text,
    format_age,
    name_of,
    program_of,
    status_of,
    timestamp,
)

COLUMNS = (
    ("status", "Status"),
    ("name", "Name"),
    ("id", "ID"),
    ("program", "Program"),
    ("age", "Age"),
    ("active", "Active"),
    ("cpu", "CPU%"),
    ("mem", "Mem"),
    ("exit", "Exit"),
)
HOST_COLUMN = ("host", "Host")
# The widest a name or a program is shown (then cut, with an ellipsis): a 64-character name
# widened its column past a 120-column screen, the columns after it gone for every row.
TEXT_WIDTH = 24
UNREACHABLE = "unreachable"  # the status shown for the sessions of a host that is down
KILLING = "killing…"  # a running session this dashboard is ending (its ladder takes seconds)
STATUS_STYLE = {
    "running": "bold green",
    KILLING: "bold magenta",
    "exited": "dim",
    "lost": "bold red",
    UNREACHABLE: "bold yellow",
}


def clipped(text: str, style: str = "") -> Text:
    """A cell of session text, as text (a plain str cell would be markup), cut to
    TEXT_WIDTH."""
    cell = Text(text, style=style, no_wrap=True)
    cell.truncate(TEXT_WIDTH, overflow="ellipsis")
    return cell


def matches(words: list[str], haystack: str) -> bool:
    """Every word of the filter is in the row's text (case-insensitive)."""
    return all(word in haystack for word in words)


class SessionList(DataTable[str | Text]):
    """Sessions, one row each, keyed by the dashboard's session key (`id` or `id@host`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Attach"),  # (the table's, named: the app attaches)
        Binding("escape", "clear_filter", "Clear filter", show=False),  # (in the help; shown,
        # it pushed help and quit off the footer)
        Binding("home", "scroll_top", "First", show=False),  # (the table's: sideways)
        Binding("end", "scroll_bottom", "Last", show=False),
    ]

    filter: reactive[str] = reactive("", init=False)
    """Words a row must all contain (host, name, id, program or status) to be shown."""

    class FilterCleared(Message):
        """`esc` on the list: the filter is to go (the bar holds it: the app clears it)."""

    class Highlighted(Message):
        """The cursor moved to a session (None: no row is shown, nothing is selected)."""

        def __init__(self, session_id: str | None) -> None:
            super().__init__()
            self.session_id = session_id

    class Opened(Message):
        """The person chose a session (enter or a click on the selected row)."""

        def __init__(self, session_id: str) -> None:
            super().__init__()
            self.session_id = session_id

    def __init__(self, *, hosts: bool = False, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.columns_shown = (HOST_COLUMN, *COLUMNS) if hosts else COLUMNS
        self._cells: dict[str, tuple[str | Text, ...]] = {}  # the rows shown, in table order
        self._hidden: str | None = None  # the selection a filter left no row for
        self._all: dict[str, tuple[str | Text, ...]] = {}  # every row, filtered or not
        self._order: dict[str, tuple[int, int]] = {}  # group rank, place in its home's list
        self._text: dict[str, str] = {}  # what the filter searches, per row

    def on_mount(self) -> None:
        for key, label in self.columns_shown:
            self.add_column(label, key=key)

    @property
    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def keys_in_view(self) -> list[str]:
        """The sessions whose rows are on screen now (every row is one line high)."""
        top = self.scroll_offset.y
        height = max(self.scrollable_content_region.height - self.header_height, 0)
        rows = self.ordered_rows[top : top + height]
        return [str(row.key.value) for row in rows if row.key.value is not None]

    def select(self, session_id: str) -> None:
        """Move the cursor to a session's row (if it is listed)."""
        if session_id in self._cells:
            self.move_cursor(row=self.get_row_index(session_id))

    def cells(
        self,
        record: Record,
        usage: Usage | None,
        now: float,
        down: bool = False,
        killing: bool = False,
    ) -> tuple[str | Text, ...]:
        status = UNREACHABLE if down else status_of(record)
        if killing and status == "running":
            status = KILLING
        started = timestamp(record.get("startedAt"))
        active = timestamp(record.get("lastActiveAt"))
        # An ended session's age is how long it ran (it kept counting, as if it still did);
        # Active then says how long ago it was last busy, its end.
        ended = timestamp(record.get("endedAt")) if status != "running" else None
        sid, host = split_key(record["id"])
        row: tuple[str | Text, ...] = (
            Text(status, style=STATUS_STYLE.get(status, "")),
            clipped(name_of(record)),
            sid,
            clipped(program_of(record)),
            format_age((ended or now) - started if started else None),
            format_age(now - active if active else None),
            f"{usage.cpu_percent:.0f}" if usage else "",
            format_bytes(usage.rss_bytes) if usage else "",
            end_text(record),
        )
        if len(self.columns_shown) > len(COLUMNS):
            label = host_label(host)
            row = (clipped(label, "dim" if host is None else "bold"), *row)
        return row

    def update_sessions(
        self,
        records: list[Record],
        usage: dict[str, Usage],
        now: float,
        *,
        ranks: Mapping[str | None, int] | None = None,
        down: frozenset[str | None] = frozenset(),
        killing: frozenset[str] = frozenset(),
    ) -> None:
        """Make the rows match `records` (grouped by `ranks` of their homes; the sessions of
        the homes in `down` shown as unreachable, those in `killing` as being killed), then
        the filter."""
        self._all.clear()
        self._order.clear()
        self._text.clear()
        places: dict[str | None, int] = {}
        for record in records:
            key = record["id"]
            host = split_key(key)[1]
            self._all[key] = self.cells(record, usage.get(key), now, host in down, key in killing)
            place = places[host] = places.get(host, -1) + 1
            self._order[key] = ((ranks or {}).get(host, 0), place)
            # Every column as shown, the name and program in full (cut short in theirs), and
            # the command line: sessions of one program differ by their arguments. (Not the
            # directory: a host's name found in every path under /tmp/ciclone, say.)
            whole = (*self._all[key], name_of(record), program_of(record), command_of(record))
            self._text[key] = " ".join(str(c) for c in whole).lower()
        self._show()

    def watch_filter(self) -> None:
        self._show()
        self.refresh_bindings()  # (esc is offered while a filter is set)

    def on_resize(self) -> None:
        """The selected row stays in view as the list gets shorter (a smaller window, the
        input bar opening): it scrolled out of sight, and nothing showed whose the pane was."""
        self.call_after_refresh(self._cursor_in_view)

    def _cursor_in_view(self) -> None:
        if self.row_count:  # (the row the cursor is on by now: the same row, scrolled to)
            self.move_cursor(row=self.cursor_row, scroll=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return bool(self.filter)
        return super().check_action(action, parameters)

    def action_clear_filter(self) -> None:
        self.post_message(self.FilterCleared())

    def _show(self) -> None:
        """Show the rows that pass the filter; the app hears of it when the cursor lands on
        another session (its own was filtered out or removed), or on none (no row is left:
        a hidden session must not stay the one the keys act on). The selection a filter
        left no row for is selected again when its row is back (`esc` clears the filter)."""
        before = self.selected_id
        self._update_rows()
        after = self.selected_id
        if after is None:
            self._hidden = self._hidden if before is None else before
        elif self._hidden is not None:
            if self._hidden in self._cells:
                self.select(self._hidden)
                after = self.selected_id
            self._hidden = None
        if after != before:
            self.post_message(self.Highlighted(after))

    def _update_rows(self) -> None:
        """Add, change and remove rows; rebuilt only when the order must change."""
        words = self.filter.lower().split()
        wanted = sorted(
            (k for k in self._all if matches(words, self._text.get(k, ""))),
            key=self._order.__getitem__,
        )
        for gone in set(self._cells) - set(wanted):
            self.remove_row(gone)
            del self._cells[gone]
        kept = [k for k in wanted if k in self._cells]
        if list(self._cells) != kept or wanted[: len(kept)] != kept:
            self._rebuild(wanted)
            return
        for key in wanted:
            cells = self._all[key]
            old = self._cells.get(key)
            if old is None:
                self.add_row(*cells, key=key)
            else:
                for (column, _), new, before in zip(self.columns_shown, cells, old, strict=True):
                    if new != before:
                        self.update_cell(key, column, new, update_width=self._widen(column, new))
            self._cells[key] = cells

    def _widen(self, column: str, cell: str | Text) -> bool:
        """Make room now for a cell wider than its column; True if it was. The table itself
        widens a column only on its next idle, and lines drawn before that stay cached with
        the cell cut off (textual#3533). A narrower cell leaves the column as it is: the
        table would measure every cell of the column again to shrink it, on every poll that
        changes one (CPU%, Active), with the list not even on screen under the grid."""
        shown = self.columns[ColumnKey(column)]
        width = cell_len(str(cell))
        if width <= shown.content_width:
            return False
        shown.content_width = width
        return True

    def _rebuild(self, wanted: list[str]) -> None:
        """Every row again in the wanted order, the cursor kept on its session."""
        before = self.selected_id
        self.clear()
        self._cells = {}
        for key in wanted:
            self.add_row(*self._all[key], key=key)
            self._cells[key] = self._all[key]
        if before in self._cells:
            self.select(before)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Said on only for the row the cursor is on now: the table posts it for a row that
        a filter removed meanwhile too, after `_show` said no row is left (the hidden
        session became the selection again, and `k` and `i` acted on it)."""
        event.stop()
        key = event.row_key.value
        if key is not None and key in self._cells and key == self.selected_id:
            self.post_message(self.Highlighted(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Opened(event.row_key.value))

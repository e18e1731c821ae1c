"""The table of sessions: updated in place from each poll, so the cursor never jumps."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from agentty_core.proc.usage import Usage, format_bytes
from agentty_core.state.records import Record

from ..model import end_text, format_age, program_of, status_of, timestamp

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
STATUS_STYLE = {"running": "bold green", "exited": "dim", "lost": "bold red"}


class SessionList(DataTable[str | Text]):
    """Sessions, one row each, keyed by session id."""

    class Highlighted(Message):
        """The cursor moved to a session."""

        def __init__(self, session_id: str) -> None:
            super().__init__()
            self.session_id = session_id

    class Opened(Message):
        """The person chose a session (enter or a click on the selected row)."""

        def __init__(self, session_id: str) -> None:
            super().__init__()
            self.session_id = session_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._cells: dict[str, tuple[str | Text, ...]] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    @property
    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def select(self, session_id: str) -> None:
        """Move the cursor to a session's row (if it is listed)."""
        if session_id in self._cells:
            self.move_cursor(row=self.get_row_index(session_id))

    def cells(self, record: Record, usage: Usage | None, now: float) -> tuple[str | Text, ...]:
        status = status_of(record)
        started = timestamp(record.get("startedAt"))
        active = timestamp(record.get("lastActiveAt"))
        return (
            Text(status, style=STATUS_STYLE.get(status, "")),
            Text(str(record.get("name") or "")),  # Text: a plain str cell would be markup
            record["id"],
            Text(program_of(record)),
            format_age(now - started if started else None),
            format_age(now - active if active else None),
            f"{usage.cpu_percent:.0f}" if usage else "",
            format_bytes(usage.rss_bytes) if usage else "",
            end_text(record),
        )

    def update_sessions(self, records: list[Record], usage: dict[str, Usage], now: float) -> None:
        """Add, change and remove rows to match `records`; only changed cells are touched."""
        wanted = {r["id"]: r for r in records}
        for gone in set(self._cells) - set(wanted):
            self.remove_row(gone)
            del self._cells[gone]
        for sid, record in wanted.items():
            cells = self.cells(record, usage.get(sid), now)
            old = self._cells.get(sid)
            if old is None:
                self.add_row(*cells, key=sid)
            else:
                for (column, _), new, before in zip(COLUMNS, cells, old, strict=True):
                    if new != before:
                        self.update_cell(sid, column, new, update_width=True)
            self._cells[sid] = cells

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Highlighted(event.row_key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Opened(event.row_key.value))

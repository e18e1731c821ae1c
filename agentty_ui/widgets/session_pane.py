"""The selected session's live view: its screen, scrollback, worker log and record, in tabs.

The app sets `record` (on every poll) and `covered` / `attached`; the pane decides what to
(re)load. Its thread workers hand results back by message, tagged with the session they
belong to, and a result for a session no longer shown is dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static, TabbedContent, TabPane

from agentty_core.errors import AgenttyError
from agentty_core.screen_text import printable
from agentty_core.state.records import Record

from ..fleet import Fleet, host_label, split_key
from ..model import status_of
from .log_view import LogView
from .terminal_view import TerminalView


def describe(record: Record | None) -> str:
    """The Info tab: every field of the record worth reading, one a line, escaped: a cwd,
    a name, an error quote what a program, a person or a host chose (a title set, a line
    broken)."""
    if record is None:
        return "No session selected."
    sid, host = split_key(record["id"])
    fields = [
        ("id", sid),
        ("host", host_label(host)),
        ("name", record.get("name")),
        ("status", record.get("status")),
        ("argv", json.dumps(record.get("argv"))),
        ("cwd", record.get("cwd")),
        ("pid", record.get("pid")),
        ("worker pid", record.get("workerPid")),
        ("started", record.get("startedAt")),
        ("last active", record.get("lastActiveAt")),
        ("ended", record.get("endedAt")),
        ("size", f"{record.get('cols')}x{record.get('rows')}"),
        ("exit code", record.get("exitCode")),
        ("signal", record.get("signal")),
        ("error", record.get("error")),
        ("socket", record.get("socket")),
        ("log", record.get("log")),
    ]
    return "\n".join(f"{k:>12}  {printable(str(v))}" for k, v in fields if v is not None)


class SessionPane(Vertical):
    """One session in tabs; streams its screen only while it is running and not covered."""

    record: reactive[Record | None] = reactive(None, always_update=True, init=False)
    """The selected session's latest record (None: nothing selected)."""

    covered: reactive[bool] = reactive(False, init=False)
    """A screen on top hides the pane: it stops streaming (every update underneath would
    repaint the whole screen on top)."""

    attached: reactive[bool] = reactive(False, init=False)
    """Keys go to the session: the Screen tab is shown and takes the focus."""

    unreachable: reactive[str | None] = reactive(None, init=False)
    """Why the session's host cannot be reached (None: it can): nothing is streamed then."""

    class _Lines(Message):
        """Plain lines read in a thread for one of the pane's views."""

        def __init__(self, session_id: str, target: str, lines: list[str]) -> None:
            super().__init__()
            self.session_id, self.target, self.lines = session_id, target, lines

    def __init__(self, fleet: Fleet, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.fleet = fleet
        self._scrollback_of: str | None = None  # whose lines the Scrollback tab shows

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs"):
            with TabPane("Screen", id="tab-screen"):
                yield TerminalView(id="screen")
            with TabPane("Scrollback", id="tab-scrollback"):
                yield TerminalView(show_cursor=False, reveal_cursor=False, id="scrollback")
            with TabPane("Worker log", id="tab-log"):
                yield LogView(id="log")
            with TabPane("Info", id="tab-info"):
                yield Static(id="info", markup=False)

    @property
    def view(self) -> TerminalView:
        """The live screen."""
        return self.query_one("#screen", TerminalView)

    @property
    def session_id(self) -> str | None:
        return str(self.record["id"]) if self.record is not None else None

    # ------------------------------------------------------------------ what is shown

    def on_mount(self) -> None:
        self.reload()

    def watch_record(self, old: Record | None, new: Record | None) -> None:
        self.query_one("#info", Static).update(describe(new))
        moved = (old is None) != (new is None) or (
            old is not None and new is not None and old["id"] != new["id"]
        )
        if moved or (old is not None and new is not None and status_of(old) != status_of(new)):
            self.reload()
        elif (
            new is not None
            and status_of(new) == "running"
            and not self.covered
            and self.unreachable is None
            and self.view.live != new["id"]
        ):
            self.reload()  # its stream failed or ended early: follow it again

    def watch_unreachable(self, old: str | None, new: str | None) -> None:
        if (old is None) != (new is None):
            self.reload()

    def watch_covered(self, covered: bool) -> None:
        if covered:
            self.view.stop()
        else:
            self.reload()

    def reload(self) -> None:
        """Point every tab at the session, starting its stream or reading its last screen."""
        view, record = self.view, self.record
        if self.covered:
            view.stop()
            return
        if record is None:
            view.session_id = None
            view.show_lines([])
            self._scrollback_of = None  # (nor the previous session's scrollback)
            self.query_one("#scrollback", TerminalView).show_lines([])
            return
        session_id = str(record["id"])
        log = record.get("log")
        if split_key(session_id)[1] is None:
            self.query_one(LogView).follow(Path(log) if isinstance(log, str) and log else None)
        else:
            fleet = self.fleet
            self.query_one(LogView).follow_remote(session_id, lambda: fleet.log_text(session_id))
        if self.unreachable is not None:
            view.stop()
            view.session_id = session_id
            view.show_lines([f"(the host is down: {printable(self.unreachable)})"])
        elif status_of(record) == "running":
            if view.live != session_id:
                view.follow(self.fleet, session_id)
        else:
            view.stop()
            view.session_id = session_id
            self._final_screen(session_id)
        if self.query_one(TabbedContent).active == "tab-scrollback":
            self._read_scrollback()

    def show_screen(self) -> None:
        """Show the Screen tab (the live view is measured only while it is shown)."""
        self.query_one(TabbedContent).active = "tab-screen"

    def show_scrollback(self) -> None:
        """Show the Scrollback tab, read afresh."""
        self.query_one(TabbedContent).active = "tab-scrollback"
        self._read_scrollback()

    def _read_scrollback(self) -> None:
        """Read the session's scrollback; meanwhile another session's is not left on show
        (a stopped worker answers late or never: the one selected before showed under
        it for seconds)."""
        session_id = self.session_id
        if session_id is None:
            return
        if self._scrollback_of != session_id:
            self._scrollback_of = session_id
            self.query_one("#scrollback", TerminalView).show_lines(["(reading the scrollback)"])
        self._scrollback(session_id)

    def watch_attached(self, attached: bool) -> None:
        view = self.view
        view.attached = attached
        if attached:
            self.query_one(TabbedContent).active = "tab-screen"
            view.focus()

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-scrollback":
            self._read_scrollback()
        elif event.pane.id == "tab-log":
            self.query_one(LogView).poll()

    # ------------------------------------------------------------------ threads

    @work(thread=True, exclusive=True, group="final")
    def _final_screen(self, session_id: str) -> None:
        try:
            screen = self.fleet.get(session_id)
        except AgenttyError as exc:
            self.post_message(self._Lines(session_id, "#screen", [f"({printable(str(exc))})"]))
            return
        lines = screen.get("lines")
        found = [str(line) for line in lines] if isinstance(lines, list) else []
        self.post_message(self._Lines(session_id, "#screen", found))

    @work(thread=True, exclusive=True, group="scrollback")
    def _scrollback(self, session_id: str) -> None:
        try:
            screen = self.fleet.get(session_id, scrollback=True)
        except AgenttyError as exc:
            lines = [f"({printable(str(exc))})"]
        else:
            back, now = screen.get("scrollback"), screen.get("lines")
            lines = [
                *(str(line) for line in (back if isinstance(back, list) else [])),
                *(str(line) for line in (now if isinstance(now, list) else [])),
            ]
        self.post_message(self._Lines(session_id, "#scrollback", lines))

    def on_session_pane__lines(self, message: _Lines) -> None:
        message.stop()
        if message.session_id != self.session_id:
            return  # read for a session no longer shown
        view = self.query_one(message.target, TerminalView)
        if message.target == "#screen" and (
            self.covered or view.live is not None or self.unreachable is not None
        ):
            return  # the session runs again (or is covered): its last screen is stale
        view.show_lines(message.lines)
        if message.target == "#scrollback":
            view.scroll_end(animate=False)  # the newest lines, as a terminal's scrollback opens

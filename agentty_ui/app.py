"""The dashboard app: a session list over a live terminal, driven by `Client`.

Every client call runs in a thread worker (a dead or slow worker can only delay its own
answer, never the UI), and every `AgenttyError` becomes a notification.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from agentty_core.client import Client
from agentty_core.errors import AgenttyError
from agentty_core.proc.orphans import Orphan
from agentty_core.proc.usage import UsageSampler
from agentty_core.state.records import Record

from .messages import SessionsPolled
from .model import Snapshot, status_of
from .screens.confirm import ConfirmScreen
from .screens.grid import GridScreen
from .screens.help import HelpScreen
from .screens.new_session import NewSession, NewSessionScreen
from .widgets.input_bar import InputBar
from .widgets.log_view import LogView
from .widgets.orphan_banner import OrphanBanner
from .widgets.session_list import SessionList
from .widgets.terminal_view import TerminalView

Clock = Callable[[], float]
ORPHAN_SWEEP_EVERY = 5  # polls between orphan sweeps while no session is lost


class AgenttyApp(App[None]):
    """Sessions of one agentty home."""

    CSS_PATH = "agentty.tcss"
    TITLE = "agentty"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "attach", "Attach", show=False),
        Binding("i", "input", "Send input"),
        Binding("k", "kill", "Kill"),
        Binding("n", "new", "New"),
        Binding("g", "grid", "Grid"),
        Binding("r", "resize", "Resize to pane"),
        Binding("s", "scrollback", "Scrollback", show=False),
        Binding("p", "prune", "Prune"),
        Binding("e", "end_orphans", "End orphans", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]
    KEYS_HELP: ClassVar[list[tuple[str, str]]] = [
        ("↑/↓, click", "Select a session"),
        ("enter", "Attach: keys go to the session (ctrl+] detaches)"),
        ("i", "Send a line (enter: with Enter, alt+enter: without, ↑/↓: history)"),
        ("k", "Kill the selected session"),
        ("n", "Start a new session"),
        ("g", "Grid of every running session"),
        ("r", "Resize the session to the pane"),
        ("s", "Show and refresh the scrollback"),
        ("p", "Prune ended sessions"),
        ("e", "End orphaned processes"),
        ("ctrl+p", "Command palette"),
        ("?", "This help"),
        ("q", "Quit"),
    ]

    selected: reactive[str | None] = reactive(None)
    attached: reactive[bool] = reactive(False)

    def __init__(
        self,
        client: Client | None = None,
        *,
        clock: Clock = time.time,
        sampler: UsageSampler | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        super().__init__()
        self.client = client or Client(timeout=3.0)
        self.clock = clock
        self.sampler = sampler or UsageSampler()
        self.poll_interval = poll_interval
        self.records: dict[str, Record] = {}
        self.orphans: list[Orphan] = []
        self._polls = 0
        self._outbox: queue.Queue[tuple[str, str, str] | None] = queue.Queue()
        # The grid covers the dashboard: its live view then stops streaming, since every
        # update of a screen underneath repaints the whole screen on top.
        self._covered = False

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(icon="▣")
        yield OrphanBanner(id="orphans")
        yield SessionList(id="sessions")
        with TabbedContent(id="tabs"):
            with TabPane("Screen", id="tab-screen"):
                yield TerminalView(id="screen")
            with TabPane("Scrollback", id="tab-scrollback"):
                yield TerminalView(show_cursor=False, id="scrollback")
            with TabPane("Worker log", id="tab-log"):
                yield LogView(id="log")
            with TabPane("Info", id="tab-info"):
                yield Static(id="info", markup=False)
        yield InputBar(id="input-bar")
        yield Footer()

    def on_mount(self) -> None:
        self.main.query_one(SessionList).focus()
        self.set_interval(self.poll_interval, self.poll)
        self.poll()
        self._send_loop()

    def on_unmount(self) -> None:
        self._outbox.put(None)

    @property
    def main(self) -> Screen[object]:
        """The dashboard screen (queries on the app would search a modal on top of it)."""
        return self.screen_stack[0]

    # ------------------------------------------------------------------ polling

    @work(thread=True, exclusive=True, group="poll")
    def poll(self) -> None:
        """Records (with live activity), CPU/memory, and orphans when they may exist."""
        worker = get_current_worker()
        try:
            records = self.client.sessions(live_info=True)
        except AgenttyError as exc:
            self.notify(str(exc), title="Listing failed", severity="error", markup=False)
            return
        pids = {
            r["id"]: r["pid"]
            for r in records
            if status_of(r) == "running" and isinstance(r.get("pid"), int)
        }
        usage = self.sampler.sample_all(pids)  # type: ignore[arg-type]
        orphans: list[Orphan] | None = None
        self._polls += 1
        lost = any(r.get("status") == "lost" for r in records)
        if lost or self.orphans or self._polls % ORPHAN_SWEEP_EVERY == 1:
            try:
                orphans = self.client.orphans()
            except AgenttyError:
                orphans = None
        if not worker.is_cancelled:
            self.post_message(SessionsPolled(Snapshot(records, usage, orphans)))

    def on_sessions_polled(self, message: SessionsPolled) -> None:
        if not self.screen_stack:
            return  # a poll that finished while the app was shutting down
        snapshot = message.snapshot
        before = self.records
        self.records = {r["id"]: r for r in snapshot.records}
        table = self.main.query_one(SessionList)
        table.update_sessions(snapshot.records, snapshot.usage, self.clock())
        if snapshot.orphans is not None:
            self.orphans = snapshot.orphans
            self.main.query_one(OrphanBanner).orphans = tuple(snapshot.orphans)
        lost = tuple(sid for sid, r in self.records.items() if r.get("status") == "lost")
        self.main.query_one(OrphanBanner).lost = lost
        if self.selected is None or self.selected not in self.records:
            self.selected = table.selected_id
        elif self.selected not in before or status_of(before[self.selected]) != status_of(
            self.records[self.selected]
        ):
            table.select(self.selected)
            self._show_selected()
        elif (
            status_of(self.records[self.selected]) == "running"
            and not self._covered
            and self.main.query_one("#screen", TerminalView).live != self.selected
        ):
            self._show_selected()  # its stream failed or ended early: follow it again
        else:
            self._show_info()

    # ------------------------------------------------------------------ selection

    @property
    def record(self) -> Record | None:
        return self.records.get(self.selected) if self.selected else None

    def on_session_list_highlighted(self, message: SessionList.Highlighted) -> None:
        self.selected = message.session_id

    def on_session_list_opened(self, message: SessionList.Opened) -> None:
        self.selected = message.session_id
        self.action_attach()

    def watch_selected(self) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        """Point every tab at the selected session."""
        screen = self.main.query_one("#screen", TerminalView)
        record = self.record
        self._show_info()
        if self._covered:
            screen.stop()
            return
        if record is None:
            screen.stop()
            screen.show_lines([])
            return
        session_id = record["id"]
        log = record.get("log")
        self.main.query_one(LogView).follow(Path(log) if isinstance(log, str) and log else None)
        if status_of(record) == "running":
            if screen.live != session_id:
                screen.follow(self.client, session_id)
        else:
            screen.session_id = session_id
            self._final_screen(session_id)
        if self.main.query_one(TabbedContent).active == "tab-scrollback":
            self.action_scrollback()

    def _show_info(self) -> None:
        record = self.record
        info = self.main.query_one("#info", Static)
        if record is None:
            info.update("No session selected.")
            return
        fields = [
            ("id", record.get("id")),
            ("name", record.get("name")),
            ("status", record.get("status")),
            ("argv", json.dumps(record.get("argv"))),
            ("cwd", record.get("cwd")),
            ("pid", record.get("pid")),
            ("worker pid", record.get("workerPid")),
            ("started", record.get("startedAt")),
            ("last active", record.get("lastActiveAt")),
            ("size", f"{record.get('cols')}x{record.get('rows')}"),
            ("exit code", record.get("exitCode")),
            ("signal", record.get("signal")),
            ("error", record.get("error")),
            ("socket", record.get("socket")),
            ("log", record.get("log")),
        ]
        info.update("\n".join(f"{k:>12}  {v}" for k, v in fields if v is not None))

    @work(thread=True, exclusive=True, group="final")
    def _final_screen(self, session_id: str) -> None:
        try:
            screen = self.client.get(session_id)
        except AgenttyError as exc:
            self.call_from_thread(self._show_lines, "#screen", session_id, [f"({exc})"])
            return
        lines = screen.get("lines")
        self.call_from_thread(
            self._show_lines, "#screen", session_id, list(lines) if isinstance(lines, list) else []
        )

    def _show_lines(self, selector: str, session_id: str, lines: list[str]) -> None:
        if session_id == self.selected and self.screen_stack:
            self.main.query_one(selector, TerminalView).show_lines(lines)

    def on_terminal_view_ended(self, message: TerminalView.Ended) -> None:
        if message.session_id == self.selected and self.attached:
            self.attached = False
        self.poll()

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-scrollback":
            self.action_scrollback()
        elif event.pane.id == "tab-log":
            self.main.query_one(LogView).poll()

    # ------------------------------------------------------------------ attach and input

    def watch_attached(self, attached: bool) -> None:
        screen = self.main.query_one("#screen", TerminalView)
        screen.attached = attached
        self.set_class(attached, "-attached")
        if attached:
            self.main.query_one(TabbedContent).active = "tab-screen"
            screen.focus()
        else:
            self.main.query_one(SessionList).focus()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While attached, the session gets every key: no dashboard action may claim one.
        return not self.attached

    def action_attach(self) -> None:
        record = self.record
        if record is None:
            return
        if status_of(record) != "running":
            self.notify(f"session {record['id']} is {record.get('status')}", severity="warning")
            return
        self.attached = True

    def on_terminal_view_detached(self, message: TerminalView.Detached) -> None:
        self.attached = False

    def on_terminal_view_input(self, message: TerminalView.Input) -> None:
        if message.view.id == "screen" and message.view.session_id:
            self._outbox.put((message.view.session_id, message.kind, message.data))

    @work(thread=True, group="sender")
    def _send_loop(self) -> None:
        """Sends input in order (one thread, one queue), so keystrokes never overtake."""
        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                item = self._outbox.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                return
            session_id, kind, data = item
            try:
                if kind == "key":
                    self.client.key(session_id, [data])
                elif kind == "paste":
                    self.client.paste(session_id, data)
                else:
                    self.client.text(session_id, data, enter=kind == "line")
            except AgenttyError as exc:
                self.notify(str(exc), title="Input not sent", severity="error", markup=False)

    def action_input(self) -> None:
        if self.record is None:
            return
        bar = self.main.query_one(InputBar)
        bar.add_class("-visible")
        bar.focus_input()

    def on_input_bar_send(self, message: InputBar.Send) -> None:
        if self.selected:
            self._outbox.put((self.selected, "line" if message.enter else "text", message.text))

    def on_input_bar_closed(self, message: InputBar.Closed) -> None:
        self.main.query_one(InputBar).remove_class("-visible")
        self.main.query_one(SessionList).focus()

    # ------------------------------------------------------------------ actions

    def _call(self, title: str, fn: Callable[[], object], done: str | None = None) -> None:
        """Run a client call in a thread; notify its result or its error."""
        self._run_call(title, fn, done)

    @work(thread=True, group="calls")
    def _run_call(self, title: str, fn: Callable[[], object], done: str | None) -> None:
        try:
            result = fn()
        except AgenttyError as exc:
            self.notify(str(exc), title=title, severity="error", markup=False)
            return
        except OSError as exc:
            self.notify(str(exc), title=title, severity="error", markup=False)
            return
        message = done.format(result=result) if done else None
        if isinstance(result, dict) and done is None:
            message = describe_kill(result)
        if message:
            self.notify(message, title=title, markup=False)
        self.poll()

    def action_kill(self) -> None:
        record = self.record
        if record is None or status_of(record) == "exited":
            self.notify("select a running session to kill", severity="warning")
            return
        session_id = record["id"]
        label = f"{session_id} ({record.get('name') or record.get('command')})"

        def answered(yes: bool | None) -> None:
            if yes:
                self._call("Kill", lambda: self.client.kill(session_id))

        self.push_screen(
            ConfirmScreen("Kill session", f"End {label} and all its processes?", "Kill"),
            answered,
        )

    def action_new(self) -> None:
        def answered(new: NewSession | None) -> None:
            if new is not None:
                self._start(new)

        self.push_screen(NewSessionScreen(), answered)

    @work(thread=True, group="calls")
    def _start(self, new: NewSession) -> None:
        try:
            record = self.client.start(new.argv, name=new.name, cwd=new.cwd)
        except AgenttyError as exc:
            self.notify(str(exc), title="Start failed", severity="error", markup=False)
            return
        self.notify(f"started {record['id']}: {record.get('command')}", title="New session")
        self.call_from_thread(self._select_new, record["id"])
        self.poll()

    def _select_new(self, session_id: str) -> None:
        self.selected = session_id

    def action_grid(self) -> None:
        running = [
            (sid, f"{r.get('name') or sid} · {r.get('command')}")
            for sid, r in self.records.items()
            if status_of(r) == "running"
        ]

        def chosen(session_id: str | None) -> None:
            self._covered = False
            if session_id:
                self.main.query_one(SessionList).select(session_id)
                self.selected = session_id
            self._show_selected()

        self._covered = True
        self.main.query_one("#screen", TerminalView).stop()
        self.push_screen(GridScreen(self.client, running), chosen)

    def action_resize(self) -> None:
        record = self.record
        if record is None or status_of(record) != "running":
            return
        view = self.main.query_one("#screen", TerminalView)
        cols, rows = view.scrollable_content_region.size
        session_id = record["id"]
        self._call(
            "Resize",
            lambda: self.client.resize(session_id, max(cols, 2), max(rows, 2)),
            f"resized {session_id} to {cols}x{rows}",
        )

    def action_scrollback(self) -> None:
        if self.selected is None:
            return
        self.main.query_one(TabbedContent).active = "tab-scrollback"
        self._scrollback(self.selected)

    @work(thread=True, exclusive=True, group="scrollback")
    def _scrollback(self, session_id: str) -> None:
        try:
            screen = self.client.get(session_id, scrollback=True)
        except AgenttyError as exc:
            lines = [f"({exc})"]
        else:
            back, now = screen.get("scrollback"), screen.get("lines")
            lines = [
                *(back if isinstance(back, list) else []),
                *(now if isinstance(now, list) else []),
            ]
        self.call_from_thread(self._show_lines, "#scrollback", session_id, lines)

    def action_prune(self) -> None:
        ended = [sid for sid, r in self.records.items() if status_of(r) != "running"]
        if not ended:
            self.notify("no ended sessions to prune")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._call("Prune", self.client.gc, "removed {result}")

        self.push_screen(
            ConfirmScreen("Prune", f"Remove {len(ended)} ended session(s)?", "Prune"), answered
        )

    def on_orphan_banner_end_requested(self, message: OrphanBanner.EndRequested) -> None:
        self.action_end_orphans()

    def action_end_orphans(self) -> None:
        if not self.orphans:
            self.notify("no orphaned processes")
            return
        pids = ", ".join(str(o.pid) for o in self.orphans)

        def answered(yes: bool | None) -> None:
            if yes:
                self._call("End orphans", self.client.end_orphans, "ended {result}")

        self.push_screen(ConfirmScreen("End orphans", f"End processes {pids}?", "End"), answered)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.KEYS_HELP))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, callback in (
            ("Attach", "Send every key to the selected session", self.action_attach),
            ("Send input", "Type a line for the selected session", self.action_input),
            ("Kill session", "End the selected session", self.action_kill),
            ("New session", "Start a program in a new session", self.action_new),
            ("Grid", "Every running session at once", self.action_grid),
            ("Resize session", "Fit the session to the pane", self.action_resize),
            ("Scrollback", "Show the selected session's scrollback", self.action_scrollback),
            ("Prune", "Remove ended sessions", self.action_prune),
            ("End orphans", "End processes whose worker died", self.action_end_orphans),
            ("Keys", "Show the key reference", self.action_help),
        ):
            yield SystemCommand(title, help_text, callback)


def describe_kill(result: dict[str, object]) -> str:
    """'exited (signal SIGHUP)' from a kill result."""
    sid = result.get("id")
    if result.get("signal"):
        return f"{sid} exited (signal {result['signal']})"
    if result.get("exitCode") is not None:
        return f"{sid} exited (code {result['exitCode']})"
    if result.get("orphansKilled") is not None:
        return f"{sid}: ended {result['orphansKilled']}"
    return f"{sid} {result.get('status', 'ended')}"


def create_app(
    client: Client | None = None,
    *,
    clock: Clock = time.time,
    sampler: UsageSampler | None = None,
    poll_interval: float = 1.0,
) -> AgenttyApp:
    """The app factory used by `__main__`, the tests and the screenshot script."""
    return AgenttyApp(client, clock=clock, sampler=sampler, poll_interval=poll_interval)

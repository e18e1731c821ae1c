"""The dashboard app: a session list over the selected session's pane, driven by clients.

The app composes the widgets and holds the actions. Sessions are this machine's (`Client`,
polled here) and each host's (`RemoteClient`, polled by the host bar, a thread per host);
`Fleet` routes every call to the right client by the session's key (`id`, or `id@host`).
Every client call runs in a thread worker (a dead or slow worker, or a host that is down,
can only delay its own answer, never the UI) that hands its result back by message, and
every `AgenttyError` becomes a notification.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Header, Input, Static
from textual.worker import get_current_worker

from agentty_core.client import Client
from agentty_core.client_records import describe_end
from agentty_core.errors import AgenttyError
from agentty_core.proc.orphans import Orphan
from agentty_core.proc.usage import UsageSampler
from agentty_core.remote.client import RemoteClient
from agentty_core.screen_text import printable
from agentty_core.state.records import Record

from .actions import ACTIONS, TYPED_ACTIONS, bindings, keys_help
from .driver import AltKeysDriver
from .fleet import Fleet, split_key
from .messages import CallFinished, InputFailed, PollFailed, SessionsPolled, SessionStarted
from .model import (
    Snapshot,
    command_of,
    describe_end_orphans,
    describe_kill,
    grid_label,
    merge_usage,
    name_of,
    quick_snapshot,
    session_label,
    some_of,
    status_of,
    take_snapshot,
)
from .screens.confirm import ConfirmScreen
from .screens.grid import GridScreen, MiniPane
from .screens.help import HelpScreen
from .screens.new_session import NewSession, NewSessionScreen
from .sender import Senders
from .widgets.filter_bar import FilterBar
from .widgets.footer import AdaptiveFooter
from .widgets.host_bar import HostBar
from .widgets.input_bar import InputBar
from .widgets.orphan_banner import OrphanBanner
from .widgets.session_list import SessionList
from .widgets.session_pane import SessionPane
from .widgets.terminal_view import TerminalView
from .widgets.text_field import TextField

Clock = Callable[[], float]
ORPHAN_SWEEP_EVERY = 5  # polls between orphan sweeps while no session is lost
HOST_POLL_INTERVAL = 2.0  # seconds between polls of a host (each is an ssh channel)
DETACH_SAY_WITHIN = 3.0  # seconds a detach waits for the list to say how the session ended
# Thread workers run in the loop's default executor, whose default size is the CPU count + 4
# (6 on 2 cores): live views hold a thread each, and a host that blackholes holds its poll's
# for the connect timeout, so a small pool would starve this machine's poll and the others.
THREADS = 128
ACTION_NAMES = frozenset(action.name for action in ACTIONS)
MIN_COLS, MIN_ROWS = 20, 5  # the smallest a resize makes a session, however small the pane
ENDED = {"exited": "has exited", "lost": "is lost (its worker is gone)"}  # how a toast says it
# Keys typed for a session that just ended while attached, or that would not attach, go
# nowhere for this long: they were meant for the program (`k`, `y`, `q` killed and quit).
KEYS_HELD_FOR = 1.0  # seconds
HELD_ACTIONS = ACTION_NAMES - {"help"}  # (help changes nothing, and F1 is no typing)


class AgenttyApp(App[None]):
    """Sessions of this machine's agentty home and of each host shown."""

    CSS_PATH = "agentty.tcss"
    TITLE = "agentty"
    BINDINGS: ClassVar[list[BindingType]] = list(bindings())
    KEYS_HELP: ClassVar[list[tuple[str, str]]] = keys_help()

    selected: reactive[str | None] = reactive(None)
    attached: reactive[bool] = reactive(False)

    def __init__(
        self,
        client: Client | None = None,
        *,
        hosts: Sequence[RemoteClient] = (),
        local: bool = True,
        clock: Clock = time.time,
        sampler: UsageSampler | None = None,
        poll_interval: float = 1.0,
        host_poll_interval: float = HOST_POLL_INTERVAL,
    ) -> None:
        super().__init__()
        self.client = client or Client(timeout=3.0)
        self.fleet = Fleet(self.client if local else None, hosts)
        self.clock = clock
        self.sampler = sampler or UsageSampler()
        self.poll_interval = poll_interval
        self.host_poll_interval = host_poll_interval
        self.records: dict[str, Record] = {}
        self.orphans: list[Orphan] = []
        self._local = Snapshot([])  # this machine's last poll
        self._hosts: dict[str, list[Record]] = {}  # each host's last answered listing
        self._polls = 0  # started
        self._polled = 0  # answered and shown
        # One poll at a time: a poll slower than the interval (a loaded machine) is let
        # finish, and one more follows it, rather than being cancelled by the next tick
        # (which left the list without live fields for as long as the load lasted).
        self._polling = False
        self._poll_again = False
        self._detached: tuple[str, float] | None = None  # detached by its end: to be said
        self._started: str | None = None  # started here, selected once it is listed
        self._listed = False  # a listing has come: an empty list means no session
        self._killing: set[str] = set()  # kills under way: shown, and not asked for again
        self._keys_held_until = 0.0  # (time.monotonic(): see KEYS_HELD_FOR)
        self.senders = Senders(  # a thread per session typed to
            self.fleet, self._input_failed, held=self._input_held
        )

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(icon="▣")
        yield OrphanBanner(id="orphans")
        yield HostBar(self.fleet, interval=self.host_poll_interval, id="hosts")
        yield FilterBar(id="filter-bar")
        yield SessionList(hosts=self.fleet.remote, id="sessions")
        yield Static(id="empty-hint", markup=False)
        yield SessionPane(self.fleet, id="pane")
        yield InputBar(id="input-bar")
        yield AdaptiveFooter()

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver for this terminal; on Linux and macOS one that reads Alt keys as
        they are written (`driver.py`): an attached session gets what was typed."""
        driver = super().get_driver_class()
        return AltKeysDriver if driver is LinuxDriver and AltKeysDriver.usable else driver

    def on_load(self) -> None:
        pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="agentty-ui")
        asyncio.get_running_loop().set_default_executor(pool)

    def on_mount(self) -> None:
        if not self.is_headless:
            self._end_on_signals()
        self.main.query_one(SessionList).focus()
        if self.fleet.local is not None:
            # The first frame lists what the state file says at once; the first full poll
            # (every worker asked, every process tree sampled, orphans swept) waits until
            # that frame is drawn rather than competing with it, and fills the live fields.
            self._list_quickly()
            self.call_after_refresh(self.poll_local)
            self.set_interval(self.poll_interval, self.poll_local)

    def _end_on_signals(self) -> None:
        """SIGTERM and SIGHUP end the dashboard as `q` does, the terminal put back (they
        ended it where it stood: the alternate screen, mouse reporting on, no cursor)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.exit)

    def on_unmount(self) -> None:
        self.senders.close()
        self.fleet.close()

    def _input_failed(self, session_id: str, error: str) -> None:
        """(From a sender's thread.)"""
        self.post_message(InputFailed(session_id, error))

    def _input_held(self, session_id: str, error: str) -> None:
        """(From a sender's thread.)"""
        self.post_message(InputFailed(session_id, error, held=True))

    def on_input_failed(self, message: InputFailed) -> None:
        """Named: input may have been typed to several sessions, and the selection may have
        moved on since."""
        label = session_label(message.session_id, self.records.get(message.session_id))
        text = f"{label}: {message.text}"
        if message.held:  # (it goes once the worker answers: not a failure yet)
            self.notify(text, title="Input held", severity="warning", markup=False)
        else:
            self.notify(text, title="Input not sent", severity="error", markup=False)

    @property
    def main(self) -> Screen[object]:
        """The dashboard screen (queries on the app would search a modal on top of it)."""
        return self.screen_stack[0]

    # ------------------------------------------------------------------ polling

    def poll(self) -> None:
        """Every home now (after an action): this machine's, and each host not in a poll."""
        if not self.screen_stack:
            return  # shutting down: a stream that ended as the screens went
        self.poll_local()
        for bar in self.main.query(HostBar):
            bar.poll()

    @property
    def _torn_down(self) -> bool:
        """The app is shutting down: its screens, or their widgets, are already going.

        A timer or a worker's message can still arrive then, and must not look for them."""
        return not self.screen_stack or not self.main.query(SessionList)

    def poll_local(self) -> None:
        """Records (with live activity), CPU/memory, and orphans when they may exist.

        CPU and memory are sampled for the rows in view only (sampling a process tree reads
        every process in /proc), and not at all while the grid covers the list."""
        if self.fleet.local is None or self._torn_down:
            return
        if self._polling:
            self._poll_again = True
            return
        self._polling = True
        self._polls += 1
        table = self.main.query_one(SessionList)
        only: frozenset[str] | None = None
        if self.pane.covered:
            only = frozenset()
        elif table.row_count:
            only = frozenset([*table.keys_in_view(), *([self.selected] if self.selected else [])])
        self._poll(bool(self.orphans) or self._polls % ORPHAN_SWEEP_EVERY == 1, only)

    @work(thread=True, exclusive=True, group="quick")
    def _list_quickly(self) -> None:
        try:
            snapshot = quick_snapshot(self.client)
        except AgenttyError:
            return  # the full poll says why
        self.post_message(SessionsPolled(snapshot))

    @work(thread=True, group="poll")
    def _poll(self, sweep: bool, only: frozenset[str] | None) -> None:
        worker = get_current_worker()
        try:
            snapshot = take_snapshot(self.client, self.sampler, sweep, only)
        except AgenttyError as exc:
            self.post_message(PollFailed(str(exc)))
            return
        if not worker.is_cancelled:
            self.post_message(SessionsPolled(snapshot))

    def on_poll_failed(self, message: PollFailed) -> None:
        self.notify(message.text, title="Listing failed", severity="error", markup=False)
        self._poll_done()

    def _poll_done(self) -> None:
        """The poll in flight answered: the one asked for meanwhile goes now."""
        self._polling = False
        if self._poll_again:
            self._poll_again = False
            self.poll_local()

    def on_sessions_polled(self, message: SessionsPolled) -> None:
        if self._torn_down:
            return  # a poll that finished while the app was shutting down
        snapshot = message.snapshot
        if not snapshot.live:
            if self._polled:
                return  # a full poll answered first: it knows more
        else:
            self._polled += 1
            self._poll_done()
            snapshot = Snapshot(
                snapshot.records, merge_usage(self._local.usage, snapshot), snapshot.orphans
            )
        self._local = snapshot
        if message.snapshot.orphans is not None:
            self.orphans = message.snapshot.orphans
            self.main.query_one(OrphanBanner).orphans = tuple(message.snapshot.orphans)
        self.main.query_one(HostBar).set_count(None, len(message.snapshot.records))
        self._show_sessions()

    def on_host_bar_polled(self, message: HostBar.Polled) -> None:
        if self._torn_down:
            return
        if message.records is not None:
            self._hosts[message.host] = message.records
        self._show_sessions()  # a host that is down: its sessions shown as unreachable

    @property
    def down(self) -> dict[str, str]:
        """Each host that is down, with the reason (the link's one line)."""
        return self.main.query_one(HostBar).down

    def unreachable(self, key: str | None) -> str | None:
        """Why the session's host cannot be reached, or None."""
        host = split_key(key)[1] if key else None
        return None if host is None else self.down.get(host)

    def _show_sessions(self, *, under_grid: bool = False) -> None:
        """The list, the banner and the pane, from the last answer of every home; while the
        grid covers them, only with `under_grid`."""
        merged = list(self._local.records)
        for host in self.fleet.hosts:
            merged += self._hosts.get(host, [])
        self.records = {r["id"]: r for r in merged}
        self._listed = True
        # A kill said killing… until the list says it ended (it said running again for a
        # poll, between the kill's answer and the next listing).
        self._killing &= {sid for sid, r in self.records.items() if status_of(r) == "running"}
        if self.pane.covered and not under_grid:
            # Under the grid, a changed cell still repaints what covers it: the whole grid
            # paid for every poll's ages and usage (a quarter of its CPU with 20 panes).
            # The list catches up when the grid closes; the grid gets the new sessions.
            grids = [s for s in self.screen_stack if isinstance(s, GridScreen)]
            if grids:
                grids[-1].add_tiles(self._running_tiles())
            return
        table = self.main.query_one(SessionList)
        ranks = {home: i for i, home in enumerate(self.fleet.homes)}
        down = frozenset(self.down)
        killing = frozenset(self._killing)
        table.update_sessions(
            merged, self._local.usage, self.clock(), ranks=ranks, down=down, killing=killing
        )
        self._hint_when_empty()
        lost = tuple(sid for sid, r in self.records.items() if r.get("status") == "lost")
        self.main.query_one(OrphanBanner).lost = lost
        if self._started is not None and self._started in self.records:
            self._select(self._started)  # started here: listed now
            self._started = None
        # One started here and not listed yet (another home answered first) stays selected.
        waiting = self.selected is not None and self.selected == self._started
        if self.selected is None or (self.selected not in self.records and not waiting):
            self.selected = table.selected_id
        elif self.selected in self.records:
            self.pane.record = self.record
            self.pane.unreachable = self.unreachable(self.selected)
            if self.attached and self.pane.unreachable is not None:
                self.attached = False
                said = f"{self.pane.unreachable}: detached from {self.selected}"
                self.notify(said, title="Host down", severity="warning", markup=False)
            elif self.attached and status_of(self.records[self.selected]) != "running":
                self._detach_by_end(self.selected)  # it ended (its stream may have closed first)
        self._say_detached()

    # ------------------------------------------------------------------ selection

    @property
    def record(self) -> Record | None:
        return self.records.get(self.selected) if self.selected else None

    def _select(self, key: str) -> None:
        """Select a session the person chose (a tile, a session just started): its row,
        shown by clearing a filter that hides it. What is selected is always a row shown
        and highlighted (`k`, `i` act on it), another one when `key` is no longer listed."""
        table = self.main.query_one(SessionList)
        if key in self.records and key not in table.rows and table.filter:
            self.main.query_one(FilterBar).clear()
            table.filter = ""  # now: the bar's Changed comes later
        table.select(key)
        self.selected = table.selected_id

    def on_session_list_highlighted(self, message: SessionList.Highlighted) -> None:
        self.selected = message.session_id
        self._hint_when_empty()

    def _hint_when_empty(self) -> None:
        """What to do when the list shows no row: a blank table said nothing (a new user's
        first look, a filter that matches nothing)."""
        if self._torn_down or not self._listed:
            return  # (shutting down: the list's last highlight; or nothing listed yet)
        table = self.main.query_one(SessionList)
        hint = self.main.query_one("#empty-hint", Static)
        hint.display = table.row_count == 0
        self.main.set_class(not table.row_count, "-empty")  # the list down to its header
        if table.row_count:
            return
        if table.filter:
            hint.update("No session matches the filter: esc clears it.")
        else:
            hint.update(
                "No sessions yet: n starts one (or `agentty start -- PROGRAM` in a shell);"
                " ? lists every key."
            )

    def on_session_list_opened(self, message: SessionList.Opened) -> None:
        if self._keys_held:
            return  # (the list's own enter, no action of ours; another session may be selected)
        self.selected = message.session_id
        self.action_attach()

    def watch_selected(self) -> None:
        if not self.screen_stack:
            return  # shutting down: the list's last highlight as its rows went
        for pane in self.main.query(SessionPane):
            pane.unreachable = self.unreachable(self.selected)
            pane.record = self.record

    @property
    def pane(self) -> SessionPane:
        return self.main.query_one(SessionPane)

    def on_terminal_view_ended(self, message: TerminalView.Ended) -> None:
        if message.session_id == self.selected and self.attached:
            self._detach_by_end(message.session_id)
        self.poll()

    def _detach_by_end(self, session_id: str) -> None:
        """The attached session's stream ended: detached, said once the list knows how the
        session ended (the stream's end comes before the poll that says with what code;
        the keys went back to the dashboard without a word: an outside round)."""
        self.attached = False
        self._detached = (session_id, time.monotonic() + DETACH_SAY_WITHIN)
        self._hold_keys()
        self._say_detached()

    def _hold_keys(self) -> None:
        """The dashboard's keys do nothing for KEYS_HELD_FOR: what is typed now was meant
        for a session that no longer takes it."""
        self._keys_held_until = time.monotonic() + KEYS_HELD_FOR
        self.refresh_bindings()
        self.set_timer(KEYS_HELD_FOR, self.refresh_bindings)

    @property
    def _keys_held(self) -> bool:
        """Within KEYS_HELD_FOR of `_hold_keys`."""
        return time.monotonic() < self._keys_held_until

    def _say_detached(self) -> None:
        """Say why the dashboard detached, once the record tells (or, when the listings
        still find it running DETACH_SAY_WITHIN seconds on, that its screen's stream ended,
        not the session). Counted in time, not listings: with hosts, each host's answer
        lists too, and used them up before this machine's poll had seen the end."""
        if self._detached is None:
            return
        session_id, until = self._detached
        record = self.records.get(session_id)
        running = record is not None and status_of(record) == "running"
        if running and time.monotonic() < until:
            return
        self._detached = None
        if running:
            said = f"session {session_id}: its screen's stream ended: detached"
        elif record is not None:
            said = f"session {session_id} {describe_end(record)}: detached"
        else:
            said = f"session {session_id} ended: detached"
        self.notify(said, title="Detached", markup=False)

    # ------------------------------------------------------------------ attach and input

    def watch_attached(self, attached: bool) -> None:
        self.pane.attached = attached
        self.set_class(attached, "-attached")
        if not attached:
            self.main.query_one(SessionList).focus()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.attached:
            return False  # the session gets every key: no dashboard action may claim one
        if action in HELD_ACTIONS and self._keys_held:
            return False
        if action in TYPED_ACTIONS and isinstance(self.focused, Input):
            return False  # the field types the key: not offered in the footer either
        if self.screen_stack and isinstance(self.screen_stack[-1], GridScreen):
            # The dashboard's actions act on what it hides (Textual's own, the palette's
            # ctrl+p, still work).
            return action not in ACTION_NAMES or action in GridScreen.APP_ACTIONS
        return True

    def _refuse_down(self, key: str) -> bool:
        """Say so and refuse when the session's host is down."""
        reason = self.unreachable(key)
        if reason is not None:
            self.notify(reason, title="Host down", severity="warning", markup=False)
        return reason is not None

    def _chosen(self) -> Record | None:
        """The selected session's record, or None after saying that none is selected (no
        session, or a filter that hides every row)."""
        record = self.record
        if record is None:
            self.notify("no session selected", severity="warning")
        return record

    def _refuse_ended(self, record: Record, what: str) -> bool:
        """Say so, and True, when the session no longer runs: `what` needs it running."""
        if status_of(record) == "running":
            return False
        status = f"session {record['id']} is {record.get('status')}: {what}"
        self.notify(status, severity="warning", markup=False)
        return True

    def action_attach(self) -> None:
        record = self._chosen()
        if record is None:
            return
        if self._refuse_down(record["id"]) or self._refuse_ended(record, "nothing to attach to"):
            self._hold_keys()  # what is typed next was meant for the session
            return
        self.attached = True

    def on_terminal_view_detached(self, message: TerminalView.Detached) -> None:
        self.attached = False

    def on_terminal_view_input(self, message: TerminalView.Input) -> None:
        if message.view.id == "screen" and message.view.session_id:
            self.senders.send(message.view.session_id, message.kind, message.data)

    def action_input(self) -> None:
        record = self._chosen()
        if record is None or self._refuse_down(record["id"]):
            return
        if self._refuse_ended(record, "nothing to send to"):
            return
        self.main.query_one(InputBar).open(record["id"], session_label(record["id"], record))

    def on_input_bar_send(self, message: InputBar.Send) -> None:
        """The line goes to the bar's own session, or nowhere, saying why: never to the
        one selected now (the selection moves on when the bar's session ends or goes)."""
        key = message.session_id
        record = self.records.get(key)
        why: str | None = None
        if record is None:
            why = "is gone"
        elif status_of(record) != "running":
            why = ENDED.get(status_of(record), f"is {record.get('status')}")
        elif (reason := self.unreachable(key)) is not None:
            why = f"is on a host that is down ({reason})"
        if why is not None:
            text = f"{message.label} {why}: the line was not sent (↑ recalls it)"
            self.notify(text, title="Input not sent", severity="warning", markup=False)
            return
        self.senders.send(key, "line" if message.enter else "text", message.text)

    def on_input_bar_closed(self, message: InputBar.Closed) -> None:
        self.main.query_one(InputBar).remove_class("-visible")
        self.main.query_one(SessionList).focus()

    # ------------------------------------------------------------------ actions

    def _call(
        self,
        title: str,
        fn: Callable[[], object],
        done: str | None = None,
        *,
        about: str | None = None,
    ) -> None:
        """Run a client call in a thread; notify its result or its error. `about`: the
        session it acts on, said with its end (`on_call_finished`)."""
        self._run_call(title, fn, done, about)

    @work(thread=True, group="calls")
    def _run_call(
        self, title: str, fn: Callable[[], object], done: str | None, about: str | None
    ) -> None:
        try:
            result = fn()
        except (AgenttyError, OSError) as exc:
            self.post_message(CallFinished(title, str(exc), failed=True, about=about))
            return
        message = done.format(result=result) if done else None
        if isinstance(result, dict) and done is None:
            message = describe_kill(result)
        self.post_message(CallFinished(title, message, about=about))

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification, escaped: many quote a session's command line, a host's reason
        or an error that quotes what a program or a transport printed (a title set, a
        bell). Our own texts are printable already."""
        super().notify(
            printable(message),
            title=printable(title),
            severity=severity,
            timeout=timeout,
            markup=markup,
        )

    def on_call_finished(self, message: CallFinished) -> None:
        if message.about is not None and message.about in self._killing and message.failed:
            self._killing.discard(message.about)  # (done: it stays until listed as ended)
            self._show_sessions()
        if message.text:
            severity: SeverityLevel = "error" if message.failed else "information"
            self.notify(message.text, title=message.title, severity=severity, markup=False)
        if not message.failed:
            self.poll()

    def action_kill(self) -> None:
        record = self._chosen()
        if record is not None:
            self._ask_kill(record)

    def on_mini_pane_kill_asked(self, message: MiniPane.KillAsked) -> None:
        record = self.records.get(message.session_id)
        if record is None:
            text = f"session {message.session_id} is gone"
            self.notify(text, severity="warning", markup=False)
            return
        self._ask_kill(record)

    def _ask_kill(self, record: Record) -> None:
        """Kill the session, once the person confirms."""
        if status_of(record) == "exited":
            self.notify("select a running session to kill", severity="warning")
            return
        if self._refuse_down(record["id"]):
            return
        session_id = record["id"]
        if session_id in self._killing:  # (k again while its ladder runs: one kill is enough)
            self.notify(f"session {session_id} is being killed", markup=False)
            return
        label = f"{session_id} ({name_of(record) or command_of(record)})"

        def answered(yes: bool | None) -> None:
            if yes and session_id not in self._killing:
                self._killing.add(session_id)
                self._show_sessions()  # "killing…" at once: the ladder may take seconds
                self._call("Kill", lambda: self.fleet.kill(session_id), about=session_id)

        self.push_screen(
            ConfirmScreen("Kill session", f"End {label} and all its processes?", "Kill"),
            answered,
        )

    def action_new(self) -> None:
        def answered(record: Record | None) -> None:
            if record is not None:
                self.post_message(SessionStarted(record["id"], str(record.get("command"))))

        here = split_key(self.selected)[1] if self.selected else None
        screen = NewSessionScreen(self._start, homes=self.fleet.homes, host=here)
        self.push_screen(screen, answered)

    def _start(self, new: NewSession) -> Record:
        """(In the New dialog's thread.)"""
        return self.fleet.start(new.host, new.argv, name=new.name, cwd=new.cwd)

    def on_session_started(self, message: SessionStarted) -> None:
        text = f"started {message.session_id}: {message.command}"
        self.notify(text, title="New session", markup=False)
        self._started = self.selected = message.session_id
        self.poll()

    def _running_tiles(self) -> list[tuple[str, str]]:
        """The grid's tiles: each running session that can be reached, with its label."""
        return [
            (key, f"{grid_label(key, r)} · {command_of(r)}")
            for key, r in self.records.items()
            if status_of(r) == "running" and self.unreachable(key) is None
        ]

    def action_grid(self) -> None:
        running = self._running_tiles()

        def chosen(session_id: str | None) -> None:
            if self._torn_down:
                return
            self._show_sessions(under_grid=True)  # what the polls found while the grid was up
            if session_id:
                self._select(session_id)
            self.pane.covered = False

        self.pane.covered = True
        self.push_screen(GridScreen(self.fleet, running, self.selected), chosen)

    def action_resize(self) -> None:
        """Resize the session to the Screen tab's view: shown first, as a hidden view
        measures 0x0 (the session became 2x2 from the other tabs)."""
        record = self._chosen()
        if record is None or self._refuse_down(record["id"]):
            return
        if self._refuse_ended(record, "only a running session can be resized"):
            return
        self.pane.show_screen()
        self.call_after_refresh(self._resize_to_view, record["id"])

    def _resize_to_view(self, session_id: str) -> None:
        # The whole view, scrollbars included: they go once the screen fits.
        cols, rows = self.pane.view.content_region.size
        cols, rows = max(cols, MIN_COLS), max(rows, MIN_ROWS)
        self._call(
            "Resize",
            lambda: self.fleet.resize(session_id, cols, rows),
            f"resized {session_id} to {cols}x{rows}",
        )

    def action_scrollback(self) -> None:
        if self.selected is not None:
            self.pane.show_scrollback()

    def action_prune(self) -> None:
        ended = [
            key
            for key, r in self.records.items()
            if status_of(r) != "running" and self.unreachable(key) is None
        ]
        if not ended:
            self.notify("no ended sessions to prune")
            return
        homes = [h for h in self.fleet.homes if any(split_key(k)[1] == h for k in ended)]

        def prune() -> str:
            return ", ".join(key for home in homes for key in self.fleet.gc(home)) or "nothing"

        def answered(yes: bool | None) -> None:
            if yes:
                self._call("Prune", prune, "removed {result}")

        self.push_screen(
            ConfirmScreen("Prune", f"Remove {len(ended)} ended session(s)?", "Prune"), answered
        )

    def on_orphan_banner_end_requested(self, message: OrphanBanner.EndRequested) -> None:
        self.action_end_orphans()

    def action_end_orphans(self) -> None:
        if not self.orphans:
            self.notify("no orphaned processes")
            return
        count = len(self.orphans)
        pids = some_of([str(o.pid) for o in self.orphans])
        question = f"End {count} process{'es' if count > 1 else ''}: {pids}?"

        def answered(yes: bool | None) -> None:
            if yes:
                end = self.client.end_orphans
                self._call("End orphans", lambda: describe_end_orphans(end()), "{result}")

        self.push_screen(ConfirmScreen("End orphans", question, "End"), answered)

    def action_filter(self) -> None:
        self.main.query_one(FilterBar).open()

    def on_text_field_lines_dropped(self, message: TextField.LinesDropped) -> None:
        said = f"{message.lines} lines pasted: the field holds one line, and took the first"
        if message.field.id == "send-input":  # the input bar's: the session takes them whole
            said += " (attach with enter to paste them all into the session)"
        self.notify(said, title="Pasted", severity="warning")

    def on_filter_bar_changed(self, message: FilterBar.Changed) -> None:
        self.main.query_one(SessionList).filter = message.text
        self._hint_when_empty()

    def on_filter_bar_done(self, message: FilterBar.Done) -> None:
        self.main.query_one(SessionList).focus()

    def on_session_list_filter_cleared(self, message: SessionList.FilterCleared) -> None:
        self.main.query_one(FilterBar).clear()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.KEYS_HELP))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        grid = isinstance(screen, GridScreen)
        for action in ACTIONS:
            if action.palette and (not grid or action.name in GridScreen.APP_ACTIONS):
                yield SystemCommand(
                    action.title, action.help, getattr(self, f"action_{action.name}")
                )


def create_app(
    client: Client | None = None,
    *,
    hosts: Sequence[RemoteClient] = (),
    local: bool = True,
    clock: Clock = time.time,
    sampler: UsageSampler | None = None,
    poll_interval: float = 1.0,
    host_poll_interval: float = HOST_POLL_INTERVAL,
) -> AgenttyApp:
    """The app factory used by `__main__`, the tests and the screenshot script."""
    return AgenttyApp(
        client,
        hosts=hosts,
        local=local,
        clock=clock,
        sampler=sampler,
        poll_interval=poll_interval,
        host_poll_interval=host_poll_interval,
    )

"""The Worker's state: everything its parts (PTY I/O, lifecycle, waits, requests, push)
read and change, set up in one place, with the screen as the protocol shows it.

Each part is a mixin over WorkerBase, so that a part calls another directly (`self._check_waits()`
inside the output callback) exactly as one class would: the hot path pays no extra hop.
The parts' methods that other parts call are declared here for the type checker only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING

from agentty_core.emulator.interface import create_emulator
from agentty_core.ipc.server import Peer, Server
from agentty_core.paths import Home
from agentty_core.proc import inputstate
from agentty_core.proc.ptyhost import PtyChild
from agentty_core.protocol import JSONObject
from agentty_core.screen_text import trim_lines
from agentty_core.state.records import RawRecord as Record
from agentty_core.state.store import StateStore
from agentty_core.worker.answers import Later
from agentty_core.worker.echo import EchoLog
from agentty_core.worker.recording import Recorder
from agentty_core.worker.waits import WaitSpec

if TYPE_CHECKING:
    from agentty_core.proc.killtree import KillResult
    from agentty_core.worker.answers import RequestFailed
    from agentty_core.worker.push import Subscriber


def log_line(name: str, message: str) -> None:
    """One INFO line in the session's log, as `worker.main.log_handler` writes it
    (LOG_FORMAT), written at once, by hand: the start's (an idle worker that logs nothing
    else then never runs logging's record and formatting machinery, whose first run copies
    ~0.1 MiB of the pages it shares) and the end's (before a `kill` has its answer, and
    without that machinery's cost on its way: `logs` right after it shows the end)."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    line = f"{stamp},{int(now % 1 * 1000):03d} INFO {name}: {message}\n"
    with contextlib.suppress(OSError):
        os.write(2, line.encode("utf-8", "backslashreplace"))


class WorkerBase:
    """The state the worker's parts share (see the module docstring)."""

    def __init__(self, spec: Record, home: Home, status_fd: int | None) -> None:
        self.spec = spec
        self.id = str(spec["id"])
        self.home = home
        self.home_at = directory_identity(home.root)  # (device, inode): a home removed is noticed
        self.store = StateStore(home, lean=True)  # see StateStore: filelock stays out
        # The same lock, never waited for: the exit is written by tries between turns of the
        # loop (see Lifecycle._persist), so a held lock never stops the worker answering.
        # Its directory sync comes after the answers are out (`core.run`).
        self.quick_store = StateStore(home, timeout=0.0, lean=True, sync_dir=False)
        self.final_saved = False
        self.final_error: str | None = None
        self.final_hopeless = False  # it can never fit (EFBIG at the hard file size limit)
        self.exit_unsynced = False  # the exit record's rename, not yet made durable
        self.exit_recorded = False  # the record says the session ended (a kill's answer says so)
        self.forgotten = False  # removed at its end, as a wait for the exit asked (`run`)
        self.held = False  # a connection holds the session's life (`Requests._hold`)
        self.status_fd = status_fd
        record = spec.get("record")
        self.record: Record = dict(record) if isinstance(record, dict) else {}
        cols, rows = int(spec["cols"]), int(spec["rows"])  # type: ignore[call-overload]  # validated by the launcher
        self.emu, self.emulator_name = create_emulator(cols, rows)
        self.child: PtyChild | None = None
        self.server: Server | None = None
        self.raw = bytearray()
        self.pending_input = bytearray()
        self.writer_armed = False
        self.input_moved_at = 0.0  # when the program last took queued input (monotonic)
        self.input_room: asyncio.Event | None = None  # set when queued input moves
        self.exit_status: int | None = None
        self.pty_closed = False
        self.finalized = asyncio.Event()
        self.finalizing = False
        self.kill_task: asyncio.Task[KillResult] | None = None
        self.kill_grace = 0.0  # the grace of the kill under way
        self.kill_laddering = False  # it is still signalling (not yet ending the session)
        self.awaiting_survivors = False  # a kill's survivors are waited for (once)
        self.last_change = self.last_read = time.monotonic()
        self.active_at = time.time()
        self.waits: dict[Later, WaitSpec] = {}
        self.echoes = EchoLog()  # where typed text was echoed: masked for waits with `after`
        self.draining = False  # output is being parsed for a wait's answer (no checks inside)
        self.input_poller: asyncio.Task[None] | None = None
        self.input_pause = 0.0  # the input poller's next pause (wait_registry.INPUT_POLL)
        self.stable_timer: asyncio.TimerHandle | None = None
        # Subscribed connections, and what each was sent and is owed (`push.Subscriber`).
        self.subscribers: dict[Peer, Subscriber] = {}
        self.push_handle: asyncio.TimerHandle | None = None
        self.push_fresh = False  # the screen changed since the last push
        self.recorder: Recorder | None = None
        self.background: set[asyncio.Task[None]] = set()  # see _in_background
        self.error_note: asyncio.Task[None] | None = None  # see _note_recording_error
        self.until: float | None = None  # the request being read: when its caller gives up
        self.caller: Peer | None = None  # the connection of the request being read

    def _in_background(self, work: Coroutine[object, object, None]) -> asyncio.Task[None]:
        """Run `work` as a task kept until it is done (the loop holds tasks only weakly)."""
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def _update_record(self, **fields: object) -> None:
        self.record.update(fields)
        self.store.update_or_restore(self.id, self.record, **fields)

    def screen_payload(
        self,
        *,
        scrollback: bool = False,
        ansi: bool = False,
        raw_bytes: int | None = None,
        last_lines: int | None = None,
        input: bool = True,
    ) -> JSONObject:
        """The screen as the protocol sends it. `input=False` skips the input-state probe
        (a few /proc reads, ~0.2 ms): wait answers carry it only when they waited for it."""
        state = self.input_state() if input else None
        if state is not None and state["state"] == "exited" and self.exit_status is None:
            self._reap_exiting()  # gone, its SIGCHLD not handled yet: its exit, as it says
        emu = self.emu
        row, col = emu.cursor
        payload: JSONObject = {
            "id": self.id,
            "lines": emu.lines(),
            "cursor": {"row": row, "col": col, "visible": emu.cursor_visible},
            "size": {"cols": emu.cols, "rows": emu.rows},
            "seq": emu.seq,
            "title": emu.title,
            "altScreen": emu.alt_screen,
            "modes": emu.modes,
            "exited": self.exit_status is not None,
            **self._exit_fields(),
        }
        if state is not None:
            payload["input"] = state
        if last_lines is not None:
            # The last lines of scrollback and screen: the scrollback's part is in them, and
            # none is sent beside them (every reader joins the two).
            text = trim_lines(emu.scrollback() + emu.lines())
            payload["lines"] = text[-last_lines:] if last_lines else []
        elif scrollback:
            payload["scrollback"] = emu.scrollback()
        if ansi:
            payload["ansi"] = emu.ansi_lines()
        if raw_bytes is not None:
            tail = bytes(self.raw[-raw_bytes:]) if raw_bytes else b""
            payload["raw"] = tail.decode("utf-8", "replace")
            payload["rawBase64"] = base64.b64encode(tail).decode()
        return payload

    def input_state(self) -> inputstate.InputState:
        if self.child is None or self.exit_status is not None or self.pty_closed:
            return inputstate.exited()
        return inputstate.probe(self.child.fd, self.child.tty_name)

    if TYPE_CHECKING:
        # Given by the parts (see core.Worker); declared so each part type-checks alone.
        def _write(self, data: bytes) -> None: ...
        async def _room_for(self, size: int) -> None: ...
        def _on_pty_closed(self) -> None: ...
        def _reap_exiting(self) -> None: ...
        def _close_pty(self) -> None: ...
        def _maybe_finalize(self) -> None: ...
        def _exit_fields(self) -> dict[str, object]: ...
        def _exited_message(self) -> str: ...
        def _ended(self) -> RequestFailed: ...
        async def _persist(
            self, fields: dict[str, object], patience: float, *, final: bytes | None = None
        ) -> str | None: ...
        async def kill(self, grace: float) -> KillResult: ...
        def _check_waits(self) -> None: ...
        def _forget_wanted(self) -> bool: ...
        def _drain_output(self) -> None: ...
        def wait(self, spec: WaitSpec) -> JSONObject | Later: ...
        def _schedule_push(self) -> None: ...
        def _push_final(self) -> None: ...
        def _subscribe(self, peer: Peer, params: JSONObject) -> None: ...
        def _start_recording(self, input: bool, markers: bool) -> None: ...


def directory_identity(path: os.PathLike[str] | str) -> tuple[int, int] | None:
    """A directory's (device, inode); None if it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino

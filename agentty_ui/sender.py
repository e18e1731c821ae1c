"""Input for sessions, sent in order: one queue and one thread per session.

Keystrokes of a session never overtake each other (one thread sends a session's input in
the order it was typed), and a session whose worker is slow or stopped (SIGSTOP), or whose
host is down, holds up only its own input: with one queue per home, every key queued for a
stopped worker waited out the client's timeout in front of every other session's keys. A
thread ends once its session has had no input for `IDLE` seconds.

What is queued goes in as few requests as it allows (typed characters joined, keys pressed
in one request: one request a key, 10 kB typed fast took 8 s). A request a stopped worker
surely did not act on (`ipc.client.not_done`, and STOPPED_REASONS: left unread, not sent
whole, no connection while its listen queue is full, or refused as read after its caller
gave up) is asked again, the same input, after a pause growing to RETRY_PAUSE, until the
worker takes it: keys typed while it
was stopped arrive in order, none dropped from the start of a line. A request the worker
took (or part of an input in parts) is never sent again: it may have been typed. A session
that ended takes nothing: what was queued for it, and anything typed for it after, is
dropped, said once; so is what any other failure met (out of descriptors, say), and the
session's later input goes on.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from agentty_core.errors import (
    SessionNotFound,
    SessionNotRunning,
    WorkerUnreachable,
)
from agentty_core.ipc.client import not_done

from .fleet import Fleet

Item = tuple[str, str]  # kind ("key", "text", "line", "paste"), data
IDLE = 30.0  # seconds without input before a session's sender thread ends
# Between asks of a worker that does not take the input: from 50 ms, doubling to this. A
# stopped worker's listen backlog (64) keeps each connection given up until it runs, and
# once it is full a connect fails at once: asked again without a pause, that spun.
RETRY_PAUSE = 1.0
# What a stopped worker gives a new request: no answer in time ("timeout": read late and
# refused, or never read), or no connection while its listen queue is full (EAGAIN, said
# "connect_failed"). Asked again on these only.
STOPPED_REASONS = frozenset({"timeout", "connect_failed"})


class Senders:
    """`send()` from the UI thread; `failed(key, message)` (input dropped) and `held(key,
    message)` (input waiting for a worker that does not answer) are called from a
    sender's thread."""

    def __init__(
        self,
        fleet: Fleet,
        failed: Callable[[str, str], None],
        idle: float = IDLE,
        *,
        held: Callable[[str, str], None] | None = None,
    ) -> None:
        self.fleet = fleet
        self.failed = failed
        self.held = held or failed
        self.idle = idle
        self._lock = threading.Lock()  # a queue is never fed after its thread decided to end
        self._queues: dict[str, queue.Queue[Item | None]] = {}
        self._ended: set[str] = set()  # sessions said to have ended: their input is dropped
        self._closed = threading.Event()  # (an Event: it ends a pause between asks at once)

    @property
    def closed(self) -> bool:
        """`close()` was called: no input is taken, and none asked again."""
        return self._closed.is_set()

    def send(self, key: str, kind: str, data: str) -> None:
        with self._lock:
            if self.closed or key in self._ended:
                return  # (said once already, or the dashboard is going)
            outbox = self._queues.get(key)
            if outbox is None:
                outbox = self._queues[key] = queue.Queue()
                name = f"agentty-ui-send-{key}"
                thread = threading.Thread(
                    target=self._loop, args=(key, outbox), name=name, daemon=True
                )
                thread.start()
            outbox.put((kind, data))

    def close(self) -> None:
        """Each sender ends after the input already queued (not asking a worker that does
        not answer again)."""
        with self._lock:
            self._closed.set()
            for outbox in self._queues.values():
                outbox.put(None)
            self._queues.clear()

    def _next(self, key: str, outbox: queue.Queue[Item | None]) -> Item | None:
        """The session's next input; None once it is closed or has been idle too long."""
        while True:
            try:
                return outbox.get(timeout=self.idle)
            except queue.Empty:
                with self._lock:
                    if outbox.empty():
                        if self._queues.get(key) is outbox:
                            del self._queues[key]
                        return None

    def _loop(self, key: str, outbox: queue.Queue[Item | None]) -> None:
        try:
            while (item := self._next(key, outbox)) is not None:
                batch, closing = _more(outbox, [item])
                try:
                    for kind, data in _runs(batch):
                        self._send_until_answered(key, kind, data)
                except Exception as exc:  # not only AgenttyError: an OSError (EMFILE) too
                    closing = self._dropped(key, outbox, exc) or closing
                if closing:
                    return
        finally:
            self._forget(key, outbox)

    def _dropped(self, key: str, outbox: queue.Queue[Item | None], exc: Exception) -> bool:
        """Say why the input was not sent, and drop what was typed after it (it would come
        without what it followed); whether the queue was closed behind it."""
        if isinstance(exc, (SessionNotRunning, SessionNotFound)):
            with self._lock:
                self._ended.add(key)  # (each key typed after it made a toast)
        closing = _more(outbox, [])[1]
        self.failed(key, f"{exc}; what was typed for it since was not sent")
        return closing

    def _forget(self, key: str, outbox: queue.Queue[Item | None]) -> None:
        """A thread that ended some other way than idle or closed (a failing callback)
        leaves no queue behind: the next input starts a fresh thread, not a queue nobody
        reads."""
        with self._lock:
            if self._queues.get(key) is outbox:
                del self._queues[key]

    def _send_until_answered(self, key: str, kind: str, data: str | list[str]) -> None:
        """Send one run; asked again while the worker surely did not act on it (stopped:
        the input waits for it, as a terminal's would), said once."""
        said = False
        pause = 0.05
        while True:
            try:
                self._send(key, kind, data)
                return
            except WorkerUnreachable as exc:
                # Only a request the worker did not act on: one it took (or a part of) may
                # have been typed, and would be typed twice. And only while it may be
                # stopped: nothing listening, a refusal or another process on its socket
                # does not pass by waiting (each was held for ever, said as "stopped?").
                stopped = not_done(exc) and exc.reason in STOPPED_REASONS
                if not stopped or exc.input_sent or self.closed:
                    raise
                if not said:
                    said = True
                    self.held(key, f"{exc}: the input waits for it (stopped?)")
                if self._closed.wait(pause):
                    raise  # (the dashboard is going: not asked again)
            pause = min(pause * 2, RETRY_PAUSE)

    def _send(self, key: str, kind: str, data: str | list[str]) -> None:
        if kind == "key":
            self.fleet.key(key, data if isinstance(data, list) else [data])
        elif kind == "paste":
            self.fleet.paste(key, str(data))
        else:
            self.fleet.text(key, str(data), enter=kind == "line")


def _more(outbox: queue.Queue[Item | None], batch: list[Item]) -> tuple[list[Item], bool]:
    """`batch` with what else is queued now (not waited for), and whether the queue was
    closed behind it."""
    while True:
        try:
            item = outbox.get_nowait()
        except queue.Empty:
            return batch, False
        if item is None:
            return batch, True
        batch.append(item)


def _runs(batch: list[Item]) -> list[tuple[str, str | list[str]]]:
    """`batch` in as few requests as keep its order: typed characters joined ("text"),
    keys pressed together ("key"); a line or a paste goes on its own."""
    runs: list[tuple[str, str | list[str]]] = []
    for kind, data in batch:
        last = runs[-1] if runs else None
        if last is not None and kind == last[0] == "text":
            runs[-1] = ("text", str(last[1]) + data)
        elif last is not None and kind == last[0] == "key" and isinstance(last[1], list):
            last[1].append(data)
        else:
            runs.append((kind, [data] if kind == "key" else data))
    return runs

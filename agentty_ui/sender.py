"""Input for sessions, sent in order: one queue and one thread per session.

Keystrokes of a session never overtake each other (one thread sends a session's input in
the order it was typed), and a session whose worker is slow or stopped (SIGSTOP), or whose
host is down, holds up only its own input: with one queue per home, every key queued for a
stopped worker waited out the client's timeout in front of every other session's keys. A
thread ends once its session has had no input for `IDLE` seconds.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from agentty_core.errors import AgenttyError

from .fleet import Fleet

Item = tuple[str, str]  # kind ("key", "text", "line", "paste"), data
IDLE = 30.0  # seconds without input before a session's sender thread ends


class Senders:
    """`send()` from the UI thread; `failed(key, message)` is called from a sender's
    thread."""

    def __init__(
        self, fleet: Fleet, failed: Callable[[str, str], None], idle: float = IDLE
    ) -> None:
        self.fleet = fleet
        self.failed = failed
        self.idle = idle
        self._lock = threading.Lock()  # a queue is never fed after its thread decided to end
        self._queues: dict[str, queue.Queue[Item | None]] = {}

    def send(self, key: str, kind: str, data: str) -> None:
        with self._lock:
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
        """Each sender ends after the input already queued."""
        with self._lock:
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
        while (item := self._next(key, outbox)) is not None:
            kind, data = item
            try:
                if kind == "key":
                    self.fleet.key(key, [data])
                elif kind == "paste":
                    self.fleet.paste(key, data)
                else:
                    self.fleet.text(key, data, enter=kind == "line")
            except AgenttyError as exc:
                self.failed(key, str(exc))

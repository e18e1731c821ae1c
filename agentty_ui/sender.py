"""Input for sessions, sent in order: one queue and one thread per home.

Keystrokes of a session never overtake each other (one thread sends a home's input in the
order it was typed), and a host that is slow or down holds up only its own sessions' input,
never this machine's or another host's.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from agentty_core.errors import AgenttyError

from .fleet import Fleet, split_key

Item = tuple[str, str, str]  # session key, kind ("key", "text", "line", "paste"), data


class Senders:
    """`send()` from the UI thread; `failed(message)` is called from a sender's thread."""

    def __init__(self, fleet: Fleet, failed: Callable[[str], None]) -> None:
        self.fleet = fleet
        self.failed = failed
        self._queues: dict[str | None, queue.Queue[Item | None]] = {}

    def send(self, key: str, kind: str, data: str) -> None:
        host = split_key(key)[1]
        outbox = self._queues.get(host)
        if outbox is None:
            outbox = self._queues[host] = queue.Queue()
            name = f"agentty-ui-send-{host or 'local'}"
            threading.Thread(target=self._loop, args=(outbox,), name=name, daemon=True).start()
        outbox.put((key, kind, data))

    def close(self) -> None:
        """Each sender ends after the input already queued."""
        for outbox in self._queues.values():
            outbox.put(None)

    def _loop(self, outbox: queue.Queue[Item | None]) -> None:
        while (item := outbox.get()) is not None:
            key, kind, data = item
            try:
                if kind == "key":
                    self.fleet.key(key, [data])
                elif kind == "paste":
                    self.fleet.paste(key, data)
                else:
                    self.fleet.text(key, data, enter=kind == "line")
            except AgenttyError as exc:
                self.failed(str(exc))

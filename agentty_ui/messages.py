"""Messages posted from thread workers to the app (widgets nest their own messages)."""

from __future__ import annotations

from textual.message import Message

from .model import Snapshot


class SessionsPolled(Message):
    """A poll of `Client.sessions()` (plus usage and orphans) finished."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

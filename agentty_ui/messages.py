"""Messages posted from thread workers to the app (widgets nest their own messages)."""

from __future__ import annotations

from textual.message import Message

from .model import Snapshot


class SessionsPolled(Message):
    """A poll of `Client.sessions()` (plus usage and orphans) finished."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class CallFinished(Message):
    """A client call made in a thread finished: what to tell the person (None: nothing)."""

    def __init__(
        self, title: str, text: str | None, *, failed: bool = False, about: str | None = None
    ) -> None:
        super().__init__()
        self.title, self.text, self.failed = title, text, failed
        self.about = about  # the session the call acted on


class InputFailed(Message):
    """Input for a session could not be sent (posted from its sender's thread); `held`:
    not yet, it waits for a worker that does not answer."""

    def __init__(self, session_id: str, text: str, *, held: bool = False) -> None:
        super().__init__()
        self.session_id, self.text, self.held = session_id, text, held


class SessionStarted(Message):
    """`Client.start` from the New dialog answered."""

    def __init__(self, session_id: str, command: str) -> None:
        super().__init__()
        self.session_id, self.command = session_id, command


class PollFailed(Message):
    """This machine's poll failed: what to tell the person (the next poll may go now)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

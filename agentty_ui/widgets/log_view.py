"""A session's worker log, followed like `tail -f` while its tab is shown.

A local session's log is a file read from where it was left; a host's is read there (its
whole text over the link, every `REMOTE_EVERY` polls) and only what it gained is appended.
Either is shown escaped (`printable_lines`, as another host's stderr is): a log quotes what
the program wrote, escape sequences and all, and they would set the terminal's title.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.message import Message
from textual.widgets import Log

from agentty_core.errors import AgenttyError
from agentty_core.screen_text import printable_lines

MAX_READ = 256 * 1024  # the first read of a long log shows only its tail
REMOTE_EVERY = 4  # polls (of 0.5 s) between reads of a host's log: each is an ssh channel


class LogView(Log):
    """Appends what a log file gained since the last look; reads run in a thread."""

    class _Read(Message):
        """What a read found: text from `offset`'s predecessor, or an error (no text)."""

        def __init__(
            self, path: Path, offset: int, text: str, reset: bool, error: str | None = None
        ) -> None:
            super().__init__()
            self.path, self.offset, self.text, self.reset = path, offset, text, reset
            self.error = error

    class _Fetched(Message):
        """A host's log as read there (or why it could not be)."""

        def __init__(self, source: str, text: str, error: str | None = None) -> None:
            super().__init__()
            self.source, self.text, self.error = source, text, error

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, highlight=False, auto_scroll=True)
        self.path: Path | None = None
        self._offset = 0
        self._failing = False  # the log shows a "cannot read" line, not the file
        self._source: str | None = None  # the session whose log `_fetch` reads on its host
        self._fetch: Callable[[], str] | None = None
        self._fetched = ""  # the host's log text shown so far
        self._ticks = 0

    def on_mount(self) -> None:
        self.set_interval(0.5, self.poll)

    def follow(self, path: Path | None) -> None:
        """Show `path` from its tail onwards (None: nothing)."""
        if path == self.path and self._fetch is None:
            return
        self.path, self._offset, self._failing = path, 0, False
        self._source = self._fetch = None
        self.clear()
        self.poll()

    def follow_remote(self, source: str, fetch: Callable[[], str]) -> None:
        """Show the log `fetch` reads on a host (`source`: the session it belongs to)."""
        if source == self._source:
            return
        self.path, self._source, self._fetch = None, source, fetch
        self._fetched, self._failing, self._ticks = "", False, 0
        self.clear()
        self.poll()

    def poll(self) -> None:
        if not (self.display and self.is_on_screen):
            return
        if self._fetch is not None and self._source is not None:
            self._ticks += 1
            if self._ticks % REMOTE_EVERY == 1:
                self._read_remote(self._source, self._fetch)
        elif self.path is not None:
            self._read(self.path, self._offset, self._failing)

    @work(thread=True, exclusive=True, group="log")
    def _read_remote(self, source: str, fetch: Callable[[], str]) -> None:
        try:
            text = fetch()
        except AgenttyError as exc:
            self.post_message(self._Fetched(source, "", str(exc)))
            return
        self.post_message(self._Fetched(source, text))

    def on_log_view__fetched(self, message: _Fetched) -> None:
        message.stop()
        if message.source != self._source:
            return
        if message.error is not None:
            if not self._failing:
                self._failing = True
                self.write(printable_lines(f"(cannot read the log: {message.error})") + "\n")
            return
        text = message.text
        if self._failing or not text.startswith(self._fetched):
            self._failing, self._fetched = False, ""
            self.clear()
        new = text[len(self._fetched) :]
        self._fetched = text
        if new:
            self.write(printable_lines(new[-MAX_READ:]))

    @work(thread=True, exclusive=True, group="log")
    def _read(self, path: Path, offset: int, failing: bool) -> None:
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, 2)
                reset = size < offset  # rotated or truncated
                start = 0 if reset else offset
                if size - start > MAX_READ:
                    start = size - MAX_READ
                handle.seek(start)
                data = handle.read(size - start)
        except OSError as exc:
            self.post_message(self._Read(path, offset, "", False, exc.strerror or str(exc)))
            return
        if data or reset or failing:  # failing: an empty file replaces the error too
            text = data.decode("utf-8", "replace")
            self.post_message(self._Read(path, start + len(data), text, reset))

    def on_log_view__read(self, message: _Read) -> None:
        message.stop()
        if message.path != self.path:
            return
        if message.error is not None:
            # Said once; the offset stays, so the file is read from its start once it exists.
            if not self._failing and self._offset == 0:
                self._failing = True
                self.write(printable_lines(f"(cannot read {message.path}: {message.error})") + "\n")
            return
        if message.reset or self._failing:
            self._failing = False
            self.clear()
        self._offset = message.offset
        if message.text:
            self.write(printable_lines(message.text))

"""A session's worker log, followed like `tail -f` while its tab is shown."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.message import Message
from textual.widgets import Log

MAX_READ = 256 * 1024  # the first read of a long log shows only its tail


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

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, highlight=False, auto_scroll=True)
        self.path: Path | None = None
        self._offset = 0
        self._failing = False  # the log shows a "cannot read" line, not the file

    def on_mount(self) -> None:
        self.set_interval(0.5, self.poll)

    def follow(self, path: Path | None) -> None:
        """Show `path` from its tail onwards (None: nothing)."""
        if path == self.path:
            return
        self.path, self._offset, self._failing = path, 0, False
        self.clear()
        self.poll()

    def poll(self) -> None:
        if self.path is not None and self.display and self.is_on_screen:
            self._read(self.path, self._offset, self._failing)

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
                self.write(f"(cannot read {message.path}: {message.error})\n")
            return
        if message.reset or self._failing:
            self._failing = False
            self.clear()
        self._offset = message.offset
        if message.text:
            self.write(message.text)

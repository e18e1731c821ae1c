"""The new-session form: host (when hosts are shown), command line (shown as the argv it will
run), name, directory.

The form starts the session itself and closes only once it has started: a start refused
(a name the core rejects, a directory that is not there, a host that is down) says why in
the form, with everything typed still in it."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from agentty_core.errors import AgenttyError
from agentty_core.screen_text import printable
from agentty_core.state.records import Record

from ..fleet import host_label
from ..widgets.footer import AdaptiveFooter
from ..widgets.text_field import TextField


@dataclass(frozen=True)
class NewSession:
    argv: list[str]
    name: str | None
    cwd: str | None
    host: str | None = None  # None: this machine


def split_command(line: str) -> list[str] | str:
    """The argv shlex makes of `line`, or the reason it cannot."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        return str(exc)
    return argv or "enter a command"


class NewSessionScreen(ModalScreen[Record | None]):
    """Dismissed with the started session's record, or None. `start` starts a session (in
    a thread: a host's start goes through ssh); its `AgenttyError` is shown in the form."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    # A short window (80x24) gets compact fields (agentty.tcss): the whole form fits.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]  # noqa: RUF012  (Textual types it so)

    class _Failed(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class _Started(Message):
        def __init__(self, record: Record) -> None:
            super().__init__()
            self.record = record

    def __init__(
        self,
        start: Callable[[NewSession], Record],
        cwd: str | None = None,
        *,
        homes: list[str | None] | None = None,
        host: str | None = None,
    ) -> None:
        super().__init__()
        self.start = start
        self.starting = False
        self.cwd = cwd or os.getcwd()
        self.homes: list[str | None] = homes if homes is not None else [None]  # None: here
        self.host = host if host in self.homes else self.homes[0]

    def compose(self) -> ComposeResult:
        # Scrolled in a short window (80x24): its buttons and its error were cut off.
        with VerticalScroll(id="new-dialog", classes="dialog"):
            yield Label("New session", classes="dialog-title")
            if len(self.homes) > 1:
                yield Label("Host")
                yield Select(
                    [(host_label(h), i) for i, h in enumerate(self.homes)],
                    value=self.homes.index(self.host),
                    allow_blank=False,
                    id="host",
                )
            yield Label("Command")
            yield TextField(placeholder="python3 -q", id="command")
            yield Static("argv: (empty)", id="argv-preview", markup=False)
            yield Label("Name (optional)")
            yield TextField(placeholder="demo", id="name")
            yield Label("Working directory")
            yield TextField(
                self._cwd_for(self.host), placeholder=self._cwd_hint(self.host), id="cwd"
            )
            yield Static("", id="new-error", markup=False)  # quotes what was typed
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start (enter)", variant="primary", id="start")
                yield Button("Cancel (esc)", id="cancel")
        yield AdaptiveFooter()  # (its own keys, not the dashboard's under it)

    def _cwd_for(self, host: str | None) -> str:
        """This machine's directory here; on a host, its default (the remote home)."""
        return self.cwd if host is None else ""

    def _cwd_hint(self, host: str | None) -> str:
        """What an empty field means: here, the dashboard's own directory; on a host, the
        directory its agentty starts in (its user's home)."""
        if host is None:
            return f"this dashboard's directory ({self.cwd})"
        return "the host's default (its user's home)"

    def on_mount(self) -> None:
        self.query_one("#command", Input).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "host" or not isinstance(event.value, int):
            return
        before, self.host = self.host, self.homes[event.value]
        cwd = self.query_one("#cwd", Input)
        cwd.placeholder = self._cwd_hint(self.host)
        if cwd.value.strip() in ("", self._cwd_for(before)):
            cwd.value = self._cwd_for(self.host)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "command":
            argv = split_command(event.value)
            text = f"argv: {argv!r}" if isinstance(argv, list) else f"argv: ({argv})"
            self.query_one("#argv-preview", Static).update(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self._submit()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        """Close without starting; not while a start is under way (it cannot be taken back,
        and closed, the dialog would say nothing of how it went)."""
        if not self.starting:
            self.dismiss(None)

    def _submit(self) -> None:
        if self.starting:
            return  # (enter pressed again while it starts)
        argv = split_command(self.query_one("#command", Input).value)
        if isinstance(argv, str):
            self._show_error(argv)
            return
        name = self.query_one("#name", Input).value.strip() or None
        cwd = self.query_one("#cwd", Input).value.strip() or None
        if cwd is not None and self.host is None:
            cwd = os.path.expanduser(cwd)  # `~/src`, as a shell reads it (no shell here)
        self._starting(True)
        self._show_error("")
        self._run_start(NewSession(argv, name, cwd, self.host))

    def _starting(self, starting: bool) -> None:
        self.starting = starting
        self.query_one("#start", Button).disabled = starting
        self.query_one("#cancel", Button).disabled = starting

    def _show_error(self, text: str) -> None:
        error = self.query_one("#new-error", Static)
        error.update(printable(text))
        error.set_class(bool(text), "-visible")
        if text:
            self.call_after_refresh(error.scroll_visible)  # (below the fold of a short window)

    @work(thread=True, exclusive=True, group="start")
    def _run_start(self, new: NewSession) -> None:
        try:
            record = self.start(new)
        except (AgenttyError, OSError) as exc:
            self.post_message(self._Failed(str(exc)))
            return
        self.post_message(self._Started(record))

    def on_new_session_screen__failed(self, message: _Failed) -> None:
        self._starting(False)
        self._show_error(message.text)

    def on_new_session_screen__started(self, message: _Started) -> None:
        self.dismiss(message.record)

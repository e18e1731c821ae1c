"""The new-session form: host (when hosts are shown), command line (shown as the argv it will
run), name, directory."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from ..fleet import host_label
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


class NewSessionScreen(ModalScreen[NewSession | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(
        self,
        cwd: str | None = None,
        *,
        homes: list[str | None] | None = None,
        host: str | None = None,
    ) -> None:
        super().__init__()
        self.cwd = cwd or os.getcwd()
        self.homes: list[str | None] = homes if homes is not None else [None]  # None: here
        self.host = host if host in self.homes else self.homes[0]

    def compose(self) -> ComposeResult:
        with Vertical(id="new-dialog", classes="dialog"):
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
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start (enter)", variant="primary", id="start")
                yield Button("Cancel (esc)", id="cancel")

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
            self.dismiss(None)

    def _submit(self) -> None:
        argv = split_command(self.query_one("#command", Input).value)
        if isinstance(argv, str):
            self.notify(argv, severity="error", markup=False)
            return
        name = self.query_one("#name", Input).value.strip() or None
        cwd = self.query_one("#cwd", Input).value.strip() or None
        self.dismiss(NewSession(argv, name, cwd, self.host))

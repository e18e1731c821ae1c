"""The key reference, generated from the action table so it cannot drift from the bindings."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from ..widgets.footer import AdaptiveFooter

ABOUT = (
    "agentty runs programs in background terminals. The list shows every session of this "
    "home, and of the hosts in hosts.toml; the panes below show the selected one. Attach "
    "(enter) sends every key to the session until ctrl+] detaches. Sessions started from "
    "other terminals appear here within a second."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q,f1", "dismiss", "Close"),
    ]

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.bindings = bindings

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan")
        table.add_column()
        for key, description in self.bindings:
            table.add_row(key, description)
        with VerticalScroll(id="help-dialog", classes="dialog"):
            yield Label("agentty — keys", classes="dialog-title")
            yield Static(ABOUT, classes="dialog-body")
            yield Static(table)
        yield AdaptiveFooter()  # (its own keys, not the dashboard's under it)

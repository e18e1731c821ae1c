"""The session filter: `/` opens it, typing narrows the list, escape clears it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

from .text_field import TextField


class FilterBar(Horizontal):
    """Words every listed session must contain (host, name, id, program or status). Stays
    shown while a filter is set, so a shortened list is never mistaken for the whole one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear", "Clear filter"),
    ]

    class Changed(Message):
        """The filter's text changed."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Done(Message):
        """The person left the filter (enter keeps it, escape clears it)."""

    def compose(self) -> ComposeResult:
        yield Label("filter", id="filter-label")
        yield TextField(placeholder="host, name, id, program or status", id="filter-input")

    @property
    def text(self) -> str:
        return self.query_one(Input).value

    def open(self) -> None:
        self.add_class("-visible")
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(event.value))

    def on_descendant_blur(self) -> None:
        """Left empty (tab, a click elsewhere): no filter to show, and nothing to close it
        with (esc on the list clears a filter only while one is set)."""
        if not self.text.strip():
            self.remove_class("-visible")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.set_class(bool(event.value.strip()), "-visible")
        self.post_message(self.Done())

    def clear(self) -> None:
        """No filter: the field emptied (posts Changed("")) and the bar hidden."""
        self.query_one(Input).value = ""
        self.remove_class("-visible")

    def action_clear(self) -> None:
        self.clear()
        self.post_message(self.Done())

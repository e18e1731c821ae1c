"""A one-line input that sends text to one session, with history on up/down.

The bar is bound to the session it was opened for, and names it: a line typed into it
never goes to whatever happens to be selected when enter is pressed (the selection moves
when that session ends, is pruned or is filtered out)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label

from .text_field import TextField


class InputBar(Horizontal):
    """enter sends the line with Enter; alt+enter (or the toggle, ctrl+t) sends it without.
    Every line is for `target`, the session the bar was opened for."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history(-1)", "Older", show=False),
        Binding("down", "history(1)", "Newer", show=False),
        Binding("alt+enter", "send(False)", "Send w/o Enter"),
        Binding("ctrl+t", "toggle_enter", "Toggle Enter"),
        Binding("escape", "close", "Close"),
    ]

    with_enter: reactive[bool] = reactive(True)

    class Send(Message):
        """A line for the bar's session (`session_id`, shown as `label`)."""

        def __init__(self, text: str, enter: bool, session_id: str, label: str) -> None:
            super().__init__()
            self.text = text
            self.enter = enter
            self.session_id = session_id
            self.label = label

    class Closed(Message):
        """The bar was dismissed (escape)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history: list[str] = []
        self._index = 0
        self.target: str | None = None  # the session's key
        self.target_label = ""

    def compose(self) -> ComposeResult:
        yield Label("", id="input-target", markup=False)  # session text
        yield Label("", id="enter-mode")
        yield TextField(placeholder="text to send to the session", id="send-input")

    def watch_with_enter(self, with_enter: bool) -> None:
        self.query_one("#enter-mode", Label).update("⏎ +Enter" if with_enter else "⏎ no Enter")

    def open(self, session_id: str, label: str) -> None:
        """Show the bar, bound to the session `session_id` (named `label` on screen). What
        was left unsent in it was typed for its session: kept for that one alone (opened
        for another, it was there to be sent to it with one enter)."""
        if session_id != self.target:
            self.query_one(Input).value = ""
        self.target, self.target_label = session_id, label
        self.query_one("#input-target", Label).update(f"→ {label}")
        self.add_class("-visible")
        self._index = len(self.history)
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_send(self.with_enter)

    def action_send(self, enter: bool) -> None:
        field = self.query_one(Input)
        text = field.value
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
        self._index = len(self.history)
        field.value = ""
        if self.target is not None:
            self.post_message(self.Send(text, enter, self.target, self.target_label))

    def action_toggle_enter(self) -> None:
        self.with_enter = not self.with_enter

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._index = max(0, min(len(self.history), self._index + step))
        field = self.query_one(Input)
        field.value = self.history[self._index] if self._index < len(self.history) else ""
        field.cursor_position = len(field.value)

    def action_close(self) -> None:
        self.post_message(self.Closed())

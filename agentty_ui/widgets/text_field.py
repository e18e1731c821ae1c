"""A text field: Textual's Input, with the word keys of a terminal's Alt.

The dashboard reads an ESC-prefixed key as Alt+key (`driver.py`: an attached program gets
what was typed). Textual's own parser turned some of them into other keys an Input binds:
ESC DEL (Alt+Backspace in xterm, tmux, iTerm) into Ctrl+W, ESC b / ESC f (macOS Terminal's
Option+arrows) into Ctrl+Left / Ctrl+Right. A field binds them again, to the same actions.
A paste of several lines keeps its first, as Input does, and says so (it dropped the rest
without a word).
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input


class TextField(Input):
    """Input, with Alt+Backspace deleting the word left of the cursor and Alt+B / Alt+F
    moving a word, as in a shell."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("alt+backspace", "delete_left_word", "Delete left to start of word", show=False),
        Binding("alt+b", "cursor_left_word", "Move cursor left a word", show=False),
        Binding("alt+f", "cursor_right_word", "Move cursor right a word", show=False),
    ]

    class LinesDropped(Message):
        """A paste of `lines` lines: the field (`field`) kept the first one only."""

        def __init__(self, field: TextField, lines: int) -> None:
            super().__init__()
            self.field = field
            self.lines = lines

    def _on_paste(self, event: events.Paste) -> None:
        # (Input's own handler runs too, after this one: Textual calls each class's.)
        lines = len(event.text.splitlines())
        if lines > 1:
            self.post_message(self.LinesDropped(self, lines))

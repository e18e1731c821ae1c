"""The footer, compact in a narrow window: every key still fits (help and quit fell off its
end at 80 columns), and the command palette's key (ctrl+p works all the same) makes way."""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

COMPACT_BELOW = 100  # columns


class AdaptiveFooter(Footer):
    """`Footer`, compact and without the palette's key below COMPACT_BELOW columns; every
    screen's own (the grid's and the help's too), following its window as it is resized."""

    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < COMPACT_BELOW
        if narrow == self.compact and narrow != self.show_command_palette:
            return
        self.compact = narrow
        self.show_command_palette = not narrow
        self.call_after_refresh(self.recompose)  # (the palette's key is placed in compose)

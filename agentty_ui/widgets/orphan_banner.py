"""A warning that names processes which outlived their session's worker."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Static

from agentty_core.proc.orphans import Orphan
from agentty_core.screen_text import printable

from ..model import format_age


def describe(orphans: list[Orphan], lost: list[str]) -> str:
    lines = []
    for orphan in orphans[:5]:
        lines.append(
            f"pid {orphan.pid}  {printable(orphan.command[:60])}  "
            f"(session {orphan.session_id}, {format_age(orphan.age_seconds)} old)"
        )
    if len(orphans) > 5:
        lines.append(f"... and {len(orphans) - 5} more")
    head = []
    if orphans:
        head.append("⚠ Orphaned processes: their session's worker is gone")
    if lost:
        # With nothing of them left running, all there is to do is remove them: say how.
        then = "" if orphans else " (nothing of them runs: p prunes them from the list)"
        head.append(f"⚠ Lost sessions (worker died): {', '.join(lost)}{then}")
    return "\n".join([*head, *lines])


class OrphanBanner(Horizontal):
    """Hidden while there is nothing to warn about."""

    orphans: reactive[tuple[Orphan, ...]] = reactive((), init=False)
    lost: reactive[tuple[str, ...]] = reactive((), init=False)

    class EndRequested(Message):
        """The person asked to end the orphans."""

    def compose(self) -> ComposeResult:
        yield Static(id="orphan-text", markup=False)
        yield Button("End them (e)", variant="error", id="end-orphans")

    def _update(self) -> None:
        self.display = bool(self.orphans or self.lost)
        self.query_one("#end-orphans", Button).display = bool(self.orphans)
        self.query_one("#orphan-text", Static).update(describe(list(self.orphans), list(self.lost)))

    def watch_orphans(self) -> None:
        self._update()

    def watch_lost(self) -> None:
        self._update()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.EndRequested())

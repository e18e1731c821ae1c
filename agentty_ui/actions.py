"""The dashboard's actions, declared once: the key bindings, the help screen's key list and
the command palette are all read from `ACTIONS`, so they cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Action:
    """One thing the person can do on the dashboard, and everywhere it is offered."""

    name: str  # `action_<name>` on the app
    key: str  # Textual key name(s), comma-separated
    title: str  # the footer's and the palette's label
    help: str  # one line for the help screen and the palette
    show: bool = True  # shown in the footer
    key_display: str | None = None  # how the help screen writes the key
    palette: bool = True  # offered in the command palette (quit is already there)
    footer: str | None = None  # a shorter label for the footer (default: the title)

    def binding(self) -> Binding:
        return Binding(self.key, self.name, self.footer or self.title, show=self.show)

    @property
    def keys(self) -> str:
        return self.key_display or self.key


ACTIONS: tuple[Action, ...] = (
    Action("attach", "enter", "Attach", "Attach: keys go to the session (ctrl+] detaches)"),
    Action(
        "input",
        "i",
        "Send input",
        "Send a line (enter: with Enter, alt+enter: without, ctrl+t: switch, ↑/↓: history)",
        footer="Input",
    ),
    Action("kill", "k", "Kill", "Kill the selected session"),
    Action("new", "n", "New", "Start a new session"),
    Action("grid", "g", "Grid", "Grid of the running sessions (arrows move, enter opens one)"),
    Action(
        "filter",
        "slash",
        "Filter",
        "Filter the list: words of any column or of the command line (esc clears)",
        key_display="/",
    ),
    Action("resize", "r", "Resize to pane", "Resize the session to the pane", footer="Resize"),
    Action("scrollback", "s", "Scrollback", "Show and refresh the scrollback", show=False),
    Action("prune", "p", "Prune", "Prune ended sessions"),
    Action("end_orphans", "e", "End orphans", "End orphaned processes", show=False),
    Action("help", "question_mark,f1", "Help", "This help", key_display="?, F1"),
    Action("quit", "q", "Quit", "Quit", palette=False),
)

# Keys that are not actions of the app, listed in the help around the actions.
KEYS_BEFORE = (
    ("↑/↓, home/end, click", "Select a session"),
    ("tab, shift+tab", "Move between the list, the tabs and the pane"),
    ("←/→ on the tabs", "Screen, Scrollback, Worker log, Info"),
    ("esc on the list", "Clear the filter"),
)
KEYS_AFTER = (
    ("ctrl+p", "Command palette"),
    ("ctrl+]", "Detach (while attached)"),
    ("esc, ?, q, F1", "Close this help"),
)


# Keys an input field types rather than the dashboard acting on them (Textual's names).
_TYPED_NAMES = frozenset({"slash", "question_mark", "space"})


def _typed(key: str) -> bool:
    return len(key) == 1 or key in _TYPED_NAMES


# Actions whose keys a focused text field takes as typing: the footer does not offer them
# then. Not one with a key no field types (help's F1), nor quit (Textual's ctrl+q is it too):
# refused, those keys did nothing in a field.
TYPED_ACTIONS = frozenset(
    a.name for a in ACTIONS if all(_typed(k) for k in a.key.split(",")) and a.name != "quit"
)


def bindings() -> list[Binding]:
    """The app's `BINDINGS`."""
    return [action.binding() for action in ACTIONS]


def keys_help() -> list[tuple[str, str]]:
    """(key, what it does) rows of the help screen."""
    return [*KEYS_BEFORE, *((a.keys, a.help) for a in ACTIONS), *KEYS_AFTER]

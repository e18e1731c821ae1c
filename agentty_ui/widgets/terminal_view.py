"""A session's screen, drawn from the row runs its worker pushes (no emulator here).

Built on the Line API: each row becomes a `Strip` of Segments, one per run of equal style,
cached by the row's content (a scrolling screen shows the same rows one line higher: they
are not built again); only the changed rows that are in view are refreshed, in one call, and
events that pile up while the UI is busy are merged into one repaint, so a flooding session
cannot freeze it. The widget's base style (a walk over every ancestor's styles in Textual)
is looked up once per repaint, not once per line.
"""

from __future__ import annotations

import threading
import unicodedata
from functools import partial
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events, work
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from agentty_core.errors import AgenttyError
from agentty_core.protocol import BOLD, ITALICS, REVERSE, STRIKETHROUGH, UNDERSCORE, JSONObject
from agentty_core.screen_text import controls_escaped

from ..feed import merge_events
from ..fleet import Stream, Subscribes

Run = tuple[str, str, str, int]  # text, foreground, background, flags
RunList = tuple[Run, ...]
_STYLES: dict[tuple[str, str, int], Style] = {}
_CURSOR = Style(reverse=True)
DETACH_KEY = "ctrl+right_square_bracket"
SILENT_AFTER = 2.0  # seconds without the followed session's screen before the view says so


def pyte_color(name: str) -> str | None:
    """A Rich colour for a pyte colour name ('brown' is yellow, 'brightred', 'ff8700')."""
    if name == "default":
        return None
    bright = name.startswith("bright")
    base = name[6:] if bright else name
    base = "yellow" if base == "brown" else base
    if base in ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"):
        return f"bright_{base}" if bright else base
    if len(name) == 6:
        try:
            int(name, 16)
        except ValueError:
            return None
        return f"#{name}"
    return None


def run_style(fg: str, bg: str, flags: int) -> Style:
    """The Rich style of a run, cached: a screen has few distinct styles."""
    key = (fg, bg, flags)
    style = _STYLES.get(key)
    if style is None:
        style = _STYLES[key] = Style(
            color=pyte_color(fg),
            bgcolor=pyte_color(bg),
            bold=bool(flags & BOLD) or None,
            italic=bool(flags & ITALICS) or None,
            underline=bool(flags & UNDERSCORE) or None,
            reverse=bool(flags & REVERSE) or None,
            strike=bool(flags & STRIKETHROUGH) or None,
        )
    return style


# Textual's names of keys that are no Unicode character's name: ctrl+backslash (C-\ sends
# SIGQUIT) was dropped, the character being REVERSE SOLIDUS.
_SYMBOLS = {"backslash": "\\", "underscore": "_"}


def agentty_key(event: events.Key) -> tuple[str, str] | None:
    """('text', chars) or ('key', agentty key name) for a Textual key event, read by the
    driver's parser (`driver.py`: an ESC-prefixed key is `alt+<key>`), so that the program
    gets the bytes the terminal sent."""
    key = event.key
    *mods, base = key.split("+") if not key.endswith("++") else [*key[:-2].split("+"), "+"]
    if not mods and event.is_printable and event.character:
        return ("text", event.character)
    if key == "backspace" and event.character == "\x08":
        return ("key", "Ctrl+H")  # (Textual names C-h backspace too; the Backspace key is DEL)
    names = {
        "escape": "Esc",
        "enter": "Enter",
        "tab": "Tab",
        "backspace": "Backspace",
        "delete": "Delete",
        "insert": "Insert",
        "home": "Home",
        "end": "End",
        "pageup": "PageUp",
        "pagedown": "PageDown",
        "up": "Up",
        "down": "Down",
        "left": "Left",
        "right": "Right",
        "space": "Space",
    }
    if base in names:
        name = names[base]
    elif base.startswith("f") and base[1:].isdigit():
        name = base.upper()
    elif len(base) == 1:
        name = base
    elif base in _SYMBOLS:
        name = _SYMBOLS[base]
    else:
        try:
            name = unicodedata.lookup(base.replace("_", " ").upper())
        except KeyError:
            return None
    if "shift" in mods and len(name) == 1:
        # The character carries its shift (alt+shift+a is Alt+A; `shift+a` is `A`).
        mods = [mod for mod in mods if mod != "shift"]
        char = event.character
        name = char if char and len(char) == 1 and char.isprintable() else name.upper()
        if not mods:
            return ("text", name)
    prefix = "".join(f"{mod.capitalize()}+" for mod in mods if mod in ("ctrl", "alt", "shift"))
    return ("key", prefix + name)


class TerminalView(ScrollView, can_focus=True):
    """The live screen of one session; when attached it takes the keyboard."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(DETACH_KEY, "detach", "Detach", key_display="ctrl+]", priority=True),
    ]

    DEFAULT_CSS = """
    TerminalView {
        background: $background;
        color: $foreground;
    }
    """

    attached: reactive[bool] = reactive(False)
    """Whether keys go to the session rather than the dashboard."""

    class Input(Message):
        """Keys or text the person typed while attached."""

        def __init__(self, view: TerminalView, kind: str, data: str) -> None:
            super().__init__()
            self.view = view
            self.kind = kind  # "key", "text" or "paste"
            self.data = data

        @property
        def control(self) -> TerminalView:
            return self.view

    class Detached(Message):
        """The person pressed the detach key."""

    class Ended(Message):
        """The session's stream closed: it exited, or its worker died."""

        def __init__(self, session_id: str, stream: int | None = None) -> None:
            super().__init__()
            self.session_id = session_id
            self.stream = stream  # which follow() of the view it ended

    class _Subscribed(Message):
        """A feed thread's subscribe answered (maybe after the view moved on)."""

        def __init__(self, stream: int, subscription: Stream) -> None:
            super().__init__()
            self.stream, self.subscription = stream, subscription

    class _Update(Message):
        """New events are waiting in the buffer (posted once per batch)."""

    def __init__(
        self,
        *,
        show_cursor: bool = True,
        frame_interval: float = 0.0,
        paced: bool = False,
        push_interval: float | None = None,
        reveal_cursor: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.show_cursor = show_cursor
        # Seconds between applied updates (0: as fast as the worker pushes, ~30/s). A small
        # pane among many needs far fewer frames than the one being watched.
        self.frame_interval = frame_interval
        # Paced: the feed only buffers, and the view's owner applies what is buffered on its
        # own clock (`flush`), so many views share one frame (one repaint of the screen).
        self.paced = paced
        # The fewest seconds between two events the worker sends (None: its ~30 a second).
        # A pane repainted a few times a second has no use for the events in between.
        self.push_interval = push_interval
        # A view shorter than the screen keeps the cursor's row in sight (tmux's way with a
        # smaller client): a shell's prompt and a log's newest lines are there, not at the
        # top. Off for a view of history (the scrollback), whose reader scrolls it.
        self.reveal_cursor = reveal_cursor
        self.session_id: str | None = None
        self.live: str | None = None  # the session being streamed, None when not streaming
        self.cols, self.rows = 80, 24
        self.cursor: tuple[int, int] = (0, 0)
        self.cursor_visible = False
        self.title = ""
        self._runs: list[RunList] = []
        self.seen = False  # an event of the followed session was shown
        # Strips by row content, for the base style they were built with: a row that moved
        # (scrolling) or came back is not built again. Cleared when it outgrows the screen.
        self._strips: dict[RunList, Strip] = {}
        self._base = Style()  # the widget's rich_style, looked up once per repaint
        self._pending: list[tuple[int | None, JSONObject]] = []
        self._lock = threading.Lock()
        self._posted = False
        self._subscription: Stream | None = None
        # Numbers each follow(); a feed thread's results carry the number of the follow()
        # that started it, and are dropped once the view has moved on (stop, or a new one).
        self._stream = 0
        self._reset(80, 24)

    # ------------------------------------------------------------------ content

    def _reset(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self._runs = [() for _ in range(rows)]
        self._strips.clear()
        self.virtual_size = Size(cols, rows)
        self.refresh()

    def line_text(self, row: int) -> str:
        """The plain text of a row (for tests and the grid's titles)."""
        return "".join(run[0] for run in self._runs[row]).rstrip() if row < self.rows else ""

    @property
    def text(self) -> str:
        return "\n".join(self.line_text(row) for row in range(self.rows))

    def show_lines(self, lines: list[str], cols: int | None = None) -> None:
        """Show plain text (an ended session's final screen); stops any live stream."""
        self.stop()
        width = max([cols or 0, *(len(line) for line in lines), 1])
        self._reset(width, max(len(lines), 1))
        for row, line in enumerate(lines):
            self._runs[row] = ((line, "default", "default", 0),)
        self.cursor_visible = False
        self.refresh()

    def apply_event(self, event: JSONObject) -> None:
        """Apply one (possibly merged) screen event, refreshing only the rows it changed."""
        size = event.get("size")
        if isinstance(size, dict):
            cols, rows = int(size.get("cols", self.cols)), int(size.get("rows", self.rows))
            if (cols, rows) != (self.cols, self.rows):
                self._reset(cols, rows)
        dirty: set[int] = set()
        changed = event.get("rows")
        if isinstance(changed, dict):
            for key, runs in changed.items():
                row = int(key)
                if 0 <= row < self.rows and isinstance(runs, list):
                    self._runs[row] = tuple(
                        (str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in runs
                    )
                    dirty.add(row)
        cursor = event.get("cursor")
        if isinstance(cursor, dict):
            (old, old_col), was_visible = self.cursor, self.cursor_visible
            self.cursor = (int(cursor.get("row", 0)), int(cursor.get("col", 0)))
            self.cursor_visible = bool(cursor.get("visible", True))
            dirty.update((old, self.cursor[0]))
            if self.cursor[0] != old or (self.cursor_visible and not was_visible):
                self._keep_cursor_in_view()  # moved, or shown again (after a progress bar)
            elif self.cursor[1] != old_col:
                self._keep_cursor_in_view(sideways=True)  # along its row: typed, say
        title = event.get("title")
        if isinstance(title, str):
            self.title = title
        self.refresh_rows(dirty)

    def _keep_cursor_in_view(self, *, fill: bool = False, sideways: bool = False) -> None:
        """Scroll just enough that the cursor is in view (only when the cursor moved
        or reappeared, or the view was resized: a reader who scrolled away is not pulled
        back otherwise). A hidden cursor (a full-screen program's) says nothing of where
        to look. The rows in view are those no scrollbar covers. `fill` (a resize): rows
        below the cursor in view while rows above it are not give way to those (a grid
        tile scrolled while it was one row high showed its cursor's row at the top, the
        output above it hidden, once laid out). `sideways`: only across (the cursor moved
        along its row: a reader who scrolled up is not pulled back by a progress bar)."""
        if not (self.reveal_cursor and self.cursor_visible):
            return
        region = self.scrollable_content_region
        height, width = region.height, region.width
        row, col = self.cursor
        left, top = self.scroll_offset
        if 0 < height < self.rows and not sideways:
            lowest = max(row - height + 1, 0)  # the top that shows the cursor on the last row
            if row < top:
                self.scroll_to(y=row, animate=False, force=True, immediate=True)
            elif row >= top + height or (fill and top > lowest):
                self.scroll_to(y=lowest, animate=False, force=True, immediate=True)
        # And sideways, in a view narrower than the screen: what is typed past its right
        # edge was never shown (attached in a narrow window, an outside round).
        if 0 < width < self.cols and not left <= col < left + width:
            x = col if col < left else col - width + 1
            self.scroll_to(x=x, animate=False, force=True, immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        self._keep_cursor_in_view(fill=True)

    def watch_show_horizontal_scrollbar(self, shown: bool) -> None:
        """A scrollbar that appears (a screen wider than the view) covers the last row."""
        if shown:
            self.call_after_refresh(self._keep_cursor_in_view)

    def refresh_rows(self, rows: set[int]) -> None:
        """Refresh the rows of `rows` that are in view, as few regions in one call (one
        `refresh_line` per row costs more than drawing a row from the cache)."""
        top, height = self.scroll_offset.y, self.size.height
        shown = sorted(row - top for row in rows if top <= row < top + height)
        if not shown:
            return
        width = max(self.virtual_size.width, self.size.width)
        regions: list[Region] = []
        start = prev = shown[0]
        for y in shown[1:]:
            if y != prev + 1:
                regions.append(Region(0, start, width, prev - start + 1))
                start = y
            prev = y
        regions.append(Region(0, start, width, prev - start + 1))
        self.refresh(*regions)

    # ------------------------------------------------------------------ rendering

    def _row_strip(self, row: int) -> Strip:
        runs = self._runs[row]
        strip = self._strips.get(runs)
        if strip is None:
            base = self._base
            segments = [
                Segment(controls_escaped(text), base + run_style(fg, bg, flags))
                for text, fg, bg, flags in runs
            ]
            strip = Strip(segments).crop_extend(0, self.cols, base)
            if len(self._strips) >= 4 * self.rows:
                self._strips.clear()
            self._strips[runs] = strip
        return strip

    def render_lines(self, crop: Region) -> list[Strip]:
        base = self.rich_style
        if base != self._base:
            self._base = base
            self._strips.clear()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = y + scroll_y
        width = self.size.width
        if row >= self.rows:
            return Strip.blank(width, self._base)
        strip = self._row_strip(row)
        if self.show_cursor and self.cursor_visible and row == self.cursor[0]:
            col = min(self.cursor[1], self.cols - 1)
            left, middle, right = strip.divide([col, col + 1, self.cols])[:3]
            strip = Strip.join([left, middle.apply_style(_CURSOR), right])
        return strip.crop_extend(scroll_x, scroll_x + width, self._base).apply_offsets(
            scroll_x, row
        )

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    # ------------------------------------------------------------------ live feed

    def follow(self, client: Subscribes, session_id: str) -> None:
        """Show `session_id` live (replacing whatever was shown: blank until its worker
        sends the screen, with a note if it does not within SILENT_AFTER). Followed again
        (its stream ended while it is still listed as running: a kill under way), what it
        showed stays until the new stream's screen: it went blank."""
        again = self.seen and self.session_id == session_id
        self.stop()
        self.session_id = self.live = session_id
        if not again:
            self.seen = False
            self._reset(self.cols, self.rows)
            self.cursor, self.cursor_visible = (0, 0), False
            self.scroll_to(0, 0, animate=False, force=True, immediate=True)  # not the last one's
            self.set_timer(SILENT_AFTER, partial(self._silent, self._stream))
        self._feed(client, session_id, self._stream)

    def _silent(self, stream: int) -> None:
        """Nothing came from the followed session's worker yet (stopped, or very busy):
        say so where its screen goes, until its screen comes."""
        if stream != self._stream or self.seen or self.live is None:
            return
        note = f"(no screen from session {self.live} yet: its worker does not answer)"
        self._runs[0] = ((note, "default", "default", 0),)
        self.refresh_rows({0})

    def stop(self) -> None:
        """Close the current stream, which ends its thread; results still on their way
        from it (or from a subscribe not answered yet) are dropped."""
        self.live = None
        self._stream += 1
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    @work(thread=True, group="feed")
    def _feed(self, client: Subscribes, session_id: str, stream: int) -> None:
        """Subscribes and forwards events; everything it learns goes back by message."""
        worker = get_current_worker()
        try:
            if self.push_interval is None:
                subscription = client.subscribe(session_id)
            else:
                subscription = client.subscribe(session_id, interval=self.push_interval)
        except AgenttyError as exc:
            self.log.warning(f"cannot follow {session_id}: {exc}")
            self.post_message(self.Ended(session_id, stream))
            return
        self.post_message(self._Subscribed(stream, subscription))
        for event in subscription.events(lambda: worker.is_cancelled):
            self.enqueue(event, stream)
        if subscription.ended:
            self.post_message(self.Ended(session_id, stream))

    def on_terminal_view__subscribed(self, message: _Subscribed) -> None:
        message.stop()
        if message.stream == self._stream and self._subscription is None:
            self._subscription = message.subscription
        else:
            message.subscription.close()  # the view moved on while it was connecting

    def enqueue(self, event: JSONObject, stream: int | None = None) -> None:
        """Buffer a screen event (from any thread); the view applies what is buffered on
        its next turn, or when its next frame is due. `stream`: the follow() it came from
        (None: whatever is shown)."""
        with self._lock:
            self._pending.append((stream, event))
            if self._posted or self.paced:
                return
            self._posted = True
        self.post_message(self._Update())

    def on_terminal_view_ended(self, message: Ended) -> None:
        if message.stream is not None and message.stream != self._stream:
            message.stop()  # the end of a stream the view had already left
        elif message.session_id == self.live:
            self.live = None

    def on_terminal_view__update(self, message: _Update) -> None:
        message.stop()
        self._apply_pending()

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            # With a frame interval, the feed posts nothing more until the frame is due.
            self._posted = self.frame_interval > 0 and not self.paced
        events = [e for stream, e in pending if stream is None or stream == self._stream]
        if events:
            self.seen = True
            self.apply_event(merge_events(events))
        if self.frame_interval > 0 and not self.paced:
            self.set_timer(self.frame_interval, self._frame_due)

    def flush(self) -> None:
        """Apply whatever is buffered now (a paced view's owner calls it on its clock)."""
        with self._lock:
            if not self._pending:
                return
        self._apply_pending()

    def _frame_due(self) -> None:
        with self._lock:
            if not self._pending:
                self._posted = False  # idle: the next event is shown at once
                return
        self._apply_pending()

    def on_unmount(self) -> None:
        self.stop()

    # ------------------------------------------------------------------ keyboard

    def watch_attached(self, attached: bool) -> None:
        self.set_class(attached, "-attached")

    def action_detach(self) -> None:
        """Detached at once, here: the keys that came in the same read as ctrl+] (a paste,
        a link's batch) are not the program's (they were typed into it after the detach)."""
        if self.attached:
            self.attached = False
            self.post_message(self.Detached())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.attached if action == "detach" else True

    def on_key(self, event: events.Key) -> None:
        if not self.attached:
            return
        event.stop()
        event.prevent_default()
        mapped = agentty_key(event)
        if mapped is not None:
            self.post_message(self.Input(self, *mapped))

    def on_paste(self, event: events.Paste) -> None:
        if self.attached:
            event.stop()
            self.post_message(self.Input(self, "paste", event.text))

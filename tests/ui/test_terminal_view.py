"""The terminal view on its own, fed screen events directly: which rows it keeps in view."""

from __future__ import annotations

from textual.app import App, ComposeResult

from agentty_core.protocol import JSONObject
from agentty_ui.widgets.terminal_view import TerminalView


def screen(rows: int, cursor_row: int, visible: bool = True) -> JSONObject:
    lines = {str(r): [[f"line {r}", "default", "default", 0]] for r in range(rows)}
    cursor = {"row": cursor_row, "col": 0, "visible": visible}
    return {"size": {"cols": 80, "rows": rows}, "rows": lines, "cursor": cursor}


def cursor(row: int, visible: bool = True) -> JSONObject:
    return {"cursor": {"row": row, "col": 0, "visible": visible}}


class Small(App[None]):
    """A view 10 rows high and narrower than the screen (a horizontal scrollbar)."""

    CSS = "TerminalView { height: 10; width: 60; }"

    def compose(self) -> ComposeResult:
        yield TerminalView()


def cursor_shown(view: TerminalView) -> bool:
    top, rows = view.scroll_offset.y, view.scrollable_content_region.height
    return top <= view.cursor[0] < top + rows


async def test_the_cursor_row_is_kept_above_the_scrollbar() -> None:
    async with Small().run_test(size=(100, 30)) as pilot:
        view = pilot.app.query_one(TerminalView)
        view.apply_event(screen(24, 5))
        await pilot.pause()
        view.apply_event(cursor(23))
        await pilot.pause()
        assert view.scrollable_content_region.height == 9  # the scrollbar's row taken
        assert cursor_shown(view)


async def test_a_cursor_shown_again_on_the_row_it_was_hidden_on_is_revealed() -> None:
    """A progress bar hides the cursor while the output fills the screen; the prompt then
    shows it again on the row where it went while hidden."""
    async with Small().run_test(size=(100, 30)) as pilot:
        view = pilot.app.query_one(TerminalView)
        view.apply_event(screen(24, 3))
        await pilot.pause()
        view.apply_event(cursor(23, visible=False))
        await pilot.pause()
        assert view.scroll_offset.y == 0  # a hidden cursor says nothing of where to look
        view.apply_event(cursor(23))
        await pilot.pause()
        assert cursor_shown(view)


async def test_a_view_that_grows_shows_the_rows_above_its_cursor() -> None:
    """A grid tile follows its session before it is laid out: scrolled while it was a few
    rows high, its cursor's row stayed at its top once it had room, the output above it
    hidden (an outside round)."""
    async with Small().run_test(size=(100, 30)) as pilot:
        view = pilot.app.query_one(TerminalView)
        view.styles.height = 3
        await pilot.pause()
        view.apply_event(screen(24, 12))
        await pilot.pause()
        assert view.scroll_offset.y > 5  # (the cursor's row in the 2 rows in view)
        view.styles.height = 10
        await pilot.pause()
        height = view.scrollable_content_region.height
        assert view.scroll_offset.y == 12 - height + 1  # the cursor on the last row


async def test_a_reader_who_scrolled_away_is_not_pulled_back_by_output() -> None:
    async with Small().run_test(size=(100, 30)) as pilot:
        view = pilot.app.query_one(TerminalView)
        view.apply_event(screen(24, 23))
        await pilot.pause()
        view.scroll_to(y=0, animate=False, immediate=True)
        view.apply_event({"rows": {"0": [["changed", "default", "default", 0]]}})
        await pilot.pause()
        assert view.scroll_offset.y == 0  # the cursor did not move: the reader stays


async def test_control_characters_in_a_row_are_drawn_as_their_escapes() -> None:
    """A row comes from a worker: here from the emulator, which keeps none, but from a host
    it is whatever that host's agentty sent. An OSC title set or clipboard write in it
    reached the terminal as it came (an attack round)."""
    hostile = "a\x1b]52;c;aGk=\x07b\x9bc\u00a0d"  # (a non-breaking space is drawn)
    async with Small().run_test(size=(100, 30)) as pilot:
        view = pilot.app.query_one(TerminalView)
        view.apply_event(
            {"size": {"cols": 80, "rows": 2}, "rows": {"0": [[hostile, "red", "default", 0]]}}
        )
        await pilot.pause()
        drawn = "".join(segment.text for segment in view.render_line(0))
        assert drawn.startswith("a\\x1b]52;c;aGk=\\x07b\\x9bc\u00a0d"), drawn
        view.show_lines([hostile])
        await pilot.pause()
        drawn = "".join(segment.text for segment in view.render_line(0))
        assert "\x1b" not in drawn and "\x07" not in drawn, drawn

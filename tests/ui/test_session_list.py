"""The session table on its own: rows updated in place show every cell in full."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from agentty_core.proc.usage import Usage
from agentty_core.state.records import Record
from agentty_ui.widgets.session_list import SessionList

RECORD: Record = {"id": "00000001", "name": "build", "status": "running", "argv": ["make"]}


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield SessionList()


async def test_a_cell_that_grows_is_shown_in_full_even_if_drawn_before_the_table_idles() -> None:
    """Textual widens a column on the table's next idle but caches lines drawn before it
    (textual#3533): a Mem value that arrived after its row was drawn stayed cut off ("12.")
    until some other cell changed."""
    app = TableApp()
    async with app.run_test(size=(100, 6)) as pilot:
        table = app.query_one(SessionList)
        table.update_sessions([RECORD], {}, 0.0)  # the quick listing: no usage yet
        await pilot.pause()
        table.update_sessions([RECORD], {"00000001": Usage(1.0, 12 * 1024 * 1024, 1)}, 0.0)
        table.render_line(1)  # a frame drawn before the idle that widens the column
        await pilot.pause()
        assert "12.0M" in table.render_line(1).text
        assert "Mem  " in table.render_line(0).text


async def test_columns_keep_their_width_when_a_cell_narrows() -> None:
    """Stable columns: a narrower value does not make the table measure the whole column
    again (on every poll that changes one) nor shift the columns after it."""
    app = TableApp()
    async with app.run_test(size=(100, 6)) as pilot:
        table = app.query_one(SessionList)
        table.update_sessions([RECORD], {"00000001": Usage(1.0, 900 * 1024, 1)}, 0.0)
        await pilot.pause()
        wide = [column.content_width for column in table.columns.values()]
        table.update_sessions([RECORD], {"00000001": Usage(1.0, 12 * 1024 * 1024, 1)}, 0.0)
        await pilot.pause()
        assert "12.0M " in table.render_line(1).text
        assert [column.content_width for column in table.columns.values()] == wide


def test_a_time_without_its_offset_is_utc_not_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hand-written record's naive time: the age column read it in the machine's zone
    while `gc --older-than` reads it as UTC."""
    import time

    from agentty_ui.model import timestamp

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        naive, aware = "2026-12-04T10:00:00", "2026-12-04T10:00:00+00:00"
        assert timestamp(naive) == timestamp(aware) is not None
    finally:
        monkeypatch.undo()
        time.tzset()


async def test_a_long_name_is_cut_short_and_every_column_stays_on_screen() -> None:
    """A 64-character name pushed Age, Active, CPU%, Mem and Exit off a 120-column screen
    for every row."""
    name = "a" * 40 + "-tail-of-a-very-long-name"  # 64 characters, as `start` allows
    record: Record = {**RECORD, "name": name, "argv": ["/bin/" + "p" * 64], "exitCode": 0}
    app = TableApp()
    async with app.run_test(size=(120, 6)) as pilot:
        table = app.query_one(SessionList)
        table.update_sessions([record], {"00000001": Usage(1.0, 12 * 1024 * 1024, 1)}, 0.0)
        await pilot.pause()
        width = sum(column.get_render_width(table) for column in table.columns.values())
        assert width <= 120
        assert str(table.get_cell("00000001", "name")).endswith("…")
        table.filter = "tail-of-a-very-long-name"  # the filter still reads the whole name
        await pilot.pause()
        assert table.row_count == 1


async def test_the_filter_reads_the_command_line() -> None:
    """Twenty `bash` sessions differ by their arguments, which no column shows: the filter
    found none by them (an outside round). Not by the directory: a word of a path matched
    rows it did not name."""
    records: list[Record] = [
        {**RECORD, "id": f"0000000{i}", "argv": ["bash", "-c", f"while :; do {job}; done"],
         "command": f"bash -c 'while :; do {job}; done'", "cwd": f"/srv/{where}"}
        for i, (job, where) in enumerate([("make test", "api"), ("tail -f log", "web")], 1)
    ]  # fmt: skip
    app = TableApp()
    async with app.run_test(size=(120, 6)) as pilot:
        table = app.query_one(SessionList)
        table.update_sessions(records, {}, 0.0)
        for words, found in [("make", "00000001"), ("tail -f", "00000002"), ("web", None)]:
            table.filter = words
            await pilot.pause()
            assert list(table.rows) == ([found] if found else []), words


def test_an_ended_sessions_age_is_how_long_it_ran() -> None:
    """Its age kept counting as if it still ran (a 3 s session said 6m34s); its last
    activity, its end, still counts on."""
    from agentty_ui.model import timestamp

    started = "2026-12-04T10:00:00+00:00"
    ended: Record = {
        **RECORD,
        "status": "exited",
        "exitCode": 7,
        "startedAt": started,
        "lastActiveAt": "2026-12-04T10:00:03+00:00",
        "endedAt": "2026-12-04T10:00:03+00:00",
    }
    running: Record = {**ended, "status": "running", "exitCode": None}
    running.pop("endedAt")
    later = (timestamp(started) or 0.0) + 394.0
    table = SessionList()
    age, active = (
        table.columns_shown.index((k, t)) for k, t in (("age", "Age"), ("active", "Active"))
    )
    ended_cells = table.cells(ended, None, later)
    assert (ended_cells[age], ended_cells[active]) == ("3s", "6m31s")
    assert table.cells(running, None, later)[age] == "6m34s"

"""What keeps the dashboard cheap, checked by what it does (never by timing: speed is in
bench/): panes in the grid repaint on the screen's clock, CPU and memory are sampled only for
the rows in view and not while the grid covers the list."""

from __future__ import annotations

import threading

from textual.app import App, ComposeResult

from agentty_core.client import Client
from agentty_core.proc.usage import Usage, UsageSampler
from agentty_ui.app import AgenttyApp, create_app
from agentty_ui.screens.grid import GridScreen
from agentty_ui.widgets.session_list import SessionList
from agentty_ui.widgets.terminal_view import TerminalView
from tests.ui.conftest import wait_for

SIZE = (110, 36)


def event(text: str, row: int = 0) -> dict[str, object]:
    return {"event": "screen", "rows": {str(row): [[text, "default", "default", 0]]}}


async def test_a_paced_view_shows_events_only_when_flushed() -> None:
    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield TerminalView(paced=True, id="view")

    async with Host().run_test() as pilot:
        view = pilot.app.query_one(TerminalView)
        for text in ("first", "second"):
            view.enqueue(event(text))
        view.enqueue(event("other row", 3))
        await pilot.pause()
        assert view.line_text(0) == ""  # held until its owner's clock
        view.flush()
        assert (view.line_text(0), view.line_text(3)) == ("second", "other row")
        view.flush()  # nothing waiting: nothing to do
        assert view.line_text(0) == "second"


async def test_rows_that_scroll_reuse_their_strips() -> None:
    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield TerminalView(id="view")

    async with Host().run_test() as pilot:
        view = pilot.app.query_one(TerminalView)
        view.apply_event(
            {"rows": {str(r): [[f"line {r}", "default", "default", 0]] for r in range(5)}}
        )
        await pilot.pause()
        before = {r: view._row_strip(r) for r in range(1, 5)}
        # Scrolled by one: rows 0-3 now hold what rows 1-4 held.
        view.apply_event(
            {"rows": {str(r): [[f"line {r + 1}", "default", "default", 0]] for r in range(5)}}
        )
        await pilot.pause()
        assert all(view._row_strip(r - 1) is before[r] for r in range(1, 5))
        assert view.line_text(0) == "line 1"


class RecordingSampler(UsageSampler):
    """Remembers which sessions each poll sampled."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[set[str]] = []
        self.lock = threading.Lock()

    def sample_all(self, pids: dict[str, int]) -> dict[str, Usage]:
        with self.lock:
            self.calls.append(set(pids))
        return super().sample_all(pids)


def make_app(client: Client, sampler: UsageSampler) -> AgenttyApp:
    return create_app(client, sampler=sampler, poll_interval=0.2)


async def test_usage_sampled_for_rows_in_view_and_not_under_the_grid(client: Client) -> None:
    ids = [str(client.start(["cat"], name=f"s{i:02d}")["id"]) for i in range(12)]
    sampler = RecordingSampler()
    app = make_app(client, sampler)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: table.row_count == len(ids), 30)
        await pilot.pause()
        start = len(sampler.calls)  # a poll in flight may have begun with fewer rows listed
        await wait_for(pilot, lambda: len(sampler.calls) >= start + 3, 30)
        in_view = set(table.keys_in_view())
        assert 0 < len(in_view) < len(ids)  # the list shows fewer rows than there are
        assert all(call <= in_view | {app.selected} for call in sampler.calls[start + 1 :])
        # Under the grid nothing is sampled (its columns are not on screen).
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, GridScreen))
        await pilot.pause()
        seen = len(sampler.calls)
        await wait_for(pilot, lambda: len(sampler.calls) >= seen + 2, 30)
        assert all(call == set() for call in sampler.calls[seen + 1 :])
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, GridScreen))
        # Rows scrolled into view are sampled from the next poll on.
        table.move_cursor(row=len(ids) - 1)
        await pilot.pause()
        last = set(table.keys_in_view())
        newly = last - in_view
        await wait_for(pilot, lambda: any(call & newly for call in sampler.calls), 30)

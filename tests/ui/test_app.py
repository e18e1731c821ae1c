"""Pilot tests of the dashboard against real sessions and real workers."""

from __future__ import annotations

import gc
import os
import signal
import sys

import psutil
import pytest
from textual.widgets import Input, Label, Static

from agentty_core.client import Client
from agentty_core.ipc.subscription import Subscription
from agentty_core.protocol import str_list
from agentty_ui.app import AgenttyApp, create_app
from agentty_ui.model import status_of
from agentty_ui.screens.confirm import ConfirmScreen
from agentty_ui.screens.grid import GRID_FRAME, GridScreen, MiniPane
from agentty_ui.screens.help import HelpScreen
from agentty_ui.screens.new_session import NewSessionScreen
from agentty_ui.widgets.filter_bar import FilterBar
from agentty_ui.widgets.input_bar import InputBar
from agentty_ui.widgets.orphan_banner import OrphanBanner
from agentty_ui.widgets.session_list import SessionList
from agentty_ui.widgets.terminal_view import TerminalView
from tests.helpers.cli import agentty_json
from tests.ui.conftest import wait_for

SIZE = (110, 36)


def make_app(client: Client) -> AgenttyApp:
    return create_app(client, poll_interval=0.2)


def screen_text(app: AgenttyApp) -> str:
    return app.query_one("#screen", TerminalView).text


def cell(app: AgenttyApp, session_id: str, column: str) -> str:
    table = app.query_one(SessionList)
    if session_id not in table.rows:
        return ""
    return str(table.get_cell(session_id, column))


def keyboard(app: AgenttyApp) -> tuple[bool, object]:
    """Whether the app is attached, and what has focus."""
    return app.attached, app.focused


def notified(app: AgenttyApp, needle: str) -> bool:
    return any(needle in f"{n.title} {n.message}" for n in app._notifications)


async def test_list_follows_sessions_started_and_killed_elsewhere(client: Client) -> None:
    by_cli = agentty_json("start", "--name", "from-cli", "--", "sleep", "60")["id"]
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: cell(app, by_cli, "status") == "running")
        assert cell(app, by_cli, "name") == "from-cli"
        assert cell(app, by_cli, "program") == "sleep"
        by_client = str(client.start(["sleep", "60"], name="from-client")["id"])
        await wait_for(pilot, lambda: cell(app, by_client, "status") == "running", 3)
        await wait_for(pilot, lambda: cell(app, by_client, "mem") != "", 3)
        client.kill(by_client, grace=0.5)
        await wait_for(pilot, lambda: cell(app, by_client, "status") == "exited", 3)
        assert cell(app, by_client, "exit") == "SIGHUP"
        # Exited sessions stay listed until pruned, which asks first.
        await pilot.press("p")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: by_client not in app.query_one(SessionList).rows, 5)
        assert by_cli in app.query_one(SessionList).rows


async def test_attach_sends_keys_and_ctrl_bracket_detaches(client: Client) -> None:
    sid = str(client.start(["cat"], name="cat")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.selected == sid)
        await pilot.press("enter")
        assert app.attached
        view = app.query_one("#screen", TerminalView)
        assert app.focused is view
        # Dashboard keys (k, q, n) go to the session while attached.
        await pilot.press("k", "q", "n", "space", "h", "i", "enter")
        await wait_for(pilot, lambda: screen_text(app).count("kqn hi") == 2)
        await pilot.press("ctrl+right_square_bracket")
        attached, focused = keyboard(app)  # a call: mypy keeps no narrowing from above
        assert not attached and isinstance(focused, SessionList)
        # Ctrl+D goes through as a key: cat sees end of input and exits.
        await pilot.press("enter", "ctrl+d")
        await wait_for(pilot, lambda: cell(app, sid, "status") == "exited")
        assert not keyboard(app)[0]  # the session ended: detached, and said so (it was not)
        await wait_for(pilot, lambda: notified(app, f"session {sid} exited (code 0): detached"))
        said = [n.message for n in app._notifications if "detached" in n.message]
        assert len(said) == 1, said  # (one toast, saying how it ended)
        await wait_for(pilot, lambda: "kqn hi" in screen_text(app))  # the final screen


async def test_send_input_bar_with_and_without_enter_and_history(client: Client) -> None:
    sid = str(client.start(["cat"], name="cat")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.selected == sid)
        await pilot.press("i")
        await pilot.press(*"one", "enter")
        await wait_for(pilot, lambda: screen_text(app).count("one") == 2)
        await pilot.press("up", "alt+enter")  # history, sent without Enter
        await wait_for(pilot, lambda: "one\none" in screen_text(app))
        await pilot.press("ctrl+t", "x", "enter")  # the toggle: still without Enter
        await wait_for(pilot, lambda: "onex" in screen_text(app))
        await pilot.press("escape")
        assert isinstance(app.focused, SessionList)


async def test_kill_through_the_modal(client: Client) -> None:
    sid = str(client.start(["sleep", "60"], name="victim")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.selected == sid)
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")  # cancel: nothing happens
        assert client.resolve(sid)["status"] == "running"
        await pilot.press("k")
        await pilot.click("#yes")
        await wait_for(pilot, lambda: client.resolve(sid)["status"] == "exited")
        await wait_for(pilot, lambda: cell(app, sid, "status") == "exited")
        await wait_for(pilot, lambda: notified(app, "exited (signal SIGHUP)"))


async def test_new_session_from_the_modal(client: Client) -> None:
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, NewSessionScreen)
        cwd = app.screen.query_one("#cwd", Input)
        assert cwd.value == os.getcwd()  # cleared, it is still this directory: it says so
        assert cwd.placeholder == f"this dashboard's directory ({os.getcwd()})"
        await pilot.press(*"sh -c 'echo made it; exec cat'")
        preview = str(app.screen.query_one("#argv-preview").render())
        assert "['sh', '-c', 'echo made it; exec cat']" in preview
        await pilot.press("tab", *"fresh", "enter")
        await wait_for(pilot, lambda: any(r.get("name") == "fresh" for r in app.records.values()))
        sid = next(s for s, r in app.records.items() if r.get("name") == "fresh")
        await wait_for(pilot, lambda: app.selected == sid)
        await wait_for(pilot, lambda: "made it" in screen_text(app))


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_orphan_warning_and_ending_them(client: Client) -> None:
    # The program itself dies with its worker (PDEATHSIG); a HUP-ignoring background child
    # of it outlives both.
    script = "trap '' HUP; sleep 1000000 & echo child $!; wait"
    rec = client.start(["sh", "-c", script], name="stubborn")
    sid, worker = str(rec["id"]), rec["workerPid"]
    assert isinstance(worker, int)
    screen = client.wait(sid, regex=r"child \d+", timeout=10)
    lines = screen["lines"]
    assert isinstance(lines, list)
    child = int(next(line for line in lines if "child" in line).split()[1])
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: cell(app, sid, "status") == "running")
        os.kill(worker, signal.SIGKILL)
        banner = app.query_one(OrphanBanner)
        await wait_for(pilot, lambda: banner.display and banner.orphans)
        await wait_for(pilot, lambda: cell(app, sid, "status") == "lost")
        assert any(o.pid == child and o.session_id == sid for o in banner.orphans)
        text = str(banner.query_one("#orphan-text").render())
        assert f"pid {child}" in text and sid in text
        button = banner.query_one("#end-orphans")
        await wait_for(pilot, lambda: button.region.width > 0 and button.region.y > 1)
        await pilot.pause()
        await pilot.click(button)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: _gone(child))
        await wait_for(pilot, lambda: not banner.orphans)
        # The lost session stays, and the banner with it: it says what removes it.
        text = str(banner.query_one("#orphan-text").render())
        assert text == (
            f"⚠ Lost sessions (worker died): {sid} (nothing of them runs: p prunes them from"
            " the list)"
        )
        await pilot.press("p", "y")
        await wait_for(pilot, lambda: not banner.display)


async def test_grid_shows_running_sessions_and_opens_one(client: Client) -> None:
    a = str(client.start(["sh", "-c", "echo pane-a; exec cat"], name="a")["id"])
    b = str(client.start(["sh", "-c", "echo pane-b; exec cat"], name="b")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: {a, b} <= set(app.records))
        await wait_for(pilot, lambda: app.main.query_one("#screen", TerminalView).live is not None)
        polls = app._polled
        await pilot.press("g")
        assert isinstance(app.screen, GridScreen)
        # The dashboard underneath stops streaming while covered, and polls don't restart it.
        await wait_for(pilot, lambda: app._polled >= polls + 2)
        assert app.main.query_one("#screen", TerminalView).live is None
        panes = list(app.screen.query(MiniPane))
        assert sorted(p.session_id for p in panes) == sorted([a, b])
        await wait_for(
            pilot,
            lambda: all(f"pane-{p.label[0]}" in p.query_one(TerminalView).text for p in panes),
        )
        # Its panes are kept out of the collector's passes while it is up (agentty_ui/heap.py).
        await wait_for(pilot, lambda: gc.get_freeze_count() > 0)
        pane_b = next(p for p in panes if p.session_id == b)
        await pilot.click(pane_b)
        await wait_for(pilot, lambda: not isinstance(app.screen, GridScreen))
        assert gc.get_freeze_count() == 0  # thawed with it: what it leaves can be collected
        assert app.selected == b
        await wait_for(pilot, lambda: "pane-b" in screen_text(app))


class RecordingClient(Client):
    """A client that notes every subscribe it is asked for (session, interval)."""

    def __init__(self) -> None:
        super().__init__(timeout=3.0)
        self.asked: list[tuple[str | None, float | None]] = []

    def subscribe(self, ref: str | None, *, interval: float | None = None) -> Subscription:
        self.asked.append((ref, interval))
        return super().subscribe(ref, interval=interval)


async def test_grid_panes_ask_their_workers_for_one_event_a_frame(client: Client) -> None:
    a = str(client.start(["sh", "-c", "echo pane-a; exec cat"], name="a")["id"])
    recording = RecordingClient()
    app = create_app(recording, poll_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "pane-a" in screen_text(app))
        assert recording.asked == [(a, None)]  # the main view: every event (~30 a second)
        await pilot.press("g")
        pane = app.screen.query_one(MiniPane)
        await wait_for(pilot, lambda: "pane-a" in pane.query_one(TerminalView).text)
        assert recording.asked[1:] == [(a, GRID_FRAME)]
        client.text(a, "typed-under-the-grid", enter=True)  # still live, a frame at a time
        await wait_for(pilot, lambda: "typed-under-the-grid" in pane.query_one(TerminalView).text)


async def test_a_session_whose_worker_is_stopped_never_shows_another_s_screen(
    client: Client,
) -> None:
    """Moving to a session whose worker does not answer (SIGSTOP): its pane is blank, then
    says so; never the screen of the session shown before (the view kept its rows)."""
    a = str(client.start(["sh", "-c", "echo alpha-screen; exec cat"], name="a")["id"])
    rec = client.start(["sh", "-c", "echo beta-screen; exec cat"], name="b")
    b, worker = str(rec["id"]), rec["workerPid"]
    assert isinstance(worker, int)
    client.wait(b, text="beta-screen", timeout=10)
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: table.row_count == 2)
        table.select(a)
        await wait_for(pilot, lambda: "alpha-screen" in screen_text(app))
        os.kill(worker, signal.SIGSTOP)
        try:
            table.select(b)
            await wait_for(pilot, lambda: app.selected == b)
            assert "alpha-screen" not in screen_text(app)
            await wait_for(pilot, lambda: "its worker does not answer" in screen_text(app))
            assert "alpha-screen" not in screen_text(app)
        finally:
            os.kill(worker, signal.SIGCONT)
        await wait_for(pilot, lambda: "beta-screen" in screen_text(app))
        assert "does not answer" not in screen_text(app)


async def test_a_tile_of_a_session_that_ended_before_the_grid_shows_its_last_screen(
    client: Client,
) -> None:
    """The grid is built from the last poll: a session that ended since is still listed as
    running; its tile cannot follow it and shows its final screen instead of nothing."""
    keep = str(client.start(["cat"], name="keep")["id"])
    sid = str(client.start(["sh", "-c", "read x; echo last-words-$x"], name="ends")["id"])
    app = create_app(client, poll_interval=60)  # no timed poll sees it end
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: app._polled >= 1 and table.row_count == 2)
        table.select(keep)  # the pane follows another session: its end polls nothing
        await wait_for(pilot, lambda: app.main.query_one("#screen", TerminalView).live == keep)
        polls = app._polled
        client.text(sid, "here", enter=True)
        client.wait(sid, exit=True, timeout=10)
        assert app._polled == polls and status_of(app.records[sid]) == "running"
        await pilot.press("g")
        tile = next(p for p in app.screen.query(MiniPane) if p.session_id == sid)
        await wait_for(pilot, lambda: "last-words-here" in tile.query_one(TerminalView).text)


async def test_a_grid_closed_at_once_leaves_nothing_frozen(client: Client) -> None:
    """Its freeze waits for its first frame: closed before that, it must not come after
    the thaw (agentty_ui/heap.py)."""
    client.start(["cat"], name="a")
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.records) == 1)
        await pilot.press("g", "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, GridScreen))
        await pilot.pause()
        assert gc.get_freeze_count() == 0


async def test_errors_become_notifications_and_help_opens(client: Client) -> None:
    sid = str(client.start([sys.executable, "-c", "pass"], name="quick")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: cell(app, sid, "status") == "exited")
        # Input for an exited session: the core's error is a notification, not a traceback.
        view = app.query_one("#screen", TerminalView)
        view.session_id = sid
        app.on_terminal_view_input(TerminalView.Input(view, "text", "x"))
        await wait_for(pilot, lambda: notified(app, "Input not sent"))
        await pilot.press("enter")  # attach refuses an exited session
        assert not app.attached
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.is_running


async def test_frame_interval_holds_updates_until_the_frame_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from textual.app import App, ComposeResult

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield TerminalView(frame_interval=0.3, id="view")

    def event(text: str) -> dict[str, object]:
        return {"event": "screen", "rows": {"0": [[text, "default", "default", 0]]}}

    async with Host().run_test() as pilot:
        view = pilot.app.query_one(TerminalView)
        applied: list[object] = []
        apply = view.apply_event

        def counting(e: dict[str, object]) -> None:
            applied.append(e)
            apply(e)

        monkeypatch.setattr(view, "apply_event", counting)
        view.enqueue(event("first"))
        await wait_for(pilot, lambda: view.line_text(0) == "first")
        for text in ("second", "third", "fourth"):
            view.enqueue(event(text))
        await pilot.pause()
        assert view.line_text(0) == "first"  # held: the next frame is not due yet
        await wait_for(pilot, lambda: view.line_text(0) == "fourth")
        assert len(applied) == 2  # the three waiting events were applied as one


async def test_an_ended_session_shows_its_last_screen_and_scrollback(client: Client) -> None:
    sid = str(client.start(["sh", "-c", "seq 1 60; echo last-line"], name="counted")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: cell(app, sid, "status") == "exited")
        await wait_for(pilot, lambda: app.selected == sid and "last-line" in screen_text(app))
        assert app.query_one("#screen", TerminalView).live is None
        await pilot.press("s")
        scrollback = app.query_one("#scrollback", TerminalView)
        await wait_for(pilot, lambda: "last-line" in scrollback.text)
        assert scrollback.text.startswith("1\n2\n3\n")
        # It opens at the newest lines, as a terminal's scrollback does (it showed the
        # oldest, which looked frozen on a running session: an outside round).
        await wait_for(pilot, lambda: scrollback.max_scroll_y > 0)
        await wait_for(pilot, lambda: scrollback.scroll_y == scrollback.max_scroll_y)


async def test_the_scrollback_tab_never_shows_another_session_s_lines(client: Client) -> None:
    """A session whose worker is stopped answers late or never: the session selected before
    kept its scrollback on show under the new selection, for seconds (an outside round)."""
    first = str(client.start(["sh", "-c", "echo first-session; exec cat"], name="a")["id"])
    second = str(client.start(["cat"], name="b")["id"])
    worker = client.resolve(second)["workerPid"]
    assert isinstance(worker, int)
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: table.row_count == 2)
        table.select(first)
        await wait_for(pilot, lambda: app.selected == first)
        await pilot.press("s")
        scrollback = app.query_one("#scrollback", TerminalView)
        await wait_for(pilot, lambda: "first-session" in scrollback.text)
        os.kill(worker, signal.SIGSTOP)
        try:
            table.select(second)
            await wait_for(pilot, lambda: app.selected == second)
            await pilot.pause(0.3)
            assert "first-session" not in scrollback.text, scrollback.text
        finally:
            os.kill(worker, signal.SIGCONT)
        table.select(first)
        await wait_for(pilot, lambda: app.selected == first)
        await pilot.press("s")
        await wait_for(pilot, lambda: "first-session" in scrollback.text)
        await pilot.press("slash", *"nomatch", "enter")  # nothing selected: nothing shown
        await wait_for(pilot, lambda: app.selected is None)
        await wait_for(pilot, lambda: "first-session" not in scrollback.text)


async def test_the_list_under_the_grid_catches_up_when_the_grid_closes(client: Client) -> None:
    """The list is not redrawn under the grid (every changed cell repainted the panes over
    it); closing the grid shows what the polls found meanwhile, without waiting for one."""
    client.start(["sh", "-c", "echo one; exec cat"], name="one")
    app = create_app(client, poll_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: table.row_count == 1)
        await pilot.press("g")
        assert isinstance(app.screen, GridScreen)
        late = str(client.start(["cat"], name="late", activate=False)["id"])
        await wait_for(pilot, lambda: late in app.records)
        assert late not in table.rows  # found by a poll, not drawn under the grid
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main
        assert late in table.rows


def shown(view: TerminalView) -> str:
    """What the view draws (its rows in view, not under a scrollbar), not the whole screen
    it holds."""
    rows = view.scrollable_content_region.height
    return "\n".join(view.render_line(y).text.rstrip() for y in range(rows))


def cursor_shown(view: TerminalView) -> bool:
    """The cursor's row is in view (not scrolled off, not under a scrollbar)."""
    top, rows = view.scroll_offset.y, view.scrollable_content_region.height
    return top <= view.cursor[0] < top + rows


async def test_a_tile_shorter_than_its_screen_shows_the_rows_at_the_cursor(
    client: Client,
) -> None:
    """A tile has fewer rows than its session's screen: it shows the rows around the
    cursor, where a shell's prompt and a log's newest lines are (tmux's way with a smaller
    client), not the top of the screen, and keeps them in view as the output goes on."""
    sid = str(client.start(["sh", "-c", "seq 1 100; exec cat"], name="log", rows=60)["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: sid in app.records)
        await pilot.press("g")
        view = app.screen.query_one(MiniPane).query_one(TerminalView)
        await wait_for(pilot, lambda: "100" in view.text)
        assert 0 < view.size.height < 60
        await wait_for(pilot, lambda: "\n100\n" in f"\n{shown(view)}\n")
        assert cursor_shown(view)
        assert "\n42\n" not in f"\n{shown(view)}\n"  # the screen's top row, out of view
        client.text(sid, "typed-later", enter=True)  # cat echoes it: the screen scrolls
        await wait_for(pilot, lambda: "typed-later" in shown(view))


async def test_the_open_pane_too_small_for_its_screen_shows_the_rows_at_the_cursor(
    client: Client,
) -> None:
    sid = str(client.start(["sh", "-c", "seq 1 40; exec cat"], name="log")["id"])
    app = make_app(client)
    async with app.run_test(size=(70, 20)) as pilot:  # fewer rows and columns than the screen
        await wait_for(pilot, lambda: "40" in screen_text(app))
        view = app.query_one("#screen", TerminalView)
        assert 0 < view.size.height < 24
        assert app.selected == sid
        await wait_for(pilot, lambda: "\n40\n" in f"\n{shown(view)}\n")
        assert view.cursor[0] == 23  # under the last line, in view once the scrollbar shows
        await wait_for(pilot, lambda: view.show_horizontal_scrollbar and cursor_shown(view))


async def test_what_is_typed_past_a_narrow_pane_s_edge_is_followed_sideways(
    client: Client,
) -> None:
    """Attached in a window narrower than the session, the text typed past the pane's right
    edge, cursor and all, was never shown (an outside round): the view follows the cursor
    across as it follows it down, and back to the left with the next line."""
    sid = str(client.start(["cat"], name="narrow")["id"])
    app = make_app(client)
    async with app.run_test(size=(60, 15)) as pilot:
        await wait_for(pilot, lambda: app.selected == sid)
        view = app.query_one("#screen", TerminalView)
        await pilot.press("enter")  # attach
        await wait_for(pilot, lambda: app.attached)
        digits = "1234567890" * 7
        await pilot.press(*digits)
        await wait_for(pilot, lambda: view.cursor[1] == len(digits))
        await wait_for(pilot, lambda: view.scroll_offset.x > 0)
        left, width = view.scroll_offset.x, view.scrollable_content_region.width
        assert left <= view.cursor[1] < left + width
        assert "7890" in shown(view)
        await pilot.press("enter")
        await wait_for(pilot, lambda: view.cursor[1] == 0 and view.scroll_offset.x == 0)


@pytest.mark.parametrize("row", [0, 2])
async def test_a_filter_that_hides_every_row_leaves_nothing_selected(
    client: Client, row: int
) -> None:
    """The hidden session stayed selected: the pane still showed it, and `i` and `k` acted
    on it. From a row below the first, the table's late highlight of a row the filter had
    removed made another hidden session the selection (an outside round)."""
    sids = [client.start(["cat"], name=f"visible{i}")["id"] for i in range(3)]
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: table.row_count == 3 and app.selected is not None)
        table.move_cursor(row=row)
        await wait_for(pilot, lambda: app.selected == table.selected_id)
        sid = app.selected
        assert sid in sids
        await pilot.press("slash", *"nomatch", "enter")
        await wait_for(pilot, lambda: app.query_one(SessionList).row_count == 0)
        await pilot.pause()
        assert app.selected is None
        assert "No session selected" in str(app.query_one("#info").render())
        await pilot.press("i")
        assert not app.query_one(InputBar).has_class("-visible")
        await pilot.press("k")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        assert not app.attached
        assert notified(app, "no session selected")
        await pilot.press("slash", "escape")  # the filter cleared: its row is back, selected
        await wait_for(pilot, lambda: app.selected == sid)


async def test_esc_on_the_list_clears_the_filter_and_home_end_go_to_the_ends(
    client: Client,
) -> None:
    """A filter kept with enter could be cleared only by `/` then `esc` (nothing said so);
    Home and End scrolled the table sideways (an outside round)."""
    sids = [client.start(["cat"], name=f"row{i}")["id"] for i in range(3)]
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: table.row_count == 3)
        table.focus()
        await pilot.press("end")
        assert table.cursor_row == 2
        await pilot.press("home")
        assert table.cursor_row == 0
        await pilot.press("slash", *"row1", "enter")
        await wait_for(pilot, lambda: table.row_count == 1)
        offered = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "clear_filter" in offered
        await pilot.press("escape")
        await wait_for(pilot, lambda: table.row_count == 3)
        assert table.filter == "" and not app.query_one(FilterBar).has_class("-visible")
        assert app.selected == sids[1]  # (the row it was on)
        offered = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "clear_filter" not in offered


async def test_ending_many_orphans_asks_with_a_list_that_says_how_many(client: Client) -> None:
    """41 pids ran past the dialog's edge, the last cut mid-number."""
    from agentty_core.proc.orphans import Orphan
    from tests.ui.test_markup import shown

    me = psutil.Process(os.getpid())
    app = create_app(client, poll_interval=60)  # no poll's sweep replaces the list set here
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app._polled >= 1)  # the first poll's sweep is done
        app.orphans = [Orphan(17000 + i, "deadbeef", "sleep", 5.0, me) for i in range(41)]
        await pilot.press("e")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.pause()
        body = app.screen.query_one(".dialog-body", Label)
        pids = ", ".join(str(17000 + i) for i in range(8))
        assert str(body.render()) == f"End 41 processes: {pids} and 33 more?"
        dialog = app.screen.query_one("#dialog")
        assert body.region.right <= dialog.content_region.right and body.region.height == 2
        assert "and 33 more?" in shown(app)


async def test_a_text_field_takes_the_word_keys_of_alt(client: Client) -> None:
    """The dashboard's parser reads ESC DEL as Alt+Backspace and ESC b / ESC f as Alt+B /
    Alt+F (an attached program gets them so): a field's delete-word and word moves, which
    Textual's parser gave as Ctrl+W and Ctrl+Left / Ctrl+Right, were lost (a review)."""
    from textual.widgets import Input

    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"foo bar")
        field = app.query_one("#filter-input", Input)
        await pilot.press("alt+b")
        assert field.cursor_position == 4
        await pilot.press("alt+f", "alt+backspace")
        assert field.value == "foo "


async def test_the_footer_follows_the_window_as_it_is_resized(client: Client) -> None:
    """Made compact on a live resize, the footer kept the palette's key and lost Quit: its
    keys are placed when it is composed (a review)."""
    from textual.widgets._footer import FooterKey

    from agentty_ui.widgets.footer import AdaptiveFooter

    app = make_app(client)
    async with app.run_test(size=(120, 40)) as pilot:
        footer = app.query_one(AdaptiveFooter)

        def keys() -> list[str]:
            return [str(k.action) for k in footer.query(FooterKey)]

        await wait_for(pilot, lambda: "quit" in keys())
        assert not footer.compact and "command_palette" in keys()
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: footer.compact and "command_palette" not in keys())
        assert "quit" in keys() and "help" in keys()
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: not footer.compact and "command_palette" in keys())


@pytest.fixture
def held_longer(monkeypatch: pytest.MonkeyPatch) -> float:
    """The key hold made long enough that a loaded machine's pauses fall inside it."""
    import agentty_ui.app

    monkeypatch.setattr(agentty_ui.app, "KEYS_HELD_FOR", 3.0)
    return 3.0


async def test_keys_typed_for_a_session_that_just_ended_do_nothing(
    client: Client, held_longer: float
) -> None:
    """Attached, the program ends, and what was being typed for it (`echo done`) went to the
    dashboard: `e` ended orphans, `n` opened a dialog, `k` `y` killed, `q` quit. The same
    after an attach refused (the session had ended). An outside round in tmux."""
    sid = str(client.start(["sh", "-c", "read x; exit 0"], name="short")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.selected == sid)
        await pilot.press("enter", "x", "enter")  # attached: the program reads it and ends
        await wait_for(pilot, lambda: not app.attached)
        await pilot.press("n", "k")
        assert not isinstance(app.screen, (NewSessionScreen, ConfirmScreen)), app.screen
        await pilot.pause(held_longer + 0.1)
        await pilot.press("enter")  # ended: refused, and the keys that follow held again
        await wait_for(pilot, lambda: notified(app, "nothing to attach to"))
        await pilot.press("n")
        assert not isinstance(app.screen, NewSessionScreen)
        await pilot.pause(held_longer + 0.1)
        await pilot.press("n")  # a moment later, the dashboard's again
        assert isinstance(app.screen, NewSessionScreen)


async def test_an_enter_typed_for_a_session_that_ended_attaches_no_other(
    client: Client, held_longer: float
) -> None:
    """The ended session filtered out of the list, the cursor moved to another, and the
    list's own enter (no dashboard action: not held) attached to that one (a review)."""
    other = str(client.start(["cat"], name="other")["id"])
    short = str(client.start(["sh", "-c", "read x; exit 0"], name="short")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: other in table.rows and short in table.rows)
        await pilot.press("slash", *"running", "enter")
        app._select(short)
        await wait_for(pilot, lambda: app.selected == short)
        await pilot.press("enter", "x", "enter")
        await wait_for(pilot, lambda: not app.attached and short not in table.rows)
        await pilot.press("enter")
        await pilot.pause()
        assert not app.attached


async def test_input_to_an_ended_session_is_refused_before_the_bar_opens(
    client: Client,
) -> None:
    """`i` opened the bar for an exited session; only sending said it had ended."""
    sid = str(client.start(["true"], name="done")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.selected == sid and cell(app, sid, "status") == "exited")
        await pilot.press("i")
        await wait_for(pilot, lambda: notified(app, f"session {sid} is exited: nothing to send to"))
        assert not app.query_one(InputBar).has_class("-visible")


async def test_a_text_field_s_keys_are_not_offered_as_the_dashboard_s(client: Client) -> None:
    """The input and filter bars type `/`, `k`, `q`: the footer still offered them as
    Filter, Kill and Quit."""
    from textual.widgets._footer import FooterKey

    from agentty_ui.widgets.footer import AdaptiveFooter

    client.start(["cat"], name="cat")
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        footer = app.query_one(AdaptiveFooter)

        def keys() -> list[str]:
            return [str(k.action) for k in footer.query(FooterKey)]

        await wait_for(pilot, lambda: "filter" in keys() and "kill" in keys())
        await pilot.press("i")
        await wait_for(pilot, lambda: "filter" not in keys() and "kill" not in keys())
        assert "new" not in keys()
        await pilot.press("f1")  # a key no field types still works there (a review)
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await pilot.press("escape")
        await wait_for(pilot, lambda: "filter" in keys() and "kill" in keys())
        await pilot.press("slash", "ctrl+q")  # Textual's quit, from a field too
        await wait_for(pilot, lambda: not app.is_running)


async def test_the_selected_row_stays_in_view_as_the_list_gets_shorter(client: Client) -> None:
    ids = [str(client.start(["sleep", "60"], name=f"s{i}")["id"]) for i in range(14)]
    app = make_app(client)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: all(i in table.rows for i in ids))
        await pilot.press("end")
        await wait_for(pilot, lambda: table.cursor_row == table.row_count - 1)
        await pilot.resize_terminal(80, 24)

        def cursor_in_view() -> bool:
            top = table.scroll_offset.y + 1  # (the header row)
            return top <= table.cursor_row + 1 < top + table.scrollable_content_region.height

        await wait_for(pilot, cursor_in_view)


async def test_the_new_session_dialog_fits_a_short_window(client: Client) -> None:
    """At 80x24 its buttons, and an error it said, were below its cut-off edge."""
    app = make_app(client)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, NewSessionScreen)
        await pilot.press(*"no-such-program-xyz", "enter")
        error = app.screen.query_one("#new-error")
        await wait_for(pilot, lambda: "command not found" in str(error.render()))
        screen = app.screen.region
        for found in ("#new-error", "#start", "#cancel"):
            widget = app.screen.query_one(found)
            await wait_for(pilot, lambda w=widget: screen.contains_region(w.region))  # type: ignore[misc]


async def test_a_24_row_program_fits_the_pane_at_120x40_with_a_long_list(client: Client) -> None:
    """With the list a third of the window, a standard 80x24 program lost its last row (vim's
    status line, htop's keys) once nine sessions were listed (an outside round in tmux)."""
    ids = [str(client.start(["sleep", "60"], name=f"s{i}")["id"]) for i in range(12)]
    app = make_app(client)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: all(i in table.rows for i in ids))
        view = app.query_one("#screen", TerminalView)
        await wait_for(pilot, lambda: view.content_region.height >= 24)


async def test_an_empty_filter_bar_left_with_tab_closes(client: Client) -> None:
    """`/`, `tab`: the empty bar stayed, and `esc` on the list did nothing (no filter set)."""
    client.start(["cat"], name="cat")
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        bar = app.query_one(FilterBar)
        await pilot.press("slash")
        assert bar.has_class("-visible")
        await pilot.press("tab")
        await wait_for(pilot, lambda: not bar.has_class("-visible"))
        await pilot.press("slash", *"ca", "tab")  # a filter set stays shown
        await pilot.pause()
        assert bar.has_class("-visible")


async def test_the_grid_opens_on_the_session_selected_in_the_list(client: Client) -> None:
    """`g` always focused the first tile, whichever session was selected."""
    ids = [str(client.start(["cat"], name=f"t{i}")["id"]) for i in range(3)]
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(SessionList)
        await wait_for(pilot, lambda: all(i in table.rows for i in ids))
        app._select(ids[2])
        await wait_for(pilot, lambda: app.selected == ids[2])
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, GridScreen))
        await wait_for(
            pilot,
            lambda: isinstance(app.focused, MiniPane) and app.focused.session_id == ids[2],
        )


async def test_keys_in_the_same_read_as_the_detach_are_not_typed(client: Client) -> None:
    """ctrl+] and what followed it in one read (a paste, an ssh link's batch): the keys after
    it were typed into the program after the detach (`z`, and a `k` meant for the list)."""
    from textual import events

    sid = str(client.start(["cat"], name="cat")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.selected == sid)
        await pilot.press("enter")
        assert app.attached
        await pilot.press(*"ab")
        await wait_for(pilot, lambda: "ab" in screen_text(app))
        for key, character in (("ctrl+right_square_bracket", None), ("z", "z"), ("z", "z")):
            app.post_message(events.Key(key, character))  # one read's keys, queued at once
        await wait_for(pilot, lambda: not app.attached)
        await pilot.pause(0.3)
        assert str_list(client.get(sid)["lines"])[0] == "ab"


async def test_the_input_bar_keeps_unsent_text_for_its_own_session_only(client: Client) -> None:
    """Opened for another session, the bar offered the line typed for the first one, one
    enter from being sent there."""
    first = str(client.start(["cat"], name="first")["id"])
    second = str(client.start(["cat"], name="second")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: {first, second} <= set(app.query_one(SessionList).rows))
        app._select(first)
        await pilot.press("i", *"for-first", "escape")
        field = app.query_one("#send-input", Input)
        app._select(second)
        await pilot.press("i")
        assert app.query_one(InputBar).target == second and field.value == ""
        await pilot.press("escape")
        app._select(first)
        await pilot.press("i", *"again")
        assert field.value == "again"


async def test_a_session_started_here_is_selected_when_another_home_answers_first(
    client: Client,
) -> None:
    """With hosts, another home's listing came before this machine's poll had the new
    session: the selection went back to the old row, and enter, k or i acted on it."""
    from agentty_ui.messages import SessionStarted
    from agentty_ui.widgets.host_bar import HostBar

    old = str(client.start(["cat"], name="old")["id"])
    app = create_app(client, poll_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.selected == old)
        new = str(client.start(["cat"], name="new")["id"])
        polls = app.poll
        app.poll = lambda: None  # type: ignore[method-assign]  # this machine's poll is slow
        app.post_message(SessionStarted(new, "cat"))
        await pilot.pause()
        app.post_message(HostBar.Polled("elsewhere", [], None))  # another home answers first
        await pilot.pause()
        assert app.selected == new
        app.poll = polls  # type: ignore[method-assign]
        app.poll()
        await wait_for(pilot, lambda: new in app.query_one(SessionList).rows)
        await pilot.pause()
        assert app.selected == new == app.query_one(SessionList).selected_id


async def test_other_homes_answers_do_not_use_up_the_wait_to_say_how_it_ended(
    client: Client,
) -> None:
    """The attached program ended; the detach waits for a listing that says how. It
    counted listings, and each host's answer is one: with hosts, it said "its screen's
    stream ended" before this machine's poll had the exit (half the time)."""
    from agentty_ui.widgets.host_bar import HostBar

    sid = str(client.start(["sh", "-c", "read x; exit 4"], name="ends")["id"])
    app = create_app(client, poll_interval=3600)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.selected == sid)
        polls = app.poll_local
        app.poll_local = lambda: None  # type: ignore[method-assign]  # this machine's is slow
        await pilot.press("enter")
        assert app.attached
        await pilot.press("enter")  # read: the program exits 4
        await wait_for(pilot, lambda: not app.attached)
        for _ in range(5):  # hosts answering, every one of them while the exit is not listed
            app.post_message(HostBar.Polled("elsewhere", [], None))
            await pilot.pause(0.05)
        assert not any("detached" in n.message for n in app._notifications)
        app.poll_local = polls  # type: ignore[method-assign]
        app.poll_local()
        await wait_for(pilot, lambda: notified(app, f"session {sid} exited (code 4): detached"))


async def test_a_kill_under_way_is_shown_and_not_asked_for_again(client: Client) -> None:
    """A program that ignores HUP and TERM takes the ladder's seconds to end: the row said
    `running` meanwhile, and k asked again, and killed again (two toasts)."""
    stubborn = ["sh", "-c", "trap '' HUP TERM; echo up; while :; do sleep 0.1; done"]
    sid = str(client.start(stubborn, name="stubborn")["id"])
    client.wait(sid, text="up", timeout=10)
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.selected == sid)
        await pilot.press("k", "y")
        await wait_for(pilot, lambda: cell(app, sid, "status") == "killing…")
        await pilot.press("k")
        assert not isinstance(app.screen, ConfirmScreen)
        assert notified(app, f"session {sid} is being killed")
        await wait_for(pilot, lambda: cell(app, sid, "status") == "exited", 20)
        # (The list may say so before the kill's own answer: a loaded machine.)
        await wait_for(pilot, lambda: any(n.title == "Kill" for n in app._notifications), 20)
        await pilot.pause(0.3)
        kills = [n for n in app._notifications if n.title == "Kill"]
        assert len(kills) == 1, [n.message for n in kills]


async def test_a_killed_session_goes_from_killing_to_exited_keeping_its_screen(
    client: Client,
) -> None:
    """Between the kill's answer and the next listing the row said `running` again, and the
    Screen pane went blank (its stream, ended, was followed again from a worker gone): an
    outside round. Sampled each frame: killing…, then exited, the screen shown throughout."""
    stubborn = ["sh", "-c", "trap '' HUP TERM; echo still-up; while :; do sleep 0.1; done"]
    sid = str(client.start(stubborn, name="stubborn")["id"])
    client.wait(sid, text="still-up", timeout=10)
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.selected == sid and "still-up" in screen_text(app))
        await pilot.press("k", "y")
        await wait_for(pilot, lambda: cell(app, sid, "status") == "killing…")
        statuses, blank = ["killing…"], 0
        for _ in range(2000):  # (the ladder's seconds, then a poll: 20 s at most)
            status = cell(app, sid, "status")
            if status != statuses[-1]:
                statuses.append(status)
            blank += "still-up" not in screen_text(app)
            if status == "exited":
                break
            await pilot.pause(0.01)
        assert statuses == ["killing…", "exited"]
        assert blank == 0


async def test_an_empty_list_says_what_to_do(client: Client) -> None:
    """A new home's dashboard, and a filter that matches nothing, showed a bare header."""
    app = make_app(client)
    async with app.run_test(size=SIZE) as pilot:
        hint = app.query_one("#empty-hint", Static)
        await wait_for(pilot, lambda: hint.display)
        assert "No sessions yet: n starts one" in str(hint.render())
        sid = str(client.start(["cat"], name="cat")["id"])
        await wait_for(pilot, lambda: app.selected == sid)
        assert not hint.display
        await pilot.press("slash", *"nomatch")
        await wait_for(pilot, lambda: hint.display)
        assert str(hint.render()) == "No session matches the filter: esc clears it."
        await pilot.press("escape")
        await wait_for(pilot, lambda: not hint.display)


async def test_a_paste_of_several_lines_into_the_input_bar_says_what_it_kept(
    client: Client,
) -> None:
    """Textual's Input keeps a paste's first line: the rest went without a word."""
    from textual import events

    sid = str(client.start(["cat"], name="cat")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.selected == sid)
        await pilot.press("i")
        field = app.query_one("#send-input", Input)
        field.post_message(events.Paste('for i in range(3):\n    print("pasted", i)\n'))
        await wait_for(pilot, lambda: notified(app, "2 lines pasted"))
        assert field.value == "for i in range(3):"
        said = next(n.message for n in app._notifications if "lines pasted" in n.message)
        assert said == (
            "2 lines pasted: the field holds one line, and took the first (attach with enter"
            " to paste them all into the session)"
        )
        await pilot.press("escape", "n")  # a dialog's field: no session to paste into
        command = app.screen.query_one("#command", Input)
        command.post_message(events.Paste("ls\npwd\nid\n"))
        await wait_for(pilot, lambda: notified(app, "3 lines pasted"))
        said = next(n.message for n in app._notifications if "3 lines pasted" in n.message)
        assert said == "3 lines pasted: the field holds one line, and took the first"
        assert command.value == "ls"

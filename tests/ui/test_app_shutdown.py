"""The dashboard shuts down cleanly whenever a poll falls due."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from agentty_core.client import Client
from agentty_ui.app import AgenttyApp, create_app

REPO = Path(__file__).resolve().parents[2]


async def test_a_poll_due_while_the_screens_are_pruned_finds_nothing_missing(
    client: Client,
) -> None:
    # Shutdown prunes each screen's widgets while the screen is still on the stack and the
    # app's timers still tick: CI saw the poll timer land there and raise NoMatches. The
    # tick is placed there for certain by polling right after each prune.
    ticks: list[bool] = []
    app = create_app(client, poll_interval=30)
    prune = AgenttyApp._prune

    async def prune_then_tick(self: AgenttyApp, *nodes: Any, parent: Any = None) -> None:
        await prune(self, *nodes, parent=parent)
        if self.screen_stack:
            self.poll_local()
            ticks.append(True)

    app._prune = prune_then_tick.__get__(app)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
    assert ticks  # the poll did fall due mid-shutdown, and raised nothing


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_dashboard_told_to_end_puts_the_terminal_back(
    client: Client, other_homes: Any, sig: signal.Signals
) -> None:
    """SIGTERM (a `kill`, a closing tmux pane's SIGHUP) ended the dashboard without its
    goodbye: the terminal stayed on the alternate screen, with mouse reporting on and the
    cursor hidden (an attack round). It ends as `q` ends it now. The dashboard runs in a
    session of the test's home, its terminal the session's screen."""
    inner = other_homes()
    ui = [sys.executable, "-m", "agentty_ui"]
    script = 'AGENTTY_HOME="$1" "$2" "$3" "$4"; echo UI-ENDED; sleep 60'
    rec = client.start(["sh", "-c", script, "sh", str(inner), *ui], cwd=str(REPO))
    sid = str(rec["id"])
    client.wait(sid, text="Status", timeout=30)  # (the list's header: drawn)
    assert client.get(sid)["altScreen"] is True
    dashboard = psutil.Process(int(str(rec["pid"]))).children()[0]
    dashboard.send_signal(sig)
    screen = client.wait(sid, text="UI-ENDED", timeout=30)
    modes = screen.get("modes") or client.get(sid)["modes"]
    assert client.get(sid)["altScreen"] is False
    assert isinstance(modes, dict) and not modes.get("mouse"), modes
    assert client.get(sid)["cursor"]["visible"] is True  # type: ignore[index]

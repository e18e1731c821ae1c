"""The Python API, through the pytest plugin's `agentty_session` fixture."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agentty_core import Screen, Session, SessionInfo
from agentty_core.errors import SessionNotRunning, WaitTimeout

Factory = Callable[..., Session]


def test_repl_round_trip(agentty_session: Factory) -> None:
    py = agentty_session([sys.executable, "-q"], name="py")
    assert py.wait(text=">>>").fired == "text"
    seq = py.text("6*7", enter=True)
    result = py.wait(regex=r"^42$", timeout=10)
    assert result.fired == "regex" and result.match == (1, 0)
    assert result.screen.seq > seq and "42" in result.screen.lines
    assert result.screen.input.state == "unknown"  # a wait probes input only when asked to
    assert py.wait(input=True).screen.input.state == "reading"
    assert py.get().input.state == "reading"
    assert Session.find("py").id == py.id
    assert [info.name for info in Session.list()] == ["py"]


def test_screen_dataclass_and_exit(agentty_session: Factory) -> None:
    sh = agentty_session(["sh", "-c", "printf 'a\\nb\\n'; exit 4"], size=(40, 10))
    result = sh.wait(exit=True, timeout=10)
    assert result.fired == "exit"
    screen = sh.get()
    assert screen.text == "a\nb" and (screen.cols, screen.rows) == (40, 10)
    assert screen.exited and screen.exit_code == 4
    assert isinstance(sh.info, SessionInfo) and sh.info.status == "exited"
    with pytest.raises(SessionNotRunning):
        sh.text("late")


def test_timeout_carries_the_screen(agentty_session: Factory) -> None:
    s = agentty_session(["sh", "-c", "echo waiting; sleep 30"])
    s.wait(text="waiting")
    with pytest.raises(WaitTimeout) as info:
        s.wait(text="never", timeout=0.2)
    assert info.value.exit_code == 3
    assert isinstance(info.value.screen, Screen)  # a Screen from Session, as from get()
    assert info.value.screen.lines[0] == "waiting"


def test_context_manager_kills_on_exit(agentty_home_path: Path) -> None:
    with Session.start(["sleep", "60"]) as s:
        assert s.info.status == "running"
    assert s.info.status == "exited"


def test_subscribe_pushes_changed_rows_and_closes_from_another_thread(
    agentty_session: Factory,
) -> None:
    import threading

    cat = agentty_session(["cat"])
    subscription = cat.client.subscribe(cat.id)
    events = subscription.events()
    first = next(events)
    assert first["event"] == "screen" and len(first["rows"]) == 24  # type: ignore[arg-type]
    cat.text("pushed\r")
    changed = next(events)
    rows = changed["rows"]
    assert isinstance(rows, dict) and any(run[0].startswith("pushed") for run in rows["0"])
    threading.Timer(0.2, subscription.close).start()
    list(events)  # returns, instead of blocking on the idle session, once closed
    assert subscription.closed and not subscription.ended

"""A wait with a regex on an ended session, asked from a thread (as the MCP server asks
every Client call): the regex is searched in the final screen as from the main thread, and
a catastrophic one is cut short there too (`final_wait`: a child with a CPU limit)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from agentty_core.client import Client
from agentty_core.errors import AgenttyError, UsageError


def in_thread(call: object) -> object:
    result: list[object] = []

    def run() -> None:
        try:
            result.append(call())  # type: ignore[operator]
        except AgenttyError as exc:
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return result[0]


def test_a_regex_on_an_ended_session_from_a_thread(agentty_home: Path) -> None:
    client = Client()
    sid = str(client.start(["sh", "-c", f"echo 'build OK 42'; echo {'a' * 33}!"])["id"])
    client.wait(sid, exit=True, timeout=10)
    fired = in_thread(lambda: client.wait(sid, regex=r"OK \d+", timeout=2))
    assert isinstance(fired, dict) and fired["fired"] == "regex"
    missing = in_thread(lambda: client.wait(sid, regex=r"^nope$", timeout=2))
    assert isinstance(missing, AgenttyError) and "exited" in str(missing)
    runaway = in_thread(lambda: client.wait(sid, regex=r"(a+)+$", timeout=2))
    assert isinstance(runaway, UsageError) and "simplify it" in str(runaway)
    with pytest.raises(UsageError, match="simplify it"):  # the main thread's budget
        client.wait(sid, regex=r"(a+)+$", timeout=2)

"""One set of wait conditions behind the CLI, `Session.wait` and MCP: 0 is a seq like any other.

`wait --changed-since 0` used to be refused as "wait needs a condition": each caller dropped
unset conditions by truthiness, and 0 is falsy (and a fresh session's seq)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from agentty_core import Session
from agentty_core.errors import UsageError
from tests.helpers.cli import agentty

Factory = Callable[..., Session]
PRINTS = ["sh", "-c", "echo ready; exec sleep 30"]


def test_cli_wait_changed_since_zero() -> None:
    agentty("start", "--", *PRINTS, check=True)
    try:
        proc = agentty("wait", "--changed-since", "0", "--timeout", "20", "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["fired"] == "changed"
    finally:
        agentty("kill", check=True)


def test_cli_wait_without_a_condition_names_the_options() -> None:
    proc = agentty("wait", "--scrollback", "--timeout", "1")
    assert proc.returncode == 2
    assert "wait needs a condition: --text, --regex" in proc.stderr


def test_session_wait_changed_since_zero(agentty_session: Factory) -> None:
    s = agentty_session(PRINTS)
    assert s.wait(changed_since=0, timeout=20).fired == "changed"


def test_session_wait_refuses_nonsense_before_sending(agentty_session: Factory) -> None:
    s = agentty_session(PRINTS)
    with pytest.raises(UsageError, match="needs a condition"):
        s.wait(scrollback=True)
    with pytest.raises(UsageError, match="stable_ms"):
        s.wait(stable=0)

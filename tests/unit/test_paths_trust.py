"""Names, ids and private directories are what they claim to be (issue 16, items 10, 12, 19)."""

from __future__ import annotations

import pytest

from agentty_core.errors import UsageError
from agentty_core.paths import validate_name, validate_session_id
from tests.helpers.cli import agentty, agentty_json

# --- item 19: a trailing newline is not part of a valid name or id ----------------------


@pytest.mark.parametrize("name", ["web\n", "web\r", "0\n", "a" * 64 + "\n"])
def test_a_name_with_a_trailing_newline_is_refused(name: str) -> None:
    with pytest.raises(UsageError, match="invalid session name"):
        validate_name(name)


def test_an_id_with_a_trailing_newline_is_refused() -> None:
    assert validate_session_id("0123abcd") == "0123abcd"
    with pytest.raises(UsageError, match="invalid session id"):
        validate_session_id("0123abcd\n")


def test_start_refuses_a_second_session_named_with_a_newline() -> None:
    agentty("start", "--name", "dup", "--", "sleep", "30", check=True)
    proc = agentty("start", "--name", "dup\n", "--", "sleep", "30")
    sessions = agentty_json("status")["sessions"]
    for rec in sessions:
        agentty("kill", "--session", rec["id"], check=True)
    assert proc.returncode == 2 and "invalid session name" in proc.stderr, proc.stderr
    assert len(sessions) == 1

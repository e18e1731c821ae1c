"""What an ssh exit means, in one line (`remote.transport.classify`)."""

from __future__ import annotations

import pytest

from agentty_core.remote.hosts import Host
from agentty_core.remote.transport import SSH_FAILED, classify

HOST = Host("lo", destination="127.0.0.1")


@pytest.mark.parametrize(
    ("stderr", "reason", "says"),
    [
        ("ssh: connect to host 127.0.0.1 port 22: Connection refused\n", "unreachable", "cannot"),
        ("Permission denied (publickey).\n", "auth", "authentication refused"),
        ("Connection to 127.0.0.1 closed by remote host.\n", "lost", "dropped"),
        # LogLevel=ERROR: a host that hangs up makes ssh exit 255 without a word.
        ("", "lost", "without a message"),
        ("something new\n", "failed", "ssh failed (something new)"),
    ],
)
def test_an_ssh_failure_says_why(stderr: str, reason: str, says: str) -> None:
    failure = classify(HOST, SSH_FAILED, stderr)
    assert failure is not None
    assert failure.reason == reason
    assert str(failure).startswith("lo: ") and says in str(failure)
    assert "\n" not in str(failure)


def test_the_remote_agentty_answering_is_not_a_link_failure() -> None:
    assert classify(HOST, 2, "agentty: no session named 'x'\n") is None

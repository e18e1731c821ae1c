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


def test_a_timeout_that_took_longer_than_its_limit_says_how_long() -> None:
    """A host stopped with its master up: the call sat on the shared connection until its
    keepalives gave up (~20 s), then ssh connected anew for the connect timeout, and the
    line said "no answer within 10 s" after 30 (a remote round)."""
    from agentty_core.remote.transport import connect_timeout, timed

    said = "Connection timed out during banner exchange\n"
    failure = classify(HOST, SSH_FAILED, said)
    assert failure is not None and failure.reason == "timeout"
    assert timed(failure, 1.0) is failure  # (within its limit: as ssh said it)
    late = timed(failure, connect_timeout() + 20.0)
    took = connect_timeout() + 20
    assert str(late).startswith(f"lo: no answer for {took} s (the shared connection held"), late
    assert "banner exchange" in str(late) and late.reason == "timeout" and late.exit_code == 4


def test_a_command_that_fails_silently_is_not_said_to_be_agentty(agentty_home: object) -> None:
    """`command = ["false"]`: agentty never ran, and the dashboard said "remote agentty
    exited 1" (an outside round)."""
    from agentty_core.errors import AgenttyError
    from agentty_core.remote.client import RemoteClient
    from tests.helpers.cli import AGENTTY

    host = Host("broken", command=("false",), agentty=AGENTTY)
    with pytest.raises(AgenttyError) as failed:
        RemoteClient(host, timeout=3.0).sessions()
    said = str(failed.value)
    assert "agentty exited" not in said
    assert said.endswith("exited 1 without a word (the host's command, or agentty there)")

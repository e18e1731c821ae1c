"""The Python API across the link: `Session.start/list/find(..., host=)`, waits and
subscriptions through `agentty relay`, and the relay itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agentty_core import Session
from agentty_core.api_types import Screen
from agentty_core.errors import SessionNotFound, TransportError, WaitTimeout
from agentty_core.remote.client import RemoteClient
from tests.helpers.cli import AGENTTY, agentty
from tests.remote.conftest import HOST, Link

PYTHON = sys.executable


def test_relay_bridges_the_protocol() -> None:
    """Locally: requests on stdin, the worker's answers on stdout, in order."""
    sid = agentty("start", "--", PYTHON, "-q", check=True).stdout.strip()
    agentty("wait", "--text", ">>>", check=True)
    requests = (
        b'{"v": 1, "method": "get", "params": {}}\n'
        b'{"v": 1, "method": "text", "params": {"data": "6*7", "enter": true}}\n'
        b'{"v": 1, "method": "wait", "params": {"regex": "^42$", "timeout": 20}}\n'
    )
    proc = subprocess.run(
        [AGENTTY, "relay", sid], input=requests, capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a["ok"] for a in answers] == [True, True, True]
    assert answers[2]["result"]["fired"] == "regex"
    refused = subprocess.run(
        [AGENTTY, "relay", "nosuch"], capture_output=True, text=True, timeout=60, check=False
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == "agentty: error: no such session: nosuch"
    agentty("kill", check=True)


def test_session_api_across_the_link(link: Link) -> None:
    with Session.start([PYTHON, "-q"], name="py", host=HOST) as py:
        assert py.wait(text=">>>", timeout=30).fired == "text"
        py.text("import time; time.sleep(0.5); print(6*7)", enter=True)
        result = py.wait(regex=r"^42$", timeout=30)
        assert result.fired == "regex"
        assert "42" in py.get().lines
        assert [s.name for s in Session.list(host=HOST)] == ["py"]
        found = Session.find("py", host=HOST)
        assert found.id == py.id
        found.key("Ctrl+C")
        found.close()
        with pytest.raises(WaitTimeout) as timed_out:
            py.wait(text="never shown", timeout=0.5)
        screen = timed_out.value.screen
        assert isinstance(screen, Screen) and screen.lines
        py.resize(100, 30)
        assert (py.get().cols, py.get().rows) == (100, 30)
        py.text("exit()", enter=True)
        assert py.wait(exit=True, timeout=30).fired == "exit"
        assert py.get().exit_code == 0  # the final screen, from an ended session
    with pytest.raises(SessionNotFound):
        Session.find("nosuch", host=HOST)


def test_subscription_across_the_link(link: Link) -> None:
    client = RemoteClient(HOST)
    try:
        sid = str(client.start([PYTHON, "-q"])["id"])
        client.wait(sid, text=">>>", timeout=30)
        sub = client.subscribe(sid)
        seen: list[str] = []
        got_it = threading.Event()

        def read() -> None:
            for event in sub.events():
                seen.append(json.dumps(event))
                if "subscribed-hello" in seen[-1]:
                    got_it.set()

        reader = threading.Thread(target=read)
        reader.start()
        client.text(sid, "print('subscribed-' + 'hello')", enter=True)
        assert got_it.wait(30), seen[-3:]
        sub.close()
        reader.join(10)
        assert not reader.is_alive()
        client.kill(sid, grace=0.5)
    finally:
        client.close()


def test_api_sees_the_link_fail_and_come_back(link: Link) -> None:
    py = Session.start([PYTHON, "-q"], host=HOST)
    try:
        py.wait(text=">>>", timeout=30)
        link.sshd.stop()
        with pytest.raises(TransportError) as down:
            py.text("print(7*6)", enter=True)
        assert down.value.exit_code == 4
        link.sshd.start()
        py.text("print(7*6)", enter=True)
        assert py.wait(regex="^42$", timeout=30).fired == "regex"
    finally:
        py.kill(grace=0.5)
        py.close()


def test_relays_kept_are_capped(link: Link, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each kept relay is a channel of the one ssh connection (sshd allows 10): the least
    recently used is closed past the cap, and reopened when its session is used again."""
    from agentty_core.remote import client as remote_client

    monkeypatch.setattr(remote_client, "MAX_RELAYS", 1)
    client = RemoteClient(HOST)
    try:
        a = str(client.start([PYTHON, "-q"], name="a")["id"])
        b = str(client.start([PYTHON, "-q"], name="b")["id"])
        for _ in range(2):
            for sid in (a, b):
                client.wait(sid, text=">>>", timeout=30)
                assert list(client._relays) == [sid]
        client.text(a, "print('a' * 3)", enter=True)
        assert client.wait(a, text="aaa", timeout=30)["fired"] == "text"
        client.kill(a, grace=0.5)
        client.kill(b, grace=0.5)
    finally:
        client.close()


def test_the_relay_refuses_input_read_after_its_callers_wait() -> None:
    """A caller on another machine sends `within` (its clock is not this one's): the relay
    makes it `until` as it passes the line on, and a worker stopped past it does not type
    it once it runs again; a line without it goes on as it came."""
    import os
    import signal
    import time

    sid = agentty("start", "--", "sh", "-c", "stty -echo; exec cat", check=True).stdout.strip()
    worker = json.loads(agentty("status", "--json", check=True).stdout)["sessions"][0]["workerPid"]
    late = b'{"v": 1, "method": "text", "params": {"data": "typed-late\\n"}, "within": 0.2}\n'
    relay = subprocess.Popen([AGENTTY, "relay", sid], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert relay.stdin is not None and relay.stdout is not None
    os.kill(worker, signal.SIGSTOP)
    try:
        relay.stdin.write(late)
        relay.stdin.flush()
        time.sleep(1.0)  # past the caller's 0.2 s: the caller gave up long ago
    finally:
        os.kill(worker, signal.SIGCONT)
    answer = json.loads(relay.stdout.readline())
    assert (answer["ok"], answer["error"]["code"]) == (False, "late")
    relay.stdin.write(b'{"v": 1, "method": "text", "params": {"data": "on-time\\n"}}\n')
    relay.stdin.close()
    assert json.loads(relay.stdout.readline())["ok"] is True
    relay.wait(timeout=30)
    agentty("wait", "--text", "on-time", check=True)
    assert agentty("get", check=True).stdout.split() == ["on-time"]
    agentty("kill", check=True)


def test_the_relay_passes_on_the_refusal_of_a_line_over_the_limit() -> None:
    """The worker refuses a line over its limit and closes while it is still coming: the
    relay ended with a broken pipe (exit 1), and its caller never read why."""
    sid = agentty("start", "--", "cat", check=True).stdout.strip()
    huge = b'{"v": 1, "method": "text", "params": {"data": "' + b"x" * (2 << 20) + b'"}}\n'
    for _ in range(5):  # (the refusal comes between two sends, or once they failed)
        proc = subprocess.run(
            [AGENTTY, "relay", sid], input=huge, capture_output=True, timeout=60, check=False
        )
        assert proc.returncode == 0, proc.stderr
        (answer,) = [json.loads(line) for line in proc.stdout.splitlines()]
        assert (answer["ok"], answer["error"]["code"]) == (False, "too_large")
    agentty("kill", check=True)


def wrapped_host(link: Link, tmp_path: Path, script: str) -> None:
    """hosts.toml's `lo` with a wrapper as its agentty: `script` (sh) runs first, then the
    real agentty with the same words (a remote profile that prints a banner, say)."""
    wrapper = tmp_path / "wrapper"
    wrapper.write_text(f'#!/bin/sh\n{script}\nexec {AGENTTY} "$@"\n')
    wrapper.chmod(0o755)
    (link.config_dir / "agentty" / "hosts.toml").write_text(
        f'[hosts.{HOST}]\nssh = "box"\nssh_config = "{link.sshd.ssh_config()}"\n'
        f'agentty = "{wrapper}"\nhome = "{link.remote_home}"\n'
    )


def test_a_start_whose_answer_is_not_json_ends_what_it_started(link: Link, tmp_path: Path) -> None:
    """A banner on the host's stdout before agentty runs: the API's `start` raised "no JSON
    answer" and left the session running there, the active one, told to nobody (an attack
    round). The CLI ends a session whose id it cannot print; so does the API."""
    wrapped_host(link, tmp_path, "echo 'Welcome to box'")
    with pytest.raises(TransportError, match="no JSON answer"):
        RemoteClient(HOST).start([PYTHON, "-c", "import time; time.sleep(600)"])
    env = {**os.environ, "AGENTTY_HOME": str(link.remote_home)}
    there = json.loads(agentty("status", "--json", env=env, check=True).stdout)
    assert [s["status"] for s in there["sessions"]] in ([], ["exited"]), there


def test_a_relay_line_over_the_limit_is_refused_not_read_on(link: Link, tmp_path: Path) -> None:
    """The async relay refuses a line over its reader's limit; the API's relay read on,
    copying its buffer and searching all of it again at every chunk (a 200 MiB line: hours,
    and its memory). It is the link's failure, said as the MCP server says it."""
    from agentty_core.ipc.aio_client import READ_LIMIT

    junk = 'case "$1" in relay) head -c 73400320 /dev/zero | tr "\\0" x; echo;; esac'
    client = RemoteClient(HOST)
    sid = str(client.start([PYTHON, "-c", "import time; time.sleep(600)"])["id"])
    wrapped_host(link, tmp_path, junk)
    try:
        with pytest.raises(TransportError) as refused:
            RemoteClient(HOST).get(sid)
        assert str(refused.value) == f"{HOST}: its answer is over {READ_LIMIT >> 20} MiB"
    finally:
        agentty("kill", "-s", sid, env={**os.environ, "AGENTTY_HOME": str(link.remote_home)})


def test_input_over_one_request_to_a_host_is_refused_up_front(link: Link) -> None:
    """`text` of more than a request holds went to a host as one request, refused there as
    a line too long (a RemoteError, after connecting); a UsageError now, naming the way
    that takes it (a review)."""
    from agentty_core.errors import UsageError

    client = RemoteClient(HOST)
    sid = str(client.start(["cat"])["id"])
    try:
        with pytest.raises(UsageError, match="text --file"):
            client.text(sid, "x" * 2_000_000)
        # What one request holds goes (100,000 characters were refused for a worst case
        # of 6 bytes a character: 87,381 at most; another review).
        client.text(sid, "y" * 100_000)
        client.wait(sid, text="y" * 70, timeout=20)
    finally:
        agentty("kill", "-s", sid, env={**os.environ, "AGENTTY_HOME": str(link.remote_home)})

"""The dashboard's input (`sender.Senders`), attached to real sessions: a session's keys in
order and in as few requests as what is queued allows, held while its worker is stopped,
dropped and said once when the session has ended (an attacker's round found each)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agentty_core.client import Client
from agentty_core.protocol import JSONObject, str_list
from agentty_ui.fleet import Fleet
from agentty_ui.sender import Senders
from tests.helpers.cli import wait_until


class Counted(Fleet):
    """A real fleet that counts the input requests it makes."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.requests = 0

    def text(self, key: str, data: str, *, enter: bool = False) -> JSONObject:
        self.requests += 1
        return super().text(key, data, enter=enter)

    def key(self, key: str, names: Sequence[str]) -> JSONObject:
        self.requests += 1
        return super().key(key, names)


def test_keys_typed_while_the_worker_is_stopped_arrive_in_order_once_it_runs(
    client: Client,
) -> None:
    """The first key timed out and was dropped, the next ones went once the worker ran:
    `echo typed` became ` typed`, a line cut at its start. Every key goes now, in order,
    and what was queued meanwhile in one request (one a key, 10 kB typed took 8 s)."""
    rec = client.start(["cat"], cols=1000, rows=10)  # (the line on two rows of its own)
    sid, worker = str(rec["id"]), int(str(rec["workerPid"]))
    client.wait(sid, input=True, timeout=10)
    fleet = Counted(client)
    failures: list[str] = []
    held: list[str] = []
    senders = Senders(
        fleet, lambda _key, said: failures.append(said), held=lambda _key, said: held.append(said)
    )
    os.kill(worker, signal.SIGSTOP)
    try:
        for char in "AAAA":
            senders.send(sid, "text", char)
        wait_until(lambda: held, timeout=30)  # the first request timed out
        for char in "B" * 1000:
            senders.send(sid, "text", char)
    finally:
        os.kill(worker, signal.SIGCONT)
    senders.send(sid, "key", "Enter")
    typed = "AAAA" + "B" * 1000
    client.wait(sid, regex="^B{4}$", timeout=30)  # (the echo's end: cat's copy follows)
    lines = str_list(client.get(sid)["lines"])
    assert lines[0] + lines[1] == typed, lines[0][:40]
    assert fleet.requests <= 8, fleet.requests
    assert failures == [] and len(held) == 1 and "waits for it" in held[0], (failures, held)
    senders.close()


def test_input_for_an_ended_session_is_dropped_and_said_once(client: Client) -> None:
    """Each queued key of a session that ended failed on its own: 10 kB typed as it was
    killed made thousands of notifications, and the dashboard froze."""
    sid = str(client.start(["cat"])["id"])
    client.kill(sid)
    failures: list[str] = []
    senders = Senders(Fleet(client), lambda _key, message: failures.append(message))
    for char in "x" * 500:
        senders.send(sid, "text", char)
    wait_until(lambda: failures, timeout=20)
    for char in "y" * 50:  # typed after the first failure (a held key: 30 a second)
        senders.send(sid, "text", char)
        time.sleep(0.005)
    time.sleep(0.5)  # (any further failure would have come by now)
    senders.close()
    assert len(failures) == 1, failures[:3]


def test_input_the_worker_took_part_of_is_never_sent_again(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A paste in parts whose later part timed out (the worker stopped after taking the
    first) was sent again whole: what the worker had taken, typed twice (a review). Only a
    request the worker never read is asked again; this one is said, and not repeated."""
    from agentty_core import client_actions

    monkeypatch.setattr(client_actions, "INPUT_PART_TIMEOUT", 2.0)
    count = tmp_path / "count"
    reader = (
        "import os, tty; tty.setraw(0); n = 0\n"
        "while True:\n"
        "    b = os.read(0, 65536)\n"
        "    n += len(b)\n"
        f"    open({str(count)!r}, 'w').write(str(n))\n"
    )
    rec = client.start([sys.executable, "-c", reader])
    sid, worker = str(rec["id"]), int(str(rec["workerPid"]))
    client.wait(sid, input=True, timeout=10)
    real_call = Client._call

    def stop_after_the_first_part(self: Client, *args: Any, **kwargs: Any) -> JSONObject:
        answer = real_call(self, *args, **kwargs)
        if args[1] == "text" and args[2].get("part") == "first":
            os.kill(worker, signal.SIGSTOP)
            threading.Timer(4.0, os.kill, (worker, signal.SIGCONT)).start()
        return answer

    monkeypatch.setattr(Client, "_call", stop_after_the_first_part)
    failures: list[str] = []
    senders = Senders(Fleet(client), lambda _key, message: failures.append(message))
    data = "y" * (1200 * 1024)
    senders.send(sid, "paste", data)
    wait_until(lambda: failures, timeout=30)
    # Then until the program reads nothing more for 6 s (the worker runs again by then:
    # anything sent twice would be read).
    quiet = [count.read_text(), time.monotonic()]
    wait_until(lambda: _quiet_for(count, quiet, 6.0), timeout=60, interval=0.5)
    senders.close()
    assert failures and "were sent" in failures[0], failures
    assert int(count.read_text()) <= len(data) + len("\x1b[200~\x1b[201~"), count.read_text()


def _quiet_for(path: Path, last: list[Any], seconds: float) -> bool:
    """Whether `path` has read the same for `seconds` (`last`: what it read, and since
    when)."""
    now = path.read_text()
    if now != last[0]:
        last[:] = [now, time.monotonic()]
    since: float = last[1]
    return time.monotonic() - since >= seconds

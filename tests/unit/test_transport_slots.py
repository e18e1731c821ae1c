"""A call's wait for one of a host's ssh slots is bounded, however the slots turn over.

The slots are held for real: `flock`s taken by another process, which keeps giving them
back in appearance (their mtime, as `give_back` leaves it) without ever letting one go.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from agentty_core.remote import transport
from agentty_core.remote.hosts import Host

HOLD_AND_TURN = """
import fcntl, os, sys, time
fds = []
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    fds.append(fd)
print("held", flush=True)
while True:  # every slot seems given back and taken again at once, all the time
    for fd in fds:
        os.utime(fd)
    time.sleep(0.05)
"""


def test_a_slot_wait_ends_while_slots_keep_turning_over(agentty_home: Path) -> None:
    host = Host("box", destination="box.example")  # (the home: a short path, as a socket's)
    path = transport.control_path(host, agentty_home)
    assert path is not None
    slots = [f"{path}.slot{n}" for n in range(transport.SLOTS)]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_TURN, *slots], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        began = time.monotonic()
        slot = transport.take_slot(host, agentty_home)
        waited = time.monotonic() - began
        assert slot == -1  # none came free: the call goes without one
        assert transport.SLOT_WAIT <= waited < transport.SLOT_WAIT_MOST + 5, waited
    finally:
        holder.kill()
        holder.wait()
    slot = transport.take_slot(host, agentty_home)  # given back by the holder's end
    assert slot >= 0
    transport.give_back(slot)
    assert os.path.exists(slots[0])

"""Socket faults for tests: a listener's backlog filled, as a stopped worker's fills."""

from __future__ import annotations

import socket


def fill_backlog(path: str) -> list[socket.socket]:
    """Connections to `path` until one more would not fit (its listener, a stopped worker,
    accepts none): the connections, to close once done."""
    fillers: list[socket.socket] = []
    for _ in range(1000):
        filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        filler.setblocking(False)
        try:
            filler.connect(path)
        except BlockingIOError:
            filler.close()
            return fillers
        fillers.append(filler)
    raise AssertionError("the backlog never filled")

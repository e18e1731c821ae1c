"""A small pool of connections to one worker, shared by the threads of one `Session`.

Each call in flight takes a connection of its own and gives it back when its answer is in:
a wait blocking on one connection never holds up input on another, and two threads never
read each other's answers. Idle connections are kept (up to `MAX_IDLE`) for the next calls,
by the process that opened them: a child forked meanwhile opens its own (sharing one
socket, parent and child each read the other's answers).
"""

from __future__ import annotations

import threading
import weakref

from agentty_core.ipc import client as ipc_client
from agentty_core.ipc import forks

MAX_IDLE = 4  # connections kept open per session for the next calls


class Pool:
    """Connections to one worker: one per call in flight, the idle ones kept for reuse."""

    def __init__(self, path: str, pid: int | None, timeout: float) -> None:
        self.path, self.pid, self.timeout = path, pid, timeout
        self._idle: list[ipc_client.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        weakref.finalize(self, _close_all, self._idle)  # a Session dropped without close()
        forks.reset_in_child(self, Pool._forget_the_parents)

    def _forget_the_parents(self) -> None:
        """In a forked child: the kept sockets are the parent's (closed here, our copies
        only), and the lock may have been held by one of its threads."""
        self._lock = threading.Lock()
        _close_all(self._idle)

    def take(self) -> ipc_client.Connection:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if conn.reusable():  # the worker closes idle connections
                    return conn
                conn.close()
        return ipc_client.Connection(self.path, timeout=self.timeout, expect_pid=self.pid)

    def give(self, conn: ipc_client.Connection) -> None:
        with self._lock:
            if self._closed or len(self._idle) >= MAX_IDLE:
                conn.close()
            else:
                self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            _close_all(self._idle)


def _close_all(connections: list[ipc_client.Connection]) -> None:
    while connections:
        connections.pop().close()

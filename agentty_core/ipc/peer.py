"""Who is at the other end of a Unix socket: shared by both ends of the IPC.

The client checks which pid answered (a socket bound by another process never gets
keystrokes meant for a session); the server checks the caller's uid. A module of its own so
that neither end imports the other. Stdlib only: the CLI's hot path reaches it via `client`.
"""

from __future__ import annotations

import os
import socket
import struct

_UCRED = struct.Struct("3i")


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the other end of a connected Unix socket (Linux)."""
    so_peercred = getattr(socket, "SO_PEERCRED", None)
    if so_peercred is None:  # macOS: only the uid is checked, via getpeereid in the worker
        return (0, os.getuid(), os.getgid())
    raw = sock.getsockopt(socket.SOL_SOCKET, so_peercred, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid

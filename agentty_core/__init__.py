"""agentty core: background PTY sessions driven over per-session Unix sockets.

    from agentty_core import Session

This package is imported on the CLI's hot path, so it imports nothing at module level:
`Session`, `Client` and the data types are loaded on first use.
"""

from __future__ import annotations

from agentty_core._version import __version__

__all__ = [
    "AsyncSession",
    "Client",
    "Screen",
    "Session",
    "SessionEnded",
    "SessionInfo",
    "SessionWaitTimeout",
    "WaitConditions",
    "WaitResult",
    "__version__",
]

TYPE_CHECKING = False  # without importing typing: this module is on the hot path
if TYPE_CHECKING:
    from agentty_core.aio_session import AsyncSession
    from agentty_core.api_types import SessionEnded, SessionWaitTimeout
    from agentty_core.client import Client
    from agentty_core.session import Screen, Session, SessionInfo, WaitResult
    from agentty_core.waitspec import WaitConditions

_LAZY = {
    "AsyncSession": "aio_session",
    "Client": "client",
    "Screen": "session",
    "Session": "session",
    "SessionEnded": "api_types",
    "SessionInfo": "session",
    "SessionWaitTimeout": "api_types",
    "WaitResult": "session",
    "WaitConditions": "waitspec",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentty_core' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)

"""A module's logger that imports `logging` when it first logs.

The caller's side of agentty (the CLI's full path: `start`, `run`, `gc` ...) logs only
when something rare goes wrong, and importing `logging` (with traceback, linecache,
tokenize, string and threading) costs such a command a sixth of its run. Workers configure
logging and log all along; for them this is the same logger, one call away.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging


class LazyLogger:
    """`logging.getLogger(name)`, fetched on each call (the logging module caches it)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def logger(self) -> logging.Logger:
        import logging

        return logging.getLogger(self.name)

    # stacklevel=2: the record names the caller's file, line and function, not this one.
    def info(self, msg: str, *args: object) -> None:
        self.logger().info(msg, *args, stacklevel=2)

    def warning(self, msg: str, *args: object) -> None:
        self.logger().warning(msg, *args, stacklevel=2)

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
        """Where nobody configured logging (the CLI), logging's last resort would print the
        bare message: it is said as every other line agentty writes to stderr instead."""
        import logging
        import sys

        logger = self.logger()
        if logger.hasHandlers() or logging.lastResort is None or sys.stderr is None:
            logger.warning(msg, *args, stacklevel=2)
        elif logger.isEnabledFor(logging.WARNING):
            text = msg % args
            if not text.isprintable():  # (`cli.output.shown`: a path may hold escapes)
                text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
            try:  # noqa: SIM105  (contextlib is not loaded on the lanes)
                sys.stderr.write(f"agentty: warning: {text}\n")
            except (OSError, ValueError):
                pass

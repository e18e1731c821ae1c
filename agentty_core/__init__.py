"""agentty core: background PTY sessions driven over per-session Unix sockets.

This package is imported on the CLI's hot path, so it imports nothing heavy at module
level: the worker, the state writer and the emulator live in their own modules.
"""

__version__ = "0.1.0"

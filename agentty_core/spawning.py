"""What the caller's side of starting a worker (`launch/`) and the worker's side
(`worker/main`, `worker/spawner`, `worker/forked`) agree on, apart from both: the status
descriptor, the warm spawner's files, and the settings a forked worker must share with the
caller. Standard library only: `start` imports this before anything else.
"""

from __future__ import annotations

import os

STATUS_FD = 3  # where the worker finds its status pipe

SOCKET_NAME = "spawner.sock"  # in the home's sockets directory
INFO_NAME = "spawner.json"  # in the home: pid, start time, since, ready
LOCK_NAME = "spawner.lock"  # in the home: held by the spawner for its life (one per home)
LOG_NAME = "spawner.log"

# What a Python process reads from its environment at start-up: a worker forked from a
# spawner started under other values would not be the one `python -c` would have started.
INTERPRETER_ENV = ("LANG", "LC_ALL", "LC_CTYPE")


def home_root() -> str:
    """The home as `paths.Home.resolve` would name it (without importing pathlib)."""
    root = os.environ.get("AGENTTY_HOME") or os.path.join(os.path.expanduser("~"), ".agentty")
    root = os.path.expanduser(root)
    return root if os.path.isabs(root) else os.path.join(os.getcwd(), root)

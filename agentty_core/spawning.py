"""What the caller's side of starting a worker (`launch/`) and the worker's side
(`worker/main`, `worker/spawner`, `worker/forked`) agree on, apart from both: the status
descriptor, the warm spawner's files, and the settings a forked worker must share with the
caller. Standard library only: `start` imports this before anything else.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False

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


def caller_context(version: str) -> dict[str, object]:
    """What a worker forked by the spawner must inherit from the caller, as `posix_spawn`
    would have given it (its environment apart): cwd, umask, rlimits, signal mask and
    dispositions, nice value, CPU affinity, and which Python and agentty it runs. C modules
    only, so the CLI's start lane can build it without importing `signal` or `json`.
    `version` is agentty's (`_version` is this module's sibling, not below it)."""
    import resource

    if TYPE_CHECKING:
        import signal as _signal  # the C module's stubs are its wrapper's
    else:
        import _signal

    ignored = []
    for sig in _signal.valid_signals():
        try:
            if _signal.getsignal(sig) == _signal.SIG_IGN:
                ignored.append(int(sig))
        except (ValueError, OSError):
            pass
    return {
        "cwd": os.getcwd(),
        "umask": umask(),
        "rlimits": [
            [num, *resource.getrlimit(num)]
            for name in dir(resource)
            if name.startswith("RLIMIT_") and isinstance(num := getattr(resource, name), int)
        ],
        "sigmask": sorted(int(s) for s in _signal.pthread_sigmask(_signal.SIG_BLOCK, [])),
        "ignored": ignored,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "affinity": sorted(os.sched_getaffinity(0)),
        "python": [sys.executable, sys.version],
        "agentty": [os.path.dirname(os.path.abspath(__file__)), version],  # agentty_core/
    }


def umask() -> int:
    """The umask, read without setting it (os.umask would race with other threads)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    raise OSError("cannot read the umask")

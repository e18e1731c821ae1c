"""Deterministic fault injection for tests: `AGENTTY_FAILPOINTS="name=action;..."`.

Actions: `sigkill` (kill this process), `sigstop` (stop it: another must end it),
`exit:<code>`, `sleep:<seconds>`, `raise:<errno name>`.
The narrow windows of the start, write and kill protocols can only be tested this way.
Unset, `hit()` is one dict lookup on an empty dict.
"""

from __future__ import annotations

import errno
import os
import signal
import time


def _parse(spec: str) -> dict[str, str]:
    points: dict[str, str] = {}
    for item in spec.split(";"):
        name, sep, action = item.strip().partition("=")
        if sep:
            points[name.strip()] = action.strip()
    return points


_POINTS = _parse(os.environ.get("AGENTTY_FAILPOINTS", ""))


def hit(name: str) -> None:
    action = _POINTS.get(name)
    if action is None:
        return
    kind, _, arg = action.partition(":")
    if kind == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "sigstop":
        os.kill(os.getpid(), signal.SIGSTOP)
    elif kind == "exit":
        os._exit(int(arg or "1"))
    elif kind == "sleep":
        time.sleep(float(arg or "1"))
    elif kind == "raise":
        code = getattr(errno, arg or "EIO", errno.EIO)
        raise OSError(code, f"{os.strerror(code)} (failpoint {name})")

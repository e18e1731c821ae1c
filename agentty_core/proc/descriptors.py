"""The descriptors an exec would pass on, and the posix_spawn actions that close them.

Python opens its descriptors close-on-exec; what is left inheritable came from whoever
started this process (a shell's fd 255, a harness's pipe). A detached process must hold
none of them: a caller's pipe held by a worker keeps `$(agentty start ...)` waiting for
as long as the session runs.
"""

from __future__ import annotations

import os
from collections.abc import Container


def inherited() -> list[int]:
    """Our descriptors above stdio that an exec would pass on."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(listing)
        except OSError:
            continue
        break
    else:
        names = [str(fd) for fd in range(3, 1024)]
    found = []
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    found.append(fd)
            except OSError:
                continue  # the listing's own descriptor, closed by now
    return found


def close_actions(keep: Container[int] = ()) -> list[tuple[int, int]]:
    """posix_spawn file actions closing each of them but `keep`. One at or above our soft
    open-file limit cannot be named in a file action (glibc refuses the spawn: EBADF, seen
    with `exec 300</dev/null; ulimit -n 256`): it is made close-on-exec instead."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    actions = []
    for fd in inherited():
        if fd in keep:
            continue
        if soft != resource.RLIM_INFINITY and fd >= soft:
            os.set_inheritable(fd, False)
        else:
            actions.append((os.POSIX_SPAWN_CLOSE, fd))
    return actions

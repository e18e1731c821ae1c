"""Is this directory ours and private, is this lock held: the lean checks of the fast paths.

C modules only (`os`, `fcntl`): the start lane's spawner client and every `--host` call run
them before anything else is imported. The full checks, which create, repair and explain,
are `paths.ensure_private_dir`'s; these only say yes or no.
"""

from __future__ import annotations

import os


def private_dir(path: str) -> bool:
    """Ours, a real directory (not a symlink), closed to others: what
    `paths.ensure_private_dir` demands of it."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (
        (st.st_mode & 0o170000) == 0o040000
        and st.st_uid == os.getuid()
        and not (st.st_mode & 0o077)
    )


def lock_held(path: str) -> bool:
    """Someone holds the exclusive `flock` on `path` (a spawner or a link, for its life).
    A missing file is a lock nobody holds; the probe takes a shared lock and lets it go."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:  # (without O_NONBLOCK a FIFO there would hang the open)
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False

"""Whether agentty's code or the interpreter changed on disk (an upgrade), asked before every
fork of the warm spawner, cheaply.

The answer is the fingerprint's (`forked.fingerprint`: the identity, size and mtime of ~300
files and directories), as before; but taking it costs ~1 ms of `stat` calls, and every
`start` waited for it. With inotify watching the directories those paths are in, the kernel
says when anything there changed (an event is queued before the syscall that made it
returns), and the fingerprint is taken again only then. That holds where every change goes
through this kernel: local filesystems. On a network or FUSE filesystem (NFS, SMB, sshfs,
9p...) a change made elsewhere sends no event, and where inotify is not available (no such
call, or the user's limit of instances or watches reached), the fingerprint is taken every
time.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

from agentty_core.libc import (
    IN_ATTRIB,
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_DELETE_SELF,
    IN_MODIFY,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    inotify_drain,
    inotify_watch,
)
from agentty_core.worker.forked import Fingerprint, fingerprint

# A change to a directory's entries or to one of them, or to the directory itself (removed,
# moved).
WATCHED = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
WATCHED |= IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF

# Filesystems whose every change is made by this kernel (an allow-list: anything else, such
# as nfs, cifs, fuse.*, 9p or virtiofs, may change unseen).
# fmt: off
LOCAL = frozenset({
    "ext2", "ext3", "ext4", "xfs", "btrfs", "bcachefs", "zfs", "f2fs", "jfs", "reiserfs",
    "nilfs2", "tmpfs", "ramfs", "overlay", "squashfs", "erofs", "iso9660", "vfat", "exfat",
    "ntfs3", "hfsplus",
})
# fmt: on


class CodeWatch:
    """The code on disk as it was when the spawner finished its imports."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = sorted(paths)
        self.fd = _watch(self.paths)  # before the fingerprint: no change falls in between
        self.mark: Fingerprint = fingerprint(self.paths)
        self.seen = False  # a change, once seen, stays seen

    @property
    def watching(self) -> bool:
        return self.fd >= 0

    def changed(self) -> bool:
        """Has any of the paths changed since we took its mark?"""
        if self.seen or (self.fd >= 0 and not inotify_drain(self.fd)):
            return self.seen  # no event since we last looked: nothing changed
        self.seen = fingerprint(self.paths) != self.mark
        return self.seen

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def _watch(paths: list[str]) -> int:
    """An inotify descriptor watching every directory among `paths` and the directory of
    every other path (a file's change, replacement or removal shows there too); -1 if
    that cannot be done."""
    watched = {_where(path) for path in paths if path}  # "" (a module's relative path) stays ""
    if None in watched or not all_local(d for d in watched if d is not None):
        return -1
    return inotify_watch(sorted(d for d in watched if d is not None), WATCHED)


def _where(path: str) -> str | None:
    """The directory whose events tell of a change to `path`: itself, or that of the file,
    or the nearest that exists (where it would be made). None for a relative path."""
    if not os.path.isabs(path):
        return None
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    return path


def all_local(dirs: Iterable[str], mountinfo: str | None = None) -> bool:
    """Whether every directory is on a filesystem of LOCAL (by its device, as
    /proc/self/mountinfo names it; `mountinfo`: that file's text)."""
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
                mountinfo = f.read()
        except OSError:
            return False
    types: dict[tuple[int, int], str] = {}
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        with contextlib.suppress(ValueError, IndexError):
            major, minor = fields[2].split(":")
            types[(int(major), int(minor))] = fields[fields.index("-", 6) + 1]
    for directory in dirs:
        try:
            dev = os.stat(directory).st_dev
        except OSError:
            return False
        if types.get((os.major(dev), os.minor(dev))) not in LOCAL:
            return False
    return True

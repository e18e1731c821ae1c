"""libc's calls the os module lacks, through one handle (`agentty_core.libc`)."""

from __future__ import annotations

import os
from pathlib import Path

from agentty_core import libc


def test_inotify_watch_of_a_missing_path_leaves_no_descriptor(tmp_path: Path) -> None:
    before = set(os.listdir("/proc/self/fd"))
    assert libc.inotify_watch([str(tmp_path), str(tmp_path / "gone")], libc.IN_CLOSE) == -1
    assert set(os.listdir("/proc/self/fd")) <= before  # nothing part-watched is left open


def test_inotify_drain_says_whether_anything_happened(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("")
    fd = libc.inotify_watch([str(target)], libc.IN_CLOSE)
    assert fd >= 0
    try:
        assert libc.inotify_drain(fd) is False
        target.read_text()  # an open and a close
        assert libc.inotify_drain(fd) is True
        assert libc.inotify_drain(fd) is False  # all read
    finally:
        os.close(fd)


def test_a_failed_call_is_its_errno_as_an_oserror() -> None:
    prctl = libc.function("prctl")
    assert prctl(-1, 0, 0, 0, 0) == -1  # no such option
    error = libc.last_error()
    assert isinstance(error, OSError) and error.errno == 22  # EINVAL

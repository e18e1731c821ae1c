"""The lean checks both fast paths share (`agentty_core.ownership`): the spawner client
(`start`) and every `--host` call decide with them before importing anything else."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from agentty_core.ownership import lock_held, private_dir


def test_only_our_own_closed_real_directory_is_private(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    ours.mkdir(mode=0o700)
    assert private_dir(str(ours))
    os.chmod(ours, 0o750)
    assert not private_dir(str(ours))  # open to the group
    os.chmod(ours, 0o700)
    link = tmp_path / "link"
    link.symlink_to(ours)
    assert not private_dir(str(link))  # a symlink, even to a private directory of ours
    file = tmp_path / "file"
    file.write_text("")
    os.chmod(file, 0o600)
    assert not private_dir(str(file))
    assert not private_dir(str(tmp_path / "missing"))
    if os.getuid() == 0:  # another user's (only root can give one away)
        os.chown(ours, 65534, 65534)
        assert not private_dir(str(ours))


def test_a_lock_is_held_while_another_open_file_holds_its_flock(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    assert not lock_held(str(path))  # no file: nobody holds it
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert not lock_held(str(path))
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert lock_held(str(path))
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert not lock_held(str(path))
    finally:
        os.close(fd)

"""`CodeWatch`: the spawner's question "did the code on disk change?", answered by the
fingerprint as before, but taken again only when inotify saw something change."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentty_core.worker.codewatch import CodeWatch


@pytest.fixture
def code(tmp_path: Path) -> Path:
    """A package directory with a module, and an interpreter-like file elsewhere."""
    from agentty_core.worker.codewatch import all_local

    if not all_local([str(tmp_path)]):
        pytest.skip("the temporary directory is not on a local filesystem: no inotify")
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text("x = 1\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("#!\n")
    return tmp_path


def watch(code: Path) -> CodeWatch:
    paths = [code / "pkg", code / "pkg" / "mod.py", code / "bin" / "python", code / "later"]
    found = CodeWatch(str(p) for p in paths)
    assert found.watching
    return found


def _replace(path: Path) -> None:
    """As an installer does: a new file renamed over the old one."""
    new = path.with_name("new.tmp")
    new.write_text("x = 3\n")
    os.replace(new, path)


def test_nothing_changed(code: Path) -> None:
    found = watch(code)
    (code / "pkg" / "mod.py").read_text()  # reading is no change
    assert not any(found.changed() for _ in range(3))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: (c / "pkg" / "mod.py").write_text("x = 2\n"), id="edited"),
        pytest.param(lambda c: os.utime(c / "pkg" / "mod.py", (1, 1)), id="touched"),
        pytest.param(lambda c: _replace(c / "pkg" / "mod.py"), id="replaced"),
        pytest.param(lambda c: (c / "pkg" / "other.py").write_text(""), id="a-file-added"),
        pytest.param(lambda c: (c / "pkg" / "mod.py").unlink(), id="removed"),
        pytest.param(lambda c: (c / "bin" / "python").write_text("#!new\n"), id="interpreter"),
        pytest.param(lambda c: (c / "later").mkdir(), id="a-missing-path-made"),
    ],
)
def test_a_change_is_seen_and_stays_seen(code: Path, change: object) -> None:
    found = watch(code)
    assert not found.changed()
    change(code)  # type: ignore[operator]
    assert found.changed()
    assert found.changed()  # the mark is not moved: a spawner asked again still steps down


def test_an_event_that_changes_nothing_it_marks(code: Path) -> None:
    """The fingerprint decides: a file made beside the interpreter is an event in a watched
    directory, not a change of code. (A mode change moves a file's change time: it counts,
    and costs one direct start.)"""
    found = watch(code)
    (code / "bin" / "other").write_text("")
    assert not found.changed()
    assert not found.changed()


def test_without_inotify_every_question_takes_the_fingerprint(code: Path) -> None:
    """No descriptor left for inotify (a real EMFILE): the fingerprint, every time."""
    script = f"""
import ctypes, os, resource, sys
from agentty_core.worker.codewatch import CodeWatch
open_now = len(os.listdir("/proc/self/fd")) - 1  # less the listing's own
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (open_now, hard))
found = CodeWatch([{str(code / "pkg")!r}, {str(code / "pkg" / "mod.py")!r}])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
before = found.changed()
open({str(code / "pkg" / "mod.py")!r}, "a").write("y = 2\\n")
print(found.watching, before, found.changed())
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    assert out == ["False", "False", "True"]


def _mountinfo_naming(path: Path, fstype: str) -> str:
    """/proc/self/mountinfo's line for `path`'s device, saying it is a `fstype`."""
    dev = path.stat().st_dev
    return (
        f"1 0 {os.major(dev)}:{os.minor(dev)} / / rw,relatime shared:1 - {fstype} /dev/x rw\n"
        "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
    )


@pytest.mark.parametrize(
    ("fstype", "local"),
    [("ext4", True), ("tmpfs", True), ("overlay", True), ("nfs4", False), ("cifs", False),
     ("fuse.sshfs", False), ("9p", False), ("virtiofs", False), ("somethingnew", False)],
)  # fmt: skip
def test_only_a_local_filesystem_is_left_to_inotify(code: Path, fstype: str, local: bool) -> None:
    """A change made on another machine to an NFS or FUSE mount sends no event here."""
    from agentty_core.worker.codewatch import all_local

    assert all_local([str(code / "pkg")], _mountinfo_naming(code, fstype)) is local


def test_this_machines_own_filesystem(code: Path) -> None:
    """The real mountinfo: the test's temporary directory is on a local filesystem, and a
    directory of /proc is not on one this module trusts."""
    from agentty_core.worker.codewatch import all_local

    assert all_local([str(code / "pkg")])
    assert not all_local(["/proc/self"])


def test_an_edit_in_place_that_keeps_size_and_mtime(code: Path) -> None:
    """`cp -p` or rsync of a same-sized file, or `touch -r` after an edit: the inode, size
    and mtime are as before (the change time is not: no one can set it)."""
    found = watch(code)
    module = code / "pkg" / "mod.py"
    before = module.stat()
    time.sleep(0.02)  # file times tick with the kernel's coarse clock (a few ms)
    with open(module, "r+b") as f:
        f.write(b"x = 2\n")  # the same size
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = module.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert found.changed()

"""Names, ids and private directories are what they claim to be (issue 16, items 10, 12, 19).

Tests run as root (CI does): a directory or symlink "of another user" is made with
`os.chown`/`os.lchown` to nobody (65534)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentty_core.errors import UnsafePath, UsageError
from agentty_core.ipc.server import Peer, Server
from agentty_core.paths import Home, ensure_private_dir, validate_name, validate_session_id
from tests.helpers.cli import agentty, agentty_json

NOBODY = 65534


# --- item 19: a trailing newline is not part of a valid name or id ----------------------


@pytest.mark.parametrize("name", ["web\n", "web\r", "0\n", "a" * 64 + "\n"])
def test_a_name_with_a_trailing_newline_is_refused(name: str) -> None:
    with pytest.raises(UsageError, match="invalid session name"):
        validate_name(name)


def test_an_id_with_a_trailing_newline_is_refused() -> None:
    assert validate_session_id("0123abcd") == "0123abcd"
    with pytest.raises(UsageError, match="invalid session id"):
        validate_session_id("0123abcd\n")


def test_start_refuses_a_second_session_named_with_a_newline() -> None:
    agentty("start", "--name", "dup", "--", "sleep", "30", check=True)
    proc = agentty("start", "--name", "dup\n", "--", "sleep", "30")
    sessions = agentty_json("status")["sessions"]
    for rec in sessions:
        agentty("kill", "--session", rec["id"], check=True)
    assert proc.returncode == 2 and "invalid session name" in proc.stderr, proc.stderr
    assert len(sessions) == 1


# --- item 10: every component of a private directory's path is trusted ------------------


@pytest.fixture
def base() -> Iterator[Path]:
    """A private scratch directory of ours (root-owned, 0700) under /tmp."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="at-trust-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_symlink_of_another_user_to_our_directory_is_refused(base: Path) -> None:
    target = base / "real"
    target.mkdir(mode=0o700)
    link = base / "link"
    link.symlink_to(target)
    os.lchown(link, NOBODY, NOBODY)
    with pytest.raises(UnsafePath, match=f"{link} is owned by uid {NOBODY}"):
        ensure_private_dir(link)
    with pytest.raises(UnsafePath, match=f"owned by uid {NOBODY}"):
        Home.resolve(link)


def test_a_symlink_of_ours_to_our_private_directory_is_accepted(base: Path) -> None:
    target = base / "real"
    target.mkdir(mode=0o700)
    link = base / "link"
    link.symlink_to("real")
    ensure_private_dir(link)
    Home.resolve(link)
    assert stat.S_IMODE(os.lstat(target / "logs").st_mode) == 0o700


def test_a_symlinked_ancestor_of_another_user_is_refused(base: Path) -> None:
    (base / "real").mkdir(mode=0o755)
    link = base / "up"
    link.symlink_to(base / "real")
    os.lchown(link, NOBODY, NOBODY)
    with pytest.raises(UnsafePath, match=f"owned by uid {NOBODY}"):
        Home.resolve(link / "home")
    assert not (base / "real" / "home").exists()


def test_a_home_inside_another_users_directory_is_refused(base: Path) -> None:
    foreign = base / "foreign"
    foreign.mkdir(mode=0o755)
    home = foreign / "home"
    home.mkdir(mode=0o700)
    os.chown(foreign, NOBODY, NOBODY)
    with pytest.raises(UnsafePath, match=f"{foreign} is owned by uid {NOBODY}"):
        Home.resolve(home)


@pytest.mark.parametrize("mode", [0o777, 0o775])
def test_a_home_inside_a_directory_others_can_write_is_refused(base: Path, mode: int) -> None:
    shared = base / "shared"
    shared.mkdir()
    os.chown(shared, 0, 12345)  # a group that is not ours
    os.chmod(shared, mode)
    with pytest.raises(UnsafePath, match=f"{shared} is writable by others"):
        Home.resolve(shared / "home")
    assert not (shared / "home").exists()


def test_a_home_inside_a_sticky_shared_directory_is_accepted(base: Path) -> None:
    sticky = base / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    Home.resolve(sticky / "home")
    assert stat.S_IMODE(os.lstat(sticky / "home").st_mode) == 0o700


def test_a_dangling_symlink_home_is_an_error_not_a_crash(base: Path) -> None:
    link = base / "link"
    link.symlink_to(base / "nowhere")
    with pytest.raises(Exception, match="cannot create") as info:
        Home.resolve(link)
    assert not isinstance(info.value, FileNotFoundError)


def test_the_socket_is_created_private_whatever_the_umask(base: Path) -> None:
    """The mode is set on the socket before `bind`, so nothing chmods a path afterwards
    (which would follow a symlink planted there)."""
    path = base / "s.sock"

    async def bind() -> int:
        server = Server(str(path), _ignore, max_connections=1, idle_timeout=1.0)
        try:
            return stat.S_IMODE(os.lstat(path).st_mode)
        finally:
            server.sock.close()

    old = os.umask(0)
    try:
        mode = asyncio.run(bind())
    finally:
        os.umask(old)
    assert mode == 0o600, oct(mode)


def _ignore(peer: Peer, line: bytes) -> None:
    del peer, line


# --- item 12: the "socket path too long" advice is safe to follow ------------------------


def test_socket_path_too_long_suggests_a_private_directory(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_dir = "/tmp/" + "x" * 120
    monkeypatch.setenv("AGENTTY_SOCKET_DIR", long_dir)
    with pytest.raises(UsageError) as info:
        Home.resolve().socket_path("0123abcd")
    message = str(info.value)
    assert "socket path too long" in message
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        assert f"AGENTTY_SOCKET_DIR={runtime}/agentty" in message, message
    else:
        assert f"AGENTTY_SOCKET_DIR=/tmp/agentty-{os.getuid()}" in message, message
    # Following the advice works: the suggested directory is accepted and created private.
    suggested = message.split("AGENTTY_SOCKET_DIR=", 1)[1].split()[0].rstrip(")")
    existed = Path(suggested).exists()
    monkeypatch.setenv("AGENTTY_SOCKET_DIR", suggested)
    try:
        made = Home.resolve().ensure_socket_dir()
        assert stat.S_IMODE(os.lstat(made).st_mode) == 0o700
    finally:
        if not existed and Path(suggested).exists():
            os.rmdir(suggested)


def test_a_socket_dir_made_in_the_shared_tmp_is_accepted_not_chmod_advice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pointing AGENTTY_SOCKET_DIR at a new directory in /tmp used to answer
    "fix: chmod 700 /tmp" (advice that would break every other user of /tmp)."""
    path = Path(f"/tmp/at-new-{os.getpid()}")
    monkeypatch.setenv("AGENTTY_SOCKET_DIR", str(path))
    try:
        assert Home.resolve().ensure_socket_dir() == path
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700
    finally:
        if path.exists():
            os.rmdir(path)


def test_a_shared_directory_is_never_advised_to_be_chmodded(base: Path) -> None:
    shared = base / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with pytest.raises(UnsafePath) as info:
        ensure_private_dir(shared)
    assert "chmod" not in str(info.value) and "shared" in str(info.value), info.value

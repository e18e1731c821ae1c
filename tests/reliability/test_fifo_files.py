"""A FIFO where agentty keeps a file (a hand-made mistake, or a hostile process of ours).

Opened for reading, a FIFO blocks until somebody writes to it: every command that read the
list, the active pointer, the spawner's description or a final screen hung without bound,
and a `start` left its worker holding the state lock for ever (stuck in the open), so that
every later `start` failed on the lock. Now each is refused at once in one line, as a
directory in its place is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.reliability.conftest import AGENTTY, agentty, gone, start, wait_until

BOUND = 30  # seconds: far more than any of these takes; a hang is what is tested


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENTTY, *args],
        capture_output=True,
        text=True,
        timeout=BOUND,
        stdin=subprocess.DEVNULL,
    )


def _fifo_in_place_of(path: Path) -> Path:
    """`path` set aside and a FIFO made there; the saved copy."""
    saved = path.with_name(path.name + ".saved")
    if path.exists():
        shutil.move(path, saved)
    os.mkfifo(path, 0o600)
    return saved


def _put_back(path: Path, saved: Path) -> None:
    path.unlink()
    if saved.exists():
        shutil.move(saved, path)


@pytest.mark.parametrize("name", ["sessions.json", "active"])
def test_a_fifo_as_the_list_or_the_active_pointer_is_refused_at_once(
    agentty_home: Path, name: str
) -> None:
    rec = start("--", "sleep", "1000000")
    path = agentty_home / name
    saved = _fifo_in_place_of(path)
    try:
        for args in (["status"], ["get"], ["kill", "-s", rec["id"]], ["gc"], ["start", "true"]):
            proc = _run(*args)
            if proc.returncode != 0:
                assert len(proc.stderr.splitlines()) == 1, (args, proc.stderr)
                assert "not a regular file" in proc.stderr, (args, proc.stderr)
        assert "not a regular file" in _run("doctor").stdout
    finally:
        _put_back(path, saved)
    # Nothing holds the state lock now: a start that met the FIFO left no worker behind.
    again = _run("start", "--", "true")
    assert again.returncode == 0, again.stderr
    agentty("kill", "-s", rec["id"])


def _statuses(status_json: str) -> list[object]:
    return [s.get("status") for s in json.loads(status_json)["sessions"]]


def test_a_fifo_as_a_final_screen_or_the_spawner_description_is_refused_at_once(
    agentty_home: Path,
) -> None:
    rec = start("--", "true")
    final = agentty_home / "logs" / f"{rec['id']}.final.json"
    wait_until(final.exists)
    wait_until(lambda: _statuses(_run("status", "--json").stdout) == ["exited"])
    saved = _fifo_in_place_of(final)
    try:
        for args in (["get", "-s", rec["id"]], ["wait", "-s", rec["id"], "--exit"]):
            proc = _run(*args)
            assert proc.returncode != 0 and len(proc.stderr.splitlines()) == 1, proc.stderr
    finally:
        _put_back(final, saved)
    described = agentty_home / "spawner.json"
    saved = _fifo_in_place_of(described)
    try:
        for args in (["status"], ["status", "--json"], ["doctor"]):
            assert _run(*args).returncode in (0, 1)  # answered, not hung
    finally:
        _put_back(described, saved)


@pytest.mark.parametrize("name", ["active", "sessions.json.lock", "sessions.json"])
def test_doctor_fails_where_every_command_would_and_names_a_fix_that_works(
    agentty_home: Path, name: str
) -> None:
    """A directory in place of the active pointer or the lock file: every command failed on
    it while `doctor` said all was well; one in place of the list was to be fixed by
    `agentty status`, which failed the same way. The fix `doctor` names now works."""
    rec = start("--", "sleep", "1000000")
    path = agentty_home / name
    path.unlink()
    path.mkdir()
    doctor = _run("doctor")
    assert doctor.returncode == 1, doctor.stdout
    said = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL")]
    assert len(said) == 1 and str(path) in said[0], doctor.stdout
    fix = doctor.stdout.split("fix: ", 1)[1].splitlines()[0]
    assert fix.startswith(f"move {path} away"), fix
    path.rmdir()  # what it says, as a person would do it
    assert _run("doctor").returncode == 0
    listed = _run("status", "--json")
    assert rec["id"] in listed.stdout, listed  # the list again (brought back from the worker)
    agentty("kill", "-s", rec["id"])


def test_doctor_says_to_move_a_file_made_where_the_home_keeps_a_directory(
    agentty_home: Path,
) -> None:
    """`sockets` a plain file: the fix was `chmod 700`, which does not make it a directory."""
    shutil.rmtree(agentty_home / "sockets", ignore_errors=True)
    (agentty_home / "sockets").write_bytes(b"")
    doctor = _run("doctor")
    assert f"fix: move {agentty_home / 'sockets'} away" in doctor.stdout, doctor.stdout
    (agentty_home / "sockets").unlink()


@pytest.mark.parametrize("name", ["logs", "sockets"])
def test_doctor_names_a_dangling_symlink_where_the_home_keeps_a_directory(
    agentty_home: Path, name: str
) -> None:
    """Every command failed ("cannot create ...") while `doctor` said all was well."""
    path = agentty_home / name
    shutil.rmtree(path, ignore_errors=True)
    path.symlink_to(agentty_home / "nowhere")
    doctor = _run("doctor")
    assert doctor.returncode == 1, doctor.stdout
    assert f"{path} is a dangling symlink" in doctor.stdout, doctor.stdout
    assert f"fix: move {path} away" in doctor.stdout, doctor.stdout
    path.unlink()


def test_a_spawner_whose_description_is_replaced_steps_down(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory in place of `spawner.json`: `status`, `doctor` and `stop` saw no spawner
    while it served every start, until its idle exit ten minutes later."""
    import json

    from tests.helpers.spawner import ready_spawner

    monkeypatch.setenv("AGENTTY_SPAWNER", "1")
    start("--", "true")
    pid = ready_spawner(agentty_home)["pid"]
    described = agentty_home / "spawner.json"
    described.unlink()
    described.mkdir()
    doctor = _run("doctor")
    assert f"FAIL  spawner: {described} is not a regular file" in doctor.stdout, doctor.stdout
    wait_until(lambda: gone(pid), timeout=30)  # (it looks every 0.5 s)
    assert described.is_dir()  # what somebody put there is theirs
    described.rmdir()
    assert json.loads(_run("status", "--json").stdout)["spawner"] is None


def test_a_description_replaced_at_the_same_inode_is_not_the_spawner_s(
    agentty_home: Path,
) -> None:
    """An inode just freed is given to the next file made: `spawner.json` removed and made a
    directory at once got its inode (every time, here, in a quick loop), and the spawner,
    which knew its description by the inode alone, served on unseen (a CI failure of the
    test above). The directory is given the description's identity here for certain."""
    from agentty_core.paths import Home
    from agentty_core.worker.spawner import Spawner

    spawner = Spawner(Home(agentty_home), 60.0)
    spawner.describe(ready=False)
    assert spawner._description_is_ours()
    described = agentty_home / "spawner.json"
    described.unlink()
    described.mkdir()
    st = described.lstat()
    assert spawner.described is not None  # as if the inode came back (it usually does):
    spawner.described = (st.st_dev, st.st_ino, *spawner.described[2:])
    assert not spawner._description_is_ours()

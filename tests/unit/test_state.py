from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agentty_core.errors import StateError, UnsafePath
from agentty_core.paths import Home
from agentty_core.recovery import rebuild_from_workers
from agentty_core.state import records
from agentty_core.state.store import StateStore

WRITER = """
import sys
from agentty_core.paths import Home
from agentty_core.state.store import StateStore
worker = int(sys.argv[1])
store = StateStore(Home.resolve(), lean=worker % 2 == 1)  # filelock and the bare flock mixed
for i in range(15):
    store.add({"id": f"{worker:04x}{i:04x}", "status": "exited"})
"""


def test_concurrent_writers_in_several_processes_lose_nothing(agentty_home: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(w)]) for w in range(6)]
    for p in procs:
        assert p.wait(60) == 0
    ids = {r["id"] for r in records.records(Home.resolve())}
    assert len(ids) == 6 * 15


@pytest.mark.parametrize("holder_lean", [False, True])
def test_the_workers_bare_flock_and_filelock_exclude_each_other(
    agentty_home: Path, holder_lean: bool
) -> None:
    from agentty_core.errors import StateLockTimeout

    home = Home.resolve()  # creates the private home
    holder = StateStore(home, lean=holder_lean)
    other = StateStore(home, timeout=0.2, lean=not holder_lean)
    with holder._locked(), pytest.raises(StateLockTimeout):
        other.add({"id": "0000aaaa", "status": "exited"})
    other.add({"id": "0000aaaa", "status": "exited"})  # free again once released
    assert [r["id"] for r in records.records(home)] == ["0000aaaa"]


CALLER = """
import sys
from agentty_core.paths import Home
from agentty_core.state.store import StateStore
store = StateStore(Home.resolve())
print("locking", flush=True)
store.add({"id": sys.argv[1], "status": "exited"})
print("filelock" in sys.modules)
"""


def test_a_caller_imports_filelock_only_to_wait_for_a_held_lock(agentty_home: Path) -> None:
    home = Home.resolve()
    free = subprocess.run(
        [sys.executable, "-c", CALLER, "0000000c"], capture_output=True, text=True, check=True
    )
    assert free.stdout.split() == ["locking", "False"]
    with StateStore(home, lean=True)._locked():
        waiting = subprocess.Popen(
            [sys.executable, "-c", CALLER, "0000000d"], stdout=subprocess.PIPE, text=True
        )
        assert waiting.stdout is not None
        assert waiting.stdout.readline() == "locking\n"  # it asks for the lock now
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(0.5)
        assert [r["id"] for r in records.records(home)] == ["0000000c"]
    out, _ = waiting.communicate(timeout=30)
    assert (waiting.returncode, out.strip()) == (0, "True")
    assert [r["id"] for r in records.records(home)] == ["0000000c", "0000000d"]


def test_the_callers_lock_is_reentrant_in_its_thread_and_excludes_others(
    agentty_home: Path,
) -> None:
    from agentty_core.errors import StateLockTimeout

    store = StateStore(Home.resolve(), timeout=0.2)
    outcome: list[str] = []

    def add_from_another_thread() -> None:
        try:
            store.add({"id": "0000000e", "status": "exited"})
            outcome.append("added")
        except StateLockTimeout:
            outcome.append("timed out")

    with store._locked(), store._locked():  # reentrant: filelock's lock was
        thread = threading.Thread(target=add_from_another_thread)
        thread.start()
        thread.join(10)
    assert outcome == ["timed out"]
    store.add({"id": "0000000e", "status": "exited"})  # every level released
    assert [r["id"] for r in records.records(Home.resolve())] == ["0000000e"]


def test_writes_are_private_and_leave_no_temp_files(agentty_home: Path) -> None:
    home = Home.resolve()
    StateStore(home).add({"id": "00000001", "status": "exited"})
    mode = stat.S_IMODE(os.stat(home.state_file).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(home.root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(home.lock_file).st_mode) == 0o600
    assert not [p for p in os.listdir(home.root) if p.endswith(".tmp")]


def test_unknown_fields_survive_a_rewrite(agentty_home: Path) -> None:
    home = Home.resolve()
    home.state_file.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "extra": {"keep": True},
                "sessions": [{"id": "0000000a", "status": "exited", "future": [1, 2]}],
            }
        )
    )
    os.chmod(home.state_file, 0o600)
    StateStore(home).update("0000000a", status="lost")
    doc = json.loads(home.state_file.read_text())
    assert doc["extra"] == {"keep": True}
    assert doc["sessions"][0]["future"] == [1, 2]
    assert doc["sessions"][0]["status"] == "lost"


def test_newer_schema_is_never_rewritten(agentty_home: Path) -> None:
    home = Home.resolve()
    original = json.dumps({"schema_version": 99, "sessions": []}).encode()
    home.state_file.write_bytes(original)
    os.chmod(home.state_file, 0o600)
    with pytest.raises(StateError, match="newer agentty"):
        StateStore(home).add({"id": "0000000b"})
    assert home.state_file.read_bytes() == original


def test_corrupt_file_is_moved_aside_not_reset(agentty_home: Path) -> None:
    home = Home.resolve()
    home.state_file.write_bytes(b'{"sessions": [{"id": "trunc')
    os.chmod(home.state_file, 0o600)
    StateStore(home, ask_workers=rebuild_from_workers).add({"id": "0000000c", "status": "exited"})
    aside = [p for p in os.listdir(home.root) if p.startswith("sessions.json.corrupt-")]
    assert len(aside) == 1
    assert (home.root / aside[0]).read_bytes() == b'{"sessions": [{"id": "trunc'
    assert [r["id"] for r in records.records(home)] == ["0000000c"]


def test_symlinked_state_file_is_refused(agentty_home: Path, tmp_path: Path) -> None:
    home = Home.resolve()
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.symlink(victim, home.state_file)
    with pytest.raises(StateError, match="symlink"):
        records.records(home)
    assert victim.read_text() == "precious"


def test_open_home_is_refused_with_the_fix(agentty_home: Path) -> None:
    os.chmod(agentty_home, 0o755)
    with pytest.raises(UnsafePath, match="chmod 700"):
        Home.resolve()


def test_is_live_and_bad_records() -> None:
    assert records.is_live({"id": "0000000a", "status": "starting"})
    assert not records.is_live({"id": "0000000a", "status": "lost"})
    assert records.bad_record({"id": "0000000a", "status": "exited"}) is None
    bad = [
        {"id": "0000000a", "status": ["exited"]},  # hand-edited: unhashable
        {"id": "not-hex!", "status": "exited"},
        {"id": "0000000a\n", "status": "exited"},
        {"id": 7, "status": "exited"},
        {"id": "0000000a", "status": "exited", "exitCode": "3"},
        {"id": "0000000a", "status": "exited", "argv": "sh"},
        {"id": "0000000a", "status": "exited", "name": ["x"]},
    ]
    for raw in bad:
        assert records.bad_record(raw) is not None, raw
        assert records.checked(raw) is None


def test_bad_records_are_skipped_not_a_corrupt_file(agentty_home: Path) -> None:
    home = Home.resolve()
    doc = {
        "schema_version": 1,
        "sessions": [
            {"id": "0000000a", "status": "exited"},
            {"id": "not-hex!", "status": "exited"},
            {"id": 7, "status": "exited"},
            {"id": "0000000b", "status": {"no": 1}},
        ],
    }
    home.state_file.write_text(json.dumps(doc))
    home.state_file.chmod(0o600)
    assert [r["id"] for r in records.records(home)] == ["0000000a"]
    StateStore(home).update("0000000a", status="lost")  # a writer keeps what it cannot read
    kept = json.loads(home.state_file.read_bytes())["sessions"]
    assert [r["id"] for r in kept] == ["0000000a", "not-hex!", 7, "0000000b"]
    assert StateStore(home).remove_bad(spare=lambda rec: False) == ["not-hex!", "7", "0000000b"]
    assert [r["id"] for r in json.loads(home.state_file.read_bytes())["sessions"]] == ["0000000a"]


def test_a_worker_never_rebuilds_and_keeps_its_record(agentty_home: Path) -> None:
    """The worker's (lean) store finds the file corrupt: it sets it aside and puts its own
    record back, asking no worker; readers see the list as incomplete until a caller
    rebuilds it."""
    home = Home.resolve()
    home.state_file.write_bytes(b"{not json")
    home.state_file.chmod(0o600)
    mine = {"id": "0000000d", "status": "running", "argv": ["sh"]}
    code = (
        "import sys, json\n"
        "from agentty_core.paths import Home\n"
        "from agentty_core.state.store import StateStore\n"
        "store = StateStore(Home.resolve(), lean=True)\n"
        f"store.update_or_restore('0000000d', {mine!r}, status='exited', exitCode=3)\n"
        "assert 'agentty_core.recovery' not in sys.modules\n"
        "assert 'agentty_core.ipc.client' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    stored = json.loads(home.state_file.read_bytes())
    assert stored["rebuilding"] is True
    assert stored["sessions"] == [{**mine, "status": "exited", "exitCode": 3}]
    with pytest.raises(records.IncompleteState):
        records.records(home)
    caller = StateStore(home, ask_workers=rebuild_from_workers)
    caller.mutate(lambda sessions: None)  # a caller: asks the (no) live workers
    assert "rebuilding" not in json.loads(home.state_file.read_bytes())
    assert records.records(home)[0]["exitCode"] == 3
    # Outside a rebuild, a record that is gone stays gone (gc removed it, say).
    StateStore(home).remove({"0000000d"})
    StateStore(home, lean=True).update_or_restore("0000000d", mine, status="lost")
    assert records.records(home) == []


def test_the_record_types_cost_the_hot_path_no_typing_import() -> None:
    code = (
        "import sys\n"
        "import agentty_core.state.records, agentty_core.errors, agentty_core.ipc.client\n"
        "assert 'typing' not in sys.modules, 'typing imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("pointed", ["0000aaaa", "0000bbbb"])
def test_forget_removes_records_files_and_a_pointer_to_them(
    agentty_home: Path, pointed: str
) -> None:
    home = Home.resolve()
    store = StateStore(home, timeout=0.0, lean=True)  # the worker's: the lock only tried
    for sid in ("0000aaaa", "0000bbbb"):
        store.add({"id": sid, "status": "exited"})
        home.log_path(sid).write_text("log")
        home.final_path(sid).write_text("{}")
    store.set_active(pointed)
    store.forget({"0000aaaa"})
    assert [r["id"] for r in records.records(home)] == ["0000bbbb"]
    assert not home.log_path("0000aaaa").exists() and not home.final_path("0000aaaa").exists()
    assert home.log_path("0000bbbb").exists() and home.final_path("0000bbbb").exists()
    assert records.read_active(home) == (None if pointed == "0000aaaa" else "0000bbbb")


def test_a_deep_field_and_a_huge_number_together_lose_no_record() -> None:
    """Each alone was read as one bad record; both in the file (a review), the two
    fallbacks did not combine and the whole list was set aside as corrupt."""
    deep = "[" * 3000 + "]" * 3000
    huge = "9" * 5000
    text = (
        '{"schema_version": 1, "sessions": ['
        f'{{"id": "0000000a", "status": "exited", "deep": {deep}}}, '
        f'{{"id": "0000000b", "status": "exited", "exitCode": {huge}}}, '
        '{"id": "0000000c", "status": "exited", "n": 1, "n": ' + deep + "}]}"
    )
    doc = records.parse_state(text.encode(), "sessions.json")
    got = doc["sessions"]
    assert isinstance(got, list) and [r["id"] for r in got] == ["0000000a", "0000000b", "0000000c"]
    assert "deep" not in got[0] and records.bad_record(got[1]) is not None
    assert "n" not in got[2]  # the last of a repeated key counts, as for json.loads

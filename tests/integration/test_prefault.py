"""The spare copies the pages its worker will write (`worker/prefault.py`): learnt from a real
forked process's pagemap, copied with MADV_POPULATE_WRITE, and used by the warm spawner."""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import signal
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agentty_core.worker import prefault
from tests.helpers.cli import wait_until
from tests.helpers.spawner import forked, private_mib, spares, start, warm

PAGE = prefault.PAGE
PAGES = 64
WRITTEN = {*range(3, 10), 20}  # what the forked process writes of the shared buffer


@pytest.fixture
def shared() -> Iterator[tuple[mmap.mmap, int]]:
    """A private buffer, every page present before a fork (so shared with the child)."""
    buf = mmap.mmap(-1, PAGES * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for i in range(PAGES):
        buf[i * PAGE] = i
    view = ctypes.c_char.from_buffer(buf)
    base = ctypes.addressof(view)
    del view  # the buffer's export: the mmap can be closed
    yield buf, base
    buf.close()


@contextmanager
def child_that_wrote(buf: mmap.mmap, pages: set[int]) -> Iterator[int]:
    """A forked child that wrote `pages` of `buf` and waits; its pid."""
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(hold_w)
            os.close(ready_r)
            for i in pages:
                buf[i * PAGE] = 255
            os.write(ready_w, b"r")
            os.read(hold_r, 1)  # until the parent closes its end
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(hold_r)
    try:
        assert os.read(ready_r, 1) == b"r"
        yield pid
    finally:
        os.close(hold_w)
        os.close(ready_r)
        os.waitpid(pid, 0)


def learnt_from(buf: mmap.mmap, pages: set[int]) -> array[int] | None:
    """What `learn` finds in a forked child that wrote `pages` of `buf`."""
    with child_that_wrote(buf, pages) as pid:
        pidfd = os.pidfd_open(pid)
        try:
            return prefault.learn(pid, pidfd)
        finally:
            os.close(pidfd)


def pages_of(runs: object, base: int) -> set[int]:
    assert runs is not None
    found = set()
    for i in range(0, len(runs), 2):  # type: ignore[arg-type]
        start, length = runs[i], runs[i + 1]  # type: ignore[index]
        for addr in range(start, start + length, PAGE):
            if base <= addr < base + PAGES * PAGE:
                found.add((addr - base) // PAGE)
    return found


def own_exclusive(base: int) -> set[int]:
    """The pages of the buffer this process maps alone (its own copies)."""
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(base // PAGE * 8)
        data = f.read(PAGES * 8)
    entries = [int.from_bytes(data[i : i + 8], "little") for i in range(0, len(data), 8)]
    return {i for i, e in enumerate(entries) if e & prefault.PRESENT and e & prefault.EXCLUSIVE}


def test_learn_finds_the_pages_a_forked_process_wrote(shared: tuple[mmap.mmap, int]) -> None:
    buf, base = shared
    runs = learnt_from(buf, WRITTEN)
    assert pages_of(runs, base) == WRITTEN


def test_learn_takes_nothing_once_its_process_ended(shared: tuple[mmap.mmap, int]) -> None:
    """The pages are read by pid, the end is told by the pidfd: a pidfd that says its
    process ended means the pid may be another process's now, and nothing is taken, even
    from a live process that wrote pages (here: another child under that pid)."""
    buf, _ = shared
    ended = os.fork()
    if ended == 0:
        os._exit(0)
    pidfd = os.pidfd_open(ended)
    os.waitpid(ended, 0)
    try:
        with child_that_wrote(buf, WRITTEN) as pid:
            assert prefault.learn(pid, pidfd) is None
            assert prefault.learn(ended, pidfd) is None  # and its own pid is gone
    finally:
        os.close(pidfd)


def test_populate_copies_the_pages_and_keeps_their_contents(
    shared: tuple[mmap.mmap, int],
) -> None:
    buf, base = shared
    runs = learnt_from(buf, WRITTEN)
    assert prefault.prepare()
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a fresh fork, as a spare is: nothing of the buffer is its own yet
        try:
            before = own_exclusive(base)
            copied = prefault.populate(runs)
            after = own_exclusive(base)
            same = all(buf[i * PAGE] == i for i in range(PAGES))
            os.write(status_w, json.dumps([sorted(before), copied, sorted(after), same]).encode())
        finally:
            os._exit(0)
    os.close(status_w)
    said = b""
    while chunk := os.read(status_r, 4096):
        said += chunk
    os.close(status_r)
    os.waitpid(pid, 0)
    before, copied, after, same = json.loads(said)
    assert before == []
    assert copied >= len(WRITTEN)
    assert set(after) == WRITTEN  # exactly those, copied: the rest still shared
    assert same


def test_populate_gives_way_to_a_request(shared: tuple[mmap.mmap, int]) -> None:
    """A spare copies only while nothing is asked of it: not before QUIET has passed, and
    not past the chunk in which a request came (the rest is faulted in as before)."""
    _, base = shared
    runs = array("Q")
    for page in range(0, PAGES, 2):  # 32 runs of one page
        runs.extend((base + page * PAGE, PAGE))
    assert prefault.prepare()
    assert prefault.populate(runs) == 32
    asked = iter([False, True])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prefault, "CHUNK", 8)
        assert prefault.populate(runs, lambda: next(asked)) == 16  # two chunks, then stop
    request_r, request_w = os.pipe()
    try:
        assert prefault.populate_while_idle(runs, request_r) == 32
        os.write(request_w, b"{")
        assert prefault.populate_while_idle(runs, request_r) == 0
    finally:
        os.close(request_r)
        os.close(request_w)


@pytest.mark.usefixtures("spawner_on")
def test_spares_copy_the_pages_the_maker_learnt(agentty_home: Path) -> None:
    """The first worker a spare became is the model; once it has started, the maker learns
    its pages and the spare forked before is replaced by one that holds them already."""
    warm(agentty_home)
    wait_until(lambda: len(spares(agentty_home)) == 1, timeout=30)
    (plain,) = spares(agentty_home)
    unlearnt = private_mib(plain)
    model = start("cat")
    assert model["workerPid"] == plain and forked(model)
    written = private_mib(plain)
    assert unlearnt < 0.5 * written  # the spare alone wrote little of what a worker writes

    def learnt_spare() -> bool:
        return any(
            pid != plain and private_mib(pid) > 0.5 * written for pid in spares(agentty_home)
        )

    wait_until(learnt_spare, timeout=30)
    (ready,) = spares(agentty_home)
    rec = start("cat")
    assert rec["workerPid"] == ready and forked(rec)
    assert private_mib(ready) < 1.5 * written  # no more than a worker's own


@pytest.mark.usefixtures("spawner_on")
def test_the_spawner_log_says_nothing_of_it(agentty_home: Path) -> None:
    warm(agentty_home)
    wait_until(lambda: len(spares(agentty_home)) == 1, timeout=30)
    start("cat")
    wait_until(lambda: any(private_mib(p) > 2 for p in spares(agentty_home)), timeout=30)
    log = (agentty_home / "logs" / "spawner.log").read_text()
    assert "failed" not in log and "maker" not in log, log


@pytest.mark.usefixtures("spawner_on")
def test_a_model_that_ended_before_the_lesson_is_passed_over(agentty_home: Path) -> None:
    """Killed before the maker could learn from it, the model teaches nothing (its pid may
    be another process's by then); the next worker a spare becomes is the model."""
    warm(agentty_home)
    wait_until(lambda: len(spares(agentty_home)) == 1, timeout=30)
    first = start("cat")
    assert forked(first)
    os.kill(first["workerPid"], signal.SIGKILL)  # well within LEARN_AFTER
    time.sleep(1.0)
    assert all(private_mib(pid) < 2.5 for pid in spares(agentty_home))  # nothing learnt
    second = start("cat")
    assert forked(second)
    written = private_mib(second["workerPid"])
    wait_until(
        lambda: any(private_mib(pid) > 0.5 * written for pid in spares(agentty_home)), timeout=30
    )

"""What the warm spawner (`worker/spawner.py`) does before it freezes its heap and forks:
import everything a worker imports, up to its first requests, and run a worker's hot paths
a few times over.

A forked worker shares the spawner's memory until it writes to it. What it would create
lazily (a module imported late, a cache filled on first use) and the bytecode CPython 3.11
specialises in place as a function runs (the code object is rewritten: its pages copied)
would otherwise be made again in every worker's private memory; made here, once, they are
shared by all of them. Nothing here outlives the call but module state: the event loop is
closed, the emulator and its screen dropped.
"""

from __future__ import annotations

import contextlib
import os

from agentty_core import libc
from agentty_core.worker import stopping

ROUNDS = 24  # past 3.11's warm-up delay (8 calls) before it specialises a function
SAMPLE = (
    b"\x1b[?1049h\x1b[H\x1b[2J\x1b]0;title\x07\x1b[1;31mred\x1b[0m plain \x1b[38;5;208mx"
    b"\x1b[48;2;1;2;3my\x1b[m\r\n\xc3\xa9\xe4\xb8\xad tab\there\r\n\x1b[2;5H\x1b[K\x1b[?25l"
    b"\x1b[?2004h\x1b[?1h\x1b=\x1b[6n\x1b[c\x1b[?25h\x1b[?1049l$ ls -l\r\nline\r\n" * 2
)


def warm() -> None:
    """Import and exercise what a worker runs (see the module's docstring)."""
    with stopping.held():
        _warm()
        import gc

        gc.collect()  # the rehearsal's event loops finalized here, the signals still held


def _warm() -> None:
    import ctypes  # noqa: F401  (prctl, for the subreaper and the program's pdeathsig)
    import json
    import logging
    import shlex  # noqa: F401  (`intent`: the record's command line)

    import agentty_core.proc.killtree
    import agentty_core.worker.core  # noqa: F401
    from agentty_core.emulator.pyte_backend import Emulator
    from agentty_core.proc import identity, inputstate, ptyhost
    from agentty_core.state import intent, store  # noqa: F401  (`intent`: the `start` lane)

    ptyhost.preload()
    from agentty_core.worker.main import LOG_FORMAT

    formatter = logging.Formatter(LOG_FORMAT)
    for _ in range(ROUNDS):
        emu = Emulator(80, 24, 5000)
        emu.feed(SAMPLE)
        payload = {
            "lines": emu.lines(),
            "ansi": emu.ansi_lines(),
            "scrollback": emu.scrollback(),
            "cursor": emu.cursor,
            "modes": emu.modes,
            "title": emu.title,
            "seq": emu.seq,
            "found": emu.find("plain"),
            "dirty": sorted(emu.dirty_rows()),
            "input": inputstate.exited(),
        }
        line = json.dumps({"v": 1, "ok": True, "result": payload}).encode()
        json.loads(line)
        json.loads(b'{"v": 1, "method": "get", "params": {"lines": 3}}')
        record = logging.LogRecord("agentty.worker", logging.INFO, __file__, 1, "%s", ("x",), None)
        formatter.format(record)
        # The state file, as `state.store` writes and reads it.
        rec = {"id": "0123abcd", "status": "running", "argv": ["cat"], "pid": 1, "cols": 80}
        json.loads(store.encode_state({"schema_version": 1, "sessions": [rec] * 3}))
        identity.same_process(os.getpid(), identity.start_token(os.getpid()))
        identity.create_time(os.getpid())

    _start_up()


def _scratch_dir() -> str:
    """A private directory for the rehearsal, in memory when there is one (its state
    writes fsync)."""
    import tempfile

    shm = "/dev/shm"
    where = shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None
    return tempfile.mkdtemp(prefix="agentty-warm-", dir=where)


def _start_up() -> None:
    """Rehearse a worker's start-up, as far as it can run here, in a scratch home: its log
    handler, its record written under the state lock, its emulator and Worker object, an
    `asyncio.run` loop with its signal handlers, a reader, its socket bound and its ready
    line written.

    Code run only after the fork is otherwise written to there: 3.11 counts every call of a
    function not yet quickened in its code object, and every run of an instruction not yet
    specialised in the instruction's cache; each such write copies a page the worker shared
    with the spawner (measured: 340 code objects in logging, pathlib, the state store,
    asyncio, selectors and socket written by an idle worker after its fork)."""
    import asyncio
    import logging
    import shutil
    import signal
    from pathlib import Path
    from typing import cast

    from agentty_core.paths import Home
    from agentty_core.state.records import RawRecord, Record
    from agentty_core.state.store import StateStore
    from agentty_core.worker import loop
    from agentty_core.worker.core import Worker
    from agentty_core.worker.main import LOG_FORMAT, CappedLogHandler

    scratch = _scratch_dir()
    log = logging.getLogger("agentty.worker")
    null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    handler = CappedLogHandler(null)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    saved = (log.propagate, log.level)
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        home = Home.resolve(Path(scratch))  # the `start` lane's: it checks the home
        # Bound only where the scratch home keeps its sockets (not AGENTTY_SOCKET_DIR's).
        bind = home.socket_dir() == home.sockets_dir
        sid = "0123abcd"
        record: RawRecord = {"id": sid, "status": "starting", "argv": ["cat"]}
        StateStore(home, lean=True).add(cast(Record, dict(record)))
        spec: RawRecord = {"id": sid, "home": scratch, "argv": ["cat"], "cols": 80, "rows": 24}
        spec.update(cwd=scratch, env={}, record=dict(record))

        async def rehearse(worker: Worker) -> None:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGWINCH, _nothing)  # ignored by default
            loop.remove_signal_handler(signal.SIGWINCH)
            read_end, write_end = os.pipe()
            try:
                loop.add_reader(read_end, _nothing)
                await asyncio.sleep(0)
                loop.remove_reader(read_end)
            finally:
                os.close(read_end)
                os.close(write_end)
            if bind:  # the worker's own socket, its Server on the loop
                worker._bind()
                if worker.server is not None:
                    worker.server.close()
            worker._update_record(workerPid=os.getpid(), workerStart="x", workerCreateTime=0.0)
            worker._record_running(status="running", emulator=worker.emulator_name, pid=1)
            log.info("worker %s starting session %s (emulator %s): %s", 1, sid, "pyte", ["cat"])
            worker._report({"ok": True, "pid": 1, "workerPid": 1, "active": False})

        for _ in range(ROUNDS):
            status_r, status_w = os.pipe()
            worker: Worker | None = None
            try:
                worker = Worker(dict(spec), home, status_w)
                home.log_path(sid)
                loop.run(rehearse(worker))
            finally:
                if worker is None or worker.status_fd is not None:  # `_report` closes it
                    os.close(status_w)
                os.close(status_r)
    finally:
        log.removeHandler(handler)
        log.propagate = saved[0]
        log.setLevel(saved[1])
        os.close(null)
        shutil.rmtree(scratch, ignore_errors=True)


def _nothing() -> None:
    """A callback for the rehearsal's handlers and readers (never called)."""


def settle() -> None:
    """Once a worker is ready: give the C heap's free pages back to the system.

    Start-up reads the whole state file (a home of 200 sessions: ~130 KB of JSON, a dict per
    record) and frees it; glibc keeps the freed chunks, whose pages stay resident and
    private to the worker (+0.4 MiB at 80 sessions, growing with the home). `malloc_trim`
    returns every free page, not only the heap's top."""
    with contextlib.suppress(OSError, AttributeError):
        libc.function("malloc_trim")(0)


def freeze() -> None:
    """The spawner's last step before it serves: collect, fill the allocator's holes, give
    free C heap pages back, then freeze the heap (`gc.freeze`: the collector never touches
    these objects again, in the spawner or in a worker)."""
    import gc

    with stopping.held():
        gc.collect()
        _fill_pools()
        settle()
        gc.freeze()


_FILLER: list[object] = []  # kept for the spawner's life (and shared with every worker)


def _fill_pools() -> None:
    """Fill the free blocks left in pymalloc's pools by objects freed during the imports.

    A worker's first allocations would land in them, one here and one there: each in a page
    shared with the spawner, which the write copies. Filled, they go to fresh pools instead,
    packed into a few pages of the worker's own. The free counts come from
    `sys._debugmallocstats` (CPython's own report; anything else: nothing is filled)."""
    for size, free in _free_blocks().items():
        if size >= 48:  # a bytes object of n bytes takes 33 + n
            _FILLER.append([bytes(size - 33) for _ in range(free)])
        elif size == 32:  # a float takes 24 (its free list is used up first)
            _FILLER.append([float(i) + 0.5 for i in range(free + 100)])


def _free_blocks() -> dict[int, int]:
    """Size class -> free blocks in its pools, from `sys._debugmallocstats` (on stderr)."""
    import re
    import sys
    import tempfile

    stats = getattr(sys, "_debugmallocstats", None)
    if stats is None:
        return {}
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            stats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode("ascii", "replace")
    # class, size, pools, blocks in use, free blocks
    row = re.compile(r"^\s*\d+\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s*$", re.MULTILINE)
    return {int(size): int(free) for size, free in row.findall(text)}

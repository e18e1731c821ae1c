"""The warm spawner's warm-up (`worker/warmup.py`) runs in the spawner before it forks any
worker: whatever it leaves behind (a handler, a descriptor, a thread, a directory, a
logger set up) every worker would inherit. Run in a fresh interpreter, as the spawner."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

SCRIPT = r"""
import json, logging, os, signal, sys, threading

import agentty_core.worker.main  # the spawner's first import (ssl kept out)
from agentty_core.worker import warmup

def state():
    handlers = {}
    for sig in signal.valid_signals():
        try:
            handlers[int(sig)] = repr(signal.getsignal(sig))
        except (OSError, ValueError):
            pass
    worker_log = logging.getLogger("agentty.worker")
    return {
        "fds": sorted(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
        "signals": handlers,
        "wakeup": signal.set_wakeup_fd(-1),
        "root": [repr(h) for h in logging.getLogger().handlers] + [logging.getLogger().level],
        "worker_log": [len(worker_log.handlers), worker_log.propagate, worker_log.level],
        "cwd": os.getcwd(),
        "umask": os.umask(0o022),
    }

before = state()
scratch = []
make = warmup._scratch_dir
warmup._scratch_dir = lambda: scratch.append(make()) or scratch[-1]
warmup.warm()
__import__("gc").collect()
free_before = warmup._free_blocks()
warmup._fill_pools()
free_after = warmup._free_blocks()
warmup.freeze()
after = state()
print(json.dumps({
    "before": before,
    "after": after,
    "scratch": scratch,
    "scratch_left": [p for p in scratch if os.path.exists(p)],
    "free_before": free_before,
    "free_after": free_after,
    "frozen": __import__("gc").get_freeze_count(),
}))
"""


def _run() -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def test_warm_up_leaves_the_spawner_as_it_found_it() -> None:
    report = _run()
    # The listing's own descriptor differs between the two listings: compare the rest.
    before, after = report["before"], report["after"]
    assert len(after.pop("fds")) == len(before.pop("fds"))
    assert after == before
    assert report["scratch"], "the start-up rehearsal did not run"
    assert report["scratch_left"] == []
    assert report["frozen"] > 10_000  # the heap is frozen


def test_freeze_fills_the_allocators_free_blocks() -> None:
    """The filler has something to go by on this interpreter (it parses CPython's own
    report), and leaves fewer free blocks than it found in the size classes it fills (what
    is left is mostly fresh pools' untouched blocks, and the report's own garbage)."""
    report = _run()
    before = {int(k): v for k, v in report["free_before"].items()}
    after = {int(k): v for k, v in report["free_after"].items()}
    assert len(before) == 32, before  # pymalloc's size classes, 16 to 512 bytes
    filled = [size for size in before if size >= 48]
    assert sum(after[s] for s in filled) < sum(before[s] for s in filled) / 2, (before, after)


HELD = r"""
import os, signal, sys
from agentty_core.worker import stopping

def on_term(signum, frame):  # the spawner's
    raise SystemExit(7)

signal.signal(signal.SIGTERM, on_term)

class Finalized:
    def __del__(self):  # as an event loop's, collected during the warm-up
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(1000))  # the handler runs here, inside the finalizer

with stopping.held() if sys.argv[1] == "held" else open(os.devnull):
    Finalized()
    print("warm-up done", flush=True)
print("went on to serve", flush=True)
"""


def test_a_stop_during_the_warm_up_is_not_lost_in_a_finalizer() -> None:
    """SIGTERM's SystemExit raised inside a `__del__` is printed and dropped: the spawner
    went on to serve after `stop` (seen under load in the reaper's test). Held during the
    warm-up, it ends the process as soon as the warm-up is over."""
    unheld = subprocess.run(
        [sys.executable, "-c", HELD, "unheld"], capture_output=True, text=True, timeout=60
    )
    assert "went on to serve" in unheld.stdout  # the failure the hold prevents
    assert "Exception ignored" in unheld.stderr
    held = subprocess.run(
        [sys.executable, "-c", HELD, "held"], capture_output=True, text=True, timeout=60
    )
    assert held.returncode == 7, held.stderr
    assert held.stdout.split("\n")[0] == "warm-up done"
    assert "went on to serve" not in held.stdout
    assert "Exception ignored" not in held.stderr

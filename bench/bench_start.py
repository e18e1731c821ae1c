"""5. Start: `agentty start -- cat` until ready, 20 sequential and 20 concurrent (quick: 3),
vs `tmux new-session -d cat`. The worker's own ready time (its spawn until the `ready` line on
the status pipe, which `start` waits for) is timed in-process from `spawn_worker` to the end of
`_hand_over`, since the record only keeps millisecond timestamps.

Each is measured with workers spawned directly (`AGENTTY_SPAWNER=0`, a fresh interpreter per
worker) and forked by the home's warm spawner (the CLI then takes the `start` lane,
`cli/startlane.py`: the forked worker writes the record itself; the library's `Client.start`
in the worker-ready row still asks the spawner for a worker only); a cold start (a fresh
home: no spawner yet, the start launches one) against a direct one; and an idle session's
memory (the worker's PSS, USS and RSS from /proc/PID/smaps_rollup) both ways.
Targets: worker ready <= 50 ms; CLI <= 80 ms; with the spawner warm, start <= 1.5x the
interpreter floor (`python -I -c pass`) and 20 concurrent starts p95 <= 300 ms; a cold start
no slower than a direct one; an idle session's PSS <= 5 MiB."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agentty_core.launch import launcher, spawner_client
from agentty_core.launch import spawn as worker_spawn
from agentty_core.paths import Home
from bench.common import (
    AGENTTY,
    PYTHON,
    TMUX,
    TMUX_HINT,
    Row,
    Tmux,
    agentty_home,
    client,
    kill_all,
    median,
    ms_row,
    run_quiet,
    skipped,
    spawner_ready,
)

B = "5 start"


def _worker_ready(n: int, *, warm: bool = False) -> list[float]:
    """Time the worker's spawn until its ready line over n library starts (`start` writes
    the intent record meanwhile, while the worker imports), spawned directly or (`warm`)
    forked by the home's ready spawner."""
    times: list[float] = []
    spawned: list[float] = []
    module: Any = spawner_client if warm else worker_spawn
    spawn: Callable[..., Any] = module.spawn_worker
    hand_over: Callable[..., Any] = launcher._hand_over

    def timed_spawn(*args: Any, **kwargs: Any) -> Any:
        spawned.append(time.perf_counter())
        return spawn(*args, **kwargs)

    def timed_hand_over(*args: Any, **kwargs: Any) -> Any:
        try:
            return hand_over(*args, **kwargs)
        finally:
            times.append(time.perf_counter() - spawned[-1])

    try:
        with spawner(warm) as root:
            module.spawn_worker = timed_spawn
            launcher._hand_over = timed_hand_over
            c = client(root)
            for _ in range(n):
                c.start(["cat"])
    finally:
        module.spawn_worker = spawn
        launcher._hand_over = hand_over
    return times


@contextlib.contextmanager
def spawner(warm: bool) -> Iterator[Path]:
    """A fresh home whose spawner is ready (`warm`) or turned off; ended afterwards."""
    old = os.environ.get("AGENTTY_SPAWNER")
    os.environ["AGENTTY_SPAWNER"] = "1" if warm else "0"
    try:
        with agentty_home() as root:
            try:
                if warm:
                    client(root).start(["true"])  # finds no spawner: launches one
                    spawner_ready(root)
                yield root
            finally:
                spawner_client.stop(str(root))
    finally:
        if old is None:
            os.environ.pop("AGENTTY_SPAWNER", None)
        else:
            os.environ["AGENTTY_SPAWNER"] = old


def _memory_of(pid: int) -> dict[str, float] | None:
    """MiB of Pss, USS (private pages) and Rss from /proc/PID/smaps_rollup."""
    fields: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if rest.strip().endswith("kB"):
                    fields[key] = int(rest.split()[0]) / 1024
    except OSError:
        return None
    uss = fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0)
    return {"pss": fields.get("Pss", 0.0), "uss": uss, "rss": fields.get("Rss", 0.0)}


def _idle_memory(n: int, warm: bool) -> Row:
    """An idle session's worker memory, n sessions of `cat` at once (so shared pages are
    shared n ways, as they are with many sessions)."""
    with spawner(warm) as root:
        c = client(root)
        pids = [c.start(["cat"]).get("workerPid") for _ in range(n)]
        time.sleep(0.5)  # idle: the start-up's garbage collected, nothing arriving
        mems = [m for p in pids if isinstance(p, int) and (m := _memory_of(p)) is not None]
    if not mems:
        return skipped(B, "idle session memory", "no /proc/PID/smaps_rollup here")
    how = "forked by the spawner" if warm else "spawned directly"
    row = Row(B, f"idle session: worker PSS, {how} ({n} sessions)", "MiB", 0.0)
    row.median = round(sum(m["pss"] for m in mems) / len(mems), 2)
    row.extra = {
        "uss_mib": round(sum(m["uss"] for m in mems) / len(mems), 2),
        "rss_mib": round(sum(m["rss"] for m in mems) / len(mems), 2),
    }
    row.samples = len(mems)
    row.target, row.ok = "<= 5 MiB", row.median <= 5
    return row


def _cold_starts(n: int) -> tuple[list[float], list[float]]:
    """`agentty start` in a fresh home, spawner off (a direct start, as before the spawner
    existed) and on (the start that finds none and launches one for the next), taken in
    turn so that both see the same machine (a spawner just stopped, say)."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(n):
        for warm_capable in (False, True):
            with spawner(False) as root:
                env = dict(os.environ, AGENTTY_SPAWNER="1" if warm_capable else "0")
                times[warm_capable].append(run_quiet([AGENTTY, "start", "--", "cat"], env=env))
                if warm_capable:  # one still importing is not found by `stop`: it would linger
                    spawner_ready(root)
                spawner_client.stop(str(root))
    return times[False], times[True]


def _concurrently(n: int, argv_for: Callable[[int], list[str]]) -> list[float]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda i: run_quiet(argv_for(i)), range(n)))


def run(quick: bool) -> list[Row]:
    n = 3 if quick else 20
    rows: list[Row] = []
    tmux_seq = tmux_conc = None
    if TMUX:
        with Tmux() as tmux:
            tmux.new_session("keep", "cat")  # the server is up, as agentty's home is
            tmux_seq = ms_row(
                B,
                "tmux new-session -d, sequential",
                [run_quiet(tmux.cmd("new-session", "-d", "-s", f"s{i}", "cat")) for i in range(n)],
            )
            tmux_conc = ms_row(
                B,
                f"tmux new-session -d, {n} concurrent",
                _concurrently(n, lambda i: tmux.cmd("new-session", "-d", "-s", f"c{i}", "cat")),
            )
        rows += [tmux_seq, tmux_conc]
    else:
        rows.append(skipped(B, "tmux new-session -d", TMUX_HINT))
    floor = ms_row(B, "interpreter floor: python -I -c pass", _floor(n))
    rows.append(floor)
    for warm in (False, True):
        how = "spawner warm" if warm else "direct"
        ready = ms_row(B, f"worker ready (spawn -> ready line), {how}", _worker_ready(n, warm=warm))
        ready.target, ready.ok = "<= 50 ms", (ready.median or 0) <= 50
        rows.append(ready)
        with spawner(warm) as root:
            seq, beside = [], []  # the floor taken in turn with each start: the same phase
            for _ in range(n):
                seq.append(run_quiet([AGENTTY, "start", "--", "cat"]))
                beside += _floor(1)
            kill_all(root)
            conc = _concurrently(n, lambda i: [AGENTTY, "start", "--", "cat"])
            started = len(client(root).sessions())
        for name, samples, peer in (
            (f"agentty start (CLI), {how}, sequential", seq, tmux_seq),
            (f"agentty start (CLI), {how}, {n} concurrent", conc, tmux_conc),
        ):
            row = ms_row(B, name, samples, target="<= 80 ms")
            row.ok = (row.median or 0) <= 80
            if peer is not None:
                row.peer, row.peer_median = "tmux", peer.median
            rows.append(row)
        rows[-1].note = f"{started} sessions in the home"
        if warm:
            seq_row, conc_row = rows[-2], rows[-1]
            seq_row.target = "<= 1.5x the interpreter floor"
            floor_beside = median(beside) * 1000
            seq_row.peer, seq_row.peer_median = "python -I -c pass", floor_beside
            seq_row.ok = (seq_row.ratio or 99) <= 1.5
            seq_row.note = f"the floor taken in turn with the starts: {floor_beside:.1f} ms"
            conc_row.target, conc_row.ok = "p95 <= 300 ms", (conc_row.p95 or 999) <= 300
            rows.append(_start_among_ended(n, ENDED))
    off, on = _cold_starts(n)
    direct_cold = ms_row(B, "agentty start (CLI), fresh home, spawner off", off)
    cold = ms_row(B, "agentty start (CLI), cold: fresh home, launches the spawner", on)
    cold.peer, cold.peer_median = "spawner off", direct_cold.median
    cold.target = "no slower than a direct start"
    cold.ok = (cold.ratio or 99) <= 1.1
    rows += [direct_cold, cold]
    sessions = 3 if quick else 20
    rows += [_idle_memory(sessions, warm=False), _idle_memory(sessions, warm=True)]
    rows.append(_lock_handover(5 if quick else 40))
    return rows


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
print(time.monotonic(), flush=True)
os.close(fd)
"""


def _handovers(n: int, lock_file: Path) -> list[float]:
    """From a holder process's letting go of the state lock (an upper bound: the time is
    taken before its close) until a worker's writer waiting for it has it. The wait is
    1-10 ms long (random: never in step with a waiter's tries), as behind a few writers."""
    import random
    import subprocess
    import threading

    from agentty_core.state.store import LOCK_TIMEOUT, _Flock

    gaps: list[float] = []
    for _ in range(n):
        holder = subprocess.Popen(
            [PYTHON, "-c", HOLDER, str(lock_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdout.readline()
        lock = _Flock(str(lock_file), LOCK_TIMEOUT)
        taken: list[float] = []
        waiter = threading.Thread(target=_take, args=(lock, taken))
        waiter.start()
        time.sleep(random.uniform(0.001, 0.01))  # as long as a few writes ahead of it
        holder.stdin.write("\n")
        holder.stdin.flush()
        let_go = float(holder.stdout.readline())
        waiter.join(LOCK_TIMEOUT)
        holder.wait(10)
        lock.release()
        gaps.append(taken[0] - let_go)
    return gaps


def _take(lock: Any, when: list[float]) -> None:
    lock.acquire()
    when.append(time.monotonic())


def _lock_handover(n: int) -> Row:
    """How soon a writer waiting for the state lock has it (20 concurrent starts queue on
    it): tried again after short pauses first (`store.PAUSES`), against trying every RETRY
    from the first, as every waiter did before."""
    from agentty_core.state import store

    with agentty_home() as root:
        lock_file = Home.resolve(root).lock_file
        soon = _handovers(n, lock_file)
        pauses, store.PAUSES = store.PAUSES, ()
        try:
            every = _handovers(n, lock_file)
        finally:
            store.PAUSES = pauses
    row = ms_row(B, "state lock: a waiting writer has it after its holder lets go", soon)
    row.peer, row.peer_median = f"trying every {store.RETRY * 1000:g} ms", median(every) * 1000
    row.note = "a holder process lets go; the waiter is a worker's lock (a bare flock)"
    return row


ENDED = 500  # ended sessions in a home: an agent's day of start and kill, never gc'd


def _start_among_ended(n: int, ended: int) -> Row:
    """A warm start in a home holding `ended` ended sessions (copies of a real record): the
    state file is read and written whole twice by every start (and once by every exit),
    so its size is part of every start's cost."""
    from agentty_core.state.store import StateStore

    with spawner(warm=True) as root:
        c = client(root)
        sid = str(c.start(["true"])["id"])
        c.wait(sid, exit=True, timeout=10)
        model = c.resolve(sid)  # an ended session's record, as `kill` or an exit leave it

        def pad(sessions: list[Any]) -> None:
            sessions.extend({**model, "id": f"{i:08x}"} for i in range(ended - len(sessions)))

        StateStore(Home.resolve(root)).mutate(pad)
        size = (root / "sessions.json").stat().st_size
        samples, beside = [], []
        for _ in range(n):
            samples.append(run_quiet([AGENTTY, "start", "--", "cat"]))
            beside += _floor(1)
        kill_all(root)
    row = ms_row(
        B, f"agentty start (CLI), spawner warm, {ended} ended sessions in the home", samples
    )
    row.peer, row.peer_median = "python -I -c pass", median(beside) * 1000
    row.note = (
        f"sessions.json {size / 1024:.0f} KiB, read and written whole twice per start; "
        "`agentty gc` removes ended sessions"
    )
    return row


def _floor(n: int) -> list[float]:
    return [run_quiet([PYTHON, "-I", "-c", "pass"]) for _ in range(n)]


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)

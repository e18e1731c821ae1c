"""5. Start: `agentty start -- cat` until ready, 20 sequential and 20 concurrent (quick: 5),
vs `tmux new-session -d cat`. The worker's own ready time (its spawn until the `ready` line on
the status pipe, which `start` waits for) is timed in-process from `spawn_worker` to the end of
`_hand_over`, since the record only keeps millisecond timestamps.
Targets: worker ready <= 50 ms; CLI <= 80 ms."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agentty_core.launch import launcher
from agentty_core.launch import spawn as worker_spawn
from bench.common import (
    AGENTTY,
    TMUX,
    TMUX_HINT,
    Row,
    Tmux,
    agentty_home,
    client,
    kill_all,
    ms_row,
    run_quiet,
    skipped,
)

B = "5 start"


def _worker_ready(n: int) -> list[float]:
    """Time the worker's spawn until its ready line over n library starts (`start` writes
    the intent record meanwhile, while the worker imports)."""
    times: list[float] = []
    spawned: list[float] = []
    spawn: Callable[..., Any] = worker_spawn.spawn_worker
    hand_over: Callable[..., Any] = launcher._hand_over

    def timed_spawn(*args: Any, **kwargs: Any) -> Any:
        spawned.append(time.perf_counter())
        return spawn(*args, **kwargs)

    def timed_hand_over(*args: Any, **kwargs: Any) -> Any:
        try:
            return hand_over(*args, **kwargs)
        finally:
            times.append(time.perf_counter() - spawned[-1])

    worker_spawn.spawn_worker = timed_spawn
    launcher._hand_over = timed_hand_over
    try:
        with agentty_home() as root:
            c = client(root)
            for _ in range(n):
                c.start(["cat"])
    finally:
        worker_spawn.spawn_worker = spawn
        launcher._hand_over = hand_over
    return times


def _concurrently(n: int, argv_for: Callable[[int], list[str]]) -> list[float]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda i: run_quiet(argv_for(i)), range(n)))


def run(quick: bool) -> list[Row]:
    n = 5 if quick else 20
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
    ready = ms_row(B, "worker ready (spawn -> ready line)", _worker_ready(n))
    ready.target, ready.ok = "<= 50 ms", (ready.median or 0) <= 50
    rows.append(ready)
    with agentty_home() as root:
        seq = [run_quiet([AGENTTY, "start", "--", "cat"]) for _ in range(n)]
        kill_all(root)
        conc = _concurrently(n, lambda i: [AGENTTY, "start", "--", "cat"])
        started = len(client(root).sessions())
    for name, samples, peer in (
        ("agentty start (CLI), sequential", seq, tmux_seq),
        (f"agentty start (CLI), {n} concurrent", conc, tmux_conc),
    ):
        row = ms_row(B, name, samples, target="<= 80 ms")
        row.ok = (row.median or 0) <= 80
        if peer is not None:
            row.peer, row.peer_median = "tmux", peer.median
        rows.append(row)
    rows[-1].note = f"{started} sessions in the home"
    return rows


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)

"""6. Scale: N live sessions (full 200, quick 10): `agentty get` p95 across them as whole
processes (target <= 50 ms), `agentty status --json` time (target <= 300 ms), the workers'
total RSS, USS and PSS (issue 14: 200 idle sessions <= 1.2 GiB PSS, pro rata for fewer).

The home is warm first (its spawner ready, as an agent's is after its first `start`), so
that the sessions are what an agent's are: forked by the spawner. A start the spawner does
not answer in time is spawned directly (~12 MiB more PSS); the note says how many were, and
the spawner's own PSS, which the workers' total leaves out."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psutil

from agentty_core.launch import spawner_client
from bench.common import AGENTTY, Row, agentty_home, client, ms_row, p95, run_quiet, warm_home

B = "6 scale"
MIB = 1 << 20


def run(quick: bool) -> list[Row]:
    n = 10 if quick else 200
    with agentty_home() as root:
        if spawner_client.enabled():
            warm_home(root)
        c = client(root)
        with ThreadPoolExecutor(max_workers=4) as pool:
            recs = list(pool.map(lambda _: c.start(["cat"]), range(n)))
        ids = [str(r["id"]) for r in recs]
        gets = [run_quiet([AGENTTY, "get", "--session", sid]) for sid in ids]
        status = [run_quiet([AGENTTY, "status", "--json"]) for _ in range(3 if quick else 10)]
        rss = uss = pss = 0
        direct = 0
        for rec in recs:
            proc = psutil.Process(int(str(rec["workerPid"])))
            info = proc.memory_full_info()
            rss += info.rss
            uss += info.uss
            pss += info.pss
            direct += "agentty_core.worker.spawner" not in " ".join(proc.cmdline())
        spawner = (spawner_client.info(str(root)) or {}).get("pid")
        spawner_pss = -1.0
        if isinstance(spawner, int):
            spawner_pss = psutil.Process(spawner).memory_full_info().pss / MIB
    get_row = ms_row(B, f"agentty get across {n} sessions", gets, target="p95 <= 50 ms")
    get_row.ok = p95([g * 1000 for g in gets]) <= 50
    status_row = ms_row(B, f"agentty status --json, {n} sessions", status, target="<= 300 ms")
    status_row.ok = (status_row.median or 0) <= 300
    pss_target = 1.2 * 1024 * n / 200  # MiB: 1.2 GiB for 200
    pss_row = Row(B, f"total worker PSS, {n} sessions", "MiB", pss / MIB)
    pss_row.target = f"<= {pss_target:.0f} MiB"
    pss_row.ok = pss / MIB <= pss_target
    pss_row.note = (
        f"{n - direct} forked by the warm spawner, {direct} spawned directly; "
        f"the spawner itself: {spawner_pss:.1f} MiB PSS"
    )
    return [
        get_row,
        status_row,
        Row(
            B, f"total worker RSS, {n} sessions", "MiB", rss / MIB, note=f"USS {uss / MIB:.0f} MiB"
        ),
        pss_row,
    ]


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)

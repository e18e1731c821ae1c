"""4. Memory: RSS, USS and PSS (psutil `memory_full_info`) of one idle worker, and of a worker
holding N lines of 120 coloured columns of scrollback at 200x50 vs a tmux server holding the
same lines. Targets: idle RSS <= 20 MiB, USS <= 10 MiB, PSS <= 5 MiB (issue 14: a worker
forked by the home's warm spawner, which shares what the spawner imported); loaded <= 2x
tmux, shown both as totals and as the lines' own cost (each process's growth over its idle
state)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import psutil

from agentty_core.client import Client
from agentty_core.launch import spawner_client
from bench.common import CSI, TMUX, TMUX_HINT, Row, Tmux, agentty_home, client, poll, skipped

B = "4 memory"
MIB = 1 << 20


def _mem(pid: int) -> tuple[float, float]:
    info = psutil.Process(pid).memory_full_info()
    return info.rss / MIB, info.uss / MIB


def _pss(pid: int) -> float:
    return float(psutil.Process(pid).memory_full_info().pss) / MIB


FORKED = 5  # idle workers forked by the spawner: PSS shares the spawner's pages among them


def _forked_idle_pss(c: Client, root: Path) -> tuple[float, float, float, str] | None:
    """Median RSS, USS and PSS of idle workers forked by the warm spawner, and where the
    median one's private memory is (None if the spawner never became ready: a worker
    spawned directly is another row's)."""
    if not spawner_client.enabled():
        return None
    if not poll(lambda: (spawner_client.info(str(root)) or {}).get("ready") is True, 30, 0.05):
        return None
    recs = [c.start(["cat"]) for _ in range(FORKED)]
    time.sleep(0.5)
    stats = sorted((*_mem(int(str(r["workerPid"]))), _pss(int(str(r["workerPid"])))) for r in recs)
    regions = _private_regions(int(str(recs[len(recs) // 2]["workerPid"])))
    for rec in recs:
        c.kill(str(rec["id"]), grace=1.0)
    return (*stats[len(stats) // 2], regions)


def _was_forked(pid: int) -> bool:
    """Forked by the warm spawner (its command line is the spawner's)?"""
    return "agentty_core.worker.spawner" in " ".join(psutil.Process(pid).cmdline())


def _private_regions(pid: int) -> str:
    """Where a worker's private (copied or its own) memory is, from /proc/PID/smaps: the C
    heap, the anonymous mappings (pymalloc's arenas: objects whose refcounts or inline
    caches the worker wrote), the interpreter's own data, the rest."""
    kib: dict[str, int] = {}
    name = ""
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split()
                if "-" in head[0] and not head[0].endswith(":"):
                    path = head[5] if len(head) > 5 else "anon"
                    name = "libpython" if "libpython" in path else path.strip("[]")
                    if name not in ("heap", "anon", "libpython"):
                        name = "other"
                elif head[0] in ("Private_Dirty:", "Private_Clean:"):
                    kib[name] = kib.get(name, 0) + int(head[1])
    except OSError:
        return ""
    return ", ".join(f"{k} {v / 1024:.2f}" for k, v in sorted(kib.items(), key=lambda kv: -kv[1]))


def _make(path: Path, n: int) -> str:
    """n lines of 120 visible columns, every digit in its own colour."""
    out = []
    for i in range(n):
        cells = "".join(f"{CSI}3{(i + k) % 8}m{(i * 7 + k) % 10}" for k in range(111))
        out.append(f"{CSI}1m{i:08d}{CSI}0m {cells}{CSI}0m\n")
    last = f"END-OF-SCROLLBACK {n}"
    out.append(last + "\n")
    path.write_text("".join(out))
    return last


def run(quick: bool) -> list[Row]:
    n = 2000 if quick else 10_000
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="atb-mem-") as tmp, agentty_home() as root:
        c = client(root)
        idle = c.start(["cat"])
        time.sleep(0.5)
        rss, uss = _mem(int(str(idle["workerPid"])))
        rows.append(Row(B, "idle worker RSS", "MiB", rss, target="<= 20 MiB", ok=rss <= 20))
        rows.append(Row(B, "idle worker USS", "MiB", uss, target="<= 10 MiB", ok=uss <= 10))
        pss = _pss(int(str(idle["workerPid"])))
        rows.append(Row(B, "idle worker PSS (spawned directly)", "MiB", pss))
        forked = _forked_idle_pss(c, root)
        if forked is None:
            rows.append(skipped(B, "idle forked worker PSS", "the warm spawner never got ready"))
        else:
            note = f"median of {FORKED} idle workers forked by the warm spawner"
            f_rss, f_uss, f_pss, regions = forked
            rows.append(Row(B, "idle forked worker RSS", "MiB", f_rss, note=note))
            where = f"{note}; private MiB: {regions}" if regions else note
            rows.append(Row(B, "idle forked worker USS", "MiB", f_uss, note=where))
            row = Row(B, "idle forked worker PSS", "MiB", f_pss, target="<= 5 MiB", note=note)
            row.ok = f_pss <= 5
            rows.append(row)
        path = Path(tmp, "scroll.txt")
        last = _make(path, n)
        rec = c.start(["sh", "-c", f"cat {path}; exec cat"], cols=200, rows=50)
        sid = str(rec["id"])
        c.wait(sid, text=last, timeout=600)
        back = c.get(sid, scrollback=True).get("scrollback")
        kept = len(back) if isinstance(back, list) else 0
        time.sleep(0.3)
        a_rss, a_uss = _mem(int(str(rec["workerPid"])))
        # Its growth is over an idle worker started the same way (the first start above
        # was spawned directly: it launched the spawner, which forked this one).
        base_rss, base_uss, base_how = rss, uss, "spawned directly"
        if forked is not None and _was_forked(int(str(rec["workerPid"]))):
            base_rss, base_uss, base_how = forked[0], forked[1], "forked"
        if not TMUX:
            rows.append(Row(B, f"worker with {n} lines, RSS", "MiB", a_rss))
            rows.append(skipped(B, "tmux server with the same lines", TMUX_HINT))
            return rows
        # tmux keeps as many lines as the worker does (the emulator's scrollback cap).
        with Tmux(history_limit=kept) as tmux:
            tmux.new_session("idle", "cat")
            time.sleep(0.3)
            t_idle_rss, t_idle_uss = _mem(tmux.server_pid())
            tmux.new_session("m", f"sh -c 'cat {path}; exec cat'", cols=200, rows=50)
            if not poll(lambda: last in tmux.capture("m"), 600, 0.01):
                raise RuntimeError("the tmux pane never showed the last line")
            hist = tmux.run("display-message", "-p", "-t", "m", "#{history_size}").strip()
            time.sleep(0.3)
            t_rss, t_uss = _mem(tmux.server_pid())
    rows[0].peer, rows[0].peer_median = "tmux server, 1 idle pane", t_idle_rss
    rows[1].peer, rows[1].peer_median = "tmux server, 1 idle pane", t_idle_uss
    note = f"{n} lines fed; worker keeps {kept}, tmux {hist} (history-limit {kept})"
    for kind, ours, theirs in (("RSS", a_rss, t_rss), ("USS", a_uss, t_uss)):
        row = Row(B, f"worker with {n} coloured lines, {kind}", "MiB", ours, note=note)
        row.peer, row.peer_median = "tmux server, same lines + 1 idle pane", theirs
        row.target = "<= 2x tmux"
        row.ok = ours <= 2 * theirs
        rows.append(row)
    # What the target is about, the scrollback's own cost: growth over an idle process. (A
    # Python worker starts ~5x heavier than tmux's server, which the totals above carry.)
    growth = (
        ("RSS", a_rss - base_rss, t_rss - t_idle_rss),
        ("USS", a_uss - base_uss, t_uss - t_idle_uss),
    )
    for kind, ours, theirs in growth:
        row = Row(B, f"{n} coloured lines' own cost (growth over idle), {kind}", "MiB", ours)
        row.peer, row.peer_median = "tmux server's growth for them", theirs
        row.target = "<= 2x tmux"
        row.ok = ours <= 2 * theirs
        row.note = (
            f"loaded worker minus an idle one, both {base_how}; "
            "tmux server after the pane minus before"
        )
        rows.append(row)
    return rows


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)

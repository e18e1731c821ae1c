"""Run every benchmark in one go and write bench/results.json and bench/RESULTS.md.

    python -m bench.run [--quick]

Side by side on the same machine at the same moment, so the ratios mean something. Exits
non-zero only when a benchmark errors; a missed target is reported, never fatal.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

from bench.common import ROOT, TMUX, TMUX_HINT, Row
from bench.report import table

SCRIPTS = [
    "bench_cli",
    "bench_roundtrip",
    "bench_throughput",
    "bench_memory",
    "bench_start",
    "bench_scale",
    "bench_dashboard",
    "bench_tasks",
    "bench_mcp",
    "bench_remote",
]
HERE = Path(__file__).resolve().parent


def _machine() -> dict[str, object]:
    tmux = (
        subprocess.run([TMUX, "-V"], capture_output=True, text=True).stdout.strip()
        if TMUX
        else None
    )
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
        "tmux": tmux,
    }


def main() -> int:
    quick = "--quick" in sys.argv
    # The CLI is measured with compiled bytecode, as `make install` leaves it (this machine
    # sets PYTHONDONTWRITEBYTECODE, so nothing else would write it).
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "agentty_core")], check=True
    )
    if not TMUX:
        print(f"note: {TMUX_HINT}; its rows are skipped", file=sys.stderr)
    only = [a for a in sys.argv[1:] if not a.startswith("-")]
    rows: list[Row] = []
    errors: list[str] = []
    started = time.monotonic()
    for name in SCRIPTS:
        if only and not any(o in name for o in only):
            continue
        t0 = time.monotonic()
        print(f"running {name}{' (quick)' if quick else ''} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            rows += module.run(quick)
        except Exception:
            errors.append(f"{name}: {traceback.format_exc()}")
            print(errors[-1], file=sys.stderr)
            rows.append(Row(name, "ERROR", "", None, note="see stderr / results.json"))
        print(f"  {name}: {time.monotonic() - t0:.1f}s", file=sys.stderr, flush=True)
    mode = "quick" if quick else "full"
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    machine = _machine()
    data = {
        "mode": mode,
        "when": stamp,
        "seconds": round(time.monotonic() - started, 1),
        "machine": machine,
        "bytecode": "compiled with compileall before the run",
        "rows": [r.as_json() for r in rows],
        "errors": errors,
    }
    if only:  # a subset never overwrites the results of a whole run
        print(table(rows))
        return 1 if errors else 0
    (HERE / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    text = table(rows)
    header = (
        f"# agentty benchmark results ({mode})\n\n"
        f"{stamp}, {data['seconds']} s; Python {machine['python']}, {machine['cpus']} CPUs, "
        f"load {', '.join(f'{x:.2f}' for x in os.getloadavg())}, {machine['tmux'] or 'no tmux'}; "
        "bytecode compiled (compileall) before the run.\n"
        "Ratio = agentty / peer (for MB/s higher is better, elsewhere lower). "
        "Targets are reported, never asserted. Regenerate: `make bench` (full) or "
        "`make bench-quick`.\n\n"
    )
    (HERE / "RESULTS.md").write_text(header + text + "\n")
    print(text)
    missed = sum(1 for r in rows if r.ok is False)
    print(
        f"\n{len(rows)} rows, {missed} targets missed, {len(errors)} errors ({data['seconds']} s)"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

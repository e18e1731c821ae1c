"""3. Throughput: `cat` of a generated file inside a session, until the program exited and
the final screen shows the last line: plain text, SGR-coloured text, vim-like and top-like
full-screen redraws, and a recorded vim session played again and again (bench/streams.py),
on the default emulator and on the optional compiled one. Peers: the same in a
tmux pane (until the pane shows the last line) and the raw PTY drain (python pty + os.read
until EOF, no terminal emulation). Also `get` latency while the flood runs, and a screen
of per-cell 24-bit colour (what image viewers print) at 200x50 and 1000x1000: the worker's
RSS once it is drawn, and `get` / `get --ansi` latency on it (the first --ansi renders it).
Targets: plain >= 1.0x tmux; every stream >= 10 MB/s; `get` p95 during the flood <= 100 ms."""

from __future__ import annotations

import codecs
import os
import pty
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench import streams
from bench.common import TMUX, TMUX_HINT, Row, Tmux, agentty_home, client, ms_row, p95, skipped

B = "3 throughput"
MB = 1_000_000
GATE = "read _; exec cat {}"  # the program waits for Enter, so start-up is not timed
TRUECOLOUR = Path(__file__).resolve().parents[1] / "tests" / "programs" / "rel_truecolour.py"


def _raw_drain(path: Path) -> float:
    master, slave = pty.openpty()
    start = time.perf_counter()
    proc = subprocess.Popen(["cat", str(path)], stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    try:
        while os.read(master, 1 << 16):
            pass
    except OSError:  # EIO: the slave side closed
        pass
    elapsed = time.perf_counter() - start
    proc.wait()
    os.close(master)
    return elapsed


def _agentty(
    path: Path, last: str, get_latency: list[float] | None, emulator: str = "pyte"
) -> float:
    with agentty_home() as root:
        c = client(root)
        os.environ["AGENTTY_EMULATOR"] = emulator  # read by the worker `start` spawns
        try:
            rec = c.start(["sh", "-c", GATE.format(shlex.quote(str(path)))])
        finally:
            del os.environ["AGENTTY_EMULATOR"]
        if rec.get("emulator", "pyte") != emulator:
            raise RuntimeError(f"the worker runs {rec.get('emulator')}, not {emulator}")
        sid = str(rec["id"])
        time.sleep(0.3)
        done = threading.Event()

        def sample() -> None:
            assert get_latency is not None
            while not done.is_set():
                t = time.perf_counter()
                c.get(sid)
                get_latency.append(time.perf_counter() - t)
                time.sleep(0.02)

        start = time.perf_counter()
        c.text(sid, "\r")
        sampler = threading.Thread(target=sample) if get_latency is not None else None
        if sampler:
            sampler.start()
        screen = c.wait(sid, exit=True, timeout=600.0)
        elapsed = time.perf_counter() - start
        done.set()
        if sampler:
            sampler.join()
        shown = screen.get("lines")
        lines = [str(x) for x in shown] if isinstance(shown, list) else []
        if not any(last in line for line in lines):
            raise RuntimeError(f"agentty's final screen lacks {last!r}: {lines[-3:]}")
    return elapsed


def compiled_available() -> bool:
    try:
        import avt  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def _emulators_alone(path: Path) -> tuple[float, float | None]:
    """Seconds for agentty's emulator and for pyavt (asciinema's compiled avt, when
    installed) to take the stream in-process, in the worker's 32 KiB batches: what the
    emulator costs, apart from the PTY and the worker around it."""
    from agentty_core.emulator.pyte_backend import Emulator

    data = path.read_bytes().replace(b"\n", b"\r\n")  # what the tty's ONLCR makes of it
    batches = [data[i : i + 32768] for i in range(0, len(data), 32768)]
    emu = Emulator(80, 24)
    start = time.perf_counter()
    for batch in batches:
        emu.feed(batch)
    ours = time.perf_counter() - start
    try:
        from avt._avt import Vt
    except ImportError:
        return ours, None
    vt = Vt(80, 24, 5000)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    start = time.perf_counter()
    for batch in batches:
        vt.feed_str(decoder.decode(batch))
    vt.text()
    return ours, time.perf_counter() - start


def _truecolour(cols: int, rows: int) -> tuple[float, float, list[float], list[float]]:
    """A cols x rows screen filled with per-cell 24-bit fg and bg: the worker's RSS (MiB)
    once drawn, the first `get --ansi` (it renders every row), then `get` and `get --ansi`
    samples, in seconds."""
    with agentty_home() as root:
        c = client(root)
        c.timeout = 300.0  # a 1000x1000 screen's first `get --ansi` is tens of MB of JSON
        argv = [sys.executable, str(TRUECOLOUR), str(cols), str(rows)]
        rec = c.start(argv, cols=cols, rows=rows)
        sid = str(rec["id"])
        c.wait(sid, text="truecolour-ready", timeout=60.0)
        worker = psutil.Process(int(str(rec["workerPid"])))
        c.text(sid, "go", enter=True)
        c.wait(sid, text="TRUECOLOUR-DONE", timeout=1800.0)
        rss = worker.memory_info().rss / 2**20
        start = time.perf_counter()
        c.get(sid, ansi=True)
        first = time.perf_counter() - start
        plain: list[float] = []
        ansi: list[float] = []
        for _ in range(5):
            start = time.perf_counter()
            c.get(sid)
            plain.append(time.perf_counter() - start)
            start = time.perf_counter()
            c.get(sid, ansi=True)
            ansi.append(time.perf_counter() - start)
        return rss, first, plain, ansi


def _truecolour_rows(quick: bool) -> list[Row]:
    rows: list[Row] = []
    for cols, lines in ((200, 50), (1000, 1000)):
        label = f"per-cell truecolour screen {cols}x{lines}"
        if quick and cols > 200:
            rows.append(skipped(B, label, "full run only (~45 MB of output)"))
            continue
        rss, first, plain, ansi = _truecolour(cols, lines)
        rows.append(Row(B, f"{label}: worker RSS", "MiB", rss, samples=1))
        rows.append(ms_row(B, f"{label}: first get --ansi", [first], target="<= 100 ms"))
        rows[-1].ok = first <= 0.1
        for name, samples in (("get", plain), ("get --ansi, again", ansi)):
            row = ms_row(B, f"{label}: {name}", samples, target="p95 <= 100 ms")
            row.ok = p95([x * 1000 for x in samples]) <= 100
            rows.append(row)
    return rows


def _tmux(path: Path, last: str) -> float:
    # The pane's program stays alive after the cat: a pane whose program exits at once loses
    # the output tmux had not read yet (seen with tmux 3.3a: the last ~60 KiB never show).
    with Tmux() as tmux:
        tmux.new_session("tp", f"sh -c 'read _; cat {path}; exec cat'")
        time.sleep(0.3)
        start = time.perf_counter()
        tmux.run("send-keys", "-t", "tp", "Enter")
        deadline = time.monotonic() + 600
        while last not in tmux.capture("tp"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the tmux pane never showed {last!r}")
            time.sleep(0.002)
        return time.perf_counter() - start


def run(quick: bool) -> list[Row]:
    size = 1 * MB if quick else 50 * MB
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="atb-data-") as tmp:
        for kind in streams.STREAMS:
            path = Path(tmp, kind.replace(" ", "-") + ".txt")
            last = streams.write(path, kind, size)
            mb = path.stat().st_size / MB
            label = f"{kind} {mb:.0f} MB"
            raw = mb / _raw_drain(path)
            rows.append(Row(B, f"raw PTY drain, {label}", "MB/s", raw, samples=1))
            latency: list[float] | None = [] if kind == "plain" else None
            ours = mb / _agentty(path, last, latency)
            row = Row(B, f"agentty cat, {label}", "MB/s", ours, samples=1)
            row.note = f"{ours / raw:.2f}x the raw drain"
            if TMUX:
                theirs = mb / _tmux(path, last)
                rows.append(Row(B, f"tmux cat, {label}", "MB/s", theirs, samples=1))
                row.peer, row.peer_median = "tmux", theirs
            else:
                rows.append(skipped(B, f"tmux cat, {label}", TMUX_HINT))
            if kind == "plain":
                row.target = ">= 1.0x tmux; >= 10 MB/s"
                row.ok = ours >= 10 and (row.ratio is None or row.ratio >= 1.0)
            else:
                row.target = ">= 10 MB/s"
                row.ok = ours >= 10
            rows.append(row)
            if compiled_available():
                avt_rate = mb / _agentty(path, last, None, emulator="avt")
                avt_row = Row(B, f"agentty cat, {label}, avt backend", "MB/s", avt_rate, samples=1)
                avt_row.note = "AGENTTY_EMULATOR=avt (optional; pyte is the default)"
                avt_row.target = row.target
                if row.peer:
                    avt_row.peer, avt_row.peer_median = row.peer, row.peer_median
                avt_row.ok = avt_rate >= 10 and (
                    kind != "plain" or avt_row.ratio is None or avt_row.ratio >= 1.0
                )
                rows.append(avt_row)
            alone, compiled = _emulators_alone(path)
            rows.append(Row(B, f"agentty emulator alone, {label}", "MB/s", mb / alone, samples=1))
            if compiled is None:
                rows.append(skipped(B, f"pyavt emulator alone, {label}", "pip install pyavt"))
            else:
                rows.append(
                    Row(
                        B,
                        f"pyavt (compiled avt) emulator alone, {label}",
                        "MB/s",
                        mb / compiled,
                        samples=1,
                        note="what AGENTTY_EMULATOR=avt runs",
                    )
                )
            if latency:
                lat = ms_row(B, f"agentty get during the {kind} flood", latency)
                lat.target = "p95 <= 100 ms"
                lat.ok = p95([x * 1000 for x in latency]) <= 100
                rows.append(lat)
    rows += _truecolour_rows(quick)
    return rows


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)

"""Emulator throughput: feed ~5 MB in 64 KiB chunks to a fresh Emulator(80, 24).

Run: .venv/bin/python tests/data/throughput.py [plain|sgr|vim|top|mem ...]
Prints MB/s per stream kind and the slowest single 64 KiB feed.
"""

from __future__ import annotations

import sys
import time
import tracemalloc

from agentty_core.emulator import Emulator

CSI = "\x1b["
WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor"
SIZE = 5_000_000


def plain(size: int = SIZE) -> bytes:
    out, total, i = [], 0, 0
    while total < size:
        line = f"{i:08d} {WORDS} {WORDS[:8]}\r\n"
        out.append(line)
        total += len(line)
        i += 1
    return "".join(out).encode()


def sgr(size: int = SIZE) -> bytes:
    out, total, i = [], 0, 0
    while total < size:
        line = f"{CSI}1;3{i % 8}m{i:08d}{CSI}0m {CSI}38;5;{i % 256}m{WORDS}{CSI}0m {WORDS[:8]}\r\n"
        out.append(line)
        total += len(line)
        i += 1
    return "".join(out).encode()


def vim(size: int = SIZE) -> bytes:
    """Full-screen redraws as vim sends them: position, number column, text, erase."""
    out, total, frame = [f"{CSI}?1049h{CSI}?25l"], 0, 0
    while total < size:
        parts = [f"{CSI}?25l{CSI}H"]
        for r in range(23):
            n = frame + r
            text = (WORDS[n % 20 :] + " " + WORDS)[: 60 + n % 15]
            parts.append(f"{CSI}{r + 1};1H{CSI}33m{n:4d} {CSI}m{text}{CSI}K")
        parts.append(f"{CSI}24;1H{CSI}7m-- INSERT -- {frame}{CSI}m{CSI}K{CSI}5;10H{CSI}?25h")
        chunk = "".join(parts)
        out.append(chunk)
        total += len(chunk)
        frame += 1
    return "".join(out).encode()


def top(size: int = SIZE) -> bytes:
    """top-like: home, rows of columns with a reverse header, erase to end."""
    out, total, frame = [], 0, 0
    while total < size:
        parts = [f"{CSI}H top - {frame:06d} up 1 day, load average: 0.{frame % 100:02d}{CSI}K\r\n"]
        parts.append(f"{CSI}7m  PID USER      PR  NI    VIRT    RES  %CPU  COMMAND{CSI}m{CSI}K\r\n")
        for r in range(20):
            pid = 1000 + (frame * 7 + r) % 500
            parts.append(
                f"{pid:5d} user      20   0  {r * 1234:6d}  {r * 77:5d}  "
                f"{r % 9}.{frame % 10}  proc{r}{CSI}K\r\n"
            )
        parts.append(f"{CSI}J")
        chunk = "".join(parts)
        out.append(chunk)
        total += len(chunk)
        frame += 1
    return "".join(out).encode()


def run(name: str, data: bytes) -> None:
    emu = Emulator(80, 24)
    step = 1 << 16
    worst = 0.0
    start = time.perf_counter()
    for i in range(0, len(data), step):
        t = time.perf_counter()
        emu.feed(data[i : i + step])
        worst = max(worst, time.perf_counter() - t)
    emu.lines()
    elapsed = time.perf_counter() - start
    print(
        f"{name:6s} {len(data) / elapsed / 1e6:7.2f} MB/s  worst 64KiB feed {worst * 1000:6.1f} ms"
    )


def memory() -> None:
    """Memory for 10,000 lines of 120 coloured columns in the scrollback."""
    lines = []
    for i in range(10_000):
        cells = "".join(f"{CSI}3{(i + k) % 8}m{WORDS[k % 40 : k % 40 + 12]}" for k in range(10))
        lines.append(f"{cells}{CSI}0m\r\n")
    data = "".join(lines).encode()
    tracemalloc.start()
    emu = Emulator(120, 24, 10_000)
    for i in range(0, len(data), 1 << 16):
        emu.feed(data[i : i + (1 << 16)])
    emu.lines()
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"memory {current / 2**20:7.2f} MiB for {len(emu.scrollback())} coloured lines")


KINDS = {"plain": plain, "sgr": sgr, "vim": vim, "top": top}

if __name__ == "__main__":
    for kind in sys.argv[1:] or [*KINDS, "mem"]:
        if kind == "mem":
            memory()
        else:
            run(kind, KINDS[kind]())

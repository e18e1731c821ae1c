"""Emulator throughput: feed ~5 MB in 64 KiB chunks to a fresh Emulator(80, 24).

Run: .venv/bin/python tests/data/throughput.py [plain SGR vim-like top-like 'recorded vim' mem]
Prints MB/s per stream kind and the slowest single 64 KiB feed.
"""

from __future__ import annotations

import sys
import time
import tracemalloc

from agentty_core.emulator.pyte_backend import Emulator
from bench import streams

CSI = "\x1b["
WORDS = streams.WORDS
SIZE = 5_000_000


def stream(kind: str) -> bytes:
    """The benchmark's stream of `kind`, as the tty hands it over (LF becomes CR LF)."""
    return streams.STREAMS[kind](SIZE).replace("\n", "\r\n").encode()


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


if __name__ == "__main__":
    for kind in sys.argv[1:] or [*streams.STREAMS, "mem"]:
        if kind == "mem":
            memory()
        else:
            run(kind, stream(kind))

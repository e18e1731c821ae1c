"""Prints what image viewers (viu, chafa) print: every cell its own 24-bit foreground and
background. Waits for a line on stdin first, so a test can measure the worker before it;
then `LINES` lines of `COLS` half blocks, then TRUECOLOUR-DONE, then waits again."""

import random
import sys

cols, lines = int(sys.argv[1]), int(sys.argv[2])
print("truecolour-ready", flush=True)
sys.stdin.readline()
rnd = random.Random(16)
out = sys.stdout.buffer
for _ in range(lines):
    cells = []
    for _ in range(cols):
        fg, bg = rnd.getrandbits(24), rnd.getrandbits(24)
        cells.append(
            f"\x1b[38;2;{fg >> 16};{(fg >> 8) & 255};{fg & 255};"
            f"48;2;{bg >> 16};{(bg >> 8) & 255};{bg & 255}m\u2580"
        )
    out.write(("".join(cells) + "\x1b[0m\n").encode())
out.write(b"TRUECOLOUR-DONE\n")
out.flush()
sys.stdin.readline()

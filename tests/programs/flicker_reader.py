"""Reads the terminal for a moment, then computes for a moment, over and over: a program
that `wait --input` sees reading only some of the time."""

import select
import sys
import time

print("flickering", flush=True)
while True:
    select.select([sys.stdin], [], [], 0.002)
    spin_until = time.monotonic() + 0.002
    while time.monotonic() < spin_until:
        pass

"""Writes a line every 50 ms for about a second, then goes quiet."""

import time

for i in range(20):
    print(f"tick {i}", flush=True)
    time.sleep(0.05)
print("quiet now", flush=True)
time.sleep(30)

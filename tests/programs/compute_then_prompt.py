"""Busy for a while (pure computation), then prompts for a line and echoes it."""

import time

end = time.monotonic() + 1.0
n = 0
while time.monotonic() < end:
    n += 1
name = input("your name? ")
print(f"hello {name}", flush=True)
time.sleep(30)

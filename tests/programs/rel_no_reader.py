"""Never reads its input; prints a marker and sleeps (at most 10 minutes)."""

import time

print("not-reading", flush=True)
time.sleep(600)

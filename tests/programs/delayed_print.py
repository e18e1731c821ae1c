"""Prints DONE after a random delay (0.2-1.0 s): tests must wait, not sleep."""

import random
import time

time.sleep(random.uniform(0.2, 1.0))
print("DONE", flush=True)
time.sleep(30)

"""Prints its terminal size at start and on every SIGWINCH."""

import os
import signal
import time


def report(*_: object) -> None:
    size = os.get_terminal_size(0)
    print(f"SIZE {size.columns}x{size.lines}", flush=True)


signal.signal(signal.SIGWINCH, report)
report()
while True:
    time.sleep(1)

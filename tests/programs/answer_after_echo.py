"""A line-reading prompt that answers late: the terminal echoes the typed line at once, and
the answer (`ANSWER <line upper-cased>`) follows 0.4 s later. A wait that fires on the echo
(or on the screen from before the input) sees no answer yet."""

import time

while True:
    line = input("ask> ")
    time.sleep(0.4)
    print(f"ANSWER {line.upper()}", flush=True)

"""Reads the keyboard as fzf does: from /dev/tty, in a thread of its own, while the main
thread waits for that thread (and stdin may be a pipe). With `epoll`, the thread waits for
/dev/tty in an epoll set first, as Go's runtime does for tcell's and bubbletea's programs.
With `spin`, another thread keeps computing meanwhile: the program is busy, though its
reader waits. With `poll`, the thread waits in select() on nothing instead of reading: a
program busy waiting on something else (Go's runtime keeps a thread in epoll whatever the
program does)."""

import select
import sys
import threading
import time

MODES = set(sys.argv[1:])


def read_keyboard() -> None:
    with open("/dev/tty") as tty:
        if "epoll" in MODES:
            ready = select.epoll()
            ready.register(tty.fileno(), select.EPOLLIN)
            ready.poll()
        line = tty.readline()
    print(f"got {line.strip()!r}", flush=True)


def spin() -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        pass


if "spin" in MODES:
    threading.Thread(target=spin, daemon=True).start()
waiting = lambda: select.select([], [], [], 60)  # noqa: E731
reader = threading.Thread(target=waiting if "poll" in MODES else read_keyboard)
reader.start()
print("name?", flush=True)
reader.join()

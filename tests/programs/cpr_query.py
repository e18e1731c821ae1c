"""Asks the terminal for the cursor position (CSI 6n) and prints the reply it got."""

import os
import select
import sys
import termios
import tty

fd = sys.stdin.fileno()
old = termios.tcgetattr(fd)
tty.setraw(fd)
try:
    os.write(1, b"abc\x1b[6n")
    reply = b""
    while not reply.endswith(b"R"):
        ready, _, _ = select.select([fd], [], [], 3)
        if not ready:
            break
        reply += os.read(fd, 32)
finally:
    termios.tcsetattr(fd, termios.TCSADRAIN, old)
print("\r\nREPLY " + (repr(reply) if reply else "TIMEOUT"), flush=True)
sys.stdin.readline()

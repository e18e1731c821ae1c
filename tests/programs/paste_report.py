"""Enables bracketed paste, reads raw input and reports what arrived, byte for byte."""

import os
import sys
import termios
import tty

fd = sys.stdin.fileno()
tty.setraw(fd)
os.write(1, b"\x1b[?2004hREADY\r\n")
data = b""
while b"\x1b[201~" not in data:
    data += os.read(fd, 4096)
os.write(1, b"GOT " + repr(data).encode() + b"\r\n")
termios.tcgetattr(fd)
os.read(fd, 1)

"""Reads raw input and reports each read on its own line, until one holds a CR."""

import os
import sys
import tty

fd = sys.stdin.fileno()
tty.setraw(fd)
os.write(1, b"READY\r\n")
while True:
    chunk = os.read(fd, 4096)
    os.write(1, b"READ " + repr(chunk).encode() + b"\r\n")
    if b"\r" in chunk:
        break
os.read(fd, 1)

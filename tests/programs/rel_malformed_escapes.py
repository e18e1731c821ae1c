"""Emits malformed and oversized escape sequences (tmux input-malformed.sh cases), then
markers, then waits. Bounded: sleeps at most 10 minutes."""

import os
import sys
import time

out = sys.stdout.buffer


def emit(data: bytes) -> None:
    out.write(data)
    out.flush()


emit(os.urandom(256 * 1024))
emit(b"\x1b\\\x18\x0f\x1bc")  # end any string, cancel, shift in, full reset
emit(b"\x1b[" + b"9" * 80 + b"m")  # 80-digit CSI parameter
emit(b"\x1b]0;" + b"A" * (1_100_000) + b"\x1b\\")  # 1.1 MB OSC then ST
emit(b"\x1b_" + b"B" * (1_100_000) + b"\x1b\\")  # 1.1 MB APC then ST
emit(b"\x1b[?9999;9999z\x1b]9999;junk\x07")  # unknown CSI and OSC
emit(b"\x1b]8;;\x1b\\\x1b]8;;;;;;\x07\x1b]52;c;!!!notbase64\x07")  # bad OSC 8 / 52
emit(b"\x1bP!!garbage\x1b\\\x1bP1$r\x1b\\")  # bad DCS
emit(b"\r\n\360\200\200\200A\355\240\200B\r\n")  # invalid UTF-8
emit(b"OK-1\r\n")
emit(b"\x1b]0;" + b"C" * (8 * 1024 * 1024) + b"\x07")  # 8 MB OSC, terminated
emit(b"OK-2\r\n")
emit(b"\x1b]2;" + b"D" * (4 * 1024 * 1024))  # unterminated
time.sleep(600)

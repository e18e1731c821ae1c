"""Whether exec of a file will succeed, told from the file before it is run.

The fast way of starting a program (`proc.ptyhost`) execs it from setpriv, which reports a
failed exec on the PTY (and glibc's execvp runs a file the kernel refuses as a shell
script), not to the worker: `start` would answer that the session runs, and it would end at
once. So that way is taken only for a file whose exec is sure: an ELF file for this machine
whose dynamic loader (its PT_INTERP) is there, or a `#!` script whose interpreter is such a
file. Everything else (a script of a script, a missing interpreter, another machine's
binary, a format only binfmt_misc knows, a file we cannot read) goes the forked way, which
reports a failed exec as start's own error, with its exit code.
"""

from __future__ import annotations

import os
import struct

ELF_MAGIC = b"\x7fELF"
PT_INTERP = 3
HEAD = 256  # the ELF header, or a `#!` line
MAX_PHNUM = 64  # program headers looked through; more: not sure
MAX_INTERP = 4096

_own_machine: bytes | None = None


def execs_surely(program: str) -> bool:
    """`program`: absolute, checked executable by `proc.command`."""
    with _Opened(program) as f:
        head = f.read(HEAD, 0)
        if head.startswith(ELF_MAGIC):
            return _elf_runs_here(f, head)
    if not head.startswith(b"#!") or b"\n" not in head:
        return False
    words = head[2 : head.index(b"\n")].split()
    if not words:
        return False
    interpreter = os.fsdecode(words[0])
    if not (os.path.isabs(interpreter) and os.path.isfile(interpreter)):
        return False
    if not os.access(interpreter, os.X_OK):
        return False
    with _Opened(interpreter) as f:
        inner = f.read(HEAD, 0)
        return inner.startswith(ELF_MAGIC) and _elf_runs_here(f, inner)


def _elf_runs_here(f: _Opened, head: bytes) -> bool:
    """Class, byte order and machine as our own interpreter's, and its loader there."""
    if len(head) < 64 or head[4:6] + head[18:20] != own_machine():
        return False
    order = "<" if head[5] == 1 else ">"
    if head[4] == 2:  # 64-bit
        (phoff,) = struct.unpack_from(order + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
    else:
        (phoff,) = struct.unpack_from(order + "I", head, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 42)
    if phnum > MAX_PHNUM or phentsize < 32:
        return False
    table = f.read(phentsize * phnum, phoff)
    if len(table) < phentsize * phnum:
        return False
    for i in range(phnum):
        entry = table[i * phentsize : (i + 1) * phentsize]
        (kind,) = struct.unpack_from(order + "I", entry, 0)
        if kind != PT_INTERP:
            continue
        if head[4] == 2:
            (offset,) = struct.unpack_from(order + "Q", entry, 8)
            (size,) = struct.unpack_from(order + "Q", entry, 32)
        else:
            (offset,) = struct.unpack_from(order + "I", entry, 4)
            (size,) = struct.unpack_from(order + "I", entry, 16)
        if not 0 < size <= MAX_INTERP:
            return False
        loader = f.read(size, offset).split(b"\0", 1)[0]
        return bool(loader) and os.path.isabs(loader) and os.access(loader, os.X_OK)
    return True  # static: no loader to find


def own_machine() -> bytes:
    """EI_CLASS, EI_DATA and e_machine of the interpreter running us (read once)."""
    global _own_machine
    if _own_machine is None:
        with _Opened("/proc/self/exe") as f:
            head = f.read(64, 0)
        _own_machine = head[4:6] + head[18:20] if head.startswith(ELF_MAGIC) else b"?"
    return _own_machine


class _Opened:
    """A file opened once for the reads its check makes; reads of one that could not be
    opened (or read: a FIFO does not block us) give b""."""

    def __init__(self, path: str | bytes) -> None:
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            self.fd = -1

    def read(self, size: int, offset: int) -> bytes:
        if self.fd < 0:
            return b""
        try:
            return os.pread(self.fd, size, offset)
        except OSError:
            return b""

    def __enter__(self) -> _Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)

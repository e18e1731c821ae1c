"""The streams the throughput benchmark (and `tests/data/throughput.py`) feed: files for
`cat` to print, each ending in a unique last line the final screen must show.

Lines end in "\\n" where a program's would (the tty adds the CR); full-screen redraws carry
their own cursor addressing, as vim and top send them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

CSI = "\x1b["
WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor"
DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def plain(size: int) -> str:
    """Lines of ~100 columns (they wrap at 80)."""
    return _until(size, lambda i: f"{i:08d} {WORDS} {WORDS[:8]}\n")


def sgr(size: int) -> str:
    """The same with bold, 8-colour and 256-colour runs."""
    return _until(
        size,
        lambda i: (
            f"{CSI}1;3{i % 8}m{i:08d}{CSI}0m {CSI}38;5;{i % 256}m{WORDS}{CSI}0m {WORDS[:8]}\n"
        ),
    )


def vim(size: int) -> str:
    """Full-screen redraws on the alternate screen as vim sends them: position, number
    column, text, erase to end of line, a reverse status line, cursor shown again."""

    def frame(n: int) -> str:
        parts = [f"{CSI}?25l{CSI}H"]
        for r in range(23):
            k = n + r
            text = (WORDS[k % 20 :] + " " + WORDS)[: 60 + k % 15]
            parts.append(f"{CSI}{r + 1};1H{CSI}33m{k:4d} {CSI}m{text}{CSI}K")
        parts.append(f"{CSI}24;1H{CSI}7m-- INSERT -- {n}{CSI}m{CSI}K{CSI}5;10H{CSI}?25h")
        return "".join(parts)

    return f"{CSI}?1049h" + _until(size, frame) + f"{CSI}?1049l"


def top(size: int) -> str:
    """top-like refreshes: home, a header, a reverse column header, rows erased to the end."""

    def frame(n: int) -> str:
        parts = [f"{CSI}H top - {n:06d} up 1 day, load average: 0.{n % 100:02d}{CSI}K\n"]
        parts.append(f"{CSI}7m  PID USER      PR  NI    VIRT    RES  %CPU  COMMAND{CSI}m{CSI}K\n")
        for r in range(20):
            pid = 1000 + (n * 7 + r) % 500
            parts.append(
                f"{pid:5d} user      20   0  {r * 1234:6d}  {r * 77:5d}  "
                f"{r % 9}.{n % 10}  proc{r}{CSI}K\n"
            )
        return "".join(parts) + f"{CSI}J"

    return _until(size, frame)


def recorded_vim(size: int) -> str:
    """A real vim session captured with `script` (tests/data/vim.raw), played again and
    again: the CR LF it holds become CR CR LF through the tty, which renders the same."""
    capture = (DATA / "vim.raw").read_bytes().decode("utf-8", "replace")
    return capture * max(1, size // len(capture))


STREAMS: dict[str, Callable[[int], str]] = {
    "plain": plain,
    "SGR": sgr,
    "vim-like": vim,
    "top-like": top,
    "recorded vim": recorded_vim,
}


def write(path: Path, kind: str, size: int) -> str:
    """Write the stream of `kind` (about `size` bytes) and a unique last line; returns it."""
    body = STREAMS[kind](size)
    last = f"END-OF-STREAM {len(body)}"
    path.write_text(f"{body}\n{last}\n")
    return last


def _until(size: int, piece: Callable[[int], str]) -> str:
    out: list[str] = []
    total = i = 0
    while total < size:
        text = piece(i)
        out.append(text)
        total += len(text)
        i += 1
    return "".join(out)

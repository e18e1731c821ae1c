"""A CPU-time budget for a wait's regex, so that a catastrophic one cannot pin the worker
(nor a caller asking it of an ended session's final screen: `final_wait`).

`(a+)+$` against a line of 33 `a`s and a `!` backtracks for hours, inside the worker's one
thread, which answers every client (`kill` included). The stdlib engine checks for signals as
it backtracks: an interval timer on the process's CPU time (a loaded machine does not cut a
legitimate search short) sends SIGVTALRM, whose handler ends the search with RegexTimeout.
It raises only while the engine runs: the emulator's code around the search (building the
lines it searches) is never interrupted half-way. No new dependency: the `regex` package's
timeout or re2 would bound it as well, for a package more in every install.
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

BUDGET = 0.25  # CPU seconds all searches of one evaluation of a wait's regex may take


class RegexTimeout(Exception):
    """The regex ran past its budget."""


class InvalidRegex(ValueError):
    """A pattern that does not compile; its message is the one-line error the caller gives."""


def quoted(text: str) -> str:
    """A caller's pattern or text as a message quotes it: whole up to 80 characters, else
    its start and its length (a 100 KB pattern made a 100 KB error line)."""
    return repr(text) if len(text) <= 80 else f"{text[:60]!r}... ({len(text)} characters)"


# Compiling takes time as a pattern grows (~1.2 s a megabyte, in the worker's one thread that
# serves every client, and again in the MCP server's loop): a wait on a screen needs far less.
MAX_PATTERN = 32 << 10


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A caller's pattern compiled, or InvalidRegex. `re` parses by recursion: a pattern
    nested too deeply raises RecursionError, not re.error (a worker error, and a traceback
    of thousands of lines where nothing caught it)."""
    shown = quoted(pattern)
    if len(pattern) > MAX_PATTERN:
        raise InvalidRegex(f"invalid regex {shown}: over the limit of {MAX_PATTERN} characters")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidRegex(f"invalid regex {shown}: {exc}") from None
    except RecursionError:
        raise InvalidRegex(f"invalid regex {shown}: nested too deeply") from None
    except OverflowError as exc:  # a repeat count past the engine's (`a{99999999999}`)
        raise InvalidRegex(f"invalid regex {shown}: {exc}") from None


_spent = False  # the timer fired during this evaluation
_searching = False  # the engine is running: the handler may end it
_installed = False


def _on_timer(_signum: int, _frame: object) -> None:
    global _spent
    _spent = True
    if _searching:
        raise RegexTimeout


class _Bounded:
    """The pattern as search_in uses it (only `.search`), each search inside the budget."""

    __slots__ = ("pattern",)

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def search(self, text: str) -> re.Match[str] | None:
        global _searching
        if _spent:
            raise RegexTimeout
        _searching = True
        try:
            return self.pattern.search(text)
        finally:
            _searching = False


@contextmanager
def bounded(pattern: re.Pattern[str], seconds: float = BUDGET) -> Iterator[re.Pattern[str]]:
    """`pattern`, whose searches within the block raise RegexTimeout once they used
    `seconds` of CPU. Signal handlers run in the main thread only (the worker's loop runs
    there); elsewhere the pattern is given as it is."""
    global _spent, _installed
    if threading.current_thread() is not threading.main_thread():
        yield pattern
        return
    if not _installed:  # kept: nothing else uses SIGVTALRM, and re-installing costs calls
        signal.signal(signal.SIGVTALRM, _on_timer)
        _installed = True
    _spent = False
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield cast("re.Pattern[str]", _Bounded(pattern))  # duck-typed: search_in calls .search
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        _spent = False

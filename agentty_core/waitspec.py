"""The conditions of a wait as a caller states them: one type for the CLI, `Session` and MCP.

Each of them used to build its own dict of conditions and drop the unset ones by truthiness,
which also dropped `changed_since=0` (a fresh session's seq) and refused the wait for having
no condition. Here a condition is unset only when it is None (or False for the flags), and
the values are checked before anything is sent. The worker parses the wire form again
(`worker/waits.py`) and stays the judge of what it accepts; this module only spares a
round trip and gives the caller the same answer wherever it calls from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from agentty_core.errors import UsageError
from agentty_core.protocol import JSONObject, is_set, wait_params
from agentty_core.screen_text import row_text_problem

MAX_TIMEOUT = 24 * 3600.0  # seconds, as the worker's limit
MAX_STABLE_MS = 86_400_000
MAX_SEQ = 2**62
NAMES = "text, regex, gone, stable_ms, changed_since, input or exit"
# Not conditions of their own: they qualify the others.
QUALIFIERS = frozenset({"scrollback", "after"})


class NoWaitCondition(UsageError):
    """A wait without any condition: it could only time out."""

    def __init__(self) -> None:
        super().__init__(f"wait needs a condition: {NAMES}")


@dataclass(frozen=True)
class WaitConditions:
    """Wait until any of these holds (`scrollback` widens text/regex/gone to the history).

    `after` (a seq, as `text`/`key` return it) is an AND on every condition: it counts only
    on a screen newer than that seq, so a match still on screen from before the input does
    not fire the wait the moment it starts; and `text`/`regex` then read the screen with the
    echo of typed input blanked (worker/echo.py), so the echoed command line does not fire
    it either. `changed_since` is its own OR'd condition. `exit` is the exception: once the
    program ended nothing newer can come, so it fires anyway."""

    text: str | None = None
    regex: str | None = None
    gone: str | None = None
    stable_ms: int | None = None
    changed_since: int | None = None
    input: bool = False
    exit: bool = False
    scrollback: bool = False
    timeout: float = 30.0
    after: int | None = None

    def __post_init__(self) -> None:
        for name in ("text", "regex", "gone"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise UsageError(f"wait: {name} must be a non-empty string")
        for name in ("text", "gone"):
            if problem := row_text_problem(name, getattr(self, name)):
                raise UsageError(f"wait: {problem}")
        _check_int("stable_ms", self.stable_ms, 1, MAX_STABLE_MS)
        _check_int("changed_since", self.changed_since, 0, MAX_SEQ)
        _check_int("after", self.after, 0, MAX_SEQ)
        for name in ("input", "exit", "scrollback"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"wait: {name} must be true or false")
        timeout = self.timeout
        if (
            not isinstance(timeout, (int, float))
            or isinstance(timeout, bool)
            or not math.isfinite(timeout)
            or not 0 <= timeout <= MAX_TIMEOUT
        ):
            raise UsageError(f"wait: timeout must be a number of seconds in 0..{MAX_TIMEOUT:g}")
        if not self.conditions().keys() - QUALIFIERS:
            raise NoWaitCondition

    def conditions(self) -> JSONObject:
        """The conditions that are set, by their wire names (no timeout)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "timeout"}
        return {k: v for k, v in values.items() if is_set(v)}

    def params(self) -> JSONObject:
        """The `wait` request's params."""
        return wait_params(self.conditions(), self.timeout)


def newer_seq(seq: int, after: object, changed_since: object) -> str | None:
    """Why a wait's `after` or `changed_since` cannot be one the session answered (newer
    than its screen's `seq`: another session's, or made up), or None. The worker's words,
    and an ended session's (`Client._wait_ended`)."""
    for name, asked in (("after", after), ("changed_since", changed_since)):
        if type(asked) is int and asked > seq:
            return (
                f"seq {asked} ({name}) is newer than this session's last ({seq}): "
                "use a seq this session's text, key, send, paste or get answered"
            )
    return None


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise UsageError(f"wait: {name} must be a whole number in {low}..{high}")

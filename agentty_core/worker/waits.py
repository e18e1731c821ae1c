"""Wait conditions, evaluated inside the worker the moment the screen changes.

A wait is a set of conditions; the first that holds fires, and the answer says which one.
`after` qualifies them all (an AND): a condition counts only on a screen newer than that seq
(the input's), except `exit`, after which nothing newer can come; and text and regex then
read the screen with the echo of typed input masked, as the echo is newer too, and with the
rows the input found that show nothing new (echo.py).
The worker re-checks waits after every parsed chunk of output, on a timer for `stable`,
on a short poll for `input`, and when the program exits; no client polls.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from agentty_core.protocol import BadRequest, JSONObject, finite
from agentty_core.regexbudget import InvalidRegex, bounded, compile_pattern, quoted
from agentty_core.screen_text import row_text_problem

MAX_TIMEOUT = 24 * 3600.0


class ScreenView(Protocol):
    """What a wait needs to know about the session."""

    @property
    def seq(self) -> int: ...

    def find(self, needle: str, *, scrollback: bool = False) -> tuple[int, int] | None: ...

    def search(
        self, pattern: re.Pattern[str], *, scrollback: bool = False
    ) -> tuple[int, int] | None: ...


@dataclass
class WaitSpec:
    text: str | None = None
    regex: re.Pattern[str] | None = None
    gone: str | None = None
    stable_ms: int | None = None
    changed_since: int | None = None
    input: bool = False
    exit: bool = False
    scrollback: bool = False
    after: int | None = None
    forget: bool = False  # remove the session at the exit instead of recording it (`run`)
    timeout: float = 30.0
    started: float = field(default_factory=time.monotonic)

    def describe(self) -> str:
        parts = []
        if self.text is not None:
            parts.append(f"text {quoted(self.text)}")
        if self.regex is not None:
            parts.append(f"regex {quoted(self.regex.pattern)}")
        if self.gone is not None:
            parts.append(f"{quoted(self.gone)} to disappear")
        if self.stable_ms is not None:
            parts.append(f"the screen to be stable for {self.stable_ms} ms")
        if self.changed_since is not None:
            parts.append(f"a change after seq {self.changed_since}")
        if self.input:
            parts.append("the program to wait for input")
        if self.exit:
            parts.append("the program to exit")
        return " or ".join(parts)

    def describe_all(self) -> str:
        """What the wait waits for, qualifier included (for the timeout message)."""
        if self.after is None:
            return self.describe()
        return f"{self.describe()} on a screen newer than seq {self.after}"


def _opt_str(params: JSONObject, key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key} must be a non-empty string")
    if key != "regex" and (problem := row_text_problem(key, value)):
        raise BadRequest(problem)
    return value


def _opt_int(params: JSONObject, key: str, low: int, high: int) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f"{key} must be an integer in {low}..{high}")
    return value


def parse_wait(params: JSONObject) -> WaitSpec:
    spec = WaitSpec(
        text=_opt_str(params, "text"),
        gone=_opt_str(params, "gone"),
        stable_ms=_opt_int(params, "stable_ms", 1, 86_400_000),
        changed_since=_opt_int(params, "changed_since", 0, 2**62),
        after=_opt_int(params, "after", 0, 2**62),
        input=params.get("input") is True,
        exit=params.get("exit") is True,
        scrollback=params.get("scrollback") is True,
        forget=params.get("forget") is True,
    )
    pattern = _opt_str(params, "regex")
    if pattern is not None:
        try:
            spec.regex = compile_pattern(pattern)
        except InvalidRegex as exc:
            raise BadRequest(str(exc)) from None
    timeout = params.get("timeout", 30.0)
    if not finite(timeout) or not 0 <= float(timeout) <= MAX_TIMEOUT:  # type: ignore[arg-type]  # finite() checked the type
        raise BadRequest(f"timeout must be a number of seconds in 0..{MAX_TIMEOUT:g}")
    spec.timeout = float(timeout)  # type: ignore[arg-type]  # finite() checked the type
    if not spec.describe():
        raise BadRequest(
            "wait needs a condition: text, regex, gone, stable_ms, changed_since, input or exit"
        )
    if spec.forget and spec.describe() != "the program to exit":
        raise BadRequest("forget goes with exit alone")
    return spec


@dataclass
class Fired:
    condition: str
    match: tuple[int, int] | None = None


def evaluate(
    spec: WaitSpec,
    view: ScreenView,
    *,
    exited: bool,
    idle_ms: float,
    reading: bool,
    masked: Callable[[], ScreenView | None] | None = None,
) -> Fired | None:
    """The condition that holds now, if any, in a fixed order of precedence.

    `masked` gives the screen with the echo of typed input blanked (worker/echo.py), asked
    only once a wait `after` an input may fire: its text and regex read that instead."""
    if spec.after is not None and view.seq <= spec.after:
        return Fired("exit") if spec.exit and exited else None
    if spec.changed_since is not None and view.seq > spec.changed_since:
        return Fired("changed")
    reads = view
    if masked is not None and (spec.text is not None or spec.regex is not None):
        reads = masked() or view
    if spec.text is not None:
        at = reads.find(spec.text, scrollback=spec.scrollback)
        if at is not None:
            return Fired("text", at)
    if spec.regex is not None:
        with bounded(spec.regex) as pattern:  # RegexTimeout past its budget
            at = reads.search(pattern, scrollback=spec.scrollback)
        if at is not None:
            return Fired("regex", at)
    if spec.gone is not None and view.find(spec.gone, scrollback=spec.scrollback) is None:
        return Fired("gone")
    if spec.input and reading:
        return Fired("input")
    if spec.stable_ms is not None and idle_ms >= spec.stable_ms:
        return Fired("stable")
    if spec.exit and exited:
        return Fired("exit")
    return None

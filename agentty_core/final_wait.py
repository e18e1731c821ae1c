"""Which wait condition holds on an ended session's final screen.

Nothing changes on that screen any more: a condition that holds is answered at once, in the
worker's order of precedence (`worker/waits.evaluate`), and one that does not hold never
will (the caller then says the session ended). The screen is as still as a screen gets, so
`stable` holds. Shared by the Client and the CLI's fast lane (`cli/hotfinal.py`): it imports
`re` (and the regex budget) only for a regex.
"""

from __future__ import annotations

from agentty_core.screen_text import readings, screen_to_cursor

TYPE_CHECKING = False  # without importing typing: the fast lane imports this
if TYPE_CHECKING:
    from collections.abc import Mapping


class BadRegex(ValueError):
    """The wait's regex does not compile, or ran past its CPU budget (the worker's words)."""


class RegexTooSlow(BadRegex):
    """The wait's regex ran past its CPU budget."""


def fired_on(
    screen: Mapping[str, object], masks: object, conditions: Mapping[str, object]
) -> str | None:
    """`fired` on an ended session's final screen as `get --json` gives it (its scrollback
    there only if the wait asked for it), `masks` the masked rows its worker kept with it."""
    scrollback = screen.get("scrollback")
    history = [x for x in scrollback if isinstance(x, str)] if isinstance(scrollback, list) else []
    read = screen_to_cursor(screen)
    masked = masked_lines(masks, read, history, conditions.get("after"))
    return fired(history + read, screen.get("seq"), conditions, masked)


def fired(
    lines: list[str],
    seq: object,
    conditions: Mapping[str, object],
    masked: list[str] | None = None,
) -> str | None:
    """The condition (`text`, `regex`, `gone`, `changed`, `stable`, `exit`) that holds on
    the final screen's `lines` (scrollback first, if asked), or None. `conditions` are the
    wait's params (`protocol.wait_params`); `after` gates all but `exit`, and `text` and
    `regex` read the `masked` lines when there are (`masked_lines`)."""
    after = conditions.get("after")
    newer = not isinstance(after, int) or (isinstance(seq, int) and seq > after)
    if newer:
        changed_since = conditions.get("changed_since")
        if isinstance(changed_since, int) and isinstance(seq, int) and seq > changed_since:
            return "changed"
        found_in = lines if masked is None else masked
        text = conditions.get("text")
        if isinstance(text, str) and any(text in line for line in found_in):
            return "text"
        pattern = conditions.get("regex")
        if isinstance(pattern, str):
            try:
                if _matches(pattern, [r for x in found_in for r in readings(x)]):
                    return "regex"
            except RegexTooSlow:
                if conditions.get("exit") is not True:
                    raise
                return "exit"  # (the end holds, whatever the regex would have said)
        gone = conditions.get("gone")
        if isinstance(gone, str) and not any(gone in line for line in lines):
            return "gone"
        if isinstance(conditions.get("stable_ms"), int):
            return "stable"
    return "exit" if conditions.get("exit") is True else None


def masked_lines(
    masks: object, read: list[str], history: list[str], after: object
) -> list[str] | None:
    """What a wait `after` an input reads on a final screen (its `history` first, if
    asked, then `read`, to the cursor) with the input's echo and the rows it found unchanged
    blanked, as its worker masked them (`worker/echo.py`, kept as the screen's `masks`: for
    its last inputs; one older than those gets its echoes masked alone); None where nothing
    is (no `after`, no masks saved, nothing masked)."""
    if type(after) is not int or not isinstance(masks, list):
        return None
    chosen: dict[str, object] | None = None
    for entry in masks:  # the latest taken at or before `after` (null: before any)
        if not isinstance(entry, dict):
            continue
        at = entry.get("after")
        if (at is None or (type(at) is int and at <= after)) and (
            chosen is None or _later(at, chosen.get("after"))
        ):
            chosen = entry
    if chosen is None or ("rows" not in chosen and "read" not in chosen):
        return None
    whole = chosen.get("read")
    shown = _strings(whole) if isinstance(whole, list) else _patched(read, chosen.get("rows"))
    if not history:
        return shown
    blank = chosen.get("blank")
    changes = chosen.get("history")
    if type(blank) is not int or not isinstance(changes, list):
        return history + shown  # (the scrollback could not be lined up: as it is)
    kept = [""] * min(max(blank, 0), len(history)) + history[max(blank, 0) :]
    return _patched(kept, changes) + shown


def _later(at: object, than: object) -> bool:
    return than is None or (type(at) is int and type(than) is int and at > than)


def _strings(value: list[object]) -> list[str]:
    return [x for x in value if isinstance(x, str)]


def _patched(lines: list[str], changes: object) -> list[str]:
    """`lines` with each [index, text] of `changes` put in."""
    out = list(lines)
    for change in changes if isinstance(changes, list) else []:
        if isinstance(change, list) and len(change) == 2:
            index, text = change
            if type(index) is int and 0 <= index < len(out) and isinstance(text, str):
                out[index] = text
    return out


def _matches(pattern: str, lines: list[str]) -> bool:
    """Searched as the worker searches, within a CPU budget: the worker's (`regexbudget`)
    in the main thread, where its timer's signal arrives; elsewhere (the MCP server's
    threads) in a child process with a CPU limit, the only way to cut a catastrophic
    pattern short there."""
    import threading

    from agentty_core.regexbudget import (
        BUDGET,
        InvalidRegex,
        RegexTimeout,
        bounded,
        compile_pattern,
        quoted,
    )

    try:
        compiled = compile_pattern(pattern)
    except InvalidRegex as exc:
        raise BadRegex(str(exc)) from None
    too_long = RegexTooSlow(
        f"regex {quoted(pattern)} took over {BUDGET:g}s of CPU on the screen "
        "(nested repeats backtrack); simplify it"
    )
    if threading.current_thread() is not threading.main_thread():
        found = _search_in_child(pattern, lines)
        if found is None:
            raise too_long
        return found
    try:
        with bounded(compiled) as searched:
            return any(searched.search(line) for line in lines)
    except RegexTimeout:
        raise too_long from None


_CHILD = """
import json, os, re, resource, signal, sys
asked = json.load(sys.stdin)
pattern = re.compile(asked["pattern"])
signal.signal(signal.SIGPROF, lambda *_: os._exit(3))  # the worker's budget, in CPU time
signal.setitimer(signal.ITIMER_PROF, asked["budget"])
resource.setrlimit(resource.RLIMIT_CPU, (2, 2))  # and the kernel's, should that not fire
print(int(any(pattern.search(line) for line in asked["lines"])))
"""


def _search_in_child(pattern: str, lines: list[str]) -> bool | None:
    """Whether a line matches, searched by a child interpreter within the worker's CPU
    budget (`regexbudget.BUDGET`, a CPU timer; the kernel's limit behind it); None if it
    did not finish."""
    import json
    import subprocess
    import sys

    from agentty_core.regexbudget import BUDGET

    asked = json.dumps({"pattern": pattern, "lines": lines, "budget": BUDGET})
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _CHILD],
            input=asked,
            capture_output=True,
            text=True,
            timeout=5.0,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = done.stdout.strip()
    return None if done.returncode != 0 or answer not in ("0", "1") else answer == "1"

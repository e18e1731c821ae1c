"""Which wait condition holds on an ended session's final screen.

Nothing changes on that screen any more: a condition that holds is answered at once, in the
worker's order of precedence (`worker/waits.evaluate`), and one that does not hold never
will (the caller then says the session ended). The screen is as still as a screen gets, so
`stable` holds. Shared by the Client and the CLI's fast lane (`cli/hotfinal.py`): it imports
`re` (and the regex budget) only for a regex.
"""

from __future__ import annotations

from agentty_core.screen_text import readings

TYPE_CHECKING = False  # without importing typing: the fast lane imports this
if TYPE_CHECKING:
    from collections.abc import Mapping


class BadRegex(ValueError):
    """The wait's regex does not compile, or ran past its CPU budget (the worker's words)."""


class RegexTooSlow(BadRegex):
    """The wait's regex ran past its CPU budget."""


def fired(lines: list[str], seq: object, conditions: Mapping[str, object]) -> str | None:
    """The condition (`text`, `regex`, `gone`, `changed`, `stable`, `exit`) that holds on
    the final screen's `lines` (scrollback first, if asked), or None. `conditions` are the
    wait's params (`protocol.wait_params`); `after` gates all but `exit`."""
    after = conditions.get("after")
    newer = not isinstance(after, int) or (isinstance(seq, int) and seq > after)
    if newer:
        changed_since = conditions.get("changed_since")
        if isinstance(changed_since, int) and isinstance(seq, int) and seq > changed_since:
            return "changed"
        text = conditions.get("text")
        if isinstance(text, str) and any(text in line for line in lines):
            return "text"
        pattern = conditions.get("regex")
        if isinstance(pattern, str):
            try:
                if _matches(pattern, [r for x in lines for r in readings(x)]):
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

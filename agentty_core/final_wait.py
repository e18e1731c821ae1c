"""Which wait condition holds on an ended session's final screen.

Nothing changes on that screen any more: a condition that holds is answered at once, in the
worker's order of precedence (`worker/waits.evaluate`), and one that does not hold never
will (the caller then says the session ended). The screen is as still as a screen gets, so
`stable` holds. Shared by the Client and the CLI's fast lane (`cli/hotfinal.py`): it imports
`re` only for a regex.
"""

from __future__ import annotations

TYPE_CHECKING = False  # without importing typing: the fast lane imports this
if TYPE_CHECKING:
    from collections.abc import Mapping


class BadRegex(ValueError):
    """The wait's regex does not compile (the worker's words: `invalid regex ...`)."""


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
        if isinstance(pattern, str) and _matches(pattern, lines):
            return "regex"
        gone = conditions.get("gone")
        if isinstance(gone, str) and not any(gone in line for line in lines):
            return "gone"
        if isinstance(conditions.get("stable_ms"), int):
            return "stable"
    return "exit" if conditions.get("exit") is True else None


def _matches(pattern: str, lines: list[str]) -> bool:
    import re

    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise BadRegex(f"invalid regex {pattern!r}: {exc}") from None
    return any(compiled.search(line) for line in lines)

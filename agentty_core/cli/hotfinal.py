"""The fast lane for a session that has ended: `get` and `wait` read its final screen.

An agent's last calls on a task are often `wait --exit` and `get` once its program is
done. The worker is gone by then, and the full path (argparse, the state store) took four
times the interpreter's start to read one file. This does what `Client.get` and
`Client.wait` do for an ended session (`final_screen`, `_wait_ended`) on the C modules.
Anything else goes the full way: a session the record still calls live (its worker may be
finalizing, or dead and not yet marked lost), a missing or unreadable final screen, a
`wait` that cannot fire on a screen that no longer changes (the full path's error).
"""

from __future__ import annotations

import os

from agentty_core.cli import hotread

TYPE_CHECKING = False  # without importing typing: this module is the hot path
if TYPE_CHECKING:
    from agentty_core.cli.fast import Namespace

LIVE = ("starting", "running")  # records.LIVE_STATUSES


def answer(args: Namespace, home: str) -> tuple[str, dict[str, object]] | None:
    """The session's id and what `get` or `wait` answers for it, if it has ended (printed
    by the lane as a live worker's answer); None: the full path."""
    rec = _ended_record(home, args.session)
    if rec is None:
        return None
    sid = str(rec["id"])
    raw = hotread.read_private(os.path.join(home, "logs", f"{sid}.final.json"))
    try:
        screen = hotread.loads(raw.decode("utf-8")) if raw is not None else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(screen, dict):
        return None
    masks = screen.pop("masks", None)  # (a wait's; never printed)
    if args.command == "get":
        _final_screen(screen, rec, args.lines, args.scrollback, args.ansi)
        return sid, screen
    _final_screen(screen, rec, None, args.scrollback, False)
    fired = _fired(screen, args, masks)
    if fired is None:
        return None
    return sid, {**screen, "fired": fired, "elapsed_ms": 0}


def _ended_record(home: str, ref: str | None) -> dict[str, object] | None:
    """The record `records.resolve` picks, if it says the session ended."""
    recs = hotread.records(home)
    if recs is None:
        return None
    if ref is None:
        raw = hotread.read_private(os.path.join(home, "active"))
        active = raw.decode("ascii", "replace").strip() if raw else ""
        rec = next((r for r in recs if r["id"] == active), None)
    else:
        rec = hotread.find(recs, ref)
    if rec is None or rec.get("status") in LIVE or not hotread.is_id(str(rec["id"])):
        return None
    return rec


def _final_screen(
    screen: dict[str, object],
    rec: dict[str, object],
    lines: int | None,
    scrollback: bool,
    ansi: bool,
) -> None:
    """`RecordsView.final_screen`, in place."""
    if lines is not None:
        text = hotread.trim_lines(
            hotread.str_list(screen.get("scrollback")) + hotread.str_list(screen.get("lines"))
        )
        screen["lines"] = text[-lines:] if lines else []
    if not scrollback or lines is not None:  # (its part is in the lines)
        screen.pop("scrollback", None)
    if not ansi:
        screen.pop("ansi", None)
    if rec.get("status") == "exited" or "exitCode" not in screen:
        screen.update(exitCode=rec.get("exitCode"), signal=rec.get("signal"))
    screen["exited"] = True


def _fired(screen: dict[str, object], args: Namespace, masks: object) -> str | None:
    """`Client._wait_ended`: the condition that holds on the last screen (`masks`: what
    its worker kept for waits after an input), or None (a bad regex, or a text no row can
    hold, too: the full path says what is wrong with it)."""
    from agentty_core import final_wait
    from agentty_core.screen_text import row_text_problem

    if row_text_problem("text", args.text) or row_text_problem("gone", args.gone):
        return None
    seq = screen.get("seq")
    if type(seq) is int and any(
        type(s) is int and s > seq for s in (args.after, args.changed_since)
    ):
        return None  # a seq this session never answered: the full path refuses it
    conditions: dict[str, object] = {"text": args.text, "regex": args.regex, "gone": args.gone}
    conditions.update(stable_ms=args.stable, changed_since=args.changed_since, after=args.after)
    conditions["exit"] = args.exit
    try:
        return final_wait.fired_on(screen, masks, conditions)
    except final_wait.BadRegex:
        return None

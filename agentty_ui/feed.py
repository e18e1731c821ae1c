"""Helpers for the screen events the dashboard receives (see agentty_core.ipc.subscription)."""

from __future__ import annotations

from agentty_core.protocol import JSONObject


def merge_events(events: list[JSONObject]) -> JSONObject:
    """Fold queued screen events into one: the last size/cursor/title, every changed row."""
    merged: JSONObject = dict(events[-1])
    rows: dict[str, object] = {}
    for event in events:
        changed = event.get("rows")
        if isinstance(changed, dict):
            rows.update(changed)
    merged["rows"] = rows
    return merged

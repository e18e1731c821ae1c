"""Screen events for subscribed connections (the dashboard): the whole screen on
subscribe, then the changed rows, coalesced to ~30 a second, skipping frames for a slow
reader instead of growing memory.

A subscriber may ask for fewer (`subscribe {"interval": S}`): the dashboard's grid shows
twenty sessions at ~7 frames a second, and thirty events a second from each were decoded
only to be painted over. Its events then carry every row changed since its previous one,
at most one each S seconds, and the last change always reaches it (a timer, not the next
output, sends what is pending).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from agentty_core import protocol
from agentty_core.ipc.server import Peer
from agentty_core.protocol import BadRequest, JSONObject, finite
from agentty_core.worker.base import WorkerBase

PUSH_BACKLOG = 1 << 18  # unsent bytes after which a subscriber's frames are skipped
FRAME = 1 / 30  # seconds: the most frequent events, what a subscriber gets by default
MAX_INTERVAL = 10.0


@dataclass
class Subscriber:
    """What one subscribed connection has been sent, and is owed."""

    interval: float = FRAME
    full: bool = False  # it skipped frames: its next event carries every row
    rows: set[int] = field(default_factory=set)  # changed since its last event (paced)
    pending: bool = False  # something changed since its last event (paced)
    due: float = 0.0  # loop time before which it gets no event (paced)

    @property
    def paced(self) -> bool:
        return self.interval > FRAME


def subscribe_interval(params: JSONObject) -> float:
    """The `interval` a subscribe asks for (seconds), FRAME when it names none."""
    value = params.get("interval")
    if value is None:
        return FRAME
    if not finite(value):
        raise BadRequest("'interval' must be a number of seconds")
    assert isinstance(value, (int, float))
    if not 0 <= value <= MAX_INTERVAL:
        raise BadRequest(f"'interval' must be 0..{MAX_INTERVAL:g} seconds")
    return max(float(value), FRAME)


class Push(WorkerBase):
    """Screen events for the connections that subscribed."""

    def _schedule_push(self) -> None:
        """The screen changed: a push within FRAME (the first change starts the clock, so
        a stream of changes makes at most ~30 pushes a second)."""
        if not self.subscribers:
            return
        self.push_fresh = True
        loop = asyncio.get_running_loop()
        # The first subscriber's turn: FRAME from now, or later when every one is paced
        # (a grid's worker wakes a few times a second, not thirty).
        at = max(loop.time() + FRAME, min(sub.due for sub in self.subscribers.values()))
        if self.push_handle is not None:
            if self.push_handle.when() <= at:
                return
            self.push_handle.cancel()  # a paced subscriber's later turn: this comes first
        self.push_handle = loop.call_at(at, self._push)

    def _push(self, *, final: bool = False) -> None:
        """Send each subscriber what it is owed now; `final` (the program ended) also what
        a paced one would get later."""
        self.push_handle = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        fresh, self.push_fresh = self.push_fresh, False
        changed = self.emu.dirty_rows() if fresh else set()
        lines: dict[tuple[int, ...] | None, bytes] = {}  # one encoding per set of rows

        def event(rows: tuple[int, ...] | None) -> bytes:
            if rows not in lines:
                listed = list(range(self.emu.rows)) if rows is None else list(rows)
                lines[rows] = protocol.encode(self.screen_event(listed))
            return lines[rows]

        next_due: float | None = None
        # A copy: a send that fails closes the peer, which unsubscribes it.
        for peer, sub in list(self.subscribers.items()):
            if peer.closed:
                continue
            if fresh:
                sub.rows |= changed
                sub.pending = True
            if not sub.pending:
                continue
            if sub.paced and now < sub.due and not final:
                next_due = sub.due if next_due is None else min(next_due, sub.due)
                continue
            if peer.unsent > PUSH_BACKLOG:
                # A slow subscriber skips frames rather than growing memory; since frames
                # carry only changed rows, its next one carries them all.
                sub.full = True
                continue
            if sub.full:
                peer.send(event(None))
            else:
                peer.send(event(tuple(sorted(r for r in sub.rows if r < self.emu.rows))))
            sub.full = sub.pending = False
            sub.rows.clear()
            sub.due = now + sub.interval
        if next_due is not None and self.push_handle is None:
            # What a paced subscriber is owed goes at its time, output or not.
            self.push_handle = loop.call_at(next_due, self._push)

    def _push_final(self) -> None:
        """Before the subscribers' streams end: every change they have not been sent."""
        if self.push_handle is not None:
            self.push_handle.cancel()
            self.push_handle = None
        if self.subscribers:
            self._push(final=True)

    def screen_event(self, rows: list[int]) -> JSONObject:
        row, col = self.emu.cursor
        return {
            "event": "screen",
            "seq": self.emu.seq,
            "size": {"cols": self.emu.cols, "rows": self.emu.rows},
            "cursor": {"row": row, "col": col, "visible": self.emu.cursor_visible},
            "title": self.emu.title,
            "rows": {str(r): [list(run) for run in self.emu.row_runs(r)] for r in rows},
        }

    def _subscribe(self, peer: Peer, params: JSONObject) -> None:
        """From now on the connection carries screen events, starting with the whole screen
        (at most one each `interval` seconds, if it asks for fewer than ~30 a second)."""
        sub = Subscriber(interval=subscribe_interval(params))
        peer.subscribed = True  # no more requests on this connection
        self.subscribers[peer] = sub
        peer.on_close.append(lambda: self._unsubscribe(peer))
        peer.send(protocol.encode(self.screen_event(list(range(self.emu.rows)))))
        sub.due = asyncio.get_running_loop().time() + sub.interval

    def _unsubscribe(self, peer: Peer) -> None:
        self.subscribers.pop(peer, None)

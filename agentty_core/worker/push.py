"""Screen events for subscribed connections (the dashboard): the whole screen on
subscribe, then the changed rows, coalesced to ~30 a second, skipping frames for a slow
reader instead of growing memory."""

from __future__ import annotations

import asyncio

from agentty_core import protocol
from agentty_core.ipc.server import Peer
from agentty_core.protocol import JSONObject
from agentty_core.worker.base import WorkerBase

PUSH_BACKLOG = 1 << 18  # unsent bytes after which a subscriber's frames are skipped


class Push(WorkerBase):
    """Screen events for the connections that subscribed."""

    def _schedule_push(self) -> None:
        """Coalesce screen pushes to at most ~30 per second per worker."""
        if not self.subscribers or self.push_handle is not None:
            return
        self.push_handle = asyncio.get_running_loop().call_later(1 / 30, self._push)

    def _push(self) -> None:
        self.push_handle = None
        rows = sorted(self.emu.dirty_rows())
        line = protocol.encode(self.screen_event(rows))
        full: bytes | None = None
        # A copy: a send that fails closes the peer, which unsubscribes it.
        for peer, skipped in list(self.subscribers.items()):
            if peer.closed:
                continue
            if peer.unsent > PUSH_BACKLOG:
                # A slow subscriber skips frames rather than growing memory; since frames
                # carry only changed rows, its next one carries them all.
                self.subscribers[peer] = True
            elif skipped:
                if full is None:
                    full = protocol.encode(self.screen_event(list(range(self.emu.rows))))
                peer.send(full)
                self.subscribers[peer] = False
            else:
                peer.send(line)

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

    def _subscribe(self, peer: Peer) -> None:
        """From now on the connection carries screen events, starting with the whole screen."""
        peer.subscribed = True  # no more requests on this connection
        self.subscribers[peer] = False
        peer.on_close.append(lambda: self._unsubscribe(peer))
        peer.send(protocol.encode(self.screen_event(list(range(self.emu.rows)))))

    def _unsubscribe(self, peer: Peer) -> None:
        self.subscribers.pop(peer, None)

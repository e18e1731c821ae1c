"""CPU and memory of sessions, for the dashboard.

psutil's `cpu_percent` measures the time since the previous call on the same `Process`
object, so the sampler keeps its handles between polls; a fresh handle would always say 0.
A session's usage is the sum over its program's process tree (the worker is not counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Usage:
    """What a session's processes use right now."""

    cpu_percent: float
    rss_bytes: int
    processes: int


class UsageSampler:
    """Samples process trees, keeping psutil handles so CPU % is measured between polls."""

    def __init__(self) -> None:
        self._handles: dict[tuple[int, float], psutil.Process] = {}

    def _handle(self, pid: int) -> psutil.Process | None:
        try:
            proc = psutil.Process(pid)
            key = (pid, proc.create_time())
        except psutil.Error:
            return None
        # Keyed by create time too, so a recycled pid never inherits another's CPU history.
        return self._handles.setdefault(key, proc)

    def sample(self, pid: int) -> Usage | None:
        """Usage of the tree rooted at `pid`; None when that process is gone."""
        root = self._handle(pid)
        if root is None:
            return None
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return None
        cpu, rss, count = 0.0, 0, 0
        for child in tree:
            proc = self._handle(child.pid)
            if proc is None:
                continue
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                count += 1
            except psutil.Error:
                continue
        return Usage(cpu, rss, count)

    def sample_all(self, pids: dict[str, int]) -> dict[str, Usage]:
        """Usage per session id (sessions whose program is gone are left out)."""
        result = {sid: usage for sid, pid in pids.items() if (usage := self.sample(pid))}
        self._prune()
        return result

    def _prune(self) -> None:
        """Forget handles of processes that ended, so the cache cannot grow forever.

        Two polls may sample at once (a poll the dashboard replaced still finishes in its
        thread), so a handle may already be gone: pop, never del."""
        for key, proc in list(self._handles.items()):
            if not proc.is_running():
                self._handles.pop(key, None)


def format_bytes(size: int) -> str:
    """'12.3M'-style sizes for a narrow column."""
    value = float(size)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}G"

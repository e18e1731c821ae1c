"""What a child forked from a process that talks to workers must not take over: its kept
connections (sharing a socket, parent and child each read the other's answers) and its
locks (held by another thread of the parent at the fork, never let go in the child).

Objects that keep either register a reset here; it runs in the child right after the fork,
while the child has a single thread (`os.register_at_fork`), before anything else of it.
"""

from __future__ import annotations

import os
import weakref

TYPE_CHECKING = False  # without importing typing: a `start` the full way imports this
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

_resets: weakref.WeakKeyDictionary[object, Callable[[object], None]] = weakref.WeakKeyDictionary()


def reset_in_child(owner: T, reset: Callable[[T], None]) -> None:
    """Call `reset(owner)` in every child forked while `owner` lives."""
    _resets[owner] = reset  # type: ignore[assignment]  # called with that owner only


def _after_fork_in_child() -> None:
    for owner, reset in list(_resets.items()):
        reset(owner)


os.register_at_fork(after_in_child=_after_fork_in_child)

"""The grid's widgets and the cyclic garbage collector.

A grid of 20 live panes allocates a Strip (with seven small caches) per row it repaints, and
every so many allocations the collector's full pass walks every object the app holds: about
a sixth of the dashboard's CPU while the grid was up. The grid's widgets live as long as
the grid, so while it is up they are frozen (`gc.freeze`: kept out of the collector's
passes, still freed by their reference counts) and thawed when it closes, so that the
cycles it leaves behind are collected as usual.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Everything alive now lives until `thaw`: keep it out of the collector's passes."""
    gc.freeze()


def thaw() -> None:
    """What was frozen may die now: the collector sees it again."""
    gc.unfreeze()

"""Which terminal emulator a worker runs: pyte (the default, `emulator.Emulator`) or, with
`AGENTTY_EMULATOR=avt` and pyavt installed, asciinema's compiled avt (`emulator_avt`)."""

from __future__ import annotations

import logging
import os
import re
from typing import Protocol

from agentty_core.emulator._screen import Run

log = logging.getLogger(__name__)


class TerminalModel(Protocol):
    """What the worker asks of an emulator."""

    def feed(self, data: bytes) -> bytes: ...
    def resize(self, cols: int, rows: int) -> None: ...
    @property
    def cols(self) -> int: ...
    @property
    def rows(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def scrolled(self) -> int: ...
    def lines(self) -> list[str]: ...
    def scrollback(self) -> list[str]: ...
    def row_runs(self, row: int) -> list[Run]: ...
    def ansi_lines(self) -> list[str]: ...
    def dirty_rows(self) -> set[int]: ...
    @property
    def cursor(self) -> tuple[int, int]: ...
    @property
    def cursor_visible(self) -> bool: ...
    @property
    def title(self) -> str: ...
    @property
    def alt_screen(self) -> bool: ...
    @property
    def modes(self) -> dict[str, bool]: ...
    def find(self, needle: str, *, scrollback: bool = False) -> tuple[int, int] | None: ...
    def search(
        self, pattern: re.Pattern[str], *, scrollback: bool = False
    ) -> tuple[int, int] | None: ...


def create_emulator(cols: int, rows: int) -> tuple[TerminalModel, str]:
    """The emulator `AGENTTY_EMULATOR` asks for, and its name; pyte when avt is unavailable."""
    if os.environ.get("AGENTTY_EMULATOR", "").strip().lower() == "avt":
        try:
            from agentty_core.emulator.avt_backend import AvtEmulator
        except ImportError as exc:
            log.warning("AGENTTY_EMULATOR=avt, but pyavt is not installed (%s): using pyte", exc)
        else:
            return AvtEmulator(cols, rows), "avt"
    from agentty_core.emulator.pyte_backend import Emulator

    return Emulator(cols, rows), "pyte"

"""The terminal driver: Textual's, reading keys with a parser that keeps Alt (ESC-prefixed) keys.

An attached session must get the bytes a terminal sends (what tmux passes on). Textual's
parser loses the ESC of Alt keys it has no name for: `ESC :` (Alt+: or a quick Esc then :)
came as `:`, `ESC space` as a space, `ESC CR` as Enter; it maps some ESC pairs to other
keys (`ESC 1` to `¡`, macOS's Option; `ESC DEL` to Ctrl+W; `ESC TAB` to Shift+Tab; `ESC f`
to Ctrl+Right), and an ESC followed by another within a sequence came as `^`. This parser
reports each as `alt+<key>` (and that ESC as Escape), which `terminal_view.agentty_key`
turns back into the same bytes.
"""

from __future__ import annotations

import types
from collections.abc import Iterable

from textual import events
from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
from textual._xterm_parser import XTermParser
from textual.drivers import linux_driver
from textual.drivers.linux_driver import LinuxDriver

ESC = "\x1b"
# Escape under another of its names: Textual's parser turns a key named `escape` that it
# re-reads from a sequence into `^` (textual/_xterm_parser.py, reissue_sequence_as_keys).
ESCAPE_AGAIN = "ctrl+left_square_bracket"


class AltKeysParser(XTermParser):
    """Textual's parser, but ESC then one key (read after the escape delay, or a pair its
    table maps) is `alt+<that key>`, whatever the key."""

    def _sequence_to_key_events(self, sequence: str, alt: bool = False) -> Iterable[events.Key]:
        if sequence == ESC:  # only ever re-read from a sequence cut short by another ESC
            yield events.Key(ESCAPE_AGAIN, ESC)
            return
        if len(sequence) == 2 and sequence[0] == ESC != sequence[1]:
            if sequence not in ANSI_SEQUENCES_KEYS:  # (a prefix of a longer sequence)
                return
            sequence, alt = sequence[1], True  # ESC 1, ESC DEL, ESC TAB, ESC f: Alt keys
        for key in super()._sequence_to_key_events(sequence, alt=alt):
            if alt and not key.key.startswith("alt+"):
                key = events.Key(f"alt+{key.key}", key.character)
            yield key


def _input_loop() -> types.FunctionType | None:
    """LinuxDriver's own input loop, reading with AltKeysParser: the same code, only its
    name `XTermParser` bound to the parser above (Textual has no hook for the parser).
    None if another Textual's loop is not made so (then its driver runs as it is)."""
    code = LinuxDriver.run_input_thread.__code__
    if code.co_freevars or "XTermParser" not in code.co_names:
        return None
    return types.FunctionType(
        code, {**vars(linux_driver), "XTermParser": AltKeysParser}, "run_input_thread"
    )


_run_input_thread = _input_loop()


class AltKeysDriver(LinuxDriver):
    """Textual's driver for Linux and macOS terminals, with `AltKeysParser`."""

    parser_class = AltKeysParser
    usable = _run_input_thread is not None

    def run_input_thread(self) -> None:
        assert _run_input_thread is not None  # (`usable`: the app picks it only then)
        _run_input_thread(self)

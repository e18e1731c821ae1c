"""`shown`: what the command prints of program-controlled text cannot drive the terminal."""

from __future__ import annotations

import pytest

from agentty_core.cli.output import shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain é 漢字 -x 'q'", "plain é 漢字 -x 'q'"),
        ("\x1b]52;c;aGk=\x07", "\\x1b]52;c;aGk=\\x07"),
        ("\x9b31m", "\\x9b31m"),  # C1 CSI: an escape on its own in 8-bit terminals
        ("a\nb\rc\td\x7f", "a\\nb\\rc\\td\\x7f"),
        ("\udcff", "\\udcff"),  # a lone surrogate from non-UTF-8 argv bytes
    ],
)
def test_shown_escapes_control_characters_only(text: str, expected: str) -> None:
    assert shown(text) == expected
    assert shown(text).isprintable()

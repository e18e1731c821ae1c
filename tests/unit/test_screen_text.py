"""One meaning of trimming a screen's text, and the fast lane's inlined copy agrees."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agentty_core.cli import hotread
from agentty_core.screen_text import clipped, controls_escaped, printable_lines, trim_lines


def test_trailing_whitespace_and_the_blank_lines_under_the_text_go() -> None:
    lines = ["", "one  ", "", "two\t\u00a0", "   ", "\u3000", ""]
    assert trim_lines(lines) == ["", "one", "", "two"]


def test_nothing_but_blanks_is_no_lines() -> None:
    assert trim_lines(["", "  ", "\t"]) == []
    assert trim_lines([]) == []


def test_the_input_is_left_as_it_was() -> None:
    lines = ["a ", ""]
    trim_lines(lines)
    assert lines == ["a ", ""]


@given(st.lists(st.text(alphabet=" \t\u00a0\u3000ab\x1b[m", max_size=6), max_size=8))
def test_the_fast_lane_trims_exactly_as_everyone_else(lines: list[str]) -> None:
    assert hotread.trim_lines(list(lines)) == trim_lines(lines)


@given(st.text(max_size=20), st.integers(min_value=1, max_value=15))
def test_the_fast_lane_clips_exactly_as_everyone_else(text: str, width: int) -> None:
    assert hotread.clipped(text, width) == clipped(text, width)
    assert len(clipped(text, width)) <= width


def test_another_host_s_stderr_keeps_its_lines_and_tabs_and_loses_only_controls() -> None:
    said = "warn\tone\r\nsh: \x1b]0;PWN\x07 x\u00a0y\x85\n"
    assert printable_lines(said) == "warn\tone\nsh: \\x1b]0;PWN\\x07 x\u00a0y\\x85\n"


def test_a_row_keeps_what_a_program_draws_and_escapes_controls() -> None:
    assert controls_escaped("a\u00a0b\u200dc") == "a\u00a0b\u200dc"
    assert controls_escaped("a\x1b[1mb\x9bc") == "a\\x1b[1mb\\x9bc"

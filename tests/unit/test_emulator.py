"""Tests for agentty_core.emulator.pyte_backend: the PTY screen model on top of pyte."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentty_core.emulator.pyte_backend import (
    BOLD,
    ITALICS,
    REVERSE,
    UNDERSCORE,
    Emulator,
)


def fed(data: bytes, cols: int = 80, rows: int = 24, scrollback: int = 5000) -> Emulator:
    emu = Emulator(cols, rows, scrollback)
    emu.feed(data)
    return emu


def visible(emu: Emulator) -> list[str]:
    """lines() without the trailing empty rows, for compact expectations."""
    out = emu.lines()
    while out and not out[-1]:
        out.pop()
    return out


# -- basics -------------------------------------------------------------------------------


def test_plain_text_and_shape() -> None:
    emu = fed(b"hello\r\nworld   \r\n")
    lines = emu.lines()
    assert len(lines) == 24
    assert lines[:3] == ["hello", "world", ""]
    assert emu.cursor == (2, 0)
    assert (emu.cols, emu.rows) == (80, 24)


def test_rejects_nonsense_size() -> None:
    with pytest.raises(ValueError):
        Emulator(0, 24)
    emu = Emulator(10, 3)
    with pytest.raises(ValueError):
        emu.resize(10, 0)


def test_autowrap_and_pending_wrap_cursor() -> None:
    emu = fed(b"x" * 10, cols=10, rows=3)
    assert emu.cursor == (0, 9)  # pending wrap reports the last column
    emu.feed(b"y")
    assert emu.lines() == ["x" * 10, "y", ""]


def test_nel_is_cr_lf() -> None:
    assert visible(fed(b"abc\x1bEdef")) == ["abc", "def"]


# -- robustness ---------------------------------------------------------------------------


def test_private_sgr_does_not_raise_or_style() -> None:
    # Stock pyte raises TypeError on CSI ? 4 m; CSI > 4 ; 2 m would become underline+dim.
    emu = fed(b"\x1b[?4m\x1b[>4;2mok")
    assert emu.lines()[0] == "ok"
    assert emu.row_runs(0) == [("ok" + " " * 78, "default", "default", 0)]


def test_garbage_params_are_harmless() -> None:
    emu = fed(b"\x1b[1;2;3A\x1b[99999;99999H\x1b[7Kx\x1b[5J\x1b[38;5;999m\x1b[38;2;300;1;1my")
    assert emu.lines()[22:] == [" " * 79 + "x", "y"]
    assert emu.row_runs(23)[0] == ("y", "ff0101", "default", 0)  # 300 clamped


def test_handler_error_is_logged_and_rest_of_chunk_applies(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    emu = Emulator()
    real_draw = emu._screen.draw

    def draw(text: str) -> None:
        if text == "boom":
            raise RuntimeError("boom")
        real_draw(text)

    monkeypatch.setattr(emu._screen, "draw", draw)
    with caplog.at_level(logging.WARNING, logger="agentty_core.emulator.pyte_backend"):
        emu.feed(b"boom\r\nok")
    assert visible(emu) == ["", "ok"]
    assert any(
        r.name == "agentty_core.emulator.pyte_backend" and r.exc_info for r in caplog.records
    )


_FRAGMENTS = [
    b"\x1b",
    b"\x1b[",
    b"\x1b[?",
    b"\x1b]",
    b"\x1b]0;",
    b"\x1bP",
    b"\x1b_",
    b"\x1b\\",
    b"\x07",
    b"\x1b[?1049h",
    b"\x1b[?1049l",
    b"\x1b[?47h",
    b"\x1b[2J",
    b"\x1b[3S",
    b"\x1b[2T",
    b"\x1b[5b",
    b"\x1b[6n",
    b"\x1b[?4m",
    b"\x1b[38;2;1;2;3m",
    b"\x1b(0",
    b"\x0e",
    b"\x0f",
    b"\r\n",
    b"\x08",
    b"\t",
    b"\x1b[4h",
    b"\x1b[2;5r",
    b"\xe6\x97\xa5",
    b"\xe6",
    b"e\xcc\x81",
    b"\xf0\x9f\x91\x8d",
    b"\xc2\x9b",
    b"\x1b[1;1H",
    b"\x1b[K",
    b"\x1b[P",
    b"\x1b[@",
    b"\x1b[X",
    b"\x1bc",
    b"\x1b#8",
    b"\x1b[?5h",
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(st.binary(max_size=24), st.sampled_from(_FRAGMENTS)),
        max_size=40,
    ),
    st.integers(1, 12),
    st.integers(1, 6),
)
def test_fuzz_feed_never_raises(chunks: list[bytes], cols: int, rows: int) -> None:
    emu = Emulator(cols, rows, scrollback=20)
    for chunk in chunks:
        assert isinstance(emu.feed(chunk), bytes)
    emu.resize(max(1, cols - 3), rows + 1)
    emu.feed(b"".join(chunks))
    lines = emu.lines()
    assert len(lines) == emu.rows
    for line in [*lines, *emu.scrollback()]:
        assert isinstance(line, str)
        assert not _CONTROL.search(line), line
    for row in range(emu.rows):
        assert sum(len(text) for text, *_ in emu.row_runs(row)) >= len(lines[row])
    assert 0 <= emu.cursor[0] < emu.rows and 0 <= emu.cursor[1] < emu.cols


# -- caps ---------------------------------------------------------------------------------


def test_unterminated_osc_is_dropped_without_growing() -> None:
    emu = fed(b"\x1b]0;first\x07")
    emu.feed(b"\x1b]0;")
    for _ in range(64):  # 4 MiB of title that never ends
        emu.feed(b"A" * 65536)
        assert len(emu._parser._carry) <= 4096 + 16
    assert emu.title == "first"
    emu.feed(b"\x07after")
    assert emu.title == "first"
    assert emu.lines()[0] == "after"


def test_oversized_strings_dropped_in_one_chunk() -> None:
    emu = fed(b"\x1b]2;" + b"B" * 5000 + b"\x1b\\x\x1bP" + b"q" * 10000 + b"\x1b\\y\x1b_Gz\x1b\\")
    assert emu.title == ""
    assert emu.lines()[0] == "xy"


def test_oversized_string_split_st_terminator() -> None:
    emu = fed(b"\x1b]2;" + b"B" * 5000)
    emu.feed(b"B\x1b")
    emu.feed(b"\\visible")
    assert emu.lines()[0] == "visible"
    assert emu.title == ""


def test_title_capped_and_cleaned() -> None:
    emu = fed(b"\x1b]2;" + b"t" * 3000 + b"\x07")
    assert emu.title == "t" * 1024
    emu.feed(b"\x1b]0;a\x01b\x1b\\")
    assert emu.title == "ab"


def test_overlong_csi_is_skipped() -> None:
    emu = fed(b"\x1b[" + b"1;" * 2000)
    emu.feed(b"1;1mtext")
    assert emu.lines()[0] == "text"


# -- alternate screen ---------------------------------------------------------------------


def test_alt_screen_1049_restores_main_and_cursor() -> None:
    emu = fed(b"$ ls\r\nfile1  file2\r\n$ vim")
    emu.feed(b"\x1b[?1049h\x1b[H\x1b[2JALT PAINT\x1b[10;5Hmiddle\x1b[24;1H-- INSERT --")
    assert [emu.alt_screen] == [True]
    assert emu.lines()[0] == "ALT PAINT"
    assert emu.lines()[9] == "    middle"
    emu.feed(b"\x1b[?1049l")
    assert not emu.alt_screen
    assert visible(emu) == ["$ ls", "file1  file2", "$ vim"]
    assert emu.cursor == (2, 5)


def test_alt_screen_does_not_feed_scrollback() -> None:
    emu = fed(b"main\r\n\x1b[?1049h" + b"alt\r\n" * 50, cols=20, rows=5)
    assert emu.scrollback() == []
    emu.feed(b"\x1b[?1049l")
    assert emu.lines()[0] == "main"


def test_alt_47_and_1047_keep_cursor() -> None:
    emu = fed(b"main1\r\nmain2\x1b[?47hALT\x1b[?47l+\r\n\x1b[?1047hB\x1b[?1047l!")
    assert visible(emu) == ["main1", "main2   +", " !"]
    assert emu.cursor == (2, 2)


def test_alt_screen_keeps_cursor_visibility_and_ignores_double_enter() -> None:
    emu = fed(b"ab\x1b[?25l\x1b[?1049h\x1b[5;5H\x1b[?1049h\x1b[?25h\x1b[?1049l")
    assert emu.cursor == (0, 2)
    assert [emu.cursor_visible] == [True]
    emu.feed(b"\x1b7\x1b[?25l\x1b8")
    assert [emu.cursor_visible] == [False]


def test_reset_leaves_alt_screen() -> None:
    emu = fed(b"\x1b[?1049hx\x1bc")
    assert not emu.alt_screen
    assert emu.lines()[0] == ""


# -- missing sequences --------------------------------------------------------------------


def test_scroll_up_and_down() -> None:
    emu = fed(b"".join(b"row%d\r\n" % i for i in range(5)) + b"\x1b[2S", rows=6)
    assert visible(emu) == ["row2", "row3", "row4"]
    assert emu.scrollback() == ["row0", "row1"]
    emu.feed(b"\x1b[1T")
    assert visible(emu) == ["", "row2", "row3", "row4"]


def test_scroll_in_region_skips_scrollback() -> None:
    emu = fed(b"a\r\nb\r\nc\r\nd\x1b[2;3r\x1b[1S\x1b[r", rows=4)
    assert emu.lines() == ["a", "c", "", "d"]
    assert emu.scrollback() == []


def test_rep_repeats_last_char() -> None:
    assert visible(fed(b"ab\x1b[3bX\r\n-\x1b[5b|\r\n\xe6\x97\xa5\x1b[2b")) == [
        "abbbbX",
        "------|",
        "日日日",
    ]


def test_rep_only_right_after_a_printed_char() -> None:
    # As tmux: any control, escape sequence or REP itself in between cancels it.
    data = b"a\r\n\x1b[3b|\r\nb\x1b[1m\x1b[3b|\r\nc\x1b[3b\x1b[2b|\r\nd\x1b]0;x\x07\x1b[2b|"
    assert visible(fed(data)) == ["a", "|", "b|", "cccc|", "d|"]


def test_rep_is_bounded() -> None:
    emu = fed(b"z\x1b[9999b", cols=10, rows=3)  # at most one screenful is repeated
    assert emu.lines() == ["z" * 10, "z" * 10, "z"]
    assert emu.scrollback() == ["z" * 10]


# -- wide and combining characters --------------------------------------------------------


def test_wide_chars_take_two_columns() -> None:
    emu = fed("日本語 end\r\n中文|".encode())
    assert emu.lines()[:2] == ["日本語 end", "中文|"]
    assert emu.cursor == (1, 5)
    runs = emu.row_runs(0)
    assert runs[0][0].startswith("日本語 end")
    emu.feed(b"\x1b[1;8HX")  # column 7 is the 'e' after three wide chars and a space
    assert emu.lines()[0] == "日本語 Xnd"


def test_emoji_and_combining_marks() -> None:
    emu = fed("cafe\u0301 \U0001f44dx \u2764\ufe0f!".encode())
    assert emu.lines()[0] == "cafe\u0301 \U0001f44dx \u2764\ufe0f!"
    assert emu.cursor == (0, 11)


def test_combining_after_wide_char_joins_it() -> None:
    emu = fed("中\u0301x".encode())
    assert emu.lines()[0] == "中\u0301x"
    assert emu.cursor == (0, 3)


def test_overwriting_half_a_wide_char_clears_both_halves() -> None:
    emu = fed("日本語\r\n日本語\r\n中中\x1b[1;2Hx\x1b[2;3Hy\x1b[3;2H字".encode())
    assert visible(emu) == [" x本語", "日y 語", " 字"]


def test_erase_and_delete_inside_wide_char() -> None:
    emu = fed("ab日cd\x1b[1;4H\x1b[K\r\nA中B\x1b[2;3H\x1b[1P".encode())
    assert visible(emu) == ["ab", "A B"]


def test_wide_char_at_last_column_wraps() -> None:
    emu = fed(b"a" * 9 + "日Z".encode(), cols=10, rows=3)
    assert emu.lines() == ["a" * 9, "日Z", ""]


# -- scrollback and resize ----------------------------------------------------------------


def test_scrollback_bounded_and_ordered() -> None:
    emu = fed(b"".join(b"line%d\r\n" % i for i in range(100)), cols=20, rows=5, scrollback=10)
    assert emu.scrollback() == [f"line{i}" for i in range(86, 96)]
    assert visible(emu) == [f"line{i}" for i in range(96, 100)]


def test_scrollback_zero_keeps_nothing() -> None:
    emu = fed(b"x\r\n" * 50, rows=5, scrollback=0)
    assert emu.scrollback() == []


def test_clear_history_ed3() -> None:
    emu = fed(b"x\r\n" * 30 + b"\x1b[H\x1b[2J\x1b[3J", rows=5)
    assert emu.scrollback() == []


def test_resize_keeps_scrollback_and_pushes_rows() -> None:
    emu = fed(b"".join(b"l%d\r\n" % i for i in range(12)) + b"$ ", cols=20, rows=10)
    assert emu.scrollback() == ["l0", "l1", "l2"]
    seq = emu.seq
    emu.resize(20, 6)
    assert emu.seq > seq
    assert emu.scrollback() == ["l0", "l1", "l2", "l3", "l4", "l5", "l6"]
    assert emu.lines() == ["l7", "l8", "l9", "l10", "l11", "$"]
    assert emu.cursor == (5, 2)
    emu.resize(20, 10)  # growing pulls the pushed rows back, like tmux
    assert emu.scrollback() == ["l0", "l1", "l2"]
    assert visible(emu)[-1] == "$"
    assert emu.cursor == (9, 2)


def test_resize_shrink_eats_blank_rows_below_cursor_first() -> None:
    emu = fed(b"one\r\ntwo", cols=20, rows=10)
    emu.resize(10, 4)
    assert emu.lines() == ["one", "two", "", ""]
    assert emu.scrollback() == []
    assert emu.cursor == (1, 3)


def test_resize_columns_truncates_and_clamps() -> None:
    emu = fed("abcdefgh日".encode(), cols=12, rows=2)
    emu.resize(9, 2)
    assert emu.lines()[0] == "abcdefgh"
    assert emu.cursor == (0, 8)


def test_resize_while_on_alt_screen() -> None:
    emu = fed(b"".join(b"m%d\r\n" % i for i in range(5)) + b"\x1b[?1049h\x1b[Halt", rows=6)
    emu.resize(80, 3)
    assert emu.lines()[0] == "alt"
    emu.feed(b"\x1b[?1049l")
    assert emu.lines() == ["m3", "m4", ""]
    assert emu.scrollback()[-2:] == ["m1", "m2"]


def test_styled_scrollback_survives_resize_round_trip() -> None:
    emu = fed(b"\x1b[1;31mred\x1b[0m plain\r\n" + b"x\r\n" * 3 + b"$", cols=20, rows=5)
    emu.resize(20, 2)
    emu.resize(20, 5)
    assert emu.lines()[0] == "red plain"
    assert emu.row_runs(0)[0] == ("red", "red", "default", BOLD)


def _many_runs_line(i: int) -> bytes:
    """A line where every digit has its own colour (111 SGR runs), plus a wide char."""
    cells = "".join(f"\x1b[3{(i + k) % 8}m{(i * 7 + k) % 10}" for k in range(111))
    return f"\x1b[1m{i:08d}\x1b[0m {cells}\x1b[38;2;1;2;{i % 256}m日\x1b[0m\r\n".encode()


@pytest.mark.parametrize("flood", [True, False])
def test_packed_scrollback_round_trips_many_runs(flood: bool) -> None:
    """A history line is stored packed (text + one bytes blob) and comes back exactly."""
    emu = Emulator(200, 3, 50)
    emu.feed(b"\x1b[H" + _many_runs_line(7).rstrip(b"\r\n") + b"\x1b[3;1H")
    expect_runs = emu.row_runs(0)
    expect_text = emu.lines()[0]
    if flood:
        emu.feed(b"".join(_many_runs_line(i) for i in range(3)))
    else:
        for i in range(3):  # one byte at a time: no line flood shortcut
            for b in _many_runs_line(i):
                emu.feed(bytes([b]))
    text, packed = emu._screen.history[0]
    assert text == expect_text and isinstance(packed, bytes)
    assert len(packed) < 4 * 120  # a few bytes a run, not a tuple each
    _text, runs = emu._screen.unpack(emu._screen.history[0])
    assert runs is not None and len(runs) == len(expect_runs) >= 113
    got = [(count, fg, bg, flags) for count, (fg, bg, flags) in runs]
    assert got == [(len(t), fg, bg, flags) for t, fg, bg, flags in expect_runs]
    before = [emu.row_runs(y) for y in range(3)]
    emu.resize(200, 1)  # pushes two many-run rows into the history...
    emu.resize(200, 3)  # ...and growing pulls them back with their styles
    assert [emu.row_runs(y) for y in range(3)] == before
    assert emu.scrollback()[0] == expect_text


def test_style_table_is_compacted() -> None:
    """Styles no history line uses any more are dropped, so the table stays bounded."""
    emu = Emulator(40, 2, 5)
    lines = [f"\x1b[38;2;{i >> 8};{i & 255};9m{i:06d}\x1b[0m tail\r\n" for i in range(20_000)]
    emu.feed("".join(lines).encode())
    screen = emu._screen
    assert len(screen._styles) < 5000
    assert emu.scrollback() == [f"{i:06d} tail" for i in range(19_994, 19_999)]
    _text, runs = screen.unpack(screen.history[-1])
    assert runs == [
        (6, (f"{19_998 >> 8:02x}{19_998 & 255:02x}09", "default", 0)),
        (34, ("default", "default", 0)),
    ]


# -- replies ------------------------------------------------------------------------------


def test_query_replies() -> None:
    emu = fed(b"abc\r\nde")
    assert emu.feed(b"\x1b[6n") == b"\x1b[2;3R"
    assert emu.feed(b"\x1b[5n") == b"\x1b[0n"
    assert emu.feed(b"\x1b[c") == b"\x1b[?62;22c"
    assert emu.feed(b"\x1b[0c") == b"\x1b[?62;22c"
    assert emu.feed(b"\x1b[>c") == b"\x1b[>1;10;0c"
    assert emu.feed(b"\x1b[>0q") == b"\x1bP>|agentty(0.1)\x1b\\"
    assert emu.feed(b"\x1b[>q") == b"\x1bP>|agentty(0.1)\x1b\\"
    assert emu.feed(b"\x1b]10;?\x07") == b"\x1b]10;rgb:ffff/ffff/ffff\x07"
    assert emu.feed(b"\x1b]11;?\x1b\\") == b"\x1b]11;rgb:0000/0000/0000\x1b\\"
    assert emu.feed(b"\x1b[18t") == b"\x1b[8;24;80t"
    assert emu.feed(b"plain") == b""


def test_decrqm() -> None:
    emu = fed(b"\x1b[?2004h")
    assert emu.feed(b"\x1b[?2004$p") == b"\x1b[?2004;1$y"
    assert emu.feed(b"\x1b[?1049$p") == b"\x1b[?1049;2$y"
    assert emu.feed(b"\x1b[?25$p") == b"\x1b[?25;1$y"
    assert emu.feed(b"\x1b[?2026$p") == b"\x1b[?2026;0$y"
    assert emu.feed(b"\x1b[4$p") == b"\x1b[4;2$y"
    emu.feed(b"\x1b[?1049h")
    assert emu.feed(b"\x1b[?1049$p") == b"\x1b[?1049;1$y"


def test_replies_not_doubled_and_split_queries() -> None:
    emu = Emulator()
    assert emu.feed(b"\x1b[") == b""
    assert emu.feed(b"c\x1b[6") == b"\x1b[?62;22c"
    assert emu.feed(b"n\x1b]11;") == b"\x1b[1;1R"
    assert emu.feed(b"?\x07") == b"\x1b]11;rgb:0000/0000/0000\x07"


def test_cpr_after_pending_wrap_and_in_origin_mode() -> None:
    emu = fed(b"x" * 80)
    assert emu.feed(b"\x1b[6n") == b"\x1b[1;80R"
    emu.feed(b"\x1b[5;10r\x1b[?6h\x1b[2;3H")
    assert emu.feed(b"\x1b[6n") == b"\x1b[2;3R"


# -- seq, dirty rows, modes, cursor -------------------------------------------------------


def test_seq_moves_only_on_change() -> None:
    emu = Emulator()
    seq = emu.seq
    emu.feed(b"")
    emu.feed(b"\x1b[5n")  # a query changes nothing visible
    emu.feed(b"\x1b[1m")  # pending attributes are not visible yet
    assert emu.seq == seq
    emu.feed(b"a")
    assert emu.seq > seq
    seq = emu.seq
    emu.feed(b"\x08a")  # same char rewritten at the same place, cursor back where it was
    assert emu.seq == seq
    for data in (b"\x1b[?25l", b"\x1b]2;t\x07", b"\x1b[?1h", b"\x1b[3;3H", b"\x1b[31mq"):
        emu.feed(data)
        assert emu.seq > seq, data
        seq = emu.seq
    emu.feed(b"\x1b]2;t\x07\x1b[?1h")
    assert emu.seq == seq


def test_seq_bumps_on_attribute_only_change() -> None:
    emu = fed(b"ab")
    seq = emu.seq
    emu.feed(b"\r\x1b[1mab")
    assert emu.seq > seq


def test_dirty_rows() -> None:
    emu = Emulator(20, 5)
    assert emu.dirty_rows() == set(range(5))
    assert emu.dirty_rows() == set()
    emu.feed(b"\x1b[3;1Hhi")
    assert emu.dirty_rows() == {2}
    emu.feed(b"\x1b[3;1Hhi")
    assert emu.dirty_rows() == set()
    emu.feed(b"\x1b[5;1H\n")
    assert emu.dirty_rows() == {1, 2}


def test_modes_and_cursor_visibility() -> None:
    emu = Emulator()
    assert emu.modes == {
        "applicationCursor": False,
        "bracketedPaste": False,
        "mouse": False,
        "applicationKeypad": False,
    }
    assert [emu.cursor_visible] == [True]
    emu.feed(b"\x1b[?1h\x1b[?2004h\x1b[?1006h\x1b=\x1b[?25l")
    assert emu.modes == {
        "applicationCursor": True,
        "bracketedPaste": True,
        "mouse": True,
        "applicationKeypad": True,
    }
    assert [emu.cursor_visible] == [False]
    emu.feed(b"\x1b[?1l\x1b[?2004l\x1b[?1006l\x1b>\x1b[?25h")
    assert not any(emu.modes.values())
    assert [emu.cursor_visible] == [True]


def test_deccolm_does_not_resize() -> None:
    emu = fed(b"\x1b[?3h")
    assert emu.cols == 80
    assert len(emu.lines()) == 24


def test_save_restore_cursor_single_slot() -> None:
    emu = fed(b"\x1b[2;2H\x1b7" + b"\x1b[5;5H\x1b7" * 1000 + b"\x1b[H\x1b8x\x1b8y")
    assert emu.cursor == (4, 5)
    assert emu.lines()[4] == "    y"
    assert len(emu._screen.savepoints) == 1


def test_dec_line_drawing_charset() -> None:
    assert fed(b"\x1b(0lqk\x1b(Bx").lines()[0] == "┌─┐x"


def test_insert_mode() -> None:
    assert fed(b"abc\r\x1b[4hX\x1b[4lY").lines()[0] == "XYbc"


# -- styles -------------------------------------------------------------------------------


def test_row_runs_styles() -> None:
    emu = fed(b"\x1b[1;31mred\x1b[0m \x1b[3;4;7;38;5;208;48;2;1;2;3mX\x1b[0m", cols=10)
    assert emu.row_runs(0) == [
        ("red", "red", "default", BOLD),
        (" ", "default", "default", 0),
        ("X", "ff8700", "010203", ITALICS | UNDERSCORE | REVERSE),
        ("     ", "default", "default", 0),
    ]
    with pytest.raises(IndexError):
        emu.row_runs(24)


def test_row_runs_wide_chars_once() -> None:
    emu = fed("\x1b[32m日本\x1b[0mx".encode(), cols=8)
    assert emu.row_runs(0) == [("日本", "green", "default", 0), ("x   ", "default", "default", 0)]


def test_sgr_colon_forms_and_bright() -> None:
    emu = fed(b"\x1b[38:2::10:20:30;4:3mA\x1b[4:0;105;58;5;3mB")
    runs = emu.row_runs(0)
    assert runs[0] == ("A", "0a141e", "default", UNDERSCORE)
    assert runs[1] == ("B", "0a141e", "brightmagenta", 0)


def test_ansi_lines() -> None:
    emu = fed(b"\x1b[1;31mred\x1b[0m plain   \r\n\x1b[44m  \x1b[0m\r\nbare   ")
    ansi = emu.ansi_lines()
    assert len(ansi) == 24
    assert ansi[0] == "\x1b[0;1;31mred\x1b[0m plain\x1b[0m"
    assert ansi[1] == "\x1b[0;44m  \x1b[0m"
    assert ansi[2] == "bare"
    assert ansi[3] == ""


# -- find / search ------------------------------------------------------------------------


def test_find_and_search() -> None:
    emu = fed(b"".join(b"item %d\r\n" % i for i in range(10)) + b"$ done", rows=5)
    assert emu.find("done") == (4, 2)
    assert emu.find("item 1") is None
    assert emu.find("item 1", scrollback=True) == (1, 0)
    assert emu.find("done", scrollback=True) == (10, 2)
    assert emu.search(re.compile(r"item \d")) == (0, 0)
    assert emu.search(re.compile(r"\$ \w+")) == (4, 0)
    assert emu.search(re.compile(r"item [02]"), scrollback=True) == (0, 0)
    assert emu.search(re.compile("nope"), scrollback=True) is None


# -- split input --------------------------------------------------------------------------

_SPLIT_SAMPLE = (
    "plain \x1b[1;38;5;196mred\x1b[0m \u65e5\u672c e\u0301 \U0001f44d"
    "\x1b]0;ti\u00e9tle\x07\x1b[2;4H\x1b[?2004h\x1b[3Cend\x1bP+q\x1b\\\x1b(0q\x1b(B!"
).encode()


def _state(
    emu: Emulator,
) -> tuple[list[str], tuple[int, int], str, dict[str, bool], list[str], bool]:
    return (emu.lines(), emu.cursor, emu.title, emu.modes, emu.ansi_lines(), emu.seq > 0)


def test_split_at_every_boundary_matches_whole_feed() -> None:
    expected = _state(fed(_SPLIT_SAMPLE))
    assert expected[0][0] == "plain red 日本 e\u0301 \U0001f44d"
    for cut in range(1, len(_SPLIT_SAMPLE)):
        emu = Emulator()
        emu.feed(_SPLIT_SAMPLE[:cut])
        emu.feed(_SPLIT_SAMPLE[cut:])
        assert _state(emu) == expected, cut


def test_byte_at_a_time_matches_whole_feed() -> None:
    emu = Emulator()
    for i in range(len(_SPLIT_SAMPLE)):
        emu.feed(_SPLIT_SAMPLE[i : i + 1])
    assert _state(emu) == _state(fed(_SPLIT_SAMPLE))


def test_invalid_utf8_is_replaced() -> None:
    assert fed(b"a\xffb\xe6\x97").lines()[0] == "a\ufffdb"


# -- golden: what tmux 3.3a shows for the same bytes (80x24) ------------------------------
# Captured with `tmux new-session -d -x 80 -y 24 'stty raw -echo; cat FILE; sleep 3'` and
# `tmux capture-pane -p`. Not here on purpose: REP after a non-ASCII char (tmux ignores it,
# xterm repeats) and ASCII/erase over half a wide char (tmux 3.3a leaves the wide char
# drawn; xterm clears it, and so do we; see the wide-char tests above).

_GOLDEN: list[tuple[str, bytes, list[str], tuple[int, int]]] = [
    (
        "alt-1049",
        b"$ ls\r\nfile1  file2\r\n$ vim notes\r\n\x1b[?1049h\x1b[H\x1b[2JALT PAINT"
        b"\x1b[5;10Hmiddle\x1b[24;1H-- INSERT --\x1b[?1049lback\r\n$ ",
        ["$ ls", "file1  file2", "$ vim notes", "back", "$"],
        (4, 2),
    ),
    (
        "alt-47-1047",
        b"main1\r\nmain2\x1b[?47hALT\x1b[?47l+\r\n\x1b[?1047hB\x1b[?1047l!",
        ["main1", "main2   +", " !"],
        (2, 2),
    ),
    (
        "csi-S",
        b"row0\r\nrow1\r\nrow2\r\nrow3\r\nrow4\r\nrow5\r\nrow6\r\nrow7\r\nrow8\r\nrow9\r\nx\x1b[3Sy",
        ["row3", "row4", "row5", "row6", "row7", "row8", "row9", "x", "", "", " y"],
        (10, 2),
    ),
    (
        "csi-T",
        b"row0\r\nrow1\r\nrow2\r\nrow3\r\nrow4\r\n\x1b[2Tz",
        ["", "", "row0", "row1", "row2", "zow3", "row4"],
        (5, 1),
    ),
    (
        "rep",
        b"ab\x1b[3bX\r\n-\x1b[5b|\r\n",
        ["abbbbX", "------|"],
        (2, 0),
    ),
    (
        "wide",
        "日本語 end\r\n日本語\x1b[2;3Hy\r\n".encode()
        + b"a" * 79
        + "日Z\r\n中文\x1b[4;2H字".encode(),
        ["日本語 end", "日y 語", "a" * 79, " 字", "中文"],
        (3, 3),
    ),
    (
        "misc",
        "cafe\u0301 \U0001f44dx 中文|\r\n".encode()
        + b"".join(b"line%d\r\n" % i for i in range(6))
        + b"\x1b[2;5r\x1b[5;1Hregion\x1b[2S\x1b[1T\x1b[r\x1b[8;1H"
        + "中".encode() * 41
        + b"|",
        [
            "cafe\u0301 \U0001f44dx 中文|",
            "",
            "line2",
            "region",
            "",
            "line4",
            "line5",
            "中" * 40,
            "中|",
        ],
        (8, 3),
    ),
]


@pytest.mark.parametrize(
    ("name", "data", "expected", "cursor"), _GOLDEN, ids=[g[0] for g in _GOLDEN]
)
def test_golden_matches_tmux(
    name: str, data: bytes, expected: list[str], cursor: tuple[int, int]
) -> None:
    emu = fed(data)
    assert emu.lines() == expected + [""] * (24 - len(expected))
    assert emu.cursor == cursor
    assert not emu.alt_screen


def test_golden_csi_s_scrollback_matches_tmux() -> None:
    emu = fed(_GOLDEN[2][1])
    assert emu.scrollback() == ["row0", "row1", "row2"]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_golden_live_tmux(tmp_path: Path) -> None:
    """Re-checks the literals against the tmux on this machine, all cases in one server."""
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock"), "-f", "/dev/null"]
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}

    def run(*args: str) -> str:
        done = subprocess.run([*tmux, *args], check=True, capture_output=True, text=True, env=env)
        return done.stdout

    try:
        for i, (_name, data, _expected, _cursor) in enumerate(_GOLDEN):
            (tmp_path / f"{i}.bin").write_bytes(data)
            cmd = f"stty raw -echo; cat {tmp_path}/{i}.bin; sleep 30"
            run("new-session", "-d", "-s", f"g{i}", "-x", "80", "-y", "24", cmd)
        for i, (name, _data, expected, cursor) in enumerate(_GOLDEN):
            want = (expected + [""] * (24 - len(expected)), cursor)
            deadline = time.monotonic() + 5
            while True:  # poll: tmux may still be digesting what cat wrote
                lines = run("capture-pane", "-p", "-t", f"g{i}").split("\n")[:24]
                y, x = run("display", "-p", "-t", f"g{i}", "#{cursor_y} #{cursor_x}").split()
                got = (lines, (int(y), int(x)))
                if got == want or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert got == want, name
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True, env=env)


_SCROLLY = st.sampled_from(
    [
        b"line\r\n",
        b"\n",
        b"x",
        b"\x1bM",  # reverse index
        b"\x1bD",  # index
        b"\x1b[2S",
        b"\x1b[3T",
        b"\x1b[2;4r",
        b"\x1b[r",
        b"\x1b[4;1H",
        b"\x1b[1;1H",
        b"\x1b[6;1H",
        b"\x1b[31mred\x1b[0m",
        b"\x1b[2K",
        b"\x1b[L",
        b"\x1b[M",
        b"\x1b[?1049h",
        b"\x1b[?1049l",
        b"\x1b[6;1Hab\r\ncd\r\nef\r\n",  # whole lines at the bottom: the flood path
        b"\x1b[32mg\x1b[0m\r\nh\r\n",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_SCROLLY, min_size=1, max_size=6), min_size=1, max_size=12))
def test_row_caches_follow_scrolling(chunks: list[list[bytes]]) -> None:
    """Scrolling moves the cached rows instead of rebuilding them; after any mix of scrolls,
    margins and edits the cached screen equals one rebuilt from pyte's buffer, and the rows
    reported dirty cover every row whose content changed."""
    from agentty_core.emulator._screen import row_cells

    emu = Emulator(12, 6)
    shown = emu.lines()
    emu.dirty_rows()
    for chunk in chunks:
        emu.feed(b"".join(chunk))
        screen = emu._screen
        rebuilt = [
            "".join(c.data for c in row_cells(screen.buffer.get(y), 12, screen.default_char))
            for y in range(6)
        ]
        assert emu.lines() == [row.rstrip(" ") for row in rebuilt]
        dirty = emu.dirty_rows()
        now = emu.lines()
        assert {y for y in range(6) if now[y] != shown[y]} <= dirty
        shown = now


def test_a_scroll_repainted_in_the_same_chunk_changes_nothing() -> None:
    """What counts is the screen at the end of a chunk: scrolling and then drawing the same
    rows again (a TUI redrawing after a scroll) is no change, so no seq bump and no rows."""
    emu = Emulator(10, 4)
    emu.feed(b"a\r\nb\r\nc\x1b[1;1H")
    emu.dirty_rows()
    seq = emu.seq
    emu.feed(b"\x1b[S\x1b[1;1Ha\r\nb\r\nc\x1b[1;1H")
    assert emu.lines() == ["a", "b", "c", ""]
    assert emu.seq == seq
    assert emu.dirty_rows() == set()
    emu.feed(b"\x1b[S")  # a scroll that stays: rows 0-2 changed
    assert emu.seq == seq + 1
    assert emu.dirty_rows() == {0, 1, 2}


_SEGMENT_STYLE = st.sampled_from(
    [b"", b"\x1b[0m", b"\x1b[1m", b"\x1b[31m", b"\x1b[44m", b"\x1b[7m"]
)
_SEGMENT_TEXT = st.text(alphabet="ab \u65e5\u00e9", max_size=6).map(str.encode)
_SEGMENT_TAIL = st.sampled_from([b"", b"\x1b[K", b"\x1b[3C", b"   "])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_SEGMENT_STYLE, _SEGMENT_TEXT, _SEGMENT_TAIL), max_size=5))
def test_a_line_scrolled_into_history_keeps_its_text_and_styles(
    segments: list[tuple[bytes, bytes, bytes]],
) -> None:
    """Plain lines take a short path into the scrollback (only their drawn cells are read);
    whatever a line holds, its stored form is the row as it was shown."""
    emu = Emulator(16, 2, 10)
    emu.feed(b"".join(b"".join(segment) for segment in segments) + b"\x1b[2;1H")
    shown_text, shown_runs = emu.lines()[0], emu.row_runs(0)
    emu.feed(b"\x1b[0m\r\n")  # row 0 scrolls off into the history
    text, runs = emu._screen.unpack(emu._screen.history[-1])
    assert text == shown_text
    if runs is None:  # stored as plain: every cell of the row was unstyled
        assert all((fg, bg, flags) == ("default", "default", 0) for _, fg, bg, flags in shown_runs)
    else:
        assert [(count, *style) for count, style in runs] == [
            (len(t), fg, bg, flags) for t, fg, bg, flags in shown_runs
        ]


def test_blank_cells_are_one_shared_object_per_screen_mode() -> None:
    """Rows are compared cell by cell after every scroll; equal blanks being the same object
    keeps that a pointer check (pyte makes a new default character on every access)."""
    emu = fed(b"a\r\nb\r\n")
    screen = emu._screen
    assert screen.default_char is screen.default_char
    assert emu._snap[0][5] is emu._snap[1][5] is screen.default_char
    emu.feed(b"\x1b[?5h")  # DECSCNM: the screen's blank is reverse video
    assert screen.default_char.reverse and screen.default_char is screen.default_char


@pytest.mark.parametrize(
    ("erase", "blue_rows"),
    [(b"\x1b[2J", range(4)), (b"\x1b[3;5H\x1b[J", (3,)), (b"\x1b[2;5H\x1b[1J", (0,))],
)
def test_erase_in_display_paints_the_background_colour(
    erase: bytes, blue_rows: Iterable[int]
) -> None:
    """Background colour erase (terminfo's `bce`, which xterm-256color says the terminal
    has, and tmux does): a screen cleared on a blue background is blue, not only the cells
    written before (dialog's and whiptail's backdrops came out black; an outside round)."""
    emu = fed(b"x\x1b[44m" + erase + b"\x1b[0m", cols=20, rows=4)
    for row in blue_rows:  # (ED 0 and 1 from the cursor: the row below, the rows above)
        assert emu.row_runs(row) == [(" " * 20, "default", "blue", 0)], row
    cleared = fed(b"\x1b[44mx\x1b[0m\x1b[2J", cols=20, rows=4)  # default attributes:
    assert cleared.row_runs(0) == [(" " * 20, "default", "default", 0)]  # blank, as before

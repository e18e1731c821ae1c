"""The optional avt backend answers as the default (pyte) one on the streams both model."""

from __future__ import annotations

import pytest

from agentty_core.emulator.pyte_backend import Emulator

avt_backend = pytest.importorskip("agentty_core.emulator.avt_backend")
AvtEmulator = avt_backend.AvtEmulator

STREAMS = {
    "plain lines that scroll": b"".join(b"line %d\r\n" % i for i in range(40)) + b"$ ",
    "colours and attributes": b"\x1b[31mred\x1b[0m \x1b[1;4mbold\x1b[0m \x1b[38;5;200mx\x1b[0m",
    "truecolour and bright": b"\x1b[48;2;1;2;3mbg\x1b[0m \x1b[92mgreen\x1b[0m",
    "cursor moves and erase": b"abcdef\x1b[3D\x1b[K\x1b[2;5Hmid\x1b[1;1Htop",
    "wide characters": "中文 and ascii\r\n表".encode(),
    "alternate screen and back": b"main\x1b[?1049h\x1b[2J\x1b[Halt\x1b[?1049l",
    "long line wraps": b"x" * 130,
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_same_screen_cursor_and_runs(name: str) -> None:
    stream = STREAMS[name]
    ours, theirs = Emulator(40, 6), AvtEmulator(40, 6)
    for i in range(0, len(stream), 7):  # in pieces, cutting sequences and characters
        ours.feed(stream[i : i + 7])
        theirs.feed(stream[i : i + 7])
    assert theirs.lines() == ours.lines()
    assert theirs.cursor == ours.cursor
    assert [theirs.row_runs(r) for r in range(6)] == [ours.row_runs(r) for r in range(6)]
    assert theirs.scrollback() == ours.scrollback()


def test_replies_modes_and_title() -> None:
    ours, theirs = Emulator(40, 6), AvtEmulator(40, 6)
    stream = (
        b"ab\x1b[6n\x1b[c\x1b[>c\x1b[>q\x1b]11;?\x07\x1b[?2004h\x1b[?2004$p"
        b"\x1b[?1000h\x1b=\x1b[?1h\x1b]2;a title\x07\x1b[18t"
    )
    assert theirs.feed(stream) == ours.feed(stream)
    assert (
        theirs.modes
        == ours.modes
        == {
            "applicationCursor": True,
            "bracketedPaste": True,
            "mouse": True,
            "applicationKeypad": True,
        }
    )
    assert theirs.title == ours.title == "a title"


def test_a_query_cut_between_chunks_is_answered_once_with_the_cursor_after_it() -> None:
    emu = AvtEmulator(20, 4)
    assert emu.feed(b"hello\x1b[") == b""
    assert emu.feed(b"6nX") == b"\x1b[1;6R"
    assert emu.lines()[0] == "helloX"
    emu.feed(b"\x1b]2;a ti")  # a title cut in two
    emu.feed(b"tle\x07\x1b[?20")
    emu.feed(b"04h")
    assert emu.title == "a title" and emu.modes["bracketedPaste"]


def test_seq_dirty_rows_find_and_resize() -> None:
    emu = AvtEmulator(20, 4)
    seq = emu.seq
    emu.dirty_rows()
    emu.feed(b"one\r\ntwo")
    assert emu.seq > seq and {0, 1} <= emu.dirty_rows()
    emu.feed(b"\x1b[2;1HTWO")
    assert emu.dirty_rows() == {1}
    seq = emu.seq
    emu.feed(b"\x1b[1;1H")  # only the cursor moves: a change, but no row
    assert emu.seq > seq and emu.dirty_rows() == set()
    assert emu.find("TWO") == (1, 0)
    emu.resize(30, 5)
    assert (emu.cols, emu.rows) == (30, 5) and emu.lines()[:2] == ["one", "TWO"]

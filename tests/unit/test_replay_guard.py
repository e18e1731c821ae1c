"""`replay`'s TerminalGuard: the recorded output as it may reach the user's terminal, event
by event (a sequence cut between two events is carried over), and what puts the terminal
back at the end."""

from __future__ import annotations

import pytest

from agentty_core.terminal_guard import TerminalGuard

EVENTS = [
    "\x1b]0;a title\x07\x1b[31mred\x1b[5;10H",
    "\x1b]52;c;aGVsbG8=\x07",  # the clipboard
    "\x1b]5",
    "2;c;c2VjcmV0\x1b\\after-clip",
    "\x1b[6n\x1b[c\x1b[>c\x1b[",  # DSR, DA1, DA2
    "?6n\x1b]11;?\x07\x1b]10;?\x1b\\\x1b]4;1;?\x07",  # DECXCPR, colour queries
    "\x1bP$qm\x1b\\\x1bP+q544e\x1b\\",  # DECRQSS, XTGETTCAP
    "\x9b6n\x1b[6\x00n\x1b[?1;2$p\x1b[18t\x1b[>q\x05\x1bZ",  # C1 DSR, DSR with a NUL in it,
    # DECRQM, a window report, XTVERSION, ENQ, DECID
    "\x1b_Ga=q,i=1;AAAA\x1b\\",  # a kitty graphics query
    "\x1b[?1049h\x1b[?1000;1006h\x1b[?2004h\x1b[?25l\x1b[1mend",
]
KEPT = (
    "\x1b]0;a title\x07\x1b[31mred\x1b[5;10H"
    "after-clip"
    "\x1b[?1049h\x1b[?1000;1006h\x1b[?2004h\x1b[?25l\x1b[1mend"
)
RESTORE = "\x1b[?1049l\x1b[?1000l\x1b[?1006l\x1b[?2004l\x1b[?25h\x1b[0m"
PLAIN = (
    "plain \x1b[1;32mgreen\x1b[0m \x1b[2J\x1b[H\x1b]2;title\x1b\\日本\r\n\x1b(B\x1b7\x1b8"
    "\x1bP1;2q#0;2;0;0;0#0~~\x1b\\\x1b[38:2::1:2:3mx\x1b[m\x1b[22;0t\x1b[3;20r\x1b_Ga=T;AA\x1b\\"
)


def _played(*events: str) -> str:
    guard = TerminalGuard()
    return "".join(guard.feed(event) for event in events) + guard.finish()


def test_queries_and_clipboard_are_dropped_and_modes_turned_off_at_the_end() -> None:
    assert _played(*EVENTS) == KEPT + RESTORE


@pytest.mark.parametrize("text", [KEPT, "".join(EVENTS), PLAIN], ids=["kept", "all", "plain"])
def test_a_sequence_cut_anywhere_between_two_events_is_the_same(text: str) -> None:
    whole = _played(text)
    for cut in range(len(text) + 1):
        assert _played(text[:cut], text[cut:]) == whole, cut
    assert _played(*text) == whole  # one character an event


def test_what_only_draws_goes_as_it_came() -> None:
    assert _played(PLAIN) == PLAIN + "\x1b7\x1b[r\x1b8"  # the scroll region it set: undone


def test_a_long_string_sequence_across_events() -> None:
    played = _played(
        "a\x1b]52;c;" + "Q" * 10000, "Q" * 10000, "\x07b\x1b]2;" + "t" * 5000, "t\x1b", "\\c"
    )
    assert played == "ab\x1b]2;" + "t" * 5001 + "\x1b\\c"
    assert _played("\x1b]2;cut short") == "\x1b]2;cut short\x1b\\"  # ended for the terminal


def test_modes_turned_off_already_or_by_a_reset_are_left_alone() -> None:
    assert _played("\x1b[?1049h\x1b[?25l\x1b[1mx\x1b[0m\x1b[?25h\x1b[?1049l") == (
        "\x1b[?1049h\x1b[?25l\x1b[1mx\x1b[0m\x1b[?25h\x1b[?1049l"
    )
    assert _played("\x1b[?1049h\x1b[1m\x1bc") == "\x1b[?1049h\x1b[1m\x1bc"
    keys = "\x1b[>4;2m\x1b[>1u\x1b[>1u\x1b[<u\x1b[?1004h"
    assert _played(keys) == keys + "\x1b[?1004l\x1b[>4m\x1b[<1u"


def test_what_a_full_screen_program_left_set_is_undone() -> None:
    """Reverse video, origin and insert modes, no autowrap, a scroll region, the keypad's
    application mode and line drawing outlived an interrupted replay (a review found them)."""
    guard = TerminalGuard()
    left = "\x1b[?1049h\x1b[?5h\x1b[?6h\x1b[2;5r\x1b(0\x0e\x1b=\x1b[?7l\x1b[4hX"
    assert guard.feed(left) == left  # passed on as it is
    assert guard.finish() == (
        "\x1b[?1049l\x1b[?5l\x1b7\x1b[r\x1b8\x1b[?6l\x1b[?7h\x1b[4l\x1b>\x0f\x1b(B"
    )
    undone = "\x1b[2;5r\x1b[r\x1b(0\x1b(B\x0e\x0f\x1b=\x1b>\x1b[?7l\x1b[?7h\x1b[4h\x1b[4l"
    guard.feed(undone)
    assert guard.finish() == ""  # what the recording undid itself


def test_decid_s_8_bit_form_and_kitty_and_iterm2_queries_are_dropped() -> None:
    guard = TerminalGuard()
    said = (
        "a\x9ab"  # DECID, 8-bit
        "\x1b]21;foreground=?\x1b\\c"  # kitty: asks a colour
        "\x1b]21;foreground=red\x07d"  # kitty: sets one (kept)
        "\x1b]1337;Copy=:aGk=\x07e"  # iTerm2: the clipboard
        "\x1b]1337;ReportCellSize\x07f"  # iTerm2: asks
        "\x1b]1337;SetMark\x07g"  # iTerm2: kept
    )
    assert guard.feed(said) == "abc\x1b]21;foreground=red\x07def\x1b]1337;SetMark\x07g"


@pytest.mark.parametrize(
    "acting",
    [
        "\x1b]052;c;SGVsbG8=\x07",  # the clipboard, its code with a leading zero
        "\x1b]04;1;?\x07",  # a colour asked, so spelt
        "\x1b]011;?\x07",
        "\x1b[014t",  # window reports, so spelt
        "\x1b[021t",
        "\x1b]5522;type=write\x07",  # kitty's clipboard
        "\x1b]1337;CopyToClipboard=\x07",  # iTerm2's
        "\x1b]1337;RequestUpload=format=tgz\x07",
        "\x1b]50;?\x07",  # the font asked
        "\x1bP@kitty-cmd{}\x1b\\",  # kitty's remote control
        "\x1b]777;notify;a;b\x07",  # a code not known to only draw
        "\x1b_Xanything\x1b\\",  # an APC that is no kitty graphics
        "\x1b^private\x1b\\",  # PM
    ],
)
def test_what_may_act_is_dropped_however_it_is_spelt(acting: str) -> None:
    """Codes were compared as text: `OSC 052` is 52 to a terminal (decimal, foot, kitty),
    and it went through; so did what a list of the codes that act had missed (an outside
    round). Only what is known to draw or name goes now."""
    assert _played("a", acting, "b") == "ab"
    assert _played("a" + acting + "b") == "ab"


def test_what_names_or_draws_goes_however_it_is_spelt() -> None:
    kept = (
        "\x1b]2;title\x07\x1b]0;both\x1b\\\x1b]7;file:///tmp\x07"
        "\x1b]8;;https://example.com\x07link\x1b]8;;\x07\x1b]4;1;#ff0000\x07"
        "\x1b]10;#ffffff\x07\x1b]133;A\x07\x1b]1337;SetMark\x07\x1b]1337;CurrentDir=/x\x07"
        "\x1b]02;zero-led title\x07\x1b[0022;0t"
    )
    guard = TerminalGuard()
    assert guard.feed(kept) == kept
    assert guard.finish() == "\x1b]104\x1b\\\x1b]110\x1b\\"  # (the colours it set: reset)


def test_tmux_s_passthrough_carries_nothing_out() -> None:
    """tmux passes on what a DCS `tmux;` wraps (its escapes doubled): a clipboard write
    inside it went (the DCS was passed on as one that draws)."""
    played = _played("a\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\b")
    assert "tmux" not in played and "52" not in played, played


def test_what_a_replay_set_in_the_user_s_terminal_is_put_back_and_what_acts_goes() -> None:
    """A review: a kitty colour query cut across two events went through (decided at the
    first `=`); kitty answers a graphics command naming an image unless q=2 (the answer
    typed into the shell); keyboard flags set in place, the palette and the default
    colours stayed set after the replay; XTWINOPS moved and resized the user's window."""
    assert _played("a\x1b]21;foreground=red;", "background=?\x1b\\b") == "ab"
    assert _played("a\x1b_Ga=T,i=7;AAAA\x1b\\b") == "ab"
    quiet = "\x1b_Ga=T,i=7,q=2;AAAA\x1b\\"
    assert _played(quiet) == quiet
    assert _played("a\x1b[8;50;100tb\x1b[3;0;0t\x1b[2t") == "ab"
    guard = TerminalGuard()
    set_here = "\x1b[=1u\x1b]11;#000000\x07\x1b]4;1;#ff0000\x07\x1b]104\x07"
    assert guard.feed(set_here) == set_here
    assert guard.finish() == "\x1b[=0u\x1b]111\x1b\\"  # (the palette was reset by 104)


def test_modes_that_report_margins_and_other_keypad_modes_are_turned_off() -> None:
    """A review: theme and in-band resize reports (2031, 2048) stayed on after a replay,
    each resize or theme switch then typed a report into the user's shell; left and right
    margins (69) confined the shell's output to a few columns; a frame cut short (2026)."""
    guard = TerminalGuard()
    left = "\x1b[?2031h\x1b[?2048h\x1b[?2026h\x1b[?69h\x1b[5;10s\x1b[?66h\x1b[?67hX"
    assert guard.feed(left) == left
    assert guard.finish() == ("\x1b[?66l\x1b[?67l\x1b[?69l\x1b[?2026l\x1b[?2031l\x1b[?2048l")


def test_cursor_shape_hyperlink_kitty_colours_and_g2_g3_are_put_back() -> None:
    """A review: vim's bar cursor, a hyperlink left open (all later output linked), kitty's
    OSC 21 colours and line drawing in G2/G3 (locked in with LS2/LS3) outlived a replay."""
    guard = TerminalGuard()
    left = (
        "\x1b[5 q\x1b]8;;http://x\x1b\\text\x1b]21;background=red;cursor=#00ff00\x1b\\"
        "\x1b*0\x1b+0\x1bn"
    )
    assert guard.feed(left) == left
    assert guard.finish() == (
        "\x0f\x1b*B\x1b+B\x1b]21;background=;cursor=\x1b\\\x1b[0 q\x1b]8;;\x1b\\"
    )
    undone = "\x1b[5 q\x1b[0 q\x1b]8;;http://x\x07a\x1b]8;;\x07\x1b]21;background=red\x07"
    guard.feed(undone + "\x1b]21;background=\x07\x1b*0\x1b*B")
    assert guard.finish() == ""


@pytest.mark.parametrize(
    "acting",
    [
        "\x1b[\x05m",  # ENQ inside a CSI: run there, the answerback typed into the shell
        "\x1b[1;1'z",  # DECELR: locator reports turned on
        "\x1b[1'{",  # DECSLE: which locator events report
        "\x1b['|",  # DECRQLP: the locator's position asked
        '\x1b["v',  # DECRQDE: the displayed extent asked
    ],
)
def test_what_asks_inside_or_through_a_csi_is_dropped(acting: str) -> None:
    played = _played("a", acting, "b")
    assert "\x05" not in played and played in ("ab", "a\x1b[mb"), repr(played)


def test_controls_inside_a_csi_are_run_before_it() -> None:
    """A terminal runs a C0 control met inside a CSI where it stands; passed on before the
    CSI it does the same, and one that answers (ENQ) is dropped."""
    assert _played("a\x1b[1\n;3\x05Hb") == "a\n\x1b[1;3Hb"
    assert _played("\x1b[\x0e1m") == "\x0e\x1b[1m\x0f\x1b[0m"  # (SO tracked: SI at the end)

"""What `replay` lets through to the user's terminal, and what it puts back after.

The recorded output goes there as it is, colours, cursor moves and titles included, except
what would have the terminal do more than show it: a clipboard write (OSC 52), the
queries whose answers the terminal would type into the user's shell once the replay ended
(DSR, DA, DECRQM, window, colour and locator reports, DECRQSS, XTGETTCAP, ENQ, ...), and
every string sequence not known to only draw or name (`_string_verdict`). The modes the
recording turns on (the alternate screen, mouse, focus, theme and resize reports, bracketed
paste, a hidden cursor or another shape of it, keyboard protocols, colours, reverse video,
origin and insert modes, no autowrap, a scroll region, left and right margins, the keypad's
modes, line-drawing characters, a hyperlink left open) are turned off again at its end.
"""

from __future__ import annotations

import re

_ESC, _BEL, _ST8, _CAN, _SUB = "\x1b", "\x07", "\x9c", "\x18", "\x1a"
# Text and the sequences that only draw (cursor moves, erasing, scrolling, SGR, charsets),
# up to the first that may do more: each of those is looked at (`_sequence`).
_DRAWING = re.compile(
    "(?:[^\x05\x1b\x90\x98\x9a\x9b\x9d\x9e\x9f]+"
    "|\x1b\\[[0-9;]*[@A-HJKLMPSTXZ`abdefgr]"
    "|\x1b\\[[0-9;:]*m"
    "|\x1b[()*+][0-9A-Za-z]"
    "|\x1b[78=>DEHM])+"
)
_SGR = re.compile("\x1b\\[([0-9;:]*)m")
# What the drawing run may leave set: a scroll region, the keypad's mode, the character sets
# designated to G0-G3 (line drawing), and whether one other than G0 is shifted in.
_STATEFUL = re.compile("\x1b\\[([0-9;]*)r|\x1b([=>])|\x1b([()*+])(.)|([\x0e\x0f])")
# A CSI's parameters and intermediates, with the C0 controls a terminal runs inside one.
_CSI_BODY = re.compile("[\x00-\x17\x19\x1c-\x3f]*")
_C0 = re.compile("[\x00-\x1f]")
_HOLD_MOST = 4096  # an unfinished sequence carried over to the next event, at most
_ALT_SCREENS = (1049, 1047, 47)
_MOUSE = frozenset({9, 1000, 1001, 1002, 1003, 1005, 1006, 1015, 1016})
# In this order (25, the cursor, aside; 6, origin mode, homes the cursor: it comes after the
# scroll region's reset, which keeps it where it is). 2031 and 2048 have the terminal report
# theme changes and resizes (typed into the shell); 69 off drops left and right margins.
_RESET_MODES = (*_ALT_SCREENS, *sorted(_MOUSE), 1004, 2004, 1, 5, 66, 67, 69, 2026, 2031, 2048)
# The string sequences passed on are those known to draw or name (a list of what may act
# missed some: kitty's clipboard, OSC 5522; iTerm2's CopyToClipboard; a font query; kitty's
# remote control, a DCS; tmux's passthrough, which may carry any of them): OSC titles (0-2),
# colours set (4, 5, 10-19, kitty's 21; a `?` in them asks: dropped), the working
# directory (7), hyperlinks (8), colour resets (104, 105, 110-119), prompt marks (133,
# 633) and a few of iTerm2's (1337); DCS sixel images; APC kitty graphics. The rest go.
_OSC_SHOWN = frozenset(
    {0, 1, 2, 4, 5, 7, 8, *range(10, 20), 21, 104, 105, *range(110, 120), 133, 633, 1337}
)
_OSC_QUERIES = frozenset({4, 5, *range(10, 20)})
_KITTY_COLOUR_KEY = re.compile("[A-Za-z0-9_]{1,32}")  # (OSC 21's, put back by name)
_ITERM2_SHOWN = ("SetMark", "CurrentDir=", "SetUserVar=", "RemoteHost=", "ShellIntegration")
# XTWINOPS that report (their answer typed into the shell) or move, resize, iconify or
# raise the user's window: all but the title stack's push and pop (22, 23) and 24+ (lines).
_NOT_DRAWN_T = frozenset({*range(1, 10), 11, 13, 14, 15, 16, 18, 19, 20, 21})
_NUMBER_MOST = 6  # digits a code is read with (a longer one is no code any terminal has)


def _number(text: str) -> int | None:
    """A code as a terminal reads it: decimal, leading zeros and all (`052` is 52: it
    passed as another code once)."""
    if text.isascii() and text.isdigit() and len(text.lstrip("0")) <= _NUMBER_MOST:
        return int(text)
    return None


# CSIs with intermediates that ask: DECRQM, DECRQPSR, DECRQTSR, DECRQCRA, XTREPORTSGR,
# DECRQDE; the locator's reports turned on (DECELR, DECSLE, DECEFR) and its position asked.
_CSI_ASKING = frozenset(
    {("$", "p"), ("$", "w"), ("$", "u"), ("*", "y"), ("#", "|"), ('"', "v")}
    | {("'", final) for final in "z{|w"}
)


def _csi_query(prefix: str, params: str, inter: str, final: str) -> bool:
    """Whether a CSI asks the terminal for an answer (which it would type as input)."""
    if inter:
        return (inter, final) in _CSI_ASKING
    if prefix in ("", "?") and final == "n":  # DSR, DECXCPR, ...
        return True
    if final == "c":  # DA1, DA2, DA3
        return True
    if prefix == "?" and final in "umS":  # kitty keyboard, XTQMODKEYS, XTSMGRAPHICS
        return True
    if prefix == ">" and final == "q":  # XTVERSION
        return True
    if prefix == "":
        return final == "x" or (final == "t" and _number(params.split(";")[0]) in _NOT_DRAWN_T)
    return False


class TerminalGuard:
    """The output of a recording as it may reach the user's terminal (`feed`, event by
    event: a sequence cut between two is carried over, `_HOLD_MOST` at most), and what
    puts the terminal back as it was (`finish`)."""

    def __init__(self) -> None:
        self._held = ""  # the start of a sequence that the next event goes on with
        self._string: str | None = None  # "pass"/"drop": within a long string sequence
        self._osc = False  # that string is an OSC (BEL ends it too)
        self._reset()

    def _reset(self) -> None:
        self._modes: set[int] = set()  # the DEC private modes turned on
        self._hidden = False  # the cursor
        self._sgr = False  # attributes set
        self._other_keys = False  # xterm's modifyOtherKeys
        self._pushed = 0  # kitty keyboard flags pushed
        self._kitty_set = False  # kitty keyboard flags set in place (CSI = flags u)
        self._colours: set[int] = set()  # OSC codes of colours set (4, 5, 10-19)
        self._kitty_colours: set[str] = set()  # OSC 21's keys set
        self._shape = False  # the cursor's shape set (DECSCUSR)
        self._linked = False  # a hyperlink open (OSC 8 with a URI)
        self._no_wrap = False  # autowrap turned off (?7l)
        self._insert = False  # insert mode (IRM, CSI 4 h)
        self._region = False  # a scroll region set
        self._keypad = False  # the keypad's application mode (ESC =)
        self._charsets = {"(": "B", ")": "B", "*": "B", "+": "B"}  # G0-G3
        self._shifted = False  # G1 shifted in (SO), or G2, G3 (LS2, LS3)

    def feed(self, text: str) -> str:
        text, self._held = self._held + text, ""
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            if self._string is not None:
                i = self._in_string(text, i, out)
                if i < 0:
                    break
                continue
            run = _DRAWING.match(text, i)
            if run is not None:  # (most of any output: taken in bulk)
                i = run.end()
                piece = text if i - run.start() == n else run.group()
                out.append(piece)
                if "m" in piece and (sgrs := _SGR.findall(piece)):
                    self._sgr = any(v not in ("", "0") for v in sgrs[-1].split(";"))
                if "\x1b" in piece or "\x0e" in piece or "\x0f" in piece:
                    self._track_drawing(piece)
                if i >= n:
                    break
            j = i
            done = self._sequence(text, j, out)
            if done < 0:  # unfinished: kept for the next event (dropped if overlong)
                self._held = text[j:] if n - j <= _HOLD_MOST else ""
                break
            i = done
        return out[0] if len(out) == 1 else "".join(out)

    def finish(self) -> str:
        """What turns off what the recording left on; the end of a string sequence cut
        short first (the terminal would take all that follows as part of it)."""
        parts = ["\x1b\\"] if self._string == "pass" else []
        self._string, self._held = None, ""
        parts += [f"\x1b[?{mode}l" for mode in _RESET_MODES if mode in self._modes]
        if self._region:
            parts.append("\x1b7\x1b[r\x1b8")  # (the cursor kept where it is)
        if 6 in self._modes:
            parts.append("\x1b[?6l")
        if self._no_wrap:
            parts.append("\x1b[?7h")
        if self._insert:
            parts.append("\x1b[4l")
        if self._keypad:
            parts.append("\x1b>")
        if self._shifted:
            parts.append("\x0f")
        parts += [f"\x1b{g}B" for g, charset in self._charsets.items() if charset != "B"]
        if self._other_keys:
            parts.append("\x1b[>4m")
        if self._pushed:
            parts.append(f"\x1b[<{self._pushed}u")
        if self._kitty_set:
            parts.append("\x1b[=0u")
        parts += [f"\x1b]{100 + code}\x1b\\" for code in sorted(self._colours)]
        if self._kitty_colours:  # (a key given no value: its default)
            parts.append(f"\x1b]21;{';'.join(f'{k}=' for k in sorted(self._kitty_colours))}\x1b\\")
        if self._hidden:
            parts.append("\x1b[?25h")
        if self._shape:
            parts.append("\x1b[0 q")
        if self._linked:
            parts.append("\x1b]8;;\x1b\\")
        if self._sgr:
            parts.append("\x1b[0m")
        self._reset()
        return "".join(parts)

    def _in_string(self, text: str, i: int, out: list[str]) -> int:
        """Within a string sequence (OSC, DCS, SOS, PM, APC): to its end, passed on or
        dropped; -1 when the text ends first (an ESC at its very end is carried over)."""
        end, after = _string_end(text, i, self._osc)
        if end < 0:
            cut = len(text) - 1 if text.endswith(_ESC) else len(text)
            if self._string == "pass":
                out.append(text[i:cut])
            self._held = text[cut:]
            return -1
        if self._string == "pass":
            out.append(text[i:after])
        self._string = None
        return after

    def _sequence(self, text: str, j: int, out: list[str]) -> int:
        """The sequence at `j` passed on (or not) to `out`; where the text goes on after
        it, or -1 when the text ends before the sequence does."""
        c = text[j]
        if c == "\x05":  # ENQ: the terminal answers with its answerback
            return j + 1
        if c == _ESC:
            if j + 1 >= len(text):
                return -1
            c2 = text[j + 1]
            if c2 == "[":
                return self._csi(text, j, j + 2, out)
            if c2 in "]P_^X":
                return self._start_string(text, j, j + 2, c2, out)
            if c2 == "Z":  # DECID: as DA
                return j + 2
            if c2 == "c":  # RIS: the terminal is reset, modes and all
                self._reset()
                out.append(text[j : j + 2])
                return j + 2
            if c2 in "no":  # LS2, LS3: G2 or G3 shifted in
                self._shifted = True
                out.append(text[j : j + 2])
                return j + 2
            out.append(c)  # any other escape: passed on as it is
            return j + 1
        if c == "\x9b":
            return self._csi(text, j, j + 1, out)
        if c == "\x9a":  # DECID's 8-bit form: as ESC Z
            return j + 1
        kind = {"\x9d": "]", "\x90": "P", "\x9f": "_", "\x9e": "^", "\x98": "X"}[c]
        return self._start_string(text, j, j + 1, kind, out)

    def _csi(self, text: str, j: int, k: int, out: list[str]) -> int:
        body = _CSI_BODY.match(text, k)
        assert body is not None  # (it matches the empty string)
        end = body.end()
        if end >= len(text):
            return -1 if end - j <= _HOLD_MOST else len(text)  # (an overlong one: dropped)
        final = text[end]
        if not "\x40" <= final <= "\x7e":  # cut short (ESC, CAN, SUB): as it came
            out.append(text[j:end])
            return end
        chars = _C0.sub("", body.group())
        params = chars.rstrip(" !\"#$%&'()*+,-./")
        inter = chars[len(params) :]
        prefix = params[:1] if params[:1] in ("<", "=", ">", "?") else ""
        params = params[len(prefix) :]
        if _csi_query(prefix, params, inter, final):
            return end + 1
        if not inter:
            self._track(prefix, params, final)
        elif (inter, final) == (" ", "q"):  # DECSCUSR: the cursor's shape
            self._shape = params not in ("", "0")
        if len(chars) == end - k:
            out.append(text[j : end + 1])
        else:  # controls within: a terminal runs them where they stand, so before it
            # (but ENQ, which answers)
            controls = "".join(_C0.findall(body.group())).replace("\x05", "")
            self._track_drawing(controls)
            out.append(controls + text[j:k] + chars + final)
        return end + 1

    def _track(self, prefix: str, params: str, final: str) -> None:
        values = params.split(";")
        if prefix == "?" and final in "hl":
            for value in values:
                mode = int(value) if value.isdigit() and len(value) < 6 else -1
                if mode == 25:
                    self._hidden = final == "l"
                elif mode == 7:
                    self._no_wrap = final == "l"
                elif final == "h":
                    self._modes.add(mode)
                else:
                    self._modes.discard(mode)
        elif prefix == "" and final in "hl" and "4" in values:
            self._insert = final == "h"
        elif final == "m" and prefix == "":
            self._sgr = any(v not in ("", "0") for v in values)
        elif final == "m" and prefix == ">" and values[0] == "4":
            self._other_keys = len(values) > 1 and values[1] not in ("", "0")
        elif final == "u" and prefix == ">":
            self._pushed += 1
        elif final == "u" and prefix == "=":
            self._kitty_set = values[0] not in ("", "0")
        elif final == "u" and prefix == "<":
            count = int(values[0]) if values[0].isdigit() and len(values[0]) < 6 else 1
            self._pushed = max(0, self._pushed - max(count, 1))

    def _track_osc(self, head: str) -> None:
        """Colours an OSC passed on sets (4, 5, 10-19, kitty's 21) or resets (100 more, an
        empty value), and a hyperlink it opens or closes, to be undone at the end: a replay
        left the user's terminal in the recording's palette, its output linked."""
        code_text, _, rest = head.partition(";")
        code = _number(code_text)
        if code is None:
            return
        if code == 8:  # (params;URI: an empty URI closes)
            self._linked = rest.partition(";")[2] != ""
        elif code == 21:
            for key, _, value in (pair.partition("=") for pair in rest.split(";")):
                if _KITTY_COLOUR_KEY.fullmatch(key):
                    (self._kitty_colours.add if value else self._kitty_colours.discard)(key)
        elif code in _OSC_QUERIES:
            self._colours.add(code)
        elif code - 100 in _OSC_QUERIES:
            self._colours.discard(code - 100)

    def _track_drawing(self, piece: str) -> None:
        """What a run of drawing sequences left set (`_STATEFUL`)."""
        for region, keypad, g, charset, shift in _STATEFUL.findall(piece):
            if keypad:
                self._keypad = keypad == "="
            elif g:
                self._charsets[g] = charset
            elif shift:
                self._shifted = shift == "\x0e"
            else:  # a scroll region: set with margins, reset without
                self._region = region.strip(";") != ""

    def _start_string(self, text: str, j: int, k: int, kind: str, out: list[str]) -> int:
        """A string sequence: passed on or dropped as a whole once what decides it came."""
        osc = kind == "]"
        end, after = _string_end(text, k, osc)
        head = text[k:end] if end >= 0 else text[k:]
        decided = _string_verdict(kind, head, whole=end >= 0)
        if decided is None and len(text) - j <= _HOLD_MOST:
            return -1  # not known yet: carried over to the next event
        if decided and osc:
            self._track_osc(head)
        if end >= 0:
            if decided:
                out.append(text[j:after])
            return after
        # Longer than this event: passed on or dropped up to its end, in the next ones too
        # (one still undecided past _HOLD_MOST is dropped).
        self._string, self._osc = ("pass" if decided else "drop"), osc
        if decided:
            out.append(text[j:k])
        done = self._in_string(text, k, out)
        return len(text) if done < 0 else done


def _string_end(text: str, i: int, osc: bool) -> tuple[int, int]:
    """Where a string sequence's content ends at or after `i`, and where what follows it
    starts (past an ST; at an ESC that is no ST, which begins a sequence of its own);
    (-1, -1) if the text ends first or with the ESC that may be an ST's start."""
    found = re.compile("[\x07\x18\x1a\x1b\x9c]" if osc else "[\x18\x1a\x1b\x9c]").search(text, i)
    if found is None:
        return -1, -1
    end = found.start()
    c = text[end]
    if c == _ESC:
        if end + 1 >= len(text):
            return -1, -1
        return end, end + 2 if text[end + 1] == "\\" else end
    return end, end + 1


def _string_verdict(kind: str, head: str, *, whole: bool) -> bool | None:
    """Whether a string sequence is passed on (True) or dropped (False), from its content
    so far (`whole`: all of it); None while that does not tell yet."""
    if kind == "]":
        code_text, sep, rest = head.partition(";")
        if not sep and not whole:
            undecided = code_text.isascii() and code_text.isdigit() and len(code_text) < 16
            return None if undecided or not code_text else False
        code = _number(code_text)
        if code not in _OSC_SHOWN:
            return False
        if code == 1337:  # iTerm2's: known by the command's name
            if not whole and "=" not in rest and len(rest) < 32:
                return None
            return rest.startswith(_ITERM2_SHOWN)
        if code == 21:  # kitty's colours: a `key=?` anywhere in it asks
            return None if not whole else "=?" not in rest
        if code in _OSC_QUERIES:
            if not whole:
                return None
            return "?" not in rest.split(";")
        return True
    if kind == "P":  # sixel (DCS ... q) draws; the rest asks or acts (DECRQSS, XTGETTCAP,
        # kitty's remote control, tmux's passthrough)
        intro = re.match("[\x30-\x3f]*([\x20-\x2f]*)([\x40-\x7e])?", head)
        assert intro is not None
        if intro.group(2) is None:
            return None if not whole else False
        return (intro.group(1), intro.group(2)) == ("", "q")
    if kind == "_":  # kitty graphics draw (a=q asks); any other APC goes
        if not head and not whole:
            return None
        if head[:1] != "G":
            return False
        control, sep, _ = head[1:].partition(";")
        if not sep and not whole:
            return None
        keys = dict(pair.partition("=")[::2] for pair in control.split(","))
        # A query asks; and kitty answers any command naming an image (i=, I=) unless
        # told to be quiet (q=2): the answer would be typed into the shell.
        names = "i" in keys or "I" in keys
        return keys.get("a") != "q" and (not names or keys.get("q") == "2")
    return False  # SOS, PM: nothing a replay needs

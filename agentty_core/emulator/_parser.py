"""Escape-sequence tokenizer for agentty_core.emulator.pyte_backend; private to it.

pyte's Stream walks every byte of an escape sequence through a generator, raises on input it
does not expect (``CSI ? 4 m``), ignores ``>``/``$`` prefixes so ``CSI > 4 ; 2 m`` turns into
bold underline, and buffers an unterminated OSC without limit. This tokenizer matches whole
tokens with one regex, keeps an incomplete trailing sequence (bounded) for the next chunk,
answers terminal queries itself, and calls the pyte Screen methods directly.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from pyte import modes as mo
from pyte.streams import Stream

from agentty_core.emulator._flood import Flood
from agentty_core.emulator._screen import Screen

MAX_STRING = 4096  # OSC/DCS/APC/PM/SOS payloads longer than this are dropped
_MAX_CSI = 512  # an unfinished CSI longer than this is skipped up to its final byte

_TOKEN = re.compile(
    r"([^\x00-\x1f\x7f-\x9f]+)"  # 1: printable text
    r"|([\x00-\x1a\x1c-\x1f\x7f]+)"  # 2: C0 controls (not ESC) and DEL
    r"|\x1b\[([\x30-\x3f]*)([\x20-\x2f]*)([\x40-\x7e])"  # 3, 4, 5: CSI params, inter, final
    r"|\x1b\]([^\x07\x1b\x18\x1a]*)(\x07|\x1b\\)"  # 6, 7: OSC payload, terminator
    r"|(\x1b[P_^X][^\x1b\x18\x1a]*\x1b\\)"  # 8: DCS/APC/PM/SOS, dropped
    r"|\x1b([\x20-\x2f]+[\x30-\x7e]|[\x30-\x4f\x51-\x57\x59\x5a\x5c\x60-\x7e])"  # 9: ESC seq
    r"|([\x80-\x9f]+)"  # 10: C1 controls: ignored, real programs never send them as UTF-8
)
_CSI_BODY = re.compile(r"[\x20-\x3f\x00-\x17\x19\x1c-\x1f]*")
_CSI_SPLIT = re.compile(r"([\x30-\x3f]*)([\x20-\x2f]*)")
_OSC_BODY = re.compile(r"[^\x07\x1b\x18\x1a]*")
_STR_BODY = re.compile(r"[^\x1b\x18\x1a]*")
_ESC_INTER = re.compile(r"[\x20-\x2f]*")
_SKIP_END = {
    1: re.compile(r"[\x07\x18\x1a\x1b]"),  # OSC: BEL also ends it
    2: re.compile(r"[\x18\x1a\x1b]"),
    3: re.compile(r"[^\x20-\x3f\x00-\x17\x19\x1c-\x1f]"),
}
_SKIP_OSC, _SKIP_STR, _SKIP_CSI = 1, 2, 3

DA1 = "\x1b[?62;22c"
DA2 = "\x1b[>1;10;0c"
XTVERSION = "\x1bP>|agentty(0.1)\x1b\\"
_OSC_COLORS = {10: "rgb:ffff/ffff/ffff", 11: "rgb:0000/0000/0000"}
TRACKED_PRIVATE = frozenset(
    {1, 5, 6, 7, 25, 47, 1000, 1002, 1003, 1004, 1005, 1006, 1015, 1047, 1049, 2004}
)
_TRACKED_ANSI = frozenset({mo.IRM, mo.LNM})
# Max positional args each pyte CSI handler takes; extra params are ignored as xterm does.
_ARITY = {"H": 2, "f": 2, "r": 2}
_SGR_KNOWN = frozenset(
    (0, 1, 3, 4, 5, 7, 9, 22, 23, 24, 25, 27, 29, 39, 49, *range(30, 38), *range(40, 48))
) | frozenset((*range(90, 98), *range(100, 108)))


def _end(pattern: re.Pattern[str], data: str, pos: int) -> int:
    """End of a match of a pattern that can match empty (so always matches)."""
    m = pattern.match(data, pos)
    return m.end() if m is not None else pos


def _int(param: str) -> int:
    return min(int(param), 9999) if param.isdigit() else 0


def _ints(params: str) -> list[int]:
    return [_int(p) for p in params.split(";")] if params else []


def sgr_params(params: str) -> list[int]:
    """SGR params pyte can digest: colon forms unpacked, unknown codes and 58 (underline
    colour) dropped, colour components clamped (pyte would render 38;5;2;... as blink)."""
    parts = params.split(";") if params else ["0"]
    out: list[int] = []
    i = 0
    while i < len(parts):
        part = parts[i]
        i += 1
        if ":" in part:
            sub = [_int(s) for s in part.split(":")]
            head = sub[0]
            if head in (38, 48) and len(sub) >= 3 and sub[1] == 5:
                out += [head, 5, min(sub[2], 255)]
            elif head in (38, 48) and len(sub) >= 5 and sub[1] == 2:
                out += [head, 2, *(min(v, 255) for v in sub[-3:])]
            elif head == 4:
                out.append(24 if len(sub) > 1 and sub[1] == 0 else 4)
            elif head in _SGR_KNOWN:
                out.append(head)
            continue
        code = _int(part)
        if code in (38, 48, 58):
            kind = _int(parts[i]) if i < len(parts) else 0
            need = 1 if kind == 5 else 3 if kind == 2 else 0
            values = [min(_int(v), 255) for v in parts[i + 1 : i + 1 + need]]
            i += 1 + need
            if code != 58 and need and len(values) == need:
                out += [code, kind, *values]
        elif code == 21:
            out.append(4)  # double underline
        elif code in _SGR_KNOWN:
            out.append(code)
    return out


class Parser:
    """Feeds decoded text into a Screen; terminal replies are collected in screen.replies."""

    def __init__(self, screen: Screen, log: logging.Logger) -> None:
        self.screen = screen
        self.log = log
        self.errors = 0
        self._carry = ""
        self._skip = 0
        s = screen
        self._c0: dict[str, Callable[[], None]] = {
            "\x08": s.backspace,
            "\t": s.tab,
            "\n": s.linefeed,
            "\x0b": s.linefeed,
            "\x0c": s.linefeed,
            "\r": s.carriage_return,
            "\x0e": s.shift_out,
            "\x0f": s.shift_in,
        }
        csi: dict[str, Callable[..., None]] = {
            final: getattr(s, name)
            for final, name in Stream.csi.items()
            if final not in "chlmn"  # DA, modes, SGR and DSR are handled here
        }
        csi.update(
            S=s.scroll_up,
            T=s.scroll_down,
            b=s.repeat_last,
            s=s.save_cursor,
            u=s.restore_cursor,
            I=s.tab_forward,
            Z=s.tab_back,
        )
        self._csi_table = csi
        self._flood = Flood(screen, self._sgr)

    def reset(self) -> None:
        self._carry = ""
        self._skip = 0

    def feed(self, data: str) -> None:
        if self._carry:
            data = self._carry + data
            self._carry = ""
        pos = self._resume_skip(data) if self._skip else 0
        n = len(data)
        match = _TOKEN.match
        draw = self.screen.draw
        while pos < n:
            m = match(data, pos)
            if m is None:
                new = self._irregular(data, pos)
                if new is None:
                    self._carry = data[pos:]
                    return
                pos = new
                continue
            pos = m.end()
            kind = m.lastindex
            try:
                if kind == 1:
                    draw(m.group(1))
                elif kind == 2:
                    c0 = self._c0
                    ctl = m.group(2)
                    for ch in ctl:
                        handler = c0.get(ch)
                        if handler is not None:
                            handler()
                    if ctl[-1] == "\n":
                        pos = self._flood.run(data, pos)
                elif kind == 5:
                    if m.group(5) == "m" and not m.group(4):
                        self._sgr(m.group(3))
                    else:
                        self._csi(m.group(3), m.group(4), m.group(5))
                elif kind == 7:
                    self._osc(m.group(6), m.group(7))
                elif kind == 9:
                    self._esc(m.group(9))
                # 8 (DCS/APC/PM/SOS) and 10 (C1) are dropped on purpose.
            except Exception:
                self.error(m.group(0))
            if kind != 1:
                self.screen.last_char = ""  # REP repeats only a char printed just before

    def error(self, token: str) -> None:
        """Log a handler failure; the first few loudly, the rest at debug level."""
        self.errors += 1
        level = logging.WARNING if self.errors <= 5 else logging.DEBUG
        self.log.log(level, "emulator: ignoring %r after an error", token[:64], exc_info=True)

    # -- sequences split across chunks, malformed or oversized ----------------------------

    def _resume_skip(self, data: str) -> int:
        """Continue discarding an oversized sequence; returns where normal parsing resumes."""
        m = _SKIP_END[self._skip].search(data)
        if m is None:
            return len(data)
        i = m.start()
        ch = data[i]
        if self._skip == _SKIP_CSI:
            self._skip = 0
            return i + 1 if "\x40" <= ch <= "\x7e" or ch in "\x18\x1a" else i
        if ch != "\x1b":
            self._skip = 0
            return i + 1
        if i + 1 == len(data):
            self._carry = "\x1b"  # may be the start of ST; stay in skip mode
            return len(data)
        self._skip = 0
        return i + 2 if data[i + 1] == "\\" else i

    def _irregular(self, data: str, pos: int) -> int | None:
        """data[pos] is an ESC no token regex matched: an unfinished sequence (return None to
        carry it to the next chunk) or a malformed one (return where to continue)."""
        n = len(data)
        if pos + 1 >= n:
            return None
        intro = data[pos + 1]
        if intro == "[":
            end = _end(_CSI_BODY, data, pos + 2)
            if end == n:
                if n - pos > _MAX_CSI:
                    self._skip = _SKIP_CSI
                    return n
                return None
            final = data[end]
            if "\x40" <= final <= "\x7e":
                body = data[pos + 2 : end]
                for ch in body:  # C0 controls inside a CSI are executed, as on a VT
                    handler = self._c0.get(ch) if ch < "\x20" else None
                    if handler is not None:
                        handler()
                body = "".join(ch for ch in body if ch >= "\x20")
                split = _CSI_SPLIT.fullmatch(body)
                if split is not None:
                    try:
                        self._csi(split.group(1), split.group(2), final)
                    except Exception:
                        self.error(data[pos : end + 1])
                return end + 1
            return end + 1 if final in "\x18\x1a" else end
        if intro in "]P_^X":
            end = _end(_OSC_BODY if intro == "]" else _STR_BODY, data, pos + 2)
            if end == n or (end == n - 1 and data[end] == "\x1b"):
                if end - pos > MAX_STRING:
                    self._skip = _SKIP_OSC if intro == "]" else _SKIP_STR
                    self._carry = data[end:]
                    return n
                return None
            # ESC + anything but "\" aborts the string and starts a new sequence.
            return end + 1 if data[end] in "\x18\x1a" else end
        end = _end(_ESC_INTER, data, pos + 1)
        if end == n:
            return None if n - pos < 64 else n
        return end if end > pos + 1 else pos + 1

    # -- dispatch --------------------------------------------------------------------------

    def _csi(self, params: str, inter: str, final: str) -> None:
        s = self.screen
        lead = params[:1] if params[:1] in ("<", "=", ">", "?") else ""
        if lead:
            params = params[1:]
        if inter:
            if inter == "$" and final == "p" and lead in ("", "?"):
                self._decrqm(lead, params)
            elif inter == "!" and final == "p" and not lead:
                s.soft_reset()
            return  # DECSCUSR (SP q) and the rest change nothing we model
        if lead == "?":
            if final in "hl":
                s.private_modes(_ints(params), final == "h")
            elif final == "J":
                s.erase_in_display(_int(params.split(";")[0]))
            elif final == "K":
                s.erase_in_line(_int(params.split(";")[0]))
            return  # ?m (XTQMODKEYS), ?u (kitty keyboard query), ... : no reply, as tmux
        if lead == ">":
            if final == "c" and params in ("", "0"):
                s.replies.append(DA2)
            elif final == "q" and params in ("", "0"):
                s.replies.append(XTVERSION)
            return  # >m (XTMODKEYS) must not reach SGR
        if lead:
            return
        if final == "m":
            self._sgr(params)
            return
        if final in "Hf" and (s.margins is None or mo.DECOM not in s.mode):
            row, _, col = params.partition(";")  # CUP: the commonest sequence in redraws
            cursor = s.cursor
            cursor.y = min(max(_int(row) - 1, 0), s.lines - 1)
            cursor.x = min(max(_int(col.partition(";")[0]) - 1, 0), s.columns - 1)
            return
        args = _ints(params)
        if final in "hl":
            (s.set_mode if final == "h" else s.reset_mode)(*args)
        elif final == "c":
            if params in ("", "0"):
                s.replies.append(DA1)
        elif final == "n":
            self._dsr(args[0] if args else 0)
        elif final == "t":
            if args[:1] == [18]:
                s.replies.append(f"\x1b[8;{s.lines};{s.columns}t")
        else:
            handler = self._csi_table.get(final)
            if handler is not None:
                handler(*args[: _ARITY.get(final, 1)])

    def _sgr(self, params: str) -> None:
        """SGR, memoised: programs repeat the same few attribute changes over and over."""
        if params[:1] in ("<", "=", ">", "?"):
            return  # ?4m is XTQMODKEYS (vim sends it), >4;2m is XTMODKEYS: not SGR
        s = self.screen
        key = (params, s.cursor.attrs)
        cache = s.sgr_cache
        attrs = cache.get(key)
        if attrs is None:
            codes = sgr_params(params)
            if codes:
                s.select_graphic_rendition(*codes)
            if len(cache) > 4096:
                cache.clear()
            attrs = cache[key] = s.cursor.attrs
        s.cursor.attrs = attrs

    def _dsr(self, mode: int) -> None:
        s = self.screen
        if mode == 5:
            s.replies.append("\x1b[0n")
        elif mode == 6:
            row = s.cursor.y + 1
            if mo.DECOM in s.mode and s.margins is not None:
                row -= s.margins.top
            col = min(s.cursor.x, s.columns - 1) + 1
            s.replies.append(f"\x1b[{row};{col}R")

    def _decrqm(self, lead: str, params: str) -> None:
        s = self.screen
        mode = _int(params.split(";")[0])
        if lead == "?":
            value = (1 if mode << 5 in s.mode else 2) if mode in TRACKED_PRIVATE else 0
            s.replies.append(f"\x1b[?{mode};{value}$y")
        else:
            value = (1 if mode in s.mode else 2) if mode in _TRACKED_ANSI else 0
            s.replies.append(f"\x1b[{mode};{value}$y")

    def _osc(self, payload: str, terminator: str) -> None:
        if len(payload) > MAX_STRING:
            return
        code, _, rest = payload.partition(";")
        if code in ("0", "2"):
            self.screen.set_title(rest)
        elif code in ("10", "11"):
            end = "\x07" if terminator == "\x07" else "\x1b\\"
            for i, item in enumerate(rest.split(";")):
                color = _OSC_COLORS.get(int(code) + i)
                if item == "?" and color is not None:
                    self.screen.replies.append(f"\x1b]{int(code) + i};{color}{end}")

    def _esc(self, body: str) -> None:
        s = self.screen
        if len(body) == 1:
            if body == "7":
                s.save_cursor()
            elif body == "8":
                s.restore_cursor()
            elif body == "D":
                s.index()
            elif body == "E":
                s.carriage_return()
                s.index()
            elif body == "M":
                s.reverse_index()
            elif body == "H":
                s.set_tab_stop()
            elif body == "c":
                s.reset()
            elif body in "=>":
                s.keypad = body == "="
            return
        inter, final = body[:-1], body[-1]
        if inter == "#" and final == "8":
            s.alignment_display()
        elif inter in ("(", ")"):
            s.define_charset(final, inter)

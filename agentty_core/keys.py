"""Key names and the bytes a terminal sends for them.

Names follow the original contract (`Enter Tab Up Down Left Right Esc Ctrl+C Ctrl+D`, any
single character) plus `Backspace Delete Insert Home End PageUp PageDown Space Shift+Tab
F1..F12 Ctrl+<char> Alt+<char>`, modifier combinations on the cursor and function keys
(`Ctrl+Up`, `Shift+F5`), and `Shift+Enter` / `Ctrl+Enter` / `Alt+Enter`. A `*N` suffix
repeats a key (`Down*5`). Named keys are case-insensitive; a single character is sent as is.

Other tools' spellings are accepted as aliases rather than refused with a hint, since an
agent that learnt them elsewhere means exactly that key: tmux's `C-c`, `M-x`, `S-Up`,
`C-m` (Ctrl+M is Enter), `^C`, `Escape`, `BSpace`, `BTab`, `DC`, `IC`, `NPage`, `PPage`.

`split_send` reads `agentty send` arguments as `tmux send-keys` does: a key name is pressed,
anything else typed as is.

Cursor keys honour the program's application-cursor mode (DECCKM), as vim and less expect.
Shift+Enter and Ctrl+Enter use the CSI-u encoding (`ESC [13;2u`, `ESC [13;5u`) that kitty,
foot, WezTerm and Ghostty send and that modern TUIs (Claude Code, Codex, helix) read.
"""

from __future__ import annotations

from agentty_core.errors import InvalidKey, echoed

MAX_REPEAT = 1000

# name -> (plain bytes, CSI final or ~ code for modifier forms, SS3 form for app mode)
_PLAIN: dict[str, bytes] = {
    "enter": b"\r",
    "tab": b"\t",
    "esc": b"\x1b",
    "backspace": b"\x7f",
    "space": b" ",
}
_ALIASES = {
    "escape": "esc",
    "return": "enter",
    "bspace": "backspace",
    "del": "delete",
    "dc": "delete",
    "ic": "insert",
    "pgup": "pageup",
    "ppage": "pageup",
    "pgdn": "pagedown",
    "npage": "pagedown",
    "btab": "shift+tab",
}
# Keys sent as CSI <final> (cursor keys, Home/End) and in SS3 form in application mode.
_CURSOR = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
# Keys sent as CSI <n> ~.
_TILDE = {
    "insert": 2, "delete": 3, "pageup": 5, "pagedown": 6,
    "f5": 15, "f6": 17, "f7": 18, "f8": 19, "f9": 20, "f10": 21, "f11": 23, "f12": 24,
}  # fmt: skip
_SS3_FUNCTION = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
_MODIFIER_BITS = {"shift": 1, "alt": 2, "meta": 2, "ctrl": 4, "control": 4}
_CTRL_SPECIAL = {"@": 0, " ": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31, "?": 127}


class Key:
    """A parsed key: its base name (or character), modifier bits and repeat count.

    A plain class rather than a dataclass: `dataclasses` imports `inspect`, which the CLI's
    hot path cannot afford."""

    __slots__ = ("base", "modifiers", "repeat")

    def __init__(self, base: str, modifiers: int = 0, repeat: int = 1) -> None:
        self.base = base
        self.modifiers = modifiers
        self.repeat = repeat

    def __repr__(self) -> str:
        return f"Key({self.base!r}, {self.modifiers}, {self.repeat})"

    def encode(self, app_cursor: bool = False) -> bytes:
        return _encode(self.base, self.modifiers, app_cursor) * self.repeat


def _encode(base: str, mods: int, app_cursor: bool) -> bytes:
    ctrl, alt, shift = bool(mods & 4), bool(mods & 2), bool(mods & 1)
    param = 1 + mods  # xterm's modifier parameter
    if base in _CURSOR:
        final = _CURSOR[base]
        if mods:
            return f"\x1b[1;{param}{final}".encode()
        return f"\x1bO{final}".encode() if app_cursor else f"\x1b[{final}".encode()
    if base in _SS3_FUNCTION:
        final = _SS3_FUNCTION[base]
        return f"\x1b[1;{param}{final}".encode() if mods else f"\x1bO{final}".encode()
    if base in _TILDE:
        code = _TILDE[base]
        return f"\x1b[{code};{param}~".encode() if mods else f"\x1b[{code}~".encode()
    if base == "tab" and shift:
        return b"\x1b\x1b[Z" if alt else b"\x1b[Z"
    if base == "enter" and (shift or ctrl):
        return f"\x1b[13;{param}u".encode()
    if base in _PLAIN:
        out = _PLAIN[base]
        if ctrl and base == "space":
            out = b"\x00"
        return b"\x1b" + out if alt else out
    # A single character, possibly with Ctrl and/or Alt.
    out = base.encode("utf-8")
    if ctrl:
        lower = base.lower()
        if "a" <= lower <= "z":
            out = bytes([ord(lower) - ord("a") + 1])
        else:
            out = bytes([_CTRL_SPECIAL[base]])
    return b"\x1b" + out if alt else out


def parse(name: str) -> Key:
    """Parse one key name, or raise InvalidKey naming the valid ones."""
    if not isinstance(name, str):  # (a Python caller's list or None)
        raise InvalidKey(f"a key is named by a string, as 'Enter': not {echoed(name)}")
    spec, repeat = name, 1
    star = name.rfind("*")
    if star > 0 and _digits(name[star + 1 :]):
        spec, repeat = name[:star], int(name[star + 1 :])
        if not 1 <= repeat <= MAX_REPEAT:
            raise InvalidKey(f"key repeat must be 1..{MAX_REPEAT}: {echoed(name)}")
    if len(spec) == 1:
        return Key(spec, 0, repeat)
    spec = _tmux_spelling(spec)
    lowered = _ALIASES.get(spec.lower(), spec.lower())
    parts = lowered.split("+")
    if lowered.endswith("++"):  # Ctrl++ : the last key is '+' itself
        parts = [*lowered[:-2].split("+"), "+"]
    *mod_names, base = parts
    mods = 0
    for mod in mod_names:
        if mod not in _MODIFIER_BITS:
            raise InvalidKey(_unknown(name))
        mods |= _MODIFIER_BITS[mod]
    if len(base) == 1:
        # Case matters for characters: Alt+a and Alt+A differ.
        base = spec[-1] if spec.lower().endswith(base) else base
        if mods & 4 and not ("a" <= base.lower() <= "z" or base in _CTRL_SPECIAL):
            raise InvalidKey(f"Ctrl+{base} has no terminal encoding: {echoed(name)}")
        if mods & 1 and not mods & ~1:
            raise InvalidKey(f"send the character itself instead of Shift+{base}: {echoed(name)}")
        return Key(base, mods, repeat)
    if base in _PLAIN or base in _CURSOR or base in _TILDE or base in _SS3_FUNCTION:
        if base in ("backspace", "esc") and mods & ~2:
            raise InvalidKey(f"{echoed(name)} has no standard terminal encoding")
        return Key(base, mods, repeat)
    raise InvalidKey(_unknown(name))


def _tmux_spelling(spec: str) -> str:
    """tmux's modifier prefixes (`C-`, `M-`, `S-`, upper case as tmux writes them) and `^C`,
    in agentty's spelling (`Ctrl+`, `Alt+`, `Shift+`)."""
    if len(spec) == 2 and spec[0] == "^":
        return "Ctrl+" + spec[1]
    prefix = ""
    while len(spec) > 2 and spec[1] == "-" and spec[0] in _TMUX_MODIFIERS:
        prefix += _TMUX_MODIFIERS[spec[0]]
        spec = spec[2:]
    return prefix + spec


_TMUX_MODIFIERS = {"C": "Ctrl+", "M": "Alt+", "S": "Shift+"}


def as_send_key(word: str) -> Key | None:
    """The key `word` names in `agentty send`, or None when it is text to type.

    A single character is text (the same bytes either way), and so is a `*N` suffix on one:
    `6*7` is arithmetic, not seven sixes. A word that is spelt like a key but names none
    (`Ctrl+Banana`, `C-Banana`, `Down*-1`) is an InvalidKey rather than typed: it was meant
    as a key. A bare `C-` is text, as tmux types it."""
    if len(word) < 2:
        return None
    star = word.rfind("*")
    if star == 1 and _digits(word[2:]):
        return None
    try:
        return parse(word)
    except InvalidKey as exc:
        hint = f"(to type {echoed(word)} as text: send --literal, or text)"
        if _repeats_a_key(word):  # `Down*2000`: a key, repeated past the limit
            raise InvalidKey(f"{exc} {hint}") from None
        if _looks_like_a_key(word):
            raise InvalidKey(f"{_unknown(word)} {hint}") from None
        return None


def _digits(text: str) -> bool:
    """ASCII digits only: `str.isdigit` takes ² and ٣ too (int() then fails on the first)."""
    return text.isascii() and text.isdigit()


def _repeats_a_key(word: str) -> bool:
    """`KEY*N` (or `KEY*` anything): a key meant repeated, whatever follows the star."""
    star = word.rfind("*")
    if star <= 1:
        return False
    try:
        parse(word[:star])
    except InvalidKey:
        return False
    return True


def _looks_like_a_key(word: str) -> bool:
    head = word.split("+", 1)[0].lower() if "+" in word else ""
    tmux = len(word) > 2 and word[1] == "-" and word[0] in _TMUX_MODIFIERS
    return head in _MODIFIER_BITS or tmux


def split_send(words: list[str], *, literal: bool = False) -> list[str | list[str]]:
    """`send` arguments in order as runs of text (a str: its words typed as is, joined
    without spaces like tmux) and runs of key names (a list). Every key is checked first,
    so nothing is sent when one is wrong."""
    runs: list[str | list[str]] = []
    for word in words:
        is_key = not literal and as_send_key(word) is not None
        last = runs[-1] if runs else None
        if is_key and isinstance(last, list):
            last.append(word)
        elif is_key:
            runs.append([word])
        elif isinstance(last, str):
            runs[-1] = last + word
        elif word:
            runs.append(word)
    return runs


def parse_all(names: list[str]) -> list[Key]:
    """Parse every name first, so nothing is sent when one of them is wrong."""
    return [parse(name) for name in names]


def key_names() -> list[str]:
    """The documented names, for `help --json` and error messages."""
    named = ["Enter", "Tab", "Esc", "Backspace", "Delete", "Insert", "Space"]
    named += ["Up", "Down", "Left", "Right", "Home", "End", "PageUp", "PageDown"]
    named += [f"F{i}" for i in range(1, 13)]
    named += ["Shift+Tab", "Shift+Enter", "Ctrl+Enter", "Alt+Enter"]
    named += [f"Ctrl+{chr(c)}" for c in range(ord("A"), ord("Z") + 1)]
    named += ["Alt+<char>", "Ctrl+<key>", "Alt+<key>", "Shift+<key>", "<char>", "<key>*N"]
    return named


def _unknown(name: str) -> str:
    return (
        f"unknown key {echoed(name)}; valid keys: Enter Tab Esc Backspace Delete Insert Space "
        "Up Down Left Right Home End PageUp PageDown F1..F12 Shift+Tab Shift+Enter Ctrl+Enter "
        "Alt+Enter Ctrl+A..Ctrl+Z Alt+<char>, modifiers Ctrl/Alt/Shift on named keys, any single "
        "character, and <key>*N to repeat"
    )

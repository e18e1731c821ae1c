from __future__ import annotations

import pytest

from agentty_core import keys
from agentty_core.errors import InvalidKey


@pytest.mark.parametrize(
    ("name", "plain", "app"),
    [
        ("Enter", b"\r", b"\r"),
        ("enter", b"\r", b"\r"),
        ("Tab", b"\t", b"\t"),
        ("Esc", b"\x1b", b"\x1b"),
        ("Up", b"\x1b[A", b"\x1bOA"),
        ("Down", b"\x1b[B", b"\x1bOB"),
        ("Right", b"\x1b[C", b"\x1bOC"),
        ("Left", b"\x1b[D", b"\x1bOD"),
        ("Home", b"\x1b[H", b"\x1bOH"),
        ("End", b"\x1b[F", b"\x1bOF"),
        ("Ctrl+C", b"\x03", b"\x03"),
        ("Ctrl+D", b"\x04", b"\x04"),
        ("ctrl+a", b"\x01", b"\x01"),
        ("Ctrl+Z", b"\x1a", b"\x1a"),
        ("Backspace", b"\x7f", b"\x7f"),
        ("Delete", b"\x1b[3~", b"\x1b[3~"),
        ("PageUp", b"\x1b[5~", b"\x1b[5~"),
        ("PageDown", b"\x1b[6~", b"\x1b[6~"),
        ("Space", b" ", b" "),
        ("Shift+Tab", b"\x1b[Z", b"\x1b[Z"),
        ("F1", b"\x1bOP", b"\x1bOP"),
        ("F12", b"\x1b[24~", b"\x1b[24~"),
        ("Alt+x", b"\x1bx", b"\x1bx"),
        ("Alt+X", b"\x1bX", b"\x1bX"),
        ("Alt+Enter", b"\x1b\r", b"\x1b\r"),
        ("Shift+Enter", b"\x1b[13;2u", b"\x1b[13;2u"),
        ("Ctrl+Enter", b"\x1b[13;5u", b"\x1b[13;5u"),
        ("Ctrl+Up", b"\x1b[1;5A", b"\x1b[1;5A"),
        ("i", b"i", b"i"),
        (":", b":", b":"),
        (" ", b" ", b" "),
        ("*", b"*", b"*"),
        ("é", "é".encode(), "é".encode()),
        ("Down*3", b"\x1b[B" * 3, b"\x1bOB" * 3),
    ],
)
def test_key_encodings(name: str, plain: bytes, app: bytes) -> None:
    key = keys.parse(name)
    assert key.encode(app_cursor=False) == plain
    assert key.encode(app_cursor=True) == app


@pytest.mark.parametrize("name", ["Foo", "Ctrl+1", "Hyper+a", "Down*0", "Down*1001", "", "Ctrl+"])
def test_unknown_keys_are_rejected(name: str) -> None:
    with pytest.raises(InvalidKey):
        keys.parse(name)


def test_parse_all_rejects_before_anything_is_encoded() -> None:
    with pytest.raises(InvalidKey, match="valid keys"):
        keys.parse_all(["Enter", "Nope"])


def test_key_names_cover_the_original_contract() -> None:
    names = keys.key_names()
    for name in ["Enter", "Tab", "Up", "Down", "Left", "Right", "Esc", "Ctrl+C", "Ctrl+D"]:
        assert name in names


@pytest.mark.parametrize(
    ("tmux", "agentty"),
    [
        ("C-c", "Ctrl+C"),
        ("M-x", "Alt+x"),
        ("C-M-a", "Ctrl+Alt+a"),
        ("S-Up", "Shift+Up"),
        ("C-m", "Enter"),
        ("^C", "Ctrl+C"),
        ("Escape", "Esc"),
        ("BSpace", "Backspace"),
        ("BTab", "Shift+Tab"),
        ("NPage", "PageDown"),
        ("Enter", "Enter"),
        ("Space", "Space"),
    ],
)
def test_other_tools_spellings_are_aliases(tmux: str, agentty: str) -> None:
    assert keys.parse(tmux).encode() == keys.parse(agentty).encode()


def test_split_send_presses_key_names_and_types_the_rest() -> None:
    assert keys.split_send(["i", "a line", "Esc", ":wq", "Enter"]) == [
        "ia line",
        ["Esc"],
        ":wq",
        ["Enter"],
    ]
    # 6*7 is arithmetic, a single character is text; named keys repeat.
    assert keys.split_send(["6*7", "x", "Down*2", "C-c"]) == ["6*7x", ["Down*2", "C-c"]]
    assert keys.split_send(["Up", "end"], literal=True) == ["Upend"]
    assert keys.split_send(["a+b", "x-y", "C-", ""]) == ["a+bx-yC-"]


@pytest.mark.parametrize(
    "word",
    ["Ctrl+Banana", "C-Banana", "alt+F13", "Enter*1001", "Down*0", "Down*-1", "Up*x", "Down*³"],
)
def test_split_send_refuses_a_key_spelling_that_names_no_key(word: str) -> None:
    with pytest.raises(InvalidKey, match="send --literal"):
        keys.split_send(["typed", word])


def test_split_send_says_why_a_key_repeated_too_often_is_refused() -> None:
    """`Down*2000` is a key repeated past the limit: typed as text before (`key` refuses it)."""
    with pytest.raises(InvalidKey, match=r"key repeat must be 1\.\.1000"):
        keys.split_send(["Down*2000"])
    assert keys.split_send(["ab*2000", "Down*1000"]) == ["ab*2000", ["Down*1000"]]


@pytest.mark.parametrize("name", ["Down*\u00b3", "Up*\u00b2", "Down*\u0663", "Down*\uff13"])
def test_a_repeat_in_digits_that_are_not_ascii_is_an_unknown_key(name: str) -> None:
    """`str.isdigit` takes superscripts and other scripts' digits: `Down*³` was a
    ValueError traceback from int(), and `Down*٣` pressed Down three times."""
    with pytest.raises(InvalidKey, match="unknown key"):
        keys.parse(name)

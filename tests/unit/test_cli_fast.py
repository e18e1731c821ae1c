"""The argparse-free parser of the hot commands agrees with argparse wherever it answers."""

from __future__ import annotations

import pytest

from agentty_core.cli import fast as cli_fast
from agentty_core.cli.parser import build_parser

ACCEPTED = [
    ["get"],
    ["get", "--json"],
    ["get", "-s", "py", "--lines", "20"],
    ["get", "--session=py", "--scrollback", "--ansi"],
    ["get", "--raw", "--bytes", "100", "--json"],
    ["text", "print(2+2)"],
    ["text", "--enter", "a", "b", "-"],
    ["text", "-s", "abc", "--json", "--enter", "x y"],
    ["text", "--file", "payload.txt", "--enter"],
    ["text"],
    ["key", "Enter"],
    ["key", "-s", "py", "Esc", ":", "w", "q", "Enter"],
    ["key", "--json", "Down*5", "-", "Ctrl+C"],
]
DECLINED = [
    ["get", "--help"],
    ["get", "--lines", "abc"],
    ["get", "--lines", "-1"],
    ["get", "--sess", "py"],
    ["get", "-spy"],
    ["get", "--session"],
    ["get", "--session", "--json"],
    ["get", "extra"],
    ["text", "a", "--enter"],
    ["text", "--", "-x"],
    ["key"],
    ["key", "--bogus", "Enter"],
    ["wait", "--text", "x"],
    ["status"],
    [],
]


@pytest.mark.parametrize("words", ACCEPTED, ids=" ".join)
def test_fast_parse_equals_argparse(words: list[str]) -> None:
    fast = cli_fast.parse(words)
    assert fast is not None
    slow = build_parser(words[0]).parse_args(words)
    assert vars(fast) == vars(slow)


@pytest.mark.parametrize("words", DECLINED, ids=lambda w: " ".join(w) or "(empty)")
def test_anything_else_goes_to_argparse(words: list[str]) -> None:
    assert cli_fast.parse(words) is None

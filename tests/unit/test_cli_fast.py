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
    ["send", "i", "a line", "Esc", ":wq", "Enter"],
    ["send", "-s", "py", "--literal", "--enter", "--json", "Enter", "-"],
    ["send", "--session=py", "C-c"],
    ["paste", "two words"],
    ["paste", "-s", "py", "--json", "-"],
    ["wait", "--text", "x"],
    ["wait", "-s", "py", "--regex", "a+b", "--timeout", "2.5", "--json"],
    ["wait", "--gone", "x", "--stable", "300", "--scrollback", "--timeout=.5"],
    ["wait", "--changed-since", "0", "--input", "--exit", "--timeout", "7."],
    ["kill"],
    ["kill", "--session", "py", "--timeout", "0.5", "--json"],
    ["status"],
    ["status", "-q"],
    ["status", "--json", "--quiet"],
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
    ["wait", "--timeout", "1e3"],
    ["wait", "--timeout", "-1"],
    ["wait", "--timeout", "86401"],
    ["wait", "--timeout", "."],
    ["wait", "--stable", "\u00b2"],
    ["wait", "--text", "x", "extra"],
    ["wait", "--tex", "x"],
    ["send"],
    ["send", "x", "--enter"],
    ["send", "--", "-x"],
    ["send", "--lit", "x"],
    ["paste", "a", "b"],
    ["paste"],
    ["kill", "--timeout", "1_0"],
    ["kill", "--all"],  # (every session: the full way)
    ["status", "-qq"],
    ["status", "--json=1"],
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

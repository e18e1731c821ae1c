"""The `start` lane's parser (`cli/startlane.py`) reads every form it accepts as argparse
and `cmd_start` do; the others it leaves to them."""

from __future__ import annotations

import pytest

from agentty_core.cli import startlane
from agentty_core.cli.parser import build_parser

ACCEPTED = [
    ["start", "--", "cat"],
    ["start", "--json", "--", "python3", "-q", "--json"],
    ["start", "--name", "py", "--cwd", "/tmp", "--", "sh", "-c", "x"],
    ["start", "--name=py", "--cols=100", "--rows", "30", "--", "cat"],
    ["start", "--env", "A=1", "--env=B=2=3", "--env", "A=4", "--", "env"],
    ["start", "--env", "EMPTY=", "--", "env"],
    ["start", "--shell", "echo hi; exec cat"],
    ["start", "--shell", "x", "--"],
    ["start", "--shell", "x", "--", "cat"],  # refused by the launcher, in both
    ["start", "--cols", "080", "--", "cat"],
    ["start", "--cols", "1", "--", "cat"],  # refused by the launcher, in both
]
DECLINED = [
    ["start", "--name", "a", "--name", "b", "--", "cat"],  # given twice: argparse refuses it
    ["start"],
    ["start", "--json"],
    ["start", "--"],
    ["start", "cat"],
    ["start", "--name", "x", "cat"],
    ["start", "--", "--", "cat"],
    ["start", "--record", "--", "cat"],
    ["start", "--record-input", "--", "cat"],
    ["start", "--help"],
    ["start", "-h", "--", "cat"],
    ["start", "--na", "x", "--", "cat"],
    ["start", "--name", "-x", "--", "cat"],
    ["start", "--name", "", "--", "cat"],
    ["start", "--cols", "x", "--", "cat"],
    ["start", "--cols", "-1", "--", "cat"],
    ["start", "--cols", "+5", "--", "cat"],
    ["start", "--cols", "99999999", "--", "cat"],
    ["start", "--env", "NOEQUALS", "--", "cat"],
    ["start", "--env", "=v", "--", "cat"],
    ["start", "--name"],
    ["get"],
]


def argparse_reading(words: list[str]) -> dict[str, object]:
    """What `cmd_start` hands the launcher, from argparse's namespace."""
    args = build_parser().parse_args(words)
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    return {
        "json": args.json,
        "name": args.name,
        "cwd": args.cwd,
        "shell": args.shell,
        "cols": args.cols,
        "rows": args.rows,
        "env": dict(args.env),
        "argv": argv,
    }


@pytest.mark.parametrize("words", ACCEPTED)
def test_accepted_forms_read_as_argparse_reads_them(words: list[str]) -> None:
    assert startlane.parse(words) == argparse_reading(words)


@pytest.mark.parametrize("words", DECLINED)
def test_other_forms_are_declined(words: list[str]) -> None:
    assert startlane.parse(words) is None

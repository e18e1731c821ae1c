"""The `run` lane's parser (`cli/runlane.py`) reads every form it accepts as argparse and
`cli/run.program` do; the others it leaves to them."""

from __future__ import annotations

import pytest

from agentty_core.cli import runlane
from agentty_core.cli.parser import build_parser
from agentty_core.cli.run import program

ACCEPTED = [
    ["run", "--", "true"],
    ["run", "--json", "--", "sh", "-c", "x", "--json"],
    ["run", "--expect", "Name:", "--input", "Ada", "--", "bash", "i.sh"],
    ["run", "--expect=a=b", "--input=c", "--input", "", "--", "cat"],  # an empty --input: Enter
    ["run", "--input", "y", "--", "cat"],  # an --input without --expect waits for a read
    ["run", "--timeout", "2.5", "--cols", "100", "--rows=30", "--cwd", "/tmp", "--", "cat"],
    ["run", "--timeout", "0", "--", "cat"],
    ["run", "--timeout", ".5", "--", "cat"],
    ["run", "--cols", "080", "--", "cat"],
    ["run", "--expect", "Banana", "--key", "Down Enter", "--", "dialog"],
    ["run", "--expect", "a", "--key", "Up", "--expect", "b", "--input", "x", "--", "cat"],
    ["run", "--key=C-c", "--input", "y", "--key", "Down*3 Tab", "--", "cat"],  # order kept
    ["run", "--key", "i", "--text", "a line", "--key", "Esc", "--input", ":wq", "--", "vim"],
    ["run", "--expect", "Find:", "--text=x y", "--", "cat"],
]
DECLINED = [
    ["run", "--cwd", "/tmp", "--cwd", "/", "--", "cat"],  # given twice: argparse refuses it
    ["run"],
    ["run", "--"],
    ["run", "cat"],  # no `--`
    ["run", "--json"],
    ["run", "--", "--", "cat"],
    ["run", "--expect", "x", "--", "cat"],  # an --expect without its --input
    ["run", "--expect", "", "--input", "y", "--", "cat"],
    ["run", "--input", "-n", "--", "cat"],  # argparse: an option, not a value
    ["run", "--timeout", "1e3", "--", "cat"],
    ["run", "--timeout", "-1", "--", "cat"],
    ["run", "--timeout", "99999999", "--", "cat"],
    ["run", "--cols", "x", "--", "cat"],
    ["run", "--cols", "99999999", "--", "cat"],
    ["run", "--exp", "x", "--input", "y", "--", "cat"],  # an abbreviation
    ["run", "--help"],
    ["run", "-h", "--", "cat"],
    ["run", "--input"],
    ["run", "--expect", "x", "--key", "Dwn", "--", "cat"],  # a key name the full path refuses
    ["run", "--key", "", "--", "cat"],  # no key at all
    ["run", "--text", "", "--", "cat"],  # nothing to type (an Enter is --input '')
    ["run", "--key", " ", "--", "cat"],
    ["run", "--key", "\udcff Enter", "--", "cat"],  # a byte of argv that is not UTF-8
    ["start", "--", "cat"],
]


def argparse_reading(words: list[str]) -> dict[str, object]:
    args = build_parser().parse_args(words)
    return {
        "argv": program(args),
        **{k: getattr(args, k) for k in ("expect", "answers", "timeout", "cols", "rows", "cwd")},
        "json": args.json,
    }


def lane_reading(words: list[str]) -> dict[str, object] | None:
    opts = runlane.parse(words)
    return None if opts is None else {**vars(opts), "argv": program(opts)}


@pytest.mark.parametrize("words", ACCEPTED)
def test_accepted_forms_read_as_argparse_reads_them(words: list[str]) -> None:
    assert lane_reading(words) == argparse_reading(words)


@pytest.mark.parametrize("words", DECLINED)
def test_other_forms_are_declined(words: list[str]) -> None:
    assert runlane.parse(words) is None


def test_inputs_texts_and_keys_are_answers_in_command_line_order() -> None:
    words = ["run", "--key", "Up", "--expect", "a", "--input", "x", "--key", "Down Enter"]
    words += ["--text", "y"]
    args = build_parser().parse_args([*words, "--", "cat"])
    expected = [("key", "Up"), ("input", "x"), ("key", "Down Enter"), ("text", "y")]
    assert args.answers == expected
    assert (args.input, args.key, args.text) == (["x"], ["Up", "Down Enter"], ["y"])
    lane = runlane.parse([*words, "--", "cat"])
    assert lane is not None and lane.answers == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--expect", "x", "--", "cat"], "every --expect needs an --input, a --text or a --key"),
        (["--text", "", "--", "cat"], "--text needs a text to type"),
        (["--key", "Dwn", "--", "cat"], "unknown key 'Dwn'"),
        (["--key", " ", "--", "cat"], "--key needs key names"),
        (["--key", "\udcff", "--", "cat"], "is not UTF-8 text"),
    ],
)
def test_the_full_path_refuses_what_the_lane_declines(words: list[str], message: str) -> None:
    from agentty_core.errors import UsageError

    with pytest.raises(UsageError, match=message):
        program(build_parser().parse_args(["run", *words]))

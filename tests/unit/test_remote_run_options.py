"""`--host H run`: run's own options told from its program's (`cli/remote_run.run_options`),
as argparse reads them: the program's -h or --json is the program's."""

from __future__ import annotations

import pytest

from agentty_core.cli.parser import build_parser
from agentty_core.cli.remote_run import asks_help, run_options


@pytest.mark.parametrize(
    ("words", "options"),
    [
        (["run", "--", "df", "-h"], []),
        (["run", "df", "-h"], []),
        (["run", "--json", "--", "prog", "--json"], ["--json"]),
        (["run", "sh", "-c", "exit 127", "--json"], []),
        (
            ["run", "--expect", "run", "--input=--json", "--", "x"],
            ["--expect", "run", "--input=--json"],
        ),
        (["run", "--input", "--", "--", "x"], ["--input", "--"]),
        (["run", "--timeout", "5", "-h"], ["--timeout", "5", "-h"]),
        (["--host", "h", "run", "--cwd", "/tmp", "ls"], ["--cwd", "/tmp"]),
        (["run", "--time", "5", "--js", "--", "true"], ["--timeout", "5", "--json"]),
        (["run", "--t", "5", "--", "true"], ["--t"]),  # ambiguous: argparse says so there
    ],
)
def test_run_options_are_read_as_argparse_reads_them(words: list[str], options: list[str]) -> None:
    assert run_options(words) == options


def test_the_program_s_help_is_not_run_s() -> None:
    assert not asks_help(["run", "--", "free", "-h"])
    assert not asks_help(["run", "du", "--help"])
    assert asks_help(["run", "--help"])
    assert asks_help(["run", "--timeout", "3", "-h", "--", "x"])


def test_the_values_of_every_valued_option_are_known() -> None:
    """`run_options` must know each of run's options that takes a value."""
    from agentty_core.cli import remote_run

    run = next(
        action.choices["run"]  # type: ignore[index]
        for action in build_parser()._actions
        if getattr(action, "choices", None) and "run" in action.choices  # type: ignore[operator]
    )
    valued = {
        name
        for action in run._actions
        for name in action.option_strings
        if action.nargs != 0 and name.startswith("--")
    }
    assert valued == set(remote_run._VALUED)

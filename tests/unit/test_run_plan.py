"""`run`'s plan (`cli/run.plan`): the requests in order, and how each step is named, without
any I/O. The CLI and the MCP tool carry it out (tests/integration: test_runlane, test_mcp_run);
here, the answers a driver would give are fed in by hand."""

from __future__ import annotations

from typing import Any

import pytest

from agentty_core.cli.run import Step, _drive, plan, timed_out
from agentty_core.errors import WaitTimeout

READING = {"fired": "input", "lines": ["Name: "]}
SHOWN = {"fired": "text", "lines": ["Name: "]}
ENDED = {"fired": "exit", "exited": True, "exitCode": 0, "lines": ["bye"]}


def walk(steps: Any, answers: list[dict[str, Any] | None]) -> tuple[list[Step], Any]:
    """Feed `answers` in turn (None for an input); the steps taken and what it returned."""
    taken = [steps.send(None)]
    try:
        for answer in answers:
            taken.append(steps.send(answer))
    except StopIteration as done:
        return taken, done.value
    raise AssertionError(f"the plan goes on: {taken[-1].method} {taken[-1].params}")


def test_an_expect_then_its_read_then_the_answer_then_the_exit() -> None:
    steps = plan(["Name:"], [("input", "Ada"), ("key", ["Down", "Enter"])])
    taken, (final, warning) = walk(steps, [SHOWN, READING, None, READING, None, ENDED])
    assert [(s.method, s.params) for s in taken] == [
        ("wait", {"text": "Name:", "exit": True}),
        ("wait", {"input": True, "exit": True}),
        ("text", {"data": "Ada", "enter": True}),
        ("wait", {"input": True, "exit": True}),
        ("key", {"keys": ["Down", "Enter"]}),
        ("wait", {"exit": True}),
    ]
    assert (final, warning) == (ENDED, None)


def test_keys_given_as_words_or_as_a_list() -> None:
    """The command line's `--key 'Down Enter'` is split; a list (the MCP tool's) is kept
    as it is: a space is a key there."""
    cases: list[tuple[str | list[str], list[str]]] = [
        ("Down  Enter", ["Down", "Enter"]),
        ([" ", "Alt+ "], [" ", "Alt+ "]),
    ]
    for given, keys in cases:
        steps = plan([], [("key", given)])
        taken, _ = walk(steps, [READING, None, ENDED])
        assert taken[1].params == {"keys": keys}


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (True, "the program ended while run waited for --expect 'Again:': 2 answer(s) not given"),
        (False, "the program ended while run waited for answer 2's expect 'Again:': 2 answer(s) "
         "not given"),
    ],
)  # fmt: skip
def test_an_end_before_the_answers_leaves_them_unanswered(options: bool, said: str) -> None:
    steps = plan(
        ["Name:", "Again:"], [("input", "a"), ("input", "b"), ("text", "c")], options=options
    )
    _, (final, warning) = walk(steps, [SHOWN, READING, None, ENDED])
    assert final["unanswered"] == 2 and warning == said


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (True, "the program to read input (for --text #1)"),
        (False, "the program to read input (for answer 2)"),
    ],
)  # fmt: skip
def test_each_wait_is_named_for_its_timeout(options: bool, named: str) -> None:
    steps = plan(["Name:"], [("input", "a"), ("text", "b")], options=options)
    taken, _ = walk(steps, [SHOWN, READING, None, ENDED])
    assert taken[3].awaiting == named
    assert timed_out(5, taken[3]) == f"run timed out after 5s waiting for {named}"


class Ending:
    """A driver whose program ends just as the run's time runs out: the wait says timed out,
    with a screen that says it exited."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    def wait(self, ref: str, *, timeout: float = 30.0, **conditions: object) -> dict[str, Any]:
        self.asked.append(conditions)
        raise WaitTimeout("wait timed out after 0s", {**ENDED, "fired": None})

    def text(self, ref: str, data: str, *, enter: bool = False) -> dict[str, Any]:
        raise AssertionError("nothing is typed to a program that ended")

    def key(self, ref: str, names: list[str]) -> dict[str, Any]:
        raise AssertionError("nothing is pressed in a program that ended")


class Options:
    def __init__(self) -> None:
        self.argv = ["x"]
        self.expect = ["Name:"]
        self.answers = [("input", "Ada")]
        self.timeout = 0.0
        self.cols = self.rows = 80
        self.cwd = None
        self.json = True


def test_a_program_ending_as_the_time_runs_out_ended_rather_than_timed_out() -> None:
    """The deadline and the exit at once: its end, with the answer left unanswered, not
    "run timed out" (exit 3) with a screen that says it exited."""
    screen = _drive(Ending(), "s", Options(), deadline=0.0)  # type: ignore[arg-type]
    assert screen["exited"] is True and screen["unanswered"] == 1

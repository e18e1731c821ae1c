"""`WaitConditions`: unset means None (or False for a flag), never merely falsy."""

from __future__ import annotations

import pytest

from agentty_core.errors import UsageError
from agentty_core.waitspec import NoWaitCondition, WaitConditions, wire_params


def test_zero_is_a_value() -> None:
    spec = WaitConditions(changed_since=0, timeout=0)
    assert spec.params() == {"changed_since": 0, "timeout": 0}


def test_only_set_conditions_go_on_the_wire() -> None:
    spec = WaitConditions(text="$ ", exit=True, scrollback=True, timeout=5.0)
    assert spec.conditions() == {"text": "$ ", "exit": True, "scrollback": True}
    assert spec.params() == {"text": "$ ", "exit": True, "scrollback": True, "timeout": 5.0}
    assert wire_params({"regex": None, "input": False, "stable_ms": 0}, 1) == {
        "stable_ms": 0,
        "timeout": 1,
    }


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"scrollback": True}, {"text": None, "input": False}],
    ids=["nothing", "scrollback-only", "all-unset"],
)
def test_a_wait_needs_a_condition(kwargs: dict[str, object]) -> None:
    with pytest.raises(NoWaitCondition):
        WaitConditions(**kwargs)  # type: ignore[arg-type]  # the point is the bad call


@pytest.mark.parametrize(
    "kwargs",
    [
        {"text": ""},
        {"gone": 3},
        {"stable_ms": 0},
        {"changed_since": -1},
        {"changed_since": True},
        {"exit": 1},
        {"exit": True, "timeout": -1},
        {"exit": True, "timeout": float("nan")},
        {"exit": True, "timeout": 86401},
    ],
    ids=repr,
)
def test_bad_values_are_usage_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        WaitConditions(**kwargs)  # type: ignore[arg-type]  # the point is the bad call

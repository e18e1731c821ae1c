"""Late requests across machines: `within` (the caller's seconds) becomes `until` (this
machine's clock) at the relay, and nothing else about the line changes."""

from __future__ import annotations

import json
import time

import pytest

from agentty_core import protocol


def test_within_becomes_until_on_this_machines_clock() -> None:
    line = protocol.request("text", {"data": "x"}, within=5.0)
    before = time.monotonic()
    stamped = json.loads(protocol.stamped(line))
    assert "within" not in stamped and before + 5.0 <= stamped["until"] <= time.monotonic() + 5
    assert stamped["params"] == {"data": "x"} and stamped["method"] == "text"


def test_lines_without_within_go_on_as_they_came() -> None:
    for line in (protocol.request("get"), b"not json\n", b'{"within": "soon"}\n'):
        assert protocol.stamped(line) == line


def test_a_within_that_is_no_finite_number_leaves_the_line_as_it_came() -> None:
    for within in (b"1e999", b"-1e999", b"1" + b"0" * 400, b"true", b'"5"'):
        line = b'{"v":1,"method":"text","params":{"data":"x"},"within":' + within + b"}\n"
        assert protocol.stamped(line) == line


def test_a_stamped_line_is_not_longer_than_it_came() -> None:
    """Re-encoded ASCII-escaped, 800 KB of 'é' became 2.4 MB: over the line limit."""
    line = (
        json.dumps(
            {"v": 1, "method": "text", "params": {"data": "é" * 400_000}, "within": 30},
            ensure_ascii=False,
        ).encode()
        + b"\n"
    )
    out = protocol.stamped(line)
    assert len(out) <= len(line) + 16 and "until" in json.loads(out)


def test_the_relay_splits_requests_at_newlines_only_and_holds_no_more_than_a_line() -> None:
    from agentty_core.cli.relay import _Lines

    lines = _Lines()
    late = b'{"v":1,\r"method":"text","params":{"data":"x"},"within":-1}\n'
    assert b'"until"' in lines.take(late) and b"within" not in lines.take(late)
    assert lines.take(b'{"v":1,"method"') == b"" and lines.rest() == b'{"v":1,"method"'
    huge = b"x" * (protocol.MAX_LINE + 10)
    assert lines.take(huge[:100]) == b""
    assert lines.take(huge[100:]) == huge  # over a line's limit: passed on, not held
    out = lines.take(b"yz\n" + late)  # the long line's end as it came, then a whole line
    assert out.startswith(b"yz\n") and b'"until"' in out[3:] and b"within" not in out


def test_the_lanes_copies_are_the_originals() -> None:
    """The fast lane keeps its own copies (it imports neither `protocol` nor the records)."""
    from agentty_core.cli import hotstatus, lane
    from agentty_core.state import records

    assert frozenset(lane.ACTING) == protocol.ACTING
    assert (hotstatus.LIVE_FIELDS, hotstatus.ENDED_FIELDS) == (
        records.LIVE_FIELDS,
        records.ENDED_FIELDS,
    )


def test_a_line_that_cannot_be_written_again_as_it_was_goes_on_as_it_came() -> None:
    """A lone surrogate (the API's text from non-UTF-8 bytes) or a number out of range
    elsewhere in the line decoded, but writing it again raised: the relay ended with a
    traceback, and the lines read with it were lost."""
    lone = b'{"v":1,"method":"text","params":{"data":"\\udcff"},"within":5}\n'
    out = protocol.stamped(lone)
    assert json.loads(out)["params"]["data"] == "\udcff" and "until" in json.loads(out)
    huge = b'{"v":1,"method":"resize","params":{"cols":1e400},"within":5}\n'
    assert protocol.stamped(huge) == huge


def test_a_caller_across_machines_leaves_part_of_its_wait_for_the_network() -> None:
    """The far relay stamps `until` as the line arrives, and the answer must come back
    before the caller stops waiting: `within` is the wait less a round trip's allowance."""
    assert protocol.relayed_within(5.0) == 5.0 - protocol.TRANSIT_ALLOWANCE
    assert protocol.relayed_within(0.4) == pytest.approx(0.3)  # a short wait keeps 3/4

"""Late requests across machines: `within` (the caller's seconds) becomes `until` (this
machine's clock) at the relay, and nothing else about the line changes."""

from __future__ import annotations

import json
import time

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

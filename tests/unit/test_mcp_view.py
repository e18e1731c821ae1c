"""The MCP tools' paging of a screen and its history (`cli/mcp/view.page`)."""

from __future__ import annotations

import pytest

pytest.importorskip("mcp")

from agentty_core.cli.mcp.view import page
from agentty_core.protocol import JSONObject


def test_an_offset_past_the_last_line_says_there_is_none() -> None:
    """It said "lines 5..4 of 5 shown" (an attack round): a range, empty, written as one."""
    data: JSONObject = {"id": "0123abcd", "lines": [f"row{i}" for i in range(5)]}
    past = page(data, history=False, offset=9)
    assert past["screen"] == "" and past["note"] == "no line at offset 9: there are 5 (0..4)"
    last = page(data, history=False, offset=4)
    assert last["screen"] == "row4" and last["note"] == "lines 4..4 of 5 shown"

"""The MCP `screenshot` tool through the official SDK's stdio client: an image content block
holding a PNG of the session's screen."""

from __future__ import annotations

import base64
import io
import os
from typing import Any

import pytest

from tests.helpers.cli import AGENTTY

mcp = pytest.importorskip("mcp")
pytest.importorskip("PIL")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from PIL import Image  # noqa: E402

from agentty_core.render.png import CELL_H, CELL_W  # noqa: E402


def _id(result: Any) -> str:
    assert not result.is_error, result.content
    data = result.structured_content or {}
    return str(data.get("result", data)["id"])


async def test_mcp_screenshot_returns_a_png_image_block() -> None:
    params = StdioServerParameters(command=AGENTTY, args=["mcp"], env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        hints = tools["screenshot"].annotations
        assert hints is not None and hints.read_only_hint is True
        argv = ["sh", "-c", "printf '\\033[41m  \\033[0m ready'; exec sleep 30"]
        sid = _id(await session.call_tool("start", {"argv": argv, "cols": 30, "rows": 5}))
        waited = await session.call_tool("wait", {"text": "ready", "timeout": 20})
        assert not waited.is_error, waited.content
        shot = await session.call_tool("screenshot", {"scale": 2})
        assert not shot.is_error, shot.content
        [block] = [c for c in shot.content if c.type == "image"]
        assert block.type == "image" and block.mime_type == "image/png"
        image = Image.open(io.BytesIO(base64.b64decode(block.data)))
        assert image.format == "PNG" and image.size == (30 * CELL_W * 2, 5 * CELL_H * 2)
        assert image.convert("RGB").getpixel((CELL_W, CELL_H)) == (205, 0, 0)
        bad = await session.call_tool("screenshot", {"scale": 9})
        assert bad.is_error and "scale" in str(bad.content) and "1..4" in str(bad.content)
        missing = await session.call_tool("screenshot", {"session": "nope"})
        assert missing.is_error and "nope" in str(missing.content)
        assert not (await session.call_tool("kill", {"session": sid})).is_error

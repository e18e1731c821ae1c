"""A screen as a model reads it: the text in a block of its own, the metadata in a small JSON one.

The screen travels as plain text with its rows and columns intact (a JSON string would escape
every newline); the seq, cursor, input state and exit come next to it as JSON; the structured
content holds both for programs. Every block is bounded (`MAX_LINES` lines of at most
`MAX_LINE_CHARS` characters), and scrollback is paged with offset/limit.
"""

from __future__ import annotations

import json
import re

from mcp_types import CallToolResult, ContentBlock, TextContent
from pydantic import BaseModel

from agentty_core.cli.mcp.schemas import MAX_LINE_CHARS, MAX_LINES, Screen
from agentty_core.protocol import JSONObject, str_list
from agentty_core.screen_text import trim_lines

_META = ("seq", "cursor", "size", "altScreen", "modes", "input", "exited", "exitCode", "signal")
# The ansi block: rows cut where the screen block's are, and the colour escapes of all of
# them within this many characters (a cell coloured each its own way is 20 characters).
MAX_ANSI_CHARS = 4 * MAX_LINES * MAX_LINE_CHARS
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_RESET = "\x1b[0m"


def page(
    data: JSONObject,
    *,
    history: bool,
    offset: int | None = None,
    limit: int = MAX_LINES,
    search: str | None = None,
    last: int | None = None,
) -> JSONObject:
    """The screen fields of a tool result: `screen` (text) and the metadata, bounded.

    `history` joins the scrollback to the screen; lines are then numbered from the oldest
    (0). `last` keeps only the last N of those lines, each still numbered by its place in
    the whole (an `offset` names it). Without `offset` the last `limit` lines are shown;
    with `search`, the lines holding it (offset/limit page through the matches)."""
    lines = str_list(data.get("lines"))
    if history:
        lines = str_list(data.get("scrollback")) + lines
    lines = trim_lines(lines)
    total = len(lines)
    first = max(0, total - last) if last is not None else 0  # the first line of the window
    result: JSONObject = {"id": data.get("id")}
    result.update({k: data.get(k) for k in _META if k in data})
    if data.get("title"):  # (most programs set none: no empty field in every answer)
        result["title"] = data["title"]
    if search is not None:
        found = [(i, line) for i, line in enumerate(lines[first:], first) if search in line]
        start = offset or 0
        shown = found[start : start + limit]
        result["matches"] = [{"line": i, "text": line[:MAX_LINE_CHARS]} for i, line in shown]
        result["screen"] = "\n".join(f"{i}: {line[:MAX_LINE_CHARS]}" for i, line in shown)
        result["totalLines"] = total
        if len(found) > start + limit:
            result["note"] = f"{len(found)} matches; pass offset={start + limit} for more"
        return result
    start = max(first, total - limit) if offset is None else min(max(offset, first), total)
    kept = lines[start : start + limit]
    result["screen"] = "\n".join(line[:MAX_LINE_CHARS] for line in kept)
    if history or total > limit:
        result["firstLine"] = start
        result["totalLines"] = total
    if not kept and total:
        result["note"] = f"no line at offset {offset}: there are {total} (0..{total - 1})"
    elif start > 0:
        result["note"] = f"lines {start}..{start + len(kept) - 1} of {total} shown"
    elif start + len(kept) < total:
        result["note"] = f"first {len(kept)} of {total} lines shown"
    notes = [str(result["note"])] if "note" in result else []
    if any(len(line) > MAX_LINE_CHARS for line in kept):
        notes.append(f"lines cut at {MAX_LINE_CHARS} characters")
    if "ansi" in data and not history:  # the same rows as `screen` (trimming drops no row above)
        rows = str_list(data.get("ansi"))[start : start + len(kept)]
        ansi, plain_from = _bounded_ansi(rows, kept)
        result["ansi"] = "\n".join(ansi)
        if plain_from is not None:
            notes.append(f"colours left out from row {plain_from} on (past {MAX_ANSI_CHARS})")
    if notes:
        result["note"] = "; ".join(notes)
    return result


def _bounded_ansi(rows: list[str], lines: list[str]) -> tuple[list[str], int | None]:
    """The ansi rows cut as the screen block's `lines` are, within MAX_ANSI_CHARS: past it
    the rows go as plain text (each still beside its screen row); and the first such row."""
    out: list[str] = []
    used = 0
    for i, row in enumerate(rows):
        cut = _cut_styled(row, MAX_LINE_CHARS)
        used += len(cut) + 1
        if used > MAX_ANSI_CHARS:
            return out + [line[:MAX_LINE_CHARS] for line in lines[i:]], i
        out.append(cut)
    return out, None


def _cut_styled(row: str, chars: int) -> str:
    """`row` up to its `chars`th character of text, its escapes kept that far, and the
    colours reset after it when it is cut."""
    count = pos = 0
    for escape in _SGR.finditer(row):
        if count + escape.start() - pos > chars:
            break
        count += escape.start() - pos
        pos = escape.end()
    else:
        if count + len(row) - pos <= chars:
            return row
    return row[: pos + chars - count] + _RESET


def blocks(model: BaseModel, text_key: str = "screen") -> CallToolResult:
    """The tool result: the screen's text as a block, then the rest as one JSON block."""
    data = model.model_dump(mode="json", exclude_none=True)
    meta = {k: v for k, v in data.items() if k not in (text_key, "ansi")}
    content: list[ContentBlock] = [
        TextContent(type="text", text=str(data.get(text_key, ""))),
        TextContent(type="text", text=json_text(meta)),
    ]
    if "ansi" in data:  # asked for: a model reads the blocks, not the structured content
        content.insert(1, TextContent(type="text", text=str(data["ansi"])))
    return CallToolResult(content=content, structured_content=data)


def plain(model: BaseModel) -> CallToolResult:
    """A small result (no screen): one JSON block and the structured content."""
    data = model.model_dump(mode="json", exclude_none=True)
    block: list[ContentBlock] = [TextContent(type="text", text=json_text(data))]
    return CallToolResult(content=block, structured_content=data)


def json_text(value: object) -> str:
    """JSON for a text block that a model reads: readable (not all of it `\\u` escapes),
    but what is not printable is escaped, as the CLI's human output escapes it. JSON escapes
    the C0 controls itself; a program's argv, title or name may also hold C1 controls
    (U+009B is CSI) or bidi overrides (U+202E), which reorder what is read. The value it
    decodes to is the same."""
    text = json.dumps(value, ensure_ascii=False)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else json.dumps(ch)[1:-1] for ch in text)


def screen_model(fields: JSONObject) -> Screen:
    return Screen.model_validate(fields)

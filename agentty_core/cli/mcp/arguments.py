"""Tool arguments checked as the CLI checks its options: a name the tool does not take is
refused, not dropped, and a value of the wrong type is answered like any agentty error.

The SDK validates arguments with a pydantic model that ignores extra keys: a misspelt
`timout` would wait the default 30 s, a misspelt `nmae` start an unnamed session. Its type
errors reach a model as a multi-line pydantic dump without a code.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import ValidationError

from agentty_core.cli.mcp.errors import CodedUsageError, error_result
from agentty_core.cli.mcp.progress import CALL
from agentty_core.errors import echoed

SHOWN = 10  # unknown arguments named in an error (a model's context is not a dump)


class CheckedServer(MCPServer):
    """`MCPServer` whose `call_tool` refuses unknown arguments and codes type errors."""

    _taken: dict[str, frozenset[str]] | None = None

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        taken = await self._arguments_of(name)
        if taken is None:  # (the SDK's answer has no code, and the name as it came)
            tools = ", ".join(sorted(self._taken or ()))
            message = f"no such tool: {echoed(name)} (tools: {tools})"
            return error_result(CodedUsageError(message, "invalid_argument"))
        unknown = sorted(set(arguments) - taken)
        if unknown:
            listed = ", ".join(echoed(key) for key in unknown[:SHOWN])
            if len(unknown) > SHOWN:
                listed += f" and {len(unknown) - SHOWN} more"
            message = f"{name} takes no argument {listed} (it takes: {', '.join(sorted(taken))})"
            return error_result(CodedUsageError(message, "invalid_argument"))
        call = CALL.set(context)  # (what a tool waiting reports progress to)
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            return error_result(CodedUsageError(_one_line(name, cause), "invalid_argument"))
        finally:
            CALL.reset(call)

    async def _arguments_of(self, name: str) -> frozenset[str] | None:
        """The argument names of a tool (from its input schema, read once); None if no such
        tool (the SDK says so)."""
        if self._taken is None:
            self._taken = {
                tool.name: frozenset(tool.input_schema.get("properties", {}))
                for tool in await self.list_tools()
            }
        return self._taken.get(name)


def _one_line(name: str, error: ValidationError) -> str:
    """`type_text: argument 'text': Input should be a valid string` for each error."""
    parts = []
    for problem in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in problem["loc"])
        parts.append(f"argument {where!r}: {problem['msg']}" if where else problem["msg"])
    return f"{name}: {'; '.join(parts) or 'invalid arguments'}"

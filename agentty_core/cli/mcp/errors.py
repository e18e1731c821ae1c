"""agentty's errors as MCP tool errors a model can act on: the CLI's line and a stable code.

The SDK shows a model the text of a `ToolError` only, and logs a traceback for anything else;
each tool answers an `AgenttyError` itself with an `is_error` result instead, so nothing is
formatted or logged on the way (the answer takes milliseconds, not the half second a
traceback cost). The code is stable for programs; the text is what `agentty` prints.
"""

from __future__ import annotations

from mcp_types import CallToolResult, TextContent

from agentty_core.cli.output import PROG, shown
from agentty_core.errors import (
    EXIT_NOT_EXECUTABLE,
    EXIT_NOT_FOUND,
    AgenttyError,
    AmbiguousSession,
    InvalidKey,
    KillNotConfirmed,
    NoActiveSession,
    ProtocolError,
    RemoteError,
    SessionNotFound,
    SessionNotRunning,
    SpawnError,
    StateError,
    StateLockTimeout,
    TransportError,
    UnsafePath,
    UsageError,
    WaitTimeout,
    WorkerUnreachable,
)
from agentty_core.waitspec import NoWaitCondition

# The worker's own codes (RemoteError.code) that mean the same as one of ours.
# A worker's codes (`protocol.error`) as a tool's; one not listed here is `failed`.
_REMOTE = {
    "exited": "not_running",
    "bad_request": "invalid_argument",
    "too_large": "invalid_argument",
    "busy": "worker_busy",
    "input_full": "worker_busy",
    "regex_timeout": "regex_timeout",
    "kill_unconfirmed": "kill_not_confirmed",
    "state": "state_error",
    "unknown_method": "protocol_error",
    "not_running": "not_running",
    "timeout": "timeout",
    "invalid_key": "invalid_key",
}

# Every code a tool error can carry, for the docs and the tests.
CODES = (
    "session_not_found",
    "ambiguous_session",
    "no_default_session",
    "invalid_key",
    "invalid_argument",
    "bad_regex",
    "regex_timeout",
    "no_wait_condition",
    "name_taken",
    "not_running",
    "program_not_found",
    "not_executable",
    "spawn_failed",
    "timeout",
    "kill_not_confirmed",
    "worker_unreachable",
    "worker_busy",
    "protocol_error",
    "state_locked",
    "unsafe_path",
    "state_error",
    "invalid_host",
    "transport_error",
    "failed",
)


class CodedUsageError(UsageError):
    """A usage error the MCP layer finds itself, with its code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class NoDefaultSession(UsageError):
    """No `session` given, and this connection has not started or attached one."""

    def __init__(self, host: str | None = None) -> None:
        where = "" if host is None else f" on host {host}"
        super().__init__(
            f"no default session{where} on this MCP connection (start or attach one, or pass "
            "session)"
        )


def code_of(exc: AgenttyError) -> str:
    """The stable code of an error (the most specific class wins)."""
    table: tuple[tuple[type[AgenttyError], str], ...] = (
        (NoDefaultSession, "no_default_session"),
        (TransportError, "transport_error"),
        (NoActiveSession, "no_default_session"),
        (SessionNotFound, "session_not_found"),
        (AmbiguousSession, "ambiguous_session"),
        (InvalidKey, "invalid_key"),
        (NoWaitCondition, "no_wait_condition"),
        (SessionNotRunning, "not_running"),
        (KillNotConfirmed, "kill_not_confirmed"),
        (WaitTimeout, "timeout"),
        (WorkerUnreachable, "worker_unreachable"),
        (ProtocolError, "protocol_error"),
        (StateLockTimeout, "state_locked"),
        (UnsafePath, "unsafe_path"),
        (StateError, "state_error"),
    )
    if isinstance(exc, CodedUsageError):
        return exc.code
    if isinstance(exc, RemoteError):
        if exc.code == "bad_request" and exc.message.startswith("invalid regex"):
            return "bad_regex"
        return _REMOTE.get(exc.code, "failed")
    if isinstance(exc, SpawnError):
        return {EXIT_NOT_FOUND: "program_not_found", EXIT_NOT_EXECUTABLE: "not_executable"}.get(
            exc.exit_code, "spawn_failed"
        )
    for cls, code in table:
        if isinstance(exc, cls):
            return code
    if isinstance(exc, UsageError):
        return "name_taken" if "already named" in exc.message else "invalid_argument"
    return "failed"


def error_line(exc: AgenttyError) -> str:
    """What the CLI prints for this error, in the tools' words (`in_tools_words`)."""
    return f"{PROG}: error: {shown(in_tools_words(str(exc)))}"


# What the shared checks say in the command line's words, said in the tools' (an outside
# round: "send --literal", "-- PROGRAM ARGS" name nothing an MCP client can give).
_TOOLS_WORDS = (
    ("send --literal, or text", "send with literal: true, or type_text"),
    ("agentty start [options] -- PROGRAM [ARG...]", "argv (a program and its arguments) or shell"),
    ("agentty start -- PROGRAM [ARG...]", "argv (a program and its arguments) or shell"),
    ("give either --shell CMDLINE or -- PROGRAM ARGS", "give either shell or argv"),
)


def in_tools_words(message: str) -> str:
    for cli, tools in _TOOLS_WORDS:
        message = message.replace(cli, tools)
    return message


def error_result(
    exc: AgenttyError, *, sent: int | None = None, part: bool = False
) -> CallToolResult:
    """The tool's answer to an error: the CLI's line, then `code: <code>` on a line of its
    own; `structuredContent.error` holds both for a program. `sent`: the error came after
    the call's input went out (its wait failed), or `part` of it (a later step of `send`
    failed), with the seq from before it; said, or the input would be sent twice by a
    caller that fixes the wait and calls again."""
    code = code_of(exc)
    error: dict[str, object] = {"code": code, "message": in_tools_words(str(exc))}
    if isinstance(exc, TransportError):  # which host, and what failed: auth, timeout, ...
        error.update(host=exc.host, reason=exc.reason)
    text = f"{error_line(exc)}\ncode: {code}"
    if sent is not None:
        error.update(inputSent=True, seq=sent, **({"partly": True} if part else {}))
        what = "part of the input was sent" if part else "the input was sent"
        after = "the rest was not" if part else "the wait after it failed"
        text += f"\n{what} (seq {sent}); {after}: read the screen before you send it again"
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content={"error": error},
        is_error=True,
    )

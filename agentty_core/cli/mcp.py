"""`agentty mcp`: the session tools over MCP (stdio), for coding agents that speak MCP.

Built on the official SDK's `MCPServer` (the `agentty[mcp]` extra, `mcp>=2,<3`), imported only
by this command since the SDK takes a noticeable time to import. Every tool is a thin layer
over `Client`, so it behaves exactly like the CLI. Results carry the screen and its `seq`, so a
model can chain `wait(changed_since=seq)`; every result is bounded (`MAX_LINES` lines of at
most `MAX_LINE_CHARS` characters) so a flooding program cannot fill a model's context.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from agentty_core._version import __version__
from agentty_core.client import Client
from agentty_core.errors import AgenttyError
from agentty_core.protocol import JSONObject, str_list
from agentty_core.remote.client import RemoteClient

MAX_LINES = 200
MAX_LINE_CHARS = 500
LOG_TAIL_BYTES = 16_384

T = TypeVar("T")

INSTRUCTIONS = """\
agentty runs interactive programs (REPLs, editors, installers, TUIs) in background terminal
sessions. Start one, then alternate typing (type_text / press_keys) and waiting (wait) and
read the rendered screen from the results. Wait for a condition instead of sleeping. A
session keeps running until you kill it; kill what you start. Every tool takes an optional
host (an ssh destination or a name from agentty's hosts.toml) to act on that machine's
sessions instead of this one's."""


def _bounded(lines: list[str]) -> tuple[list[str], bool]:
    clipped = len(lines) > MAX_LINES
    kept = lines[-MAX_LINES:]
    return [line[:MAX_LINE_CHARS] for line in kept], clipped


def _screen(data: JSONObject) -> dict[str, Any]:
    """The part of a screen payload a model needs, bounded."""
    from agentty_core.screen_text import trim_lines

    lines = trim_lines(str_list(data.get("scrollback")) + str_list(data.get("lines")))
    kept, clipped = _bounded(lines)
    result: dict[str, Any] = {
        "screen": "\n".join(kept),
        "seq": data.get("seq"),
        "cursor": data.get("cursor"),
        "input": data.get("input"),
        "exited": data.get("exited"),
        "exitCode": data.get("exitCode"),
        "signal": data.get("signal"),
    }
    if clipped:
        result["note"] = f"only the last {MAX_LINES} lines are shown"
    if "ansi" in data:
        result["ansi"] = "\n".join(_bounded(str_list(data.get("ansi")))[0])
    return result


async def _run(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Client calls block (a wait may take its whole timeout): keep them off the event loop."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))


def build_server(client: Client | None = None) -> MCPServer:
    client = client or Client()
    remotes: dict[str, RemoteClient] = {}

    def pick(host: str | None) -> Client | RemoteClient:
        """This machine's sessions, or those of `host` (one kept client per host)."""
        if not host:
            return client
        if host not in remotes:
            try:
                remotes[host] = RemoteClient(host)
            except AgenttyError as exc:
                raise ToolError(str(exc)) from exc
        return remotes[host]

    server = MCPServer("agentty", version=__version__, instructions=INSTRUCTIONS)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    acts = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    destroys = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

    @server.tool(annotations=acts)
    async def start(
        argv: list[str],
        name: str | None = None,
        cwd: str | None = None,
        cols: int = 80,
        rows: int = 24,
        host: str | None = None,
    ) -> dict[str, Any]:
        """Start a program in a new background terminal session and return its id.

        argv is passed exactly (no shell; use ["sh", "-c", "..."] for pipes). Returns once
        the program runs. The session becomes the default for other tools. Kill it when done.
        """
        rec = await _run(pick(host).start, argv, name=name, cwd=cwd, cols=cols, rows=rows)
        return {"id": rec["id"], "name": rec.get("name"), "status": rec.get("status")}

    @server.tool(name="list", annotations=read_only)
    async def list_sessions(host: str | None = None) -> dict[str, Any]:
        """List sessions: id, name, status (running/exited/lost), command, exit code."""
        recs = await _run(pick(host).sessions)
        keys = ("id", "name", "status", "command", "exitCode", "signal")
        return {"sessions": [{k: r.get(k) for k in keys} for r in recs]}

    @server.tool(annotations=read_only)
    async def get(
        session: str | None = None,
        scrollback: bool = False,
        ansi: bool = False,
        host: str | None = None,
    ) -> dict[str, Any]:
        """Read the rendered screen (plain text, like a person sees it), its seq, cursor and
        input state ({state: reading|busy|exited, echo}). Works after the program exited
        (its last screen). scrollback=true adds history; at most 200 lines are returned."""
        data = await _run(pick(host).get, session, scrollback=scrollback, ansi=ansi)
        return _screen(data)

    @server.tool(annotations=acts)
    async def type_text(
        text: str, session: str | None = None, enter: bool = False, host: str | None = None
    ) -> dict[str, Any]:
        """Type text into the program (no Enter unless enter=true). Returns the screen seq
        from before the input: pass it to wait(changed_since=...) to read the answer."""
        return await _run(pick(host).text, session, text, enter=enter)

    @server.tool(annotations=acts)
    async def press_keys(
        keys: list[str], session: str | None = None, host: str | None = None
    ) -> dict[str, Any]:
        """Press keys in order: Enter Tab Esc Backspace Delete Up Down Left Right Home End
        PageUp PageDown F1..F12 Shift+Tab Ctrl+A..Ctrl+Z Alt+<char>, any single character,
        KEY*N to repeat. An unknown name is an error and nothing is sent. Returns the seq."""
        return await _run(pick(host).key, session, keys)

    @server.tool(annotations=acts)
    async def paste(
        text: str, session: str | None = None, host: str | None = None
    ) -> dict[str, Any]:
        """Paste text (a bracketed paste when the program supports it: multi-line input)."""
        return await _run(pick(host).paste, session, text)

    @server.tool(annotations=read_only)
    async def wait(
        session: str | None = None,
        text: str | None = None,
        regex: str | None = None,
        gone: str | None = None,
        stable_ms: int | None = None,
        changed_since: int | None = None,
        input: bool = False,
        exit: bool = False,
        timeout: float = 30.0,
        host: str | None = None,
    ) -> dict[str, Any]:
        """Block until any condition holds, then return the screen and which one fired:
        text/regex on screen, gone (text left the screen), stable_ms without change,
        changed_since (a seq from type_text/press_keys), input (the program waits for
        keys), exit. On timeout returns timedOut=true with the current screen. Prefer this
        to sleeping."""
        from agentty_core.errors import WaitTimeout

        try:
            data = await _run(
                pick(host).wait,
                session,
                timeout=timeout,
                text=text,
                regex=regex,
                gone=gone,
                stable_ms=stable_ms,
                changed_since=changed_since,
                input=input,
                exit=exit,
            )
        except WaitTimeout as exc:
            return {"fired": None, "timedOut": True, "message": exc.message, **_screen(exc.screen)}
        return {"fired": data.get("fired"), "elapsedMs": data.get("elapsed_ms"), **_screen(data)}

    @server.tool(annotations=acts)
    async def resize(
        cols: int, rows: int, session: str | None = None, host: str | None = None
    ) -> dict[str, Any]:
        """Resize the session's terminal (the program gets SIGWINCH)."""
        return await _run(pick(host).resize, session, cols, rows)

    @server.tool(annotations=destroys)
    async def signal(
        name: str, session: str | None = None, host: str | None = None
    ) -> dict[str, Any]:
        """Send INT TERM HUP QUIT USR1 USR2 WINCH CONT STOP or KILL to the foreground job."""
        return await _run(pick(host).signal, session, name)

    @server.tool(annotations=destroys)
    async def kill(session: str | None = None, host: str | None = None) -> dict[str, Any]:
        """End the session's whole process tree (HUP, TERM, KILL) and confirm it is gone."""
        return await _run(pick(host).kill, session)

    @server.tool(annotations=read_only)
    async def logs(session: str | None = None, host: str | None = None) -> dict[str, Any]:
        """The session worker's own log (not the program's output): start-up, errors."""
        chosen = pick(host)
        if isinstance(chosen, RemoteClient):
            text = await _run(chosen.log_text, session)
            return {"host": chosen.host.name, "log": text[-LOG_TAIL_BYTES:]}
        path = await _run(chosen.logs, session)
        try:
            data = path.read_bytes()[-LOG_TAIL_BYTES:]
        except FileNotFoundError:
            data = b""
        return {"path": str(path), "log": data.decode("utf-8", "replace")}

    return server


def main() -> None:
    build_server().run("stdio")

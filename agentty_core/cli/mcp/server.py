"""`agentty mcp`: the session tools over MCP (stdio), for coding agents that speak MCP.

Built on the official SDK's `MCPServer` (the `agentty[mcp]` extra, `mcp>=2,<3`), imported only
by this command since the SDK takes a noticeable time to import. The tools behave like the
CLI (same checks, same messages); an error answers with the CLI's line and a stable code
(`errors.py`). Requests to workers are async (`backend.py`): a pending wait holds a socket,
not a thread. Each connection has its own default session. `lifecycle.py` runs the server
and ends it with its client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, ParamSpec

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, StrictBool, StrictFloat

from agentty_core._version import __version__
from agentty_core.cli.mcp import pending
from agentty_core.cli.mcp import schemas as s
from agentty_core.cli.mcp.arguments import CheckedServer
from agentty_core.cli.mcp.backend import Place, Sessions, in_thread
from agentty_core.cli.mcp.errors import CodedUsageError, error_result
from agentty_core.cli.mcp.progress import reporting
from agentty_core.cli.mcp.running import run_to_end
from agentty_core.cli.mcp.view import blocks, json_text, page, plain
from agentty_core.client import Client
from agentty_core.errors import AgenttyError, SessionNotRunning, WaitTimeout
from agentty_core.input_steps import text_params
from agentty_core.protocol import JSONObject
from agentty_core.state.records import is_live
from agentty_core.waitspec import MAX_SEQ, MAX_STABLE_MS, WaitConditions

P = ParamSpec("P")

INSTRUCTIONS = """\
agentty runs interactive programs (REPLs, editors, installers, TUIs) in background terminal
sessions. Start one, then alternate typing (type_text / press_keys) and waiting (wait) and
read the rendered screen from the results. Wait for a condition instead of sleeping. A
program that runs to its end (an installer and its prompts) takes one `run` call. The
session you started or attached last is the default for calls without `session`. A session
keeps running until you kill it; kill what you start. An error names its cause and a code.
Every tool takes an optional `host` (a hosts.toml name or an ssh destination) to work on the
sessions of another machine; the default session is addressed on its own host."""


def guarded(
    tool: Callable[P, Awaitable[CallToolResult]],
) -> Callable[P, Awaitable[CallToolResult]]:
    """agentty's errors become the tool's error result (the CLI's line and a code)."""

    @functools.wraps(tool)
    async def run(*args: P.args, **kwargs: P.kwargs) -> CallToolResult:
        try:
            return await tool(*args, **kwargs)
        except AgenttyError as exc:
            return error_result(exc)

    return run


def reflow(doc: str) -> str:
    """A docstring as a model should read it: no indentation, one line per paragraph."""
    import inspect

    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _wait_spec(**fields: object) -> WaitConditions:
    regex = fields.get("regex")
    if isinstance(regex, str):
        from agentty_core.regexbudget import InvalidRegex, compile_pattern

        try:
            compile_pattern(regex)
        except InvalidRegex as exc:
            raise CodedUsageError(str(exc), "bad_regex") from None
    return WaitConditions(**fields)  # type: ignore[arg-type]  # checked by WaitConditions


def build_server(client: Client | None = None) -> MCPServer:
    sessions = Sessions(client)
    server = CheckedServer("agentty", version=__version__, instructions=INSTRUCTIONS)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    acts = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    destroys = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

    def tool(
        annotations: ToolAnnotations, name: str | None = None
    ) -> Callable[[Callable[P, Awaitable[CallToolResult]]], Callable[P, Awaitable[CallToolResult]]]:
        """Register a guarded tool; its description is the docstring, reflowed."""

        def register(
            func: Callable[P, Awaitable[CallToolResult]],
        ) -> Callable[P, Awaitable[CallToolResult]]:
            described = server.tool(
                name=name, description=reflow(func.__doc__ or ""), annotations=annotations
            )
            described(guarded(func))
            return func

        return register

    @tool(annotations=acts)
    async def start(
        argv: s.Argv = None,
        shell: s.Shell = None,
        name: Annotated[
            str | None, Field(description="A name to refer to the session by (unique).")
        ] = None,
        cwd: s.Cwd = None,
        env: s.Env = None,
        cols: s.Cols = 80,
        rows: s.Rows = 24,
        record: Annotated[
            StrictBool, Field(description="Record an asciicast of the session (default false).")
        ] = False,
        host: s.Host = None,
    ) -> Annotated[CallToolResult, s.Started]:
        """Start a program in a new background terminal session; returns once it runs.

        It becomes this connection's default session (other clients keep theirs), on its
        host. Kill it when done."""
        place = sessions.place(host)
        rec = await place.start(
            argv, shell=shell, name=name, cwd=cwd, cols=cols, rows=rows, env=env, record=record
        )
        sessions.adopt(place, str(rec["id"]))
        return plain(s.Started.model_validate({**rec, "host": place.host}))

    @tool(annotations=acts)
    async def run(
        argv: s.Argv = None,
        shell: s.Shell = None,
        answers: Annotated[
            list[s.Answer] | None,
            Field(
                description="The prompts' answers, in order: each waits for its expect (when "
                "it has one) and for the program to read input, then sends its input, text "
                "or keys."
            ),
        ] = None,
        cwd: s.Cwd = None,
        env: s.Env = None,
        cols: s.Cols = 80,
        rows: s.Rows = 24,
        timeout: Annotated[
            StrictFloat,
            Field(
                json_schema_extra={"minimum": 0, "maximum": 86400},
                description="Seconds for the whole run, 0..86400 (default 60). Past it the "
                "program is ended and the result has timedOut=true (not an error).",
            ),
        ] = 60.0,
        host: s.Host = None,
    ) -> Annotated[CallToolResult, s.RunResult]:
        """Run a program to its end in a session of its own: answer its prompts in order,
        wait for it to exit, and return its final screen and exit code. The session is
        removed then: nothing to kill. For a program to keep talking to, use start.

        An installer, say: answers=[{"expect": "Name:", "input": "Ada"}, {"expect":
        "Continue?", "keys": ["y"]}]."""
        if not 0 <= timeout <= 86400:  # (NaN too)
            raise CodedUsageError("timeout must be in 0..86400 seconds", "invalid_argument")
        place = sessions.place(host)
        ran = run_to_end(
            place,
            argv,
            answers or [],
            shell=shell,
            cwd=cwd,
            env=env,
            cols=cols,
            rows=rows,
            timeout=timeout,
        )
        data = await reporting(ran, timeout)
        fields = {
            **page(data, history=False),
            "timedOut": data.get("timedOut") is True,
            "elapsedMs": data.get("elapsed_ms"),
            "unanswered": data.get("unanswered"),
            "message": data.get("message"),
        }
        return blocks(s.RunResult.model_validate(fields))

    @tool(annotations=acts)
    async def attach(
        session: s.Session = None, host: s.Host = None
    ) -> Annotated[CallToolResult, s.Started]:
        """Make a running session this connection's default (the CLI's active one stays)."""
        place, ref = sessions.target(session, host)
        rec = await place.require_running(ref)
        sessions.adopt(place, str(rec["id"]))
        return plain(s.Started.model_validate({**rec, "host": place.host}))

    @tool(name="list", annotations=read_only)
    async def list_sessions(
        host: s.Host = None,
        running: Annotated[
            StrictBool,
            Field(description="Only the sessions still running (ended ones stay until gc)."),
        ] = False,
    ) -> Annotated[CallToolResult, s.SessionList]:
        """List the sessions (of `host`, default this machine): id, name, status, command,
        exit code, input state, last activity."""
        place = sessions.place(host)
        recs = await place.sessions()
        items = [
            {**rec, "default": sessions.is_default(place, rec["id"])}
            for rec in recs
            if isinstance(rec.get("id"), str) and (not running or is_live(rec))
        ]
        default = sessions.default[1] if sessions.default else None
        listed = {"sessions": items, "default": default, "host": place.host}
        return plain(s.SessionList.model_validate(listed))

    @tool(annotations=read_only)
    async def get(
        session: s.Session = None,
        lines: Annotated[
            s.Whole | None,
            Field(
                json_schema_extra={"minimum": 1, "maximum": s.MAX_LINES},
                description=f"Only the last N lines of output (scrollback and screen), "
                f"1..{s.MAX_LINES}.",
            ),
        ] = None,
        scrollback: Annotated[
            StrictBool, Field(description="Include the history above the screen (default false).")
        ] = False,
        offset: Annotated[
            s.Whole | None,
            Field(
                json_schema_extra={"minimum": 0, "maximum": s.MAX_OFFSET},
                description="First line to show, 0 = the oldest (default: the last `limit`).",
            ),
        ] = None,
        limit: Annotated[
            s.Whole,
            Field(
                json_schema_extra={"minimum": 1, "maximum": s.MAX_LINES},
                description=f"Lines to show, 1..{s.MAX_LINES} (default {s.MAX_LINES}).",
            ),
        ] = s.MAX_LINES,
        search: Annotated[
            str | None,
            Field(description="Show only the lines containing this text (with scrollback)."),
        ] = None,
        ansi: Annotated[
            StrictBool,
            Field(
                description="Also return the screen's rows with colour escapes, in a block of "
                "their own (false; not with lines, scrollback, offset or search)."
            ),
        ] = False,
        host: s.Host = None,
    ) -> Annotated[CallToolResult, s.Screen]:
        """Read the rendered screen as plain text (as a person sees it), then as JSON its seq,
        cursor, size, whether a full-screen program shows its own (altScreen), the title and
        modes it set, its input state and exit. Works after the program exited (its last
        screen)."""
        _check("lines", lines, 1, s.MAX_LINES)
        _check("offset", offset, 0, s.MAX_OFFSET)
        _check("limit", limit, 1, s.MAX_LINES)
        # The last `lines` are cut here, from the whole history: numbered by their place
        # in it, as every other line an offset or a search names.
        history = scrollback or search is not None or offset is not None or lines is not None
        if ansi and history:  # (it was the screen's rows all the same)
            raise CodedUsageError(
                "ansi is the screen's own rows: not with lines, scrollback, offset or search",
                "invalid_argument",
            )
        place, ref = sessions.target(session, host)
        data = await place.get(ref, scrollback=history, ansi=ansi)
        fields = page(data, history=history, offset=offset, limit=limit, search=search, last=lines)
        return blocks(s.Screen.model_validate(fields))

    @tool(annotations=read_only)
    async def screenshot(
        session: s.Session = None,
        scale: Annotated[
            s.Whole,
            Field(
                json_schema_extra={"minimum": 1, "maximum": 4},
                description="Pixels per font pixel, 1..4 (default 1: a cell is 8x16 pixels).",
            ),
        ] = 1,
        host: s.Host = None,
    ) -> Annotated[CallToolResult, s.Screenshot]:
        """A picture of the screen (PNG) with its colours, bold, italics, underline, reverse
        and the cursor, for a model that reads images; then its size and seq as JSON. The
        text itself is in get."""
        import base64
        import json

        from mcp_types import ImageContent, TextContent

        from agentty_core.render.png import png_bytes

        _check("scale", scale, 1, 4)
        place, ref = sessions.target(session, host)
        data = await place.get(ref, ansi=True)
        png = await in_thread(png_bytes, data, scale=scale)
        seq = data.get("seq")
        meta = s.Screenshot(  # the size from the PNG's header (IHDR)
            width=int.from_bytes(png[16:20], "big"),
            height=int.from_bytes(png[20:24], "big"),
            seq=seq if isinstance(seq, int) else 0,
        ).model_dump(mode="json")
        image = ImageContent(
            type="image", data=base64.b64encode(png).decode(), mime_type="image/png"
        )
        text = TextContent(type="text", text=json.dumps(meta))
        return CallToolResult(content=[image, text], structured_content=meta)

    @tool(annotations=acts)
    async def type_text(
        text: Annotated[
            s.Text,
            Field(
                description="The text to type, literally. Several lines go in one call, each "
                "newline an Enter (as a paste where the program supports it, its last newline "
                "typed after: the lines run); a REPL's block may need an empty line to end."
            ),
        ],
        session: s.Session = None,
        enter: Annotated[
            StrictBool, Field(description="Press Enter after it (default false).")
        ] = False,
        wait: s.ThenParam = None,
        host: s.Host = None,
    ) -> Annotated[CallToolResult, s.Sent]:
        """Type text into the program. Returns the screen seq from before the input; with
        `wait`, also the screen once a condition held on output after the input (so the
        echo of the typed text never satisfies it)."""
        return await sent(session, host, [("text", text_params(text, enter=enter))], wait)

    @tool(annotations=acts)
    async def press_keys(
        keys: s.Keys, session: s.Session = None, wait: s.ThenParam = None, host: s.Host = None
    ) -> Annotated[CallToolResult, s.Sent]:
        """Press keys in order. An unknown name is an error and nothing is sent. Returns the
        seq from before the input; with `wait`, the screen once a condition held after it."""
        from agentty_core import keys as keynames
        from agentty_core.errors import UsageError

        if not keys:
            raise UsageError("press_keys needs at least one key")
        keynames.parse_all(list(keys))  # nothing is sent when one is wrong
        return await sent(session, host, [("key", {"keys": keys})], wait)

    @tool(annotations=acts)
    async def paste(
        text: Annotated[s.Text, Field(description="The text; may span lines.")],
        session: s.Session = None,
        wait: s.ThenParam = None,
        host: s.Host = None,
    ) -> Annotated[CallToolResult, s.Sent]:
        """Paste text as a terminal does: a bracketed paste when the program turned that on
        (a shell, a REPL, an editor), which takes it as one edit, newlines kept and nothing
        run until Enter (press_keys Enter; type_text types lines that run); plain otherwise.
        With `wait`, the screen once a condition held on output after the paste."""
        return await sent(session, host, [("text", text_params(text, paste=True))], wait)

    @tool(annotations=acts)
    async def send(
        args: Annotated[
            list[str],
            Field(
                json_schema_extra={"minItems": 1},
                description="In order: a key name (Enter, Esc, Ctrl+C, C-c, Up, ...) is "
                "pressed, anything else is typed literally, as tmux send-keys does; e.g. "
                '["i", "a line", "Esc", ":wq", "Enter"] edits and saves in vim.',
            ),
        ],
        session: s.Session = None,
        literal: Annotated[
            StrictBool, Field(description="Type every argument, key names too (default false).")
        ] = False,
        enter: Annotated[
            StrictBool, Field(description="Press Enter at the end (default false).")
        ] = False,
        wait: s.ThenParam = None,
        host: s.Host = None,
    ) -> Annotated[CallToolResult, s.Sent]:
        """Typed text and named keys in one call. A word spelt like a key that names none
        (Ctrl+Banana) is an error and nothing is sent. Returns the seq from before; with
        `wait`, the screen once a condition held on output after the input."""
        from agentty_core.input_steps import send_steps

        steps = send_steps(args, literal=literal, enter=enter)
        return await sent(session, host, steps, wait)

    @tool(annotations=read_only)
    async def wait(
        session: s.Session = None,
        text: Annotated[
            str | None,
            Field(
                description="Until this text is on the screen, within one row (the cursor's "
                "row reads up to the cursor: 'Name: ' finds a prompt's trailing space)."
            ),
        ] = None,
        regex: Annotated[
            str | None,
            Field(description="Until a row matches this Python regex (one row at a time)."),
        ] = None,
        gone: Annotated[
            str | None, Field(description="Until this text is no longer on the screen.")
        ] = None,
        stable_ms: Annotated[
            s.Whole | None,
            Field(
                json_schema_extra={"minimum": 1, "maximum": MAX_STABLE_MS},
                description="Until the screen has not changed for this many milliseconds.",
            ),
        ] = None,
        changed_since: Annotated[
            s.Whole | None,
            Field(
                json_schema_extra={"minimum": 0, "maximum": MAX_SEQ},
                description="Until the screen differs from this seq (from type_text etc.).",
            ),
        ] = None,
        input: Annotated[
            StrictBool, Field(description="Until the program waits for keyboard input.")
        ] = False,
        exit: Annotated[StrictBool, Field(description="Until the program exits.")] = False,
        scrollback: Annotated[
            StrictBool, Field(description="text/regex/gone also look at the history (false).")
        ] = False,
        after: Annotated[
            s.Whole | None,
            Field(
                json_schema_extra={"minimum": 0, "maximum": MAX_SEQ},
                description="Only a screen newer than this seq counts (the seq type_text etc. "
                "returned), and text/regex see neither the echo of the typed input nor the rows "
                "it found that show nothing new (the last result, the prompt it was typed at).",
            ),
        ] = None,
        timeout: s.Timeout = 30.0,
        host: s.Host = None,
    ) -> Annotated[CallToolResult, s.WaitResult]:
        """Block until any one condition holds, then return the screen and which one fired
        (`fired`). On timeout: timedOut=true with the current screen (not an error); ended
        before any held: exited=true with the last screen. Prefer this to sleeping."""
        spec = _wait_spec(
            text=text,
            regex=regex,
            gone=gone,
            stable_ms=stable_ms,
            changed_since=changed_since,
            input=input,
            exit=exit,
            scrollback=scrollback,
            timeout=timeout,
            after=after,
        )
        place, ref = sessions.target(session, host)
        return blocks(await waited(place, ref, spec))

    async def waited(place: Place, ref: str, spec: WaitConditions) -> s.WaitResult:
        try:
            data = await reporting(place.wait(ref, spec), spec.timeout)
        except WaitTimeout as exc:
            fields = {**page(exc.screen, history=False), "timedOut": True, "message": exc.message}
            return s.WaitResult.model_validate(fields)
        except SessionNotRunning as exc:
            if not exc.screen:
                raise
            # The end made the wait impossible: its last screen, as the CLI prints it (why
            # it never came is usually on it), with what ended it.
            fields = {**page(exc.screen, history=False), "exited": True, "message": exc.message}
            return s.WaitResult.model_validate(fields)
        if "input" not in data and not data.get("exited") and isinstance(data.get("id"), str):
            # The worker probes the input state only for an input wait; a model reads it on
            # every screen (one more request, ~1 ms).
            now = await place.get(str(data["id"]))
            data["input"] = now.get("input")
            if now.get("exited"):  # (it ended meanwhile: said by more than its input state)
                data.update({key: now.get(key) for key in ("exited", "exitCode", "signal")})
        fields = {
            **page(data, history=False),
            "fired": data.get("fired"),
            "elapsedMs": data.get("elapsed_ms"),
            "match": data.get("match"),
        }
        return s.WaitResult.model_validate(fields)

    async def sent(
        session: str | None,
        host: str | None,
        steps: list[tuple[str, JSONObject]],
        then: s.Then | None,
    ) -> CallToolResult:
        """Send the requests in order; then, if asked, wait on output newer than the input.
        The wait is checked first: a call refused for it sent nothing; one whose wait fails
        after the input went out says so (`error_result`'s `sent`)."""
        checked = None if then is None else _wait_spec(**then.model_dump())
        place, ref = sessions.target(session, host)
        seq = None
        async with sessions.typing_into(place, ref):  # (another call's steps not in between)
            for done, (method, params) in enumerate(steps):
                try:
                    answer = await place.act(ref, method, params)
                except AgenttyError as exc:
                    if done == 0 and not exc.input_sent:  # (a text in parts: some went)
                        raise
                    before = seq if isinstance(seq, int) else exc.input_seq
                    return error_result(exc, sent=before or 0, part=True)
                if seq is None:
                    seq = answer.get("seq")
        before = seq if isinstance(seq, int) else 0
        if checked is None:
            return plain(s.Sent(seq=before))
        spec = dataclasses.replace(checked, after=before)
        try:
            result = s.Sent(seq=before, waited=await waited(place, ref, spec))
        except AgenttyError as exc:
            return error_result(exc, sent=before)
        data = result.model_dump(mode="json", exclude_none=True)
        screen = str(data.get("waited", {}).get("screen", ""))
        # As the structured content: the seq from before the input, the wait's own apart.
        meta = {"seq": before, "waited": {k: v for k, v in data["waited"].items() if k != "screen"}}
        return CallToolResult(
            content=[
                TextContent(type="text", text=screen),
                TextContent(type="text", text=json_text(meta)),
            ],
            structured_content=data,
        )

    @tool(annotations=acts)
    async def resize(
        cols: s.Cols, rows: s.Rows, session: s.Session = None, host: s.Host = None
    ) -> Annotated[CallToolResult, s.Resized]:
        """Resize the session's terminal (the program gets SIGWINCH)."""
        place, ref = sessions.target(session, host)
        result = await place.control(ref, "resize", {"cols": cols, "rows": rows})
        return plain(s.Resized.model_validate(result))

    @tool(annotations=destroys)
    async def signal(
        name: s.Signal,
        session: s.Session = None,
        leader: Annotated[
            StrictBool,
            Field(description="Signal the program itself, not its foreground job (false)."),
        ] = False,
        host: s.Host = None,
    ) -> Annotated[CallToolResult, s.Signalled]:
        """Send a signal to the session's foreground job (INT is what Ctrl+C sends)."""
        place, ref = sessions.target(session, host)
        result = await place.control(ref, "signal", {"name": name, "leader": leader})
        return plain(s.Signalled.model_validate(result))

    @tool(annotations=destroys)
    async def kill(
        session: s.Session = None, host: s.Host = None, timeout: s.Grace = 2.0
    ) -> Annotated[CallToolResult, s.Killed]:
        """End the session's whole process tree (HUP, TERM, KILL) and confirm it is gone."""
        if not 0 <= timeout <= 60:  # (NaN too)
            raise CodedUsageError("timeout must be in 0..60 seconds", "invalid_argument")
        place, ref = sessions.target(session, host)
        # Finished even if the call is cancelled (its client gone: the server waits for it
        # before it leaves), or a kill cut short left a program that ignores SIGHUP running.
        killing = pending.keep(place.kill(ref, grace=timeout))
        return plain(s.Killed.model_validate(await asyncio.shield(killing)))

    @tool(annotations=acts)
    async def record(
        on: Annotated[StrictBool, Field(description="true starts recording, false stops it.")],
        session: s.Session = None,
        input: Annotated[StrictBool, Field(description="Also record the input sent.")] = False,
        host: s.Host = None,
    ) -> Annotated[CallToolResult, s.Recording]:
        """Start or stop an asciicast recording of a running session (the path is returned;
        it is on the session's host)."""
        place, ref = sessions.target(session, host)
        return plain(s.Recording.model_validate(await place.record(ref, on, input=input)))

    @tool(annotations=read_only)
    async def logs(
        session: s.Session = None, host: s.Host = None
    ) -> Annotated[CallToolResult, s.Log]:
        """The session worker's own log (not the program's output): start-up, errors."""
        place, ref = sessions.target(session, host)
        path, data = await place.logs(ref)
        log = data[-s.LOG_TAIL_BYTES :].decode("utf-8", "replace")
        return plain(s.Log(host=place.host, path=path, log=log))

    return server


def _check(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise CodedUsageError(f"{name} must be a whole number in {low}..{high}", "invalid_argument")

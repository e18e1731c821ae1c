"""Running `agentty mcp`: serve over stdio until the client is gone, then leave at once.

The server ends at stdin EOF, or when its parent process (the client) is gone, cancelling
pending waits (their connections close, which cancels them in the workers) and letting the
cancelled runs end their programs and remove their sessions first (`pending.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sys
import threading

import anyio
from mcp.server.mcpserver import MCPServer

from agentty_core.cli.mcp import pending
from agentty_core.cli.mcp.server import build_server
from agentty_core.errors import AgenttyError
from agentty_core.screen_text import printable

# Once the client is gone: how long the cancelled calls get to close their connections
# before the server leaves whatever it still waits for.
LEAVE_AFTER = 1.0
# How long the cancelled runs and kills get to end their programs (a kill's three steps of
# 2 s by default) and remove their sessions.
SETTLE_WITHIN = 8.0


async def _serve(server: MCPServer) -> None:
    """Serve until stdin ends or the parent (the client) is gone, then cancel what is left:
    a pending wait must not keep the process alive; a run's clean-up is waited for."""
    try:
        await _serve_until_gone(server)
    finally:
        with anyio.CancelScope(shield=True):
            await pending.settled(SETTLE_WITHIN)


async def _serve_until_gone(server: MCPServer) -> None:
    async with anyio.create_task_group() as tg:

        async def watch_parent() -> None:
            parent = os.getppid()
            while os.getppid() == parent:
                await anyio.sleep(0.25)
            # Its stdin may still be open in a process it left behind, and the SDK reads
            # stdin in a thread that the cancelled server waits for: it stayed until that
            # process ended. So it leaves once the cancelled calls have closed.
            settling = pending.pending()
            timer = threading.Timer(
                LEAVE_AFTER + (SETTLE_WITHIN if settling else 0.0), _leave, args=(0,)
            )
            timer.daemon = True
            timer.start()
            if settling:  # (and sooner, once what it waits for is done)
                _LEAVING.append(asyncio.ensure_future(_leave_when_settled()))
            tg.cancel_scope.cancel()

        tg.start_soon(watch_parent)
        await server.run_stdio_async()
        tg.cancel_scope.cancel()


async def _leave_when_settled() -> None:
    """Leave once the pending work is done (its cancelled calls then close their connections
    within LEAVE_AFTER), not at the timer's bound."""
    await pending.settled(SETTLE_WITHIN)
    await asyncio.sleep(LEAVE_AFTER)
    _leave(0)


_LEAVING: list[asyncio.Future[None]] = []  # (held: the loop holds tasks weakly)


def main() -> None:
    """Serve, then leave at once: the interpreter's own shutdown after a served session was
    measured at 1.5-3 s (in C, past every Python frame), and a client that closed its end
    expects the server gone. A client gone mid-answer (a broken pipe) is a normal end."""
    code = 0
    try:
        if sys.stdout is None:  # started with it closed (`>&-`): nothing to answer on
            raise OSError(errno.EBADF, "stdout is closed")
        anyio.run(_serve, build_server())
    except KeyboardInterrupt:
        code = 130
    except AgenttyError as exc:  # the home unusable (unsafe, read-only): as the CLI says it
        with contextlib.suppress(Exception):
            sys.stderr.write(f"agentty: error: {printable(str(exc))}\n")
        code = exc.exit_code
    except BaseException as exc:
        said = _output_failed(exc)
        if said is not None:
            with contextlib.suppress(Exception):
                sys.stderr.write(f"agentty: error: cannot write the output: {said}\n")
            code = 1
        elif not _client_gone(exc):
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        _leave(code)


def _leave(code: int) -> None:
    """End the relays to other hosts, flush, exit (whatever else still runs)."""
    _end_relays()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _end_relays() -> None:
    """Relays to other hosts end with the server: a pending remote wait's relay would
    otherwise outlive it (its stdin's end is no reason to stop waiting for the answer)."""
    if "agentty_core.remote.aio_relay" in sys.modules:  # only if a tool used a host
        from agentty_core.remote import aio_relay

        aio_relay.end_all()


def _output_failed(exc: BaseException) -> str | None:
    """Why our stdout could not be written (a full disk, an I/O error, closed), if that is
    what ended the server (in any nesting of exception groups): one line, not a dump."""
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, (list, tuple)):
        found = [_output_failed(e) for e in inner if isinstance(e, BaseException)]
        return next((f for f in found if f is not None), None)
    if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
        return exc.strerror or str(exc)
    return None


_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EBADF, errno.EDQUOT, errno.EFBIG})


def _client_gone(exc: BaseException) -> bool:
    """Only broken pipes and resets (in any nesting of exception groups)."""
    inner = getattr(exc, "exceptions", None)  # an exception group (3.11+, or anyio's backport)
    if isinstance(inner, (list, tuple)):
        return all(isinstance(e, BaseException) and _client_gone(e) for e in inner)
    return isinstance(exc, (BrokenPipeError, ConnectionResetError))

"""`agentty run`: start a program, answer its prompts, wait for its exit, clean up.

`run` owns the session it starts, so it ends it on every way out: the program's exit, a
timeout, an error, and SIGINT (Ctrl-C), SIGTERM or SIGHUP. While the session is being
started a signal is only noted (the session's id is not known yet: interrupting `start`
there could leave a session nobody knows of); it takes effect once `start` returns.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from types import FrameType

from agentty_core.cli.output import emit, error, screen_text
from agentty_core.client import Client
from agentty_core.errors import UsageError, WaitTimeout
from agentty_core.protocol import JSONObject

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """`run` was told to stop by a signal (a BaseException, like KeyboardInterrupt: no
    `except Exception` on the way may swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """SIGINT/SIGTERM/SIGHUP as `Stopped`, raised only while `armed`; noted otherwise."""

    def __init__(self) -> None:
        self.armed = False
        self.pending: int | None = None
        self._saved: dict[int, Handler] = {}

    def __enter__(self) -> _Signals:
        for signum in SIGNALS:
            try:
                self._saved[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (run called as a library): as before
                break
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._saved.items():
            if handler is not None:  # None: not set from Python; nothing to put back
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.pending is None:
            self.pending = signum
        if self.armed:
            self.armed = False  # one Stopped; a second Ctrl-C must not cut the cleanup short
            raise Stopped(signum)

    def arm(self) -> None:
        """From now on a signal raises; one that came meanwhile raises now."""
        if self.pending is not None:
            raise Stopped(self.pending)
        self.armed = True

    def disarm(self) -> None:
        self.armed = False


def run(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("run needs a program: agentty run [options] -- PROGRAM [ARG...]")
    if len(args.expect) > len(args.input):
        raise UsageError("every --expect needs an --input to send when it appears")
    client = Client()
    deadline = time.monotonic() + float(args.timeout)
    with _Signals() as signals:
        record = client.start(argv, cwd=args.cwd, cols=args.cols, rows=args.rows, activate=False)
        sid = record["id"]
        try:
            try:
                signals.arm()
                screen = _drive(client, sid, args, deadline)
            finally:
                signals.disarm()  # a signal up to here is a Stopped, caught below; later, noted
        except WaitTimeout as exc:
            error(exc)
            client.kill_quietly(sid)
            sys.stdout.write(screen_text(exc.screen))
            client.gc_session(sid)
            return exc.exit_code
        except Stopped as exc:
            name = signal.Signals(exc.signum).name
            with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
                error(f"run stopped by {name}: ending the program")
            _end(client, sid)
            return 128 + exc.signum
        except BaseException:
            _end(client, sid)
            raise
    code = screen.get("exitCode")
    if args.json:
        emit(screen)
    else:
        sys.stdout.write(screen_text(screen))
    client.gc_session(sid)
    return code if isinstance(code, int) else 1


def _drive(client: Client, sid: str, args: argparse.Namespace, deadline: float) -> JSONObject:
    """Answer each prompt in turn, then wait for the exit; the final screen. A timeout says
    which step never came (the --expect text, the read, the exit)."""

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    awaiting = "the program to exit"
    try:
        for i, text in enumerate(args.input):
            if i < len(args.expect):
                awaiting = f"--expect {args.expect[i]!r}"
                client.wait(sid, text=args.expect[i], exit=True, timeout=left())
            else:
                awaiting = f"the program to read input (for --input #{i + 1})"
                client.wait(sid, input=True, exit=True, timeout=left())
            if client.resolve(sid).get("status") != "running":
                break
            client.text(sid, text, enter=True)
        awaiting = "the program to exit"
        return client.wait(sid, exit=True, timeout=left())
    except WaitTimeout as exc:
        message = f"run timed out after {args.timeout:g}s waiting for {awaiting}"
        raise WaitTimeout(message, exc.screen) from None


def _end(client: Client, sid: str) -> None:
    """Kill the session (confirmed) and remove it; errors here must not hide the first one."""
    client.kill_quietly(sid)
    with contextlib.suppress(Exception):
        client.gc_session(sid)

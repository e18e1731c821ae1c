"""The `agentty` command's entry point.

Agents call `get`, `text`, `key`, `wait` ... hundreds of times per task: their common forms
go the fast lane (`cli/lane.py`, the interpreter's C modules only), everything else the full
path (`cli/main.py`, argparse and the standard library). This module itself imports nothing
beyond the package's empty roots: every call pays for it.

A plain `start` or `run` with the home's spawner warm goes its own lane (`cli/startlane.py`,
`cli/runlane.py`). Any other `start` or `run` starts the session's worker process before
anything else (see worker_spawn), so the worker's imports overlap the full path's.
"""

from __future__ import annotations

import os  # loaded by the interpreter itself: free
import sys

TYPE_CHECKING = False  # without importing typing: this module is the hot path
if TYPE_CHECKING:
    from collections.abc import Sequence


class OutputFailed(Exception):
    """Our stdout could not be written (a full disk, an I/O error, a reader gone): not an
    OSError, so that no handler of the command's own takes it for one of its files."""

    def __init__(self, error: OSError, then: str = "") -> None:
        said = error.strerror or str(error)
        super().__init__(f"{said}; {then}" if then else said)
        self.error = error


class _Checked:
    """sys.stdout (and its buffer) raising OutputFailed where the stream raised OSError."""

    def __init__(self, stream: object) -> None:
        self._stream = stream

    def write(self, data: object) -> object:
        try:
            return self._stream.write(data)  # type: ignore[attr-defined]
        except OSError as exc:
            raise OutputFailed(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()  # type: ignore[attr-defined]
        except OSError as exc:
            raise OutputFailed(exc) from None

    @property
    def buffer(self) -> _Checked:
        return _Checked(self._stream.buffer)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """The command's exit code. A write to stdout that fails (`> /dev/full`) is one line on
    stderr and exit 1 (a reader that went away: exit 1 without a word), never a traceback."""
    stdout = sys.stdout
    if stdout is not None and not isinstance(stdout, _Checked):
        sys.stdout = _Checked(stdout)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before a command's own handling began (its imports)
        return interrupted_code()
    except OutputFailed as exc:
        return _output_failed(str(exc), isinstance(exc.error, BrokenPipeError), argv is None)
    except AttributeError as exc:  # stdout closed (`>&-`): sys.stdout is None
        if stdout is not None or "NoneType" not in str(exc):
            raise
        return _output_failed("stdout is closed", False, argv is None)
    finally:
        if argv is not None:
            sys.stdout = stdout
            give_back_interrupts()


def _output_failed(why: str, quietly: bool, exit_now: bool) -> int:
    """One line on stderr (none for a reader that went away), exit 1."""
    if not quietly and sys.stderr is not None:
        sys.stderr.write(f"agentty: error: cannot write the output: {why}\n")
    if exit_now:  # what it could not write would fail again at the exit's flush
        if sys.stderr is not None:
            sys.stderr.flush()
        os._exit(1)
    return 1


def _main(argv: Sequence[str] | None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if words == ["_serve"]:  # hidden: the far end of a host's link (cli/remote.serve)
        from agentty_core.cli import remote

        return remote.serve(words)
    if (
        os.environ.get("AGENTTY_HOST")
        or (words and "--host" in words[0])
        or words[:1] == ["doctor"]
    ):
        from agentty_core.cli import remote  # --host / AGENTTY_HOST: the command runs there

        if remote.wants_host(words):
            return remote.main(words)
    if words[:1] in (["start"], ["run"]) and "-h" not in words and "--help" not in words:
        if words[0] == "start":
            interrupt_on_end_signals()
        if _spawner_on():
            try:
                code = start_lane(words) if words[0] == "start" else run_lane(words)
            except BrokenPipeError:
                return 1
            except KeyboardInterrupt:
                return interrupted_code()
            if code is not None:
                if argv is None:  # the console entry: nothing of ours runs after this
                    _leave_now(code)
                return code
        code = _with_worker_started_early(words, exits=argv is None)
        if argv is None:  # the console entry: nothing of ours runs after this
            _leave_started(code)
        return code
    if sys.platform == "linux":
        try:
            code = fast_lane(words)
        except BrokenPipeError:
            return 1
        except KeyboardInterrupt:
            return 130
        if code is not None:
            if argv is None:  # the console entry: nothing of ours runs after this
                _leave_now(code)
            return code
    from agentty_core.cli.main import main as full

    return full(words)


def _leave_now(code: int) -> None:
    """End the process with `code` once its output is flushed, skipping the interpreter's
    teardown (freeing every module and object: a fifth of the bare interpreter's own run,
    paid by every lane call for nothing). Only when nothing needs that teardown: no atexit
    callback (logging registers one, for instance, when a fallback loaded the full path),
    no thread. A flush that fails returns instead: the interpreter's own exit then reports
    it as it always has (BrokenPipeError, exit code 120)."""
    import atexit  # built in: free

    callbacks = getattr(atexit, "_ncallbacks", None)
    if callbacks is None or callbacks() or "threading" in sys.modules:
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):  # ValueError: a stream closed by someone
        return
    os._exit(code)


def _leave_started(code: int) -> None:
    """`start`/`run` done the full way: end the process once its output is flushed and the
    atexit callbacks ran (logging's flush, finalizers), skipping the teardown of everything
    the full path imported: ~9 ms after the session was up, a twentieth of a direct start.
    Not while a thread that is not a daemon runs (the interpreter would wait for it); the
    daemons are the reapers of the processes this one started, which outlive it anyway."""
    import atexit
    import threading

    main = threading.main_thread()
    if any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return  # the interpreter's exit reports it as it always has
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()  # what a callback wrote
        except (OSError, ValueError):
            pass
    os._exit(code)


def _with_worker_started_early(words: list[str], *, exits: bool = False) -> int:
    """`start`/`run`: a session's worker imports for ~0.1 s before it can run anything;
    started now, that overlaps this command's own imports and state write. A worker the
    command did not hand a session to (it failed first) is killed before the command exits:
    a refused `start` leaves no process behind, not even for a moment. `exits`: the
    process ends with the command (the console entry), and reaps nothing it starts."""
    from agentty_core.launch import spawn as worker_spawn

    lane = sys.modules.get("agentty_core.cli.startlane")
    if lane is not None and lane.handed_over:  # the spawner was asked in vain just now
        from agentty_core.launch import spawner_client

        spawner_client.passed_over(lane.handed_over == "upgraded")
    try:  # noqa: SIM105  (contextlib stays off the hot path)
        worker_spawn.spawn_early()
    except OSError:
        pass  # `start` spawns it again and reports what went wrong
    try:
        from agentty_core.cli.main import main as full  # while the worker imports its own

        return full(words)
    finally:
        worker_spawn.discard_early(exits=exits)


def _spawner_on() -> bool:
    """`spawner_client.enabled`, without importing it."""
    return (
        sys.platform == "linux"
        and hasattr(os, "pidfd_open")
        and os.environ.get("AGENTTY_SPAWNER", "1").strip() != "0"
    )


_handlers_before: dict[int, object] = {}  # what `interrupt_on_end_signals`/`let_finish` replaced
_ended_by: list[int] = []  # the signal that interrupted the command (SIGINT if none)
_SIGHUP, _SIGINT, _SIGTERM = 1, 2, 15


def interrupt_on_end_signals() -> None:
    """`start`, and a command sent to another host: SIGTERM (a harness's timeout) and SIGHUP
    (a closed terminal) interrupt it as Ctrl-C does, so that a start they end is undone (it
    ran on, told to nobody) and a remote call's transport is ended; the exit code is then
    128+N (`interrupted_code`). One ignored when we started (`nohup`) stays
    ignored, as Python leaves an ignored SIGINT."""
    _replace_handlers((_SIGTERM, _SIGHUP), _interrupting, unless_ignored=True)


def let_finish() -> None:
    """From here on Ctrl-C, SIGTERM and SIGHUP do not stop the command: the session it
    started runs, and its id is printed (exit 0). Before, an interruption undoes the start;
    after, undoing it would race the printing of an id that may be read already. A command
    run in-process (`main(argv)`) gives the handlers back when it returns."""
    _replace_handlers((_SIGINT, _SIGTERM, _SIGHUP), _finishing)


def interrupted_code() -> int:
    """The exit code of a command interrupted (KeyboardInterrupt): 128 + the signal."""
    return 128 + (_ended_by[-1] if _ended_by else _SIGINT)


def _replace_handlers(
    signums: tuple[int, ...], handler: object, *, unless_ignored: bool = False
) -> None:
    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal  # built in: free

    for signum in signums:
        if unless_ignored and _signal.getsignal(signum) == _signal.SIG_IGN:
            continue
        try:
            before = _signal.signal(signum, handler)  # type: ignore[arg-type]
        except ValueError:  # not the main thread (the CLI called from a program's thread)
            return
        _handlers_before.setdefault(signum, before)


def give_back_interrupts() -> None:
    """The handlers as they were before `let_finish` and `interrupt_on_end_signals` (an
    in-process command's end)."""
    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal

    while _handlers_before:
        signum, handler = _handlers_before.popitem()
        _signal.signal(signum, handler)  # type: ignore[arg-type]
    _ended_by.clear()


def _interrupting(signum: int, frame: object) -> None:
    """SIGTERM or SIGHUP while `start` has not started its session: as Ctrl-C."""
    _ended_by.append(signum)
    raise KeyboardInterrupt


def _finishing(signum: int, frame: object) -> None:
    """Ctrl-C while a started session is reported: there is nothing left to stop."""


def start_lane(words: list[str]) -> int | None:
    """`start` through the home's warm spawner, or None: the full path (see
    `cli/startlane.py`)."""
    from agentty_core.cli.startlane import start

    return start(words)


def run_lane(words: list[str]) -> int | None:
    """`run` through the home's warm spawner and one connection to its worker, or None:
    the full path (see `cli/runlane.py`)."""
    from agentty_core.cli.runlane import run

    return run(words)


def fast_lane(words: list[str]) -> int | None:
    """The command's exit code, or None: the full path must handle it (see `cli/lane.py`)."""
    from agentty_core.cli.lane import fast_lane as serve

    return serve(words)

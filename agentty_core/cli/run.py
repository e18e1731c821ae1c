"""`agentty run`: start a program, answer its prompts, wait for its exit, clean up.

`run` owns the session it starts, so it ends it on every way out: the program's exit, a
timeout, an error, and SIGINT (Ctrl-C), SIGTERM or SIGHUP. While the session is being
started a signal is only noted (the session's id is not known yet: interrupting `start`
there could leave a session nobody knows of); it takes effect once `start` returns.

Two paths share `finish`: the full one here (the Client), and the lane (`cli/runlane.py`:
the warm spawner and one connection to the worker, on the interpreter's C modules). So this
module imports nothing the lane would not: the Client only where the full path runs.
"""

from __future__ import annotations

import os
import sys
import time

from agentty_core.cli import hotread
from agentty_core.errors import AgenttyError, SpawnError, UsageError, WaitTimeout
from agentty_core.screen_text import row_text_problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Callable
    from types import FrameType
    from typing import Protocol

    from agentty_core.client import Client
    from agentty_core.protocol import JSONObject

    Handler = Callable[[int, FrameType | None], object] | int | None

    class Options(Protocol):
        """`run`'s command line, as argparse or the lane's parser reads it."""

        argv: list[str]
        expect: list[str]
        answers: list[tuple[str, str]]  # ("input"|"text", TEXT) or ("key", KEYS), in order
        timeout: float
        cols: int
        rows: int
        cwd: str | None
        json: bool

    class Driver(Protocol):
        """What `run` asks of its session: the Client, or the lane's connection."""

        def wait(self, ref: str, *, timeout: float = 30.0, **conditions: object) -> JSONObject: ...

        def text(self, ref: str, data: str, *, enter: bool = False) -> JSONObject: ...

        def key(self, ref: str, names: list[str]) -> JSONObject: ...

        def gc_session(self, session_id: str) -> None: ...

        def hold(self, ref: str) -> Closable | None: ...

    class Closable(Protocol):
        def close(self) -> None: ...

else:
    import _signal  # `signal` without the enums it builds on import: the lane runs this


SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP)


class Stopped(BaseException):
    """`run` was told to stop by a signal (a BaseException, like KeyboardInterrupt: no
    `except Exception` on the way may swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Signals:
    """SIGINT/SIGTERM/SIGHUP as `Stopped`, raised only while `armed`; noted otherwise."""

    def __init__(self) -> None:
        self.armed = False
        self.pending: int | None = None
        self._saved: dict[int, Handler] = {}
        self._watch: list[int] = []  # the reader watch's stop pipe, while it runs

    def __enter__(self) -> Signals:
        for signum in SIGNALS:
            try:
                self._saved[signum] = _signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (run called as a library): as before
                break
        else:
            self._watch = watch_reader()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._watch:  # the watch ends before the handlers go: no SIGHUP after this
            stop, self._watch[:] = self._watch[0], []
            try:  # noqa: SIM105  (contextlib stays off the lane)
                os.write(stop, b"x")
            except OSError:  # (it ended already: it saw the reader go)
                pass
            os.close(stop)
        for signum, handler in self._saved.items():
            if handler is not None:  # None: not set from Python; nothing to put back
                _signal.signal(signum, handler)

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


def stopped_before_start(signum: int) -> int:
    """`run` told to stop (Ctrl-C, SIGTERM, SIGHUP) before its program was started: said,
    and nothing is started; 128+N."""
    import signal

    try:  # noqa: SIM105  (contextlib stays off the lane)
        hotread.error(f"run stopped by {signal.Signals(signum).name}: nothing was started")
    except OSError:  # SIGHUP: the terminal may be gone
        pass
    return 128 + signum


def watch_reader() -> list[int]:
    """With stdout a pipe or a socket, a reader that goes away (the ssh channel of an
    `agentty --host H run` closed by its caller's Ctrl-C, say: ssh passes no signal on)
    is taken as a hung-up terminal: SIGHUP to this process, and `run` ends its program
    instead of running it to the end for nobody. A thread waits for that in poll(), until
    a byte on the pipe returned (`[write end]`, or [] when nothing is watched) stops it."""
    try:
        mode = os.fstat(1).st_mode
    except OSError:
        return []
    if mode & 0o170000 not in (0o010000, 0o140000):  # S_IFIFO, S_IFSOCK
        return []
    import _thread

    stop_r, stop_w = os.pipe()
    watching = [stop_w]
    _thread.start_new_thread(_hang_up_when_unread, (os.getpid(), stop_r, watching))
    return watching


def _hang_up_when_unread(pid: int, stop: int, watching: list[int]) -> None:
    import select

    poller = select.poll()
    poller.register(1, 0)  # POLLERR (a pipe's reader gone) and POLLHUP come unasked
    poller.register(stop, select.POLLIN)
    try:
        while True:
            for fd, mask in poller.poll():
                if fd == stop or mask & select.POLLNVAL:
                    return
                if mask & (select.POLLERR | select.POLLHUP):
                    if watching:  # (not once `Signals` has let go)
                        os.kill(pid, _signal.SIGHUP)
                    return
    finally:
        os.close(stop)


def program(args: Options) -> list[str]:
    """The program to run, once the command line is known to make sense."""
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("run needs a program: agentty run [options] -- PROGRAM [ARG...]")
    if len(args.expect) > len(args.answers):
        raise UsageError(
            "every --expect needs an --input, a --text or a --key to send when it appears"
        )
    if not all(args.expect):
        raise UsageError("--expect needs a text to wait for (it was empty)")
    for expect in args.expect:
        if problem := row_text_problem("--expect", expect):
            raise UsageError(problem)  # refused before anything runs, as a wrong key is
    for kind, value in args.answers:
        if kind == "key":
            check_keys(value)  # a wrong one is refused before anything runs
        elif kind == "text" and not value:
            raise UsageError("--text needs a text to type (it was empty; --input '' is an Enter)")
    return argv


def check_keys(value: str) -> None:
    """A --key's names, as `agentty key` would take them."""
    from agentty_core import keys

    names = value.split()
    if not names:
        raise UsageError("--key needs key names, e.g. --key 'Down Enter'")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # bytes of another encoding in argv (surrogate escapes)
            raw = value.encode("utf-8", "surrogateescape")
            raise UsageError(f"--key {raw!r} is not UTF-8 text") from None
    keys.parse_all(names)


def run(args: Options) -> int:
    """The full path's `run`: the session started and driven through the Client."""
    argv = program(args)
    from agentty_core.client import Client

    client = Client()
    deadline = time.monotonic() + float(args.timeout)
    with Signals() as signals:
        try:
            record = client.start(
                argv, cwd=args.cwd, cols=args.cols, rows=args.rows, activate=False, held=True
            )
        except SpawnError as exc:
            if exc.session_id is not None:  # the program did not start: its record goes too
                forget_failed(client, exc.session_id)
                exc.log_path = None  # (with its log)
            raise
        return finish(client, record["id"], args, deadline, signals, lambda: client)


def forget_failed(client: Client, sid: str) -> None:
    """Remove the record and files of a session whose program did not start (`run` leaves
    nothing behind); a failure here leaves it for `agentty gc`."""
    try:  # noqa: SIM105  (contextlib stays off the lane)
        client.gc_session(sid)
    except AgenttyError:
        pass


def finish(
    driver: Driver,
    sid: str,
    args: Options,
    deadline: float,
    signals: Signals,
    full: Callable[[], Client],
) -> int:
    """Drive the started session `sid` to its end, print what `run` prints, and leave
    nothing of the session behind; the exit code. The rare endings (a timeout, a signal,
    an error) go through the full path's Client, which `full` makes. The session is held
    meanwhile: if this process is killed (SIGKILL: no handler runs), its worker ends it."""
    holder = _hold(driver, sid)
    try:
        try:
            try:
                signals.arm()
                screen = _drive(driver, sid, args, deadline)
            finally:
                signals.disarm()  # a signal up to here is a Stopped, caught below; later, noted
        except WaitTimeout as exc:
            try:
                hotread.error(str(exc))
                if args.json:  # as `wait --json` says it
                    hotread.emit({"fired": None, "timeout": True, **exc.screen})
                else:
                    sys.stdout.write(hotread.screen_text(exc.screen, "lines"))
            finally:  # (the output may fail: a closed pipe) the timeout is what went wrong:
                _end(full(), sid)  # an error of the cleanup must not hide it
            return exc.exit_code
        except Stopped as exc:
            import signal

            name = signal.Signals(exc.signum).name
            try:  # noqa: SIM105  (contextlib stays off the lane)
                hotread.error(f"run stopped by {name}: ending the program")
            except OSError:  # SIGHUP: the terminal may be gone
                pass
            _end(full(), sid)
            return 128 + exc.signum
        except BaseException:
            _end(full(), sid, getattr(driver, "silent", None))
            raise
        code = screen.get("exitCode")
        # The input state of a program that ended says nothing, and came with some endings'
        # answers (the final screen's file) and not others (the worker's): never printed.
        # Nor does the last wait's match; its time is the whole run's (it was that wait's).
        screen.pop("input", None)
        screen.pop("match", None)
        began = deadline - float(args.timeout)
        screen["elapsed_ms"] = round((time.monotonic() - began) * 1000, 3)
        try:
            if sys.stdout is None:  # (started with stdout closed: nothing to print it on)
                pass
            elif args.json:
                hotread.emit(screen)
            else:
                sys.stdout.write(hotread.screen_text(screen, "lines"))
        finally:  # (a reader that went away: the session is removed all the same)
            try:
                driver.gc_session(sid)
            except AgenttyError as exc:  # (the state lock held past its timeout, say)
                # The program's exit code is what the caller runs it for: the session left
                # behind (ended, its record and files) is said; `agentty gc` removes it later.
                hotread.error(f"session {sid} ended but could not be removed: {exc}")
        return code if isinstance(code, int) else 1

    finally:
        if holder is not None:
            holder.close()


def _hold(driver: Driver, sid: str) -> Closable | None:
    try:
        return driver.hold(sid)
    except AgenttyError:  # it ended already (or its worker did): nothing to hold
        return None


class Step:
    """One request of `run`'s: a wait (`method` "wait", its conditions, and what it waits
    for, said when it times out), a text ("text": data, enter) or keys ("key": keys)."""

    __slots__ = ("awaiting", "method", "params")

    def __init__(self, method: str, params: JSONObject, awaiting: str = "") -> None:
        self.method = method
        self.params = params
        self.awaiting = awaiting


if TYPE_CHECKING:
    from collections.abc import Generator, Sequence

    # Steps out, a wait's screen back (None for an input); the final screen and a warning.
    Plan = Generator[Step, "JSONObject | None", "tuple[JSONObject, str | None]"]


def plan(
    expect: list[str], answers: Sequence[tuple[str, str | list[str]]], *, options: bool = True
) -> Plan:
    """`run`'s requests in order, without any I/O: the CLI (`_drive`) and the MCP server's
    `run` tool each carry them out on their own connection. Each answer waits for its
    expect (if it has one: an empty one is none), then for the program to read; an input
    is typed with Enter. A program that ends first leaves the rest unanswered (said in the
    warning, counted in the screen's `unanswered`). Keys come as a list, or as the command
    line's words (`--key 'Down Enter'`). The steps are named by the command line's
    `options` (--expect, --input #2), or else as the MCP tool's answers (answer 2)."""
    ranks = {"input": 0, "text": 0, "key": 0}
    for i, (kind, answer) in enumerate(answers):
        ranks[kind] += 1
        prompt = expect[i] if i < len(expect) else ""
        if prompt:
            said = f"--expect {prompt!r}" if options else f"answer {i + 1}'s expect {prompt!r}"
            seen = yield Step("wait", {"text": prompt, "exit": True}, said)
            if seen is not None and not _ended(seen):
                # Then the read it asks for: a prompt asked again (passwd's second
                # "Password:") is still on screen from the first time, and an answer
                # typed before getpass turns echo off shows in clear, then is flushed.
                awaiting = f"the program to read input after {said}"
                seen = yield Step("wait", {"input": True, "exit": True}, awaiting)
            else:
                awaiting = said
        else:
            which = f"--{kind} #{ranks[kind]}" if options else f"answer {i + 1}"
            awaiting = f"the program to read input (for {which})"
            seen = yield Step("wait", {"input": True, "exit": True}, awaiting)
        assert seen is not None
        if _ended(seen):  # it ended: nobody is left to answer
            unanswered = len(answers) - i
            warning = (
                f"the program ended while run waited for {awaiting}: "
                f"{unanswered} answer(s) not given"
            )
            return {**seen, "unanswered": unanswered}, warning
        if kind == "key":
            keys = answer if isinstance(answer, list) else answer.split()
            yield Step("key", {"keys": list(keys)})
        else:
            yield Step("text", {"data": str(answer), "enter": kind == "input"})
    final = yield Step("wait", {"exit": True}, "the program to exit")
    assert final is not None
    return final, None


def timed_out(timeout: float, step: Step | None) -> str:
    """The message of a `run` whose wait for `step` timed out."""
    awaiting = step.awaiting if step is not None else "the program to exit"
    return f"run timed out after {timeout:g}s waiting for {awaiting}"


def _drive(driver: Driver, sid: str, args: Options, deadline: float) -> JSONObject:
    """Carry out `plan` on `driver`; the final screen. A timeout says which step never
    came (the --expect text, the read, the exit)."""
    steps = plan(args.expect, args.answers)
    answer: JSONObject | None = None
    step: Step | None = None
    try:
        while True:
            step = steps.send(answer)
            params, answer = step.params, None
            if step.method == "wait":
                left = max(0.0, deadline - time.monotonic())
                try:
                    answer = driver.wait(sid, timeout=left, **params)
                except WaitTimeout as exc:
                    if exc.screen.get("exited") is not True:
                        raise
                    answer = exc.screen  # it ended as the time ran out: an end, not a timeout
            elif step.method == "key":
                driver.key(sid, params["keys"])  # type: ignore[arg-type]  # plan's list
            else:
                driver.text(sid, str(params["data"]), enter=params["enter"] is True)
    except StopIteration as done:
        ended: tuple[JSONObject, str | None] = done.value
    except WaitTimeout as exc:
        raise WaitTimeout(timed_out(args.timeout, step), exc.screen) from None
    screen, warning = ended
    if warning is not None:
        hotread.warning(warning)
    return screen


def _ended(seen: JSONObject) -> bool:
    return seen.get("fired") == "exit" or seen.get("exited") is True


def _end(client: Client, sid: str, silent: str | None = None) -> None:
    """Kill the session (confirmed) and remove it; errors here must not hide the first one.
    `silent`: its worker did not answer (`Client.kill`)."""
    client.kill_quietly(sid, silent=silent)
    try:  # noqa: SIM105
        client.gc_session(sid)
    except Exception:
        pass

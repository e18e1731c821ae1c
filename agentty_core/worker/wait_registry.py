"""The pending waits: answered at once when the condition holds, else checked on every
screen change (inside the output callback), on a timer for `stable`, by polling for
`input`, and failed at their timeout or the program's end. waits.py holds the conditions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from agentty_core.errors import EXIT_TIMEOUT, EXIT_USAGE
from agentty_core.proc.inputstate import InputState
from agentty_core.protocol import BadRequest, JSONObject
from agentty_core.regexbudget import BUDGET, RegexTimeout, bounded, quoted
from agentty_core.waitspec import newer_seq
from agentty_core.worker.answers import Later, Outcome, RequestFailed
from agentty_core.worker.base import WorkerBase
from agentty_core.worker.waits import Fired, ScreenView, WaitSpec, evaluate

# Seconds between looks at whether the program reads, while a `wait --input` is pending:
# from INPUT_POLL_FIRST, doubling up to INPUT_POLL. A program blocks in its read a moment
# after it draws its prompt (no output tells when): a fixed 20 ms cost `run`'s answers,
# which each wait for a read, up to 20 ms apiece; a long wait is looked at 50 times a
# second, as before.
INPUT_POLL_FIRST = 0.001
INPUT_POLL = 0.02


class WaitRegistry(WorkerBase):
    """The pending `wait` requests and what fires them."""

    def _check_waits(self) -> None:
        if not self.waits or self.draining:
            return  # a drain is parsing output for a check that evaluates the waits next
        waiting = [(later, spec) for later, spec in self.waits.items() if not later.done()]
        read = self._reading() if any(spec.input for _later, spec in waiting) else None
        now = time.monotonic()
        next_stable: float | None = None
        for later, spec in waiting:
            if later.done():
                continue
            try:
                fired = self._evaluate(spec, now, read is not None)
            except RequestFailed as exc:  # a runaway regex: this wait fails, not the others
                later.resolve(exc)
                continue
            if fired is not None:
                try:
                    answer: Outcome = self._wait_result(spec, fired, read)
                except Exception as exc:  # this wait's answer fails, not the output path
                    answer = exc
                later.resolve(answer)
            elif spec.stable_ms is not None and (spec.after is None or self.emu.seq > spec.after):
                # (A wait `after` a seq the screen has not passed yet is woken by output.)
                due = self.last_change + spec.stable_ms / 1000
                next_stable = due if next_stable is None else min(next_stable, due)
        if self.stable_timer is not None:
            self.stable_timer.cancel()
            self.stable_timer = None
        if next_stable is not None:
            loop = asyncio.get_running_loop()
            self.stable_timer = loop.call_at(
                loop.time() + max(0.0, next_stable - now) + 0.001, self._check_waits
            )

    def _reading(self) -> InputState | None:
        """The input state if the program waits for input, with all it drew before it
        blocked on the screen. The state is probed first, then the output still in the PTY
        is parsed: the program wrote it before it blocked, and an answer must not precede its
        prompt. Input the worker still queues has not been given to the program: not
        reading yet. The state is what the answer reports: a second look could find the
        program busy again, and say so in an answer that says it fired on a read."""
        if self.pending_input:
            return None
        state = self.input_state()
        if state["state"] != "reading":
            return None
        self._drain_output()
        return state

    def _evaluate(self, spec: WaitSpec, now: float, reading: bool) -> Fired | None:
        """The condition that holds; RequestFailed for a regex that runs past its budget."""
        # "Exited" means the program is gone *and* its last output was read: a wait for the
        # exit must see the final screen, not whatever was parsed when SIGCHLD arrived.
        exited = self.exit_status is not None and self.pty_closed
        idle_ms = (now - self.last_change) * 1000
        try:
            return evaluate(
                spec,
                self.emu,
                exited=exited,
                idle_ms=idle_ms,
                reading=reading,
                masked=None if spec.after is None else self._masked(spec),
            )
        except RegexTimeout:
            if spec.exit and exited:  # (the end holds, whatever the regex would have said)
                return Fired("exit")
            pattern = spec.regex.pattern if spec.regex is not None else ""
            raise RequestFailed(
                "regex_timeout",
                f"regex {quoted(pattern)} took over {BUDGET:g}s of CPU on the screen "
                "(nested repeats backtrack); simplify it",
                exit_code=EXIT_USAGE,
            ) from None

    def _masked(self, spec: WaitSpec) -> Callable[[], ScreenView | None]:
        """The screen with typed input's echo, and what showed before it unchanged, masked,
        for a wait `after` an input (built on first use, once per screen version: see
        worker/echo.py)."""
        return lambda: self.echoes.view(self.emu, scrollback=spec.scrollback, after=spec.after)

    async def _poll_input(self) -> None:
        while any(spec.input for spec in self.waits.values()):
            self._check_waits()
            await asyncio.sleep(self.input_pause)
            self.input_pause = min(self.input_pause * 2, INPUT_POLL)
        self.input_poller = None

    def wait(self, spec: WaitSpec) -> JSONObject | Later:
        """The answer now if the condition already holds (the common case for an agent that
        waits right after typing a fast program's input), else a Later for it."""
        if problem := newer_seq(self.emu.seq, spec.after, spec.changed_since):
            raise BadRequest(problem)
        read = self._reading() if spec.input else None
        fired = self._evaluate(spec, time.monotonic(), read is not None)
        if fired is not None:
            return self._wait_result(spec, fired, read)
        later = Later()
        self.waits[later] = spec
        timer = asyncio.get_running_loop().call_later(
            spec.timeout, self._wait_timed_out, later, spec
        )

        def forget(_outcome: Outcome) -> None:
            timer.cancel()
            self.waits.pop(later, None)

        later.then(forget)
        self._check_waits()  # arms the timer of a `stable` wait
        if spec.input:  # a new wait: looked at soon again (not after a 20 ms sleep's end)
            self.input_pause = INPUT_POLL_FIRST
            if self.input_poller is not None:
                self.input_poller.cancel()
            self.input_poller = asyncio.get_running_loop().create_task(self._poll_input())
        return later

    def _wait_timed_out(self, later: Later, spec: WaitSpec) -> None:
        message = f"timed out after {spec.timeout:g}s waiting for {spec.describe_all()}"
        if self._only_before_or_echoed(spec):
            message += (
                "; the screen has it, but only as the input's own echo or as it was before"
                " the input, which a wait after the input does not count"
            )
        screen = self.screen_payload()
        screen["elapsed_ms"] = round((time.monotonic() - spec.started) * 1000, 3)  # (as fired)
        later.resolve(RequestFailed("timeout", message, exit_code=EXIT_TIMEOUT, screen=screen))

    def _only_before_or_echoed(self, spec: WaitSpec) -> bool:
        """Whether a wait `after` an input that timed out would have found its text or regex
        on the screen as it is: a program that draws what is typed where it is typed (an
        input box) shows nothing but the echo, and the wait timed out with no word of why."""
        if spec.after is None:
            return False
        screen = self.emu
        try:
            text = spec.text
            if text is not None and screen.find(text, scrollback=spec.scrollback) is not None:
                return True
            if spec.regex is not None:
                with bounded(spec.regex) as pattern:
                    return screen.search(pattern, scrollback=spec.scrollback) is not None
        except RegexTimeout:
            pass
        return False

    def _wait_result(
        self, spec: WaitSpec, fired: Fired, read: InputState | None = None
    ) -> JSONObject:
        """The answer; `read` is the input state of the look that found the program
        reading, if there was one."""
        result = self.screen_payload(scrollback=spec.scrollback, input=spec.input and not read)
        if spec.input and read is not None:
            result["input"] = read
        result["fired"] = fired.condition
        result["elapsed_ms"] = round((time.monotonic() - spec.started) * 1000, 3)
        if fired.match is not None:
            result["match"] = {"row": fired.match[0], "col": fired.match[1]}
        if spec.forget and self.forgotten:
            result["forgotten"] = True
        return result

    def _forget_wanted(self) -> bool:
        """A pending wait for the exit asks for the session to be removed at its end."""
        return any(spec.forget and not later.done() for later, spec in self.waits.items())

"""Client's actions on a session: start it, read its screen, type into it, wait on it.

Input for a running session goes through a kept connection when there is one (the worker
refuses it once its program ended); a large input goes in parts the program reads (issue
16 #17). A `get` or `wait` on an ended session is answered from its final screen.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence

from agentty_core import keys
from agentty_core.client_calls import Connected
from agentty_core.client_records import describe_end
from agentty_core.errors import (
    EXIT_USAGE,
    AgenttyError,
    RemoteError,
    SessionNotRunning,
    UsageError,
    WaitTimeout,
)
from agentty_core.input_steps import (
    INPUT_PART,
    INPUT_PART_TIMEOUT,
    MAX_INPUT,
    in_one_request,
    input_bytes,
    part_ends,
    send_steps,
    sent_bytes,
    text_params,
)
from agentty_core.ipc import client as ipc_client
from agentty_core.protocol import (
    JSONObject,
    signal_problem,
    size_problem,
    wait_params,
)
from agentty_core.state.records import Record, is_live

TYPE_CHECKING = False  # without importing typing: this module is on the hot path
if TYPE_CHECKING:
    from agentty_core.ipc.subscription import Subscription


class Actions(Connected):
    """start, attach, get, text, paste, key, send, resize, signal, wait, record, subscribe."""

    def start(
        self,
        argv: Sequence[str] | None = None,
        *,
        shell: str | None = None,
        name: str | None = None,
        cwd: str | None = None,
        cols: int = 80,
        rows: int = 24,
        env: Mapping[str, str] | None = None,
        activate: bool = True,
        record: Mapping[str, bool] | None = None,
        held: bool = False,
        on_ready: Callable[[], None] | None = None,
    ) -> Record:
        """Start a session; it becomes the active one unless `activate=False`. `held`: the
        caller holds it at once (`hold`), or its worker ends it, and removes it once ended
        (`gc` leaves it to this process while it runs): what `run` does. An
        interruption (KeyboardInterrupt) undoes the start until `on_ready` is called, once
        the program runs."""
        from agentty_core.launch.launcher import start

        return start(
            self.home,
            argv,
            shell=shell,
            name=name,
            cwd=cwd,
            cols=cols,
            rows=rows,
            env=env,
            activate=activate,
            record_cast=record,
            store=self._store(),
            held=held,
            on_ready=on_ready,
        )

    def attach(self, ref: str) -> Record:
        """Make `ref` the active session; its record with the live fields `status` shows
        (the size after a `resize`: the file keeps the one it started with)."""
        rec = self.require_running(ref)
        self._store().set_active(rec["id"])
        found = [rec]
        self._merge_live_info(found)
        return found[0]

    def get(self, ref: str | None = None, **params: object) -> JSONObject:
        rec = self._vouched(ref) or self.resolve(ref)
        if is_live(rec):
            with contextlib.suppress(SessionNotRunning):
                return self._call(rec, "get", params)
            rec = self._settled(rec["id"])
        return self.final_screen(rec, **params)

    def text(
        self, ref: str | None, data: str | bytes, *, enter: bool = False, paste: bool = False
    ) -> JSONObject:
        if in_one_request(data):
            return self._call_running(ref, "text", text_params(data, enter=enter, paste=paste))
        return self._text_in_parts(ref, input_bytes(data), enter=enter, paste=paste)

    def _text_in_parts(
        self, ref: str | None, data: bytes, *, enter: bool, paste: bool
    ) -> JSONObject:
        """Input larger than one request: parts in order, each answered once the program has
        read enough for it to fit the worker's queue (issue 16 #17). A paste is bracketed
        once around the whole; the Enter follows the last part."""
        total = len(data)
        if total > MAX_INPUT:
            raise UsageError(
                f"input of {total} bytes is over the limit of {MAX_INPUT} bytes (64 MiB); "
                "nothing was sent"
            )
        rec = self.require_running(ref)
        multiline = b"\n" in data or b"\r" in data
        first: JSONObject = {}
        sent = written = 0
        for end in part_ends(data, INPUT_PART):
            params = text_params(data[sent:end], enter=enter and end == total, paste=paste)
            params["multiline"] = multiline  # of the whole: the first part may hold no newline
            params["part"] = "first" if sent == 0 else "last" if end == total else "more"
            if first:
                params["bracketed"] = first.get("bracketed") is True
            try:
                answer = self._call(rec, "text", params, timeout=INPUT_PART_TIMEOUT)
            except AgenttyError as exc:
                if sent or isinstance(exc, RemoteError):  # (the worker's words: it took none)
                    exc.message = f"{exc.message}; {sent} of {total} bytes were sent"
                    exc.args = (exc.message,)
                    exc.input_sent = sent
                    seq = first.get("seq")
                    exc.input_seq = seq if isinstance(seq, int) else None
                raise
            first = first or answer
            count = answer.get("bytes")
            written += count if isinstance(count, int) else 0
            sent = end
        return {"seq": first.get("seq"), "bytes": written}

    def paste(self, ref: str | None, data: str | bytes) -> JSONObject:
        return self.text(ref, data, paste=True)

    def key(self, ref: str | None, names: Sequence[str]) -> JSONObject:
        keys.parse_all(list(names))  # validate before anything is sent
        return self._call_running(ref, "key", {"keys": list(names)})

    def send(
        self, ref: str | None, args: Sequence[str], *, literal: bool = False, enter: bool = False
    ) -> JSONObject:
        """Mixed input (see `send_steps`): every key checked first, then the requests in
        order. The result carries the seq from before the first, and the bytes of all of
        them (as `text` and `key` say theirs)."""
        steps = send_steps(args, literal=literal, enter=enter)
        answers = [self._call_running(ref, method, params) for method, params in steps]
        return {"seq": answers[0].get("seq"), "bytes": sent_bytes(answers)}

    def resize(self, ref: str | None, cols: int, rows: int) -> JSONObject:
        problem = size_problem(cols, rows)  # said first, whether or not the session runs
        if problem is not None:
            raise UsageError(problem)
        rec = self.require_running(ref)
        return self._call(rec, "resize", {"cols": cols, "rows": rows})

    def signal(self, ref: str | None, name: str, *, leader: bool = False) -> JSONObject:
        problem = signal_problem(name)
        if problem is not None:
            raise UsageError(problem)
        rec = self.require_running(ref)
        return self._call(rec, "signal", {"name": name, "leader": leader})

    def wait(self, ref: str | None, *, timeout: float = 30.0, **conditions: object) -> JSONObject:
        """Block until a condition holds (answered by the worker); WaitTimeout after `timeout`."""
        rec = self._vouched(ref) or self.resolve(ref)
        params = wait_params(conditions, timeout)  # 0 is a value (a fresh session's seq)
        if not is_live(rec):
            return self._wait_ended(rec, params)
        began = time.monotonic()
        try:
            return self._call(rec, "wait", params, timeout=timeout + 5.0)
        except RemoteError as exc:
            if exc.code == "timeout":  # the screen now, and how long was waited (as fired)
                waited = round((time.monotonic() - began) * 1000, 3)
                screen = self.get(rec["id"])
                screen["elapsed_ms"] = waited
                raise WaitTimeout(exc.message, screen) from None
            if exc.code == "exited":
                return self.wait_ended(rec["id"], conditions, timeout)
            raise
        except SessionNotRunning:
            return self.wait_ended(rec["id"], conditions, timeout)

    def wait_ended(
        self, session_id: str, conditions: JSONObject, timeout: float = 0.0
    ) -> JSONObject:
        """A wait whose session ended while it was pending (its worker said so, or went):
        what its end means for the conditions, as `wait` answers it then."""
        return self._wait_ended(self._settled(session_id), wait_params(conditions, timeout))

    def _wait_ended(self, rec: Record, params: JSONObject) -> JSONObject:
        """A wait on an ended session: a condition its last screen meets (or `exit`) fires
        at once; one it does not never will."""
        from agentty_core import final_wait
        from agentty_core.waitspec import newer_seq

        scrollback = params.get("scrollback") is True
        screen, masks = self.final_screen_and_masks(rec, scrollback=scrollback)
        seq = screen.get("seq")
        if type(seq) is int and (
            problem := newer_seq(seq, params.get("after"), params.get("changed_since"))
        ):
            raise RemoteError(problem, code="bad_request", exit_code=EXIT_USAGE)  # as live
        try:
            fired = final_wait.fired_on(screen, masks, params)
        except final_wait.BadRegex as exc:
            raise UsageError(str(exc)) from None
        if fired is None:  # (with its last screen: why it never came is usually on it)
            raise SessionNotRunning(rec["id"], describe_end(rec), screen)
        return {**screen, "fired": fired, "elapsed_ms": 0}

    def hold(self, ref: str | None) -> ipc_client.Connection:
        """A connection that holds the session's life: once it is closed (by `close()`, or
        by the end of this process, however it ends) before the program ended, the worker
        ends the session as `kill` does. What `run` does to leave nothing behind."""
        rec = self.require_running(ref)
        conn = ipc_client.Connection(
            str(self.home.socket_path(rec["id"])), self.timeout, rec.get("workerPid")
        )
        try:
            conn.call("hold")  # answered at once: a worker that cannot hold says so
        except BaseException:
            conn.close()
            raise
        return conn

    def record(
        self, ref: str | None, on: bool, *, input: bool = False, markers: bool = False
    ) -> JSONObject:
        """Start or stop the asciicast recording of a running session."""
        rec = self.require_running(ref)
        return self._call(rec, "record", {"on": on, "input": input, "markers": markers})

    def subscribe(self, ref: str | None, *, interval: float | None = None) -> Subscription:
        """Screen events pushed by the worker until the session ends or the subscription is
        closed (from any thread), at most one each `interval` seconds (default: ~30 a
        second). Blocking to iterate: run it off the UI thread."""
        from agentty_core.ipc.subscription import Subscription

        rec = self.require_running(ref)
        return Subscription(
            str(self.home.socket_path(rec["id"])), rec.get("workerPid"), self.timeout, interval
        )

"""The protocol's methods: reading a request line, running its handler from the method
table, and sending the answer now or when it is ready (a Later, an awaitable)."""

from __future__ import annotations

import asyncio
import base64
import fcntl
import logging
import os
import signal
import sys
import termios
import time
import traceback
from collections.abc import Callable
from typing import ClassVar, cast

from agentty_core import failpoints, keys, protocol
from agentty_core.errors import EXIT_USAGE, AgenttyError, InvalidKey
from agentty_core.ipc.server import Peer
from agentty_core.protocol import BadRequest, JSONObject
from agentty_core.state.store import iso
from agentty_core.worker.answers import Answer, Later, Outcome, RequestFailed
from agentty_core.worker.base import WorkerBase
from agentty_core.worker.echo import draws_echo
from agentty_core.worker.pty_io import INPUT_QUEUE, RAW_BUFFER
from agentty_core.worker.recording import Recorder
from agentty_core.worker.waits import parse_wait

log = logging.getLogger("agentty.worker")

# A program reading raw (a TUI) may take text and Enter that arrive in one read for a paste:
# its Enter waits until it has read the text, ENTER_GAP at most (a program that is busy
# for longer would read both at once anyway). A program reading lines
# (canonical mode: a shell without line editing, a REPL, `read`) gets both at once: the line
# discipline hands it the line only once Enter ends it.
ENTER_GAP = 0.25  # the most a busy program is waited for (it was a fixed 50 ms for everyone)
ENTER_POLL = 0.001  # how often the program's unread input is looked at meanwhile
RECORD_ERROR_PATIENCE = 60.0  # how long a failed recording's note is tried for the record
RECORD_NOTE_WAIT = 1.0  # how long `record on` waits for its note before answering anyway
HOLD_WAIT = 10.0  # how soon after its start a session started to be held must be held
SIGNALS = {name: getattr(signal, f"SIG{name}") for name in protocol.SIGNAL_NAMES}


# A request that acts is done and answered this long before its `until` at the latest, or
# not done: its answer must reach a caller that stops waiting then (`protocol`).
ANSWER_MARGIN = 0.1


def _until(message: JSONObject) -> float | None:
    """When the request's caller stops waiting (CLOCK_MONOTONIC), if it said."""
    until = message.get("until")
    if isinstance(until, bool) or not isinstance(until, (int, float)):
        return None
    return float(until)


def _late(until: float | None) -> bool:
    """Too late to act and answer before the caller stops waiting (`protocol`: late
    requests): nothing is done then."""
    return until is not None and time.monotonic() > until - ANSWER_MARGIN


class Requests(WorkerBase):
    """The request handlers, the method table, and how answers go out."""

    def _on_request(self, peer: Peer, line: bytes) -> None:
        """Answer one request line: at once when the handler can, else when its answer is
        ready (the connection's next requests wait until then)."""
        try:
            message = protocol.decode_line(line)
            method = message.get("method")
            params = message.get("params", {})
            if not isinstance(method, str) or not isinstance(params, dict):
                raise BadRequest("a request needs a string 'method' and an object 'params'")
            if method == "subscribe":
                self._subscribe(peer, params)
                return
            if method == "hold":
                self._hold(peer)
                return
            self.until = _until(message) if method in protocol.ACTING else None
            self.caller = peer
            if _late(self.until):
                raise RequestFailed("late", "the caller stopped waiting: not done")
            if method in protocol.ACTING and peer.gone():  # (interrupted: Ctrl-C, a kill)
                raise RequestFailed("late", "the caller is gone: not done")
            answer = self._answer(method, params)
            if isinstance(answer, dict):
                failpoints.hit(f"worker.answering_{method}")  # (tests: stopped before it)
                peer.send(protocol.ok(answer))
                failpoints.hit(f"worker.answered_{method}")  # (tests: a worker slow after it)
                return
        except Exception as exc:
            peer.send(self._error_response(exc))
            return
        peer.busy = True
        if isinstance(answer, Later):
            answer.then(lambda outcome: self._answer_later(peer, outcome, defer_resume=True))
            _drop_when_gone(peer, answer)
            return
        future = asyncio.ensure_future(answer)
        future.add_done_callback(lambda done: self._answer_done(peer, done))

    def _answer_done(self, peer: Peer, done: asyncio.Future[JSONObject]) -> None:
        if done.cancelled():
            peer.close()  # the loop is shutting down; the connection just ends
            return
        exc = done.exception()
        self._answer_later(peer, done.result() if exc is None else exc)

    def _answer_later(self, peer: Peer, outcome: Outcome, *, defer_resume: bool = False) -> None:
        """Send a pending request's answer. A Later resolves in the middle of other work (the
        output callback, a wait check): the requests queued behind it then wait for the next
        turn of the loop instead of running inside that work."""
        try:
            if isinstance(outcome, BaseException):
                peer.send(self._error_response(outcome))
            else:
                peer.send(protocol.ok(outcome))
        except Exception as failure:  # an answer that cannot be encoded, say
            peer.send(self._error_response(failure))
        finally:
            if defer_resume:
                asyncio.get_running_loop().call_soon(peer.resume)
            else:
                peer.resume()

    @staticmethod
    def _error_response(exc: BaseException) -> bytes:
        if isinstance(exc, BadRequest):
            return protocol.error(exc.code, str(exc), exit_code=EXIT_USAGE)
        if isinstance(exc, InvalidKey):
            return protocol.error("invalid_key", str(exc), exit_code=EXIT_USAGE)
        if isinstance(exc, RequestFailed):
            return protocol.error(exc.code, str(exc), exit_code=exc.exit_code, **exc.extra)
        log.error(
            "request failed:\n%s",
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )
        return protocol.error("internal", f"worker error: {exc}")

    def _answer(self, method: str, params: JSONObject) -> Answer:
        handler = self.handlers.get(method)
        if handler is None:
            raise BadRequest(f"unknown method {method!r}", "unknown_method")
        return handler(self, params)

    async def dispatch(self, method: str, params: JSONObject) -> JSONObject:
        """One request's result (or its exception), whichever way its handler answers."""
        answer = self._answer(method, params)
        if isinstance(answer, dict):
            return answer
        if isinstance(answer, Later):
            future: asyncio.Future[JSONObject] = asyncio.get_running_loop().create_future()

            def settle(outcome: Outcome) -> None:
                if future.done():
                    return
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

            answer.then(settle)
            return await future
        return await answer

    def _ping(self, params: JSONObject) -> JSONObject:
        return {"pong": True, "pid": os.getpid(), "seq": self.emu.seq}

    def _info(self, params: JSONObject) -> JSONObject:
        record = dict(self.record, lastActiveAt=iso(self.active_at))
        record.update(input=self.input_state(), seq=self.emu.seq)
        return {"record": record}

    def _get(self, params: JSONObject) -> JSONObject:
        raw_bytes = _int_param(params, "bytes", 0, RAW_BUFFER, default=None)
        if params.get("raw") is True and raw_bytes is None:
            raw_bytes = 4096
        return self.screen_payload(
            scrollback=params.get("scrollback") is True,
            ansi=params.get("ansi") is True,
            raw_bytes=raw_bytes,
            last_lines=_int_param(params, "lines", 0, 1_000_000, default=None),
        )

    def _text(self, params: JSONObject) -> Answer:
        if "data_b64" in params:
            try:
                data = base64.b64decode(str(params["data_b64"]), validate=True)
            except ValueError:
                raise BadRequest("data_b64 is not valid base64") from None
        elif isinstance(params.get("data"), str):
            data = _utf8(str(params["data"]), "text")
        else:
            raise BadRequest("text needs 'data' (a string) or 'data_b64'")
        part = params.get("part")  # a part of a large input (see Client.text), or None
        if part not in (None, "first", "more", "last"):
            raise BadRequest("part must be 'first', 'more' or 'last'")
        seq = self.emu.seq
        if part in (None, "first"):
            self.echoes.note_before(self.emu)
        typed = data
        pasted = params.get("paste") is True
        if part in ("more", "last"):
            bracket = params.get("bracketed") is True  # decided by the first part
        else:
            multiline = params.get("multiline") is True or b"\n" in data or b"\r" in data
            bracket = self.emu.modes.get("bracketedPaste", False) and (multiline or pasted)
            if not pasted and part is None and not data.strip(b"\r\n"):
                bracket = False  # only newlines: Enter pressed, nothing to paste
        if bracket:
            # Typed text of several lines goes as a paste (an editor's autoindent does not
            # pile up, a shell does not run each line as it comes), but its last newline is
            # typed after it: the lines run, as typed lines do (inside, bash only kept them).
            tail = b""
            if not pasted and part in (None, "last"):
                body = data.rstrip(b"\r\n")
                data, tail = body, data[len(body) :]
            data = data.replace(b"\x1b[201~", b"")
            data = (b"\x1b[200~" if part in (None, "first") else b"") + data
            data += b"\x1b[201~" + tail if part in (None, "last") else b""
        enter = params.get("enter") is True
        # What is typed: the text, and its Enter (a carriage return), as `send`'s Enter counts.
        typed_enter = 1 if enter and part in (None, "last") else 0
        result: JSONObject = {"seq": seq, "bytes": len(data) + typed_enter}
        if part == "first":
            result["bracketed"] = bracket
        until = self.until  # (this request's: the next one's is set before it is read)
        if part is not None and len(self.pending_input) + len(data) > INPUT_QUEUE:
            return self._text_when_room(data, part, enter, result, until, self.caller)
        # Enter goes with the text to a program reading lines (its line discipline keeps
        # them apart), and at once when there is no text at all: no read of it can be waited
        # for (`text --enter ''` waited out ENTER_GAP every time).
        with_enter = enter and ((not data and part is None) or self._reads_lines())
        reads = self._reads_so_far() if enter and not with_enter else None
        label = None if part in ("more", "last") else "text"
        if part in (None, "first"):
            self._note_echo(typed)
        self._type(data + b"\r" if with_enter else data, label)
        return self._enter_later(result, reads, until) if enter and not with_enter else result

    def _note_echo(self, typed: bytes) -> None:
        """Remember where the typed text's echo will be drawn (a wait `after` it masks it)."""
        if self.child is not None and self.exit_status is None and draws_echo(self.child.fd):
            self._drain_output()  # the cursor after all the program wrote before the input
            self.echoes.note(typed.decode("utf-8", "replace"), self.emu)

    def _type(self, data: bytes, label: str | None) -> None:
        self._write(data)
        if self.recorder is not None:
            self.recorder.typed(data, label)
        self.active_at = time.time()

    async def _text_when_room(
        self,
        data: bytes,
        part: str,
        enter: bool,
        result: JSONObject,
        until: float | None,
        caller: Peer | None,
    ) -> JSONObject:
        """A part of a large input, answered once the program has read enough for it; not
        typed if that comes too late for its caller, or once its caller is gone (an
        interrupted `text --file`: the parts before it were all it typed)."""
        if len(data) > INPUT_QUEUE:
            raise BadRequest(f"a part of input holds at most {INPUT_QUEUE} bytes")
        await self._room_for(len(data))
        if _late(until):
            raise RequestFailed("late", "the caller stopped waiting: not done")
        if caller is not None and caller.gone():
            raise RequestFailed("late", "the caller is gone: not done")
        self._type(data, "text" if part == "first" else None)
        return await self._enter_later(result, None, until) if enter else result

    def _reads_lines(self) -> bool:
        """The program reads in canonical mode (its terminal's ICANON is set)."""
        if self.child is None:  # ended: `_write` refuses the text
            return False
        try:
            return bool(termios.tcgetattr(self.child.fd)[3] & termios.ICANON)
        except (termios.error, OSError):
            return False

    def _reads_so_far(self) -> int | None:
        """How many reads the program (its foreground group's leader) has made, from
        /proc/PID/io; None where that cannot be read."""
        if self.child is None:
            return None
        try:
            with open(f"/proc/{os.tcgetpgrp(self.child.fd)}/io", "rb") as f:
                for line in f:
                    if line.startswith(b"syscr:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return None

    async def _enter_later(
        self, result: JSONObject, reads: int | None, until: float | None
    ) -> JSONObject:
        """Enter once the program has read the text, or after ENTER_GAP, or in time for the
        answer to reach its caller (`until`): typed, the text is not left without it.

        Read means: nothing left in its input queue (FIONREAD on its side of the PTY) or in
        ours, and, since the kernel hands a write over to the program's side a moment later
        (an empty queue may not have received it yet), the queue was seen holding the text
        or the program has returned from a read since the text was written. A program whose
        queue cannot be seen gets ENTER_GAP."""
        deadline = time.monotonic() + ENTER_GAP
        if until is not None:
            deadline = min(deadline, until - ANSWER_MARGIN)
        seen = False
        while self.child is not None and time.monotonic() < deadline:
            unread = _unread_input(self.child.tty_name)
            if unread is None:
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                break
            if unread or self.pending_input:
                seen = True
            elif seen or (reads is not None and (self._reads_so_far() or 0) > reads):
                break
            await asyncio.sleep(ENTER_POLL)
        self._type(b"\r", None)  # recorded as input too (`--record-input`)
        return result

    def _key(self, params: JSONObject) -> JSONObject:
        names = params.get("keys")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise BadRequest("key needs 'keys', a non-empty list of key names")
        for name in cast(list[str], names):
            _utf8(name, "a key name", escapes=False)
        parsed = keys.parse_all(cast(list[str], names))
        app_cursor = self.emu.modes.get("applicationCursor", False)
        data = b"".join(k.encode(app_cursor) for k in parsed)
        if len(data) > INPUT_QUEUE:  # never fits: not the program's doing ("queue full")
            raise BadRequest(
                f"the keys make {len(data)} bytes, more than a program's input queue holds"
                f" ({INPUT_QUEUE}); send them in several calls, or type text with `text`"
            )
        seq = self.emu.seq
        self.echoes.note_before(self.emu)
        if b"\x1b" not in data:  # an escape sequence is a key, not text the terminal draws
            self._note_echo(data)
        self._type(data, key_marker(cast(list[str], names), parsed))
        return {"seq": seq, "bytes": len(data)}

    def _resize(self, params: JSONObject) -> JSONObject:
        cols = _int_param(params, "cols", *protocol.SIZE_RANGE)
        rows = _int_param(params, "rows", *protocol.SIZE_RANGE)
        assert cols is not None and rows is not None
        if self.child is None or self.pty_closed:
            raise self._ended()
        self.emu.resize(cols, rows)
        self.child.set_size(cols, rows)
        self.record.update(cols=cols, rows=rows)
        if self.recorder is not None:
            self.recorder.resize(cols, rows)
        self.last_change = time.monotonic()
        self._check_waits()
        self._schedule_push()
        return {"cols": cols, "rows": rows, "seq": self.emu.seq}

    def _signal(self, params: JSONObject) -> JSONObject:
        name = str(params.get("name", "")).upper().removeprefix("SIG")
        if name not in SIGNALS:
            raise BadRequest(
                f"unknown signal {params.get('name')!r}; use one of {' '.join(SIGNALS)}"
            )
        if self.child is None or self.exit_status is not None:
            raise RequestFailed("exited", self._exited_message())
        sig = SIGNALS[name]
        if params.get("leader") is True:
            try:
                os.kill(self.child.pid, sig)
            except ProcessLookupError:  # reaped by now: it exited
                raise RequestFailed("exited", self._exited_message()) from None
            return {"signal": f"SIG{name}", "pids": [self.child.pid]}
        try:
            pgid = os.tcgetpgrp(self.child.fd)
        except OSError:
            pgid = 0
        if pgid <= 1:  # no foreground group yet (the child has not claimed its tty)
            pgid = self.child.pid
        from agentty_core.proc.killtree import alive, group_members

        targets = [p.pid for p in alive(group_members(pgid)) if _group_of(p.pid) == pgid]
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:  # the whole group ended between the two calls
            targets = []
        return {"signal": f"SIG{name}", "pgid": pgid, "pids": targets}

    def _start_recording(self, input: bool, markers: bool) -> None:
        path = self.home.cast_path(self.id)
        env = cast(dict[str, str], self.spec.get("env", {}))
        had = self.record.get("cast")
        new = not os.path.lexists(path)
        self.record["cast"] = str(path)
        try:
            self.recorder = Recorder(
                path,
                self.emu.cols,
                self.emu.rows,
                input=input,
                markers=markers,
                env=env,
                on_error=self._recording_failed,
            )
        except (OSError, ValueError) as exc:  # (ValueError: a recording edited past reading)
            said = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self._recording_failed(f"{said} opening {path}; not recording")
        else:
            if self.recorder.error is None:
                if self.record.pop("recordingError", None) is not None:  # an earlier one's
                    self._note_recording_error()
                return
            self.recorder = None  # its first write (the header, say) failed
        if new:
            self._forget_cast(path, had)

    def _forget_cast(self, path: os.PathLike[str], had: object) -> None:
        """A first recording that could not be written leaves no empty file behind (named
        by the record, for nobody: a full disk's `record on`)."""
        try:
            if os.stat(path).st_size == 0:
                os.unlink(path)
        except OSError:
            return
        if had is None:
            self.record.pop("cast", None)

    def _recording_failed(self, message: str) -> None:
        """A recording that cannot be written stops; the session goes on, and its record
        (what `status` shows) says why."""
        self.recorder = None
        self.record["recordingError"] = message
        self._note_recording_error()

    def _note_recording_error(self) -> None:
        """Write the recording's error (None once cleared) into the record, in the
        background. A note still trying (the lock held, the disk full) gives way to the
        newer one: written after it, it would bring back an error already cleared."""
        if self.error_note is not None:
            self.error_note.cancel()
        fields = {"recordingError": self.record.get("recordingError")}
        self.error_note = self._in_background(self._note_in_record(fields))

    async def _note_in_record(self, fields: dict[str, object]) -> None:
        problem = await self._persist(fields, RECORD_ERROR_PATIENCE)
        if problem is not None:
            log.error("cannot note %s in the record: %s", ", ".join(fields), problem)

    async def _once_noted(self, note: asyncio.Task[None], answer: JSONObject) -> JSONObject:
        """`answer`, once `note` is in the record (what `status` reads) or RECORD_NOTE_WAIT
        has passed (the state lock held: the note goes on trying)."""
        await asyncio.wait({note}, timeout=RECORD_NOTE_WAIT)
        return answer

    def _record(self, params: JSONObject) -> Answer:
        noted = self.error_note
        if params.get("on") is True:
            if self.finalizing:
                raise RequestFailed("exited", self._exited_message())
            if self.recorder is None:
                self._start_recording(params.get("input") is True, params.get("markers") is True)
            else:  # recording already: what is asked for now is recorded from here on too
                self.recorder.input = self.recorder.input or params.get("input") is True
                self.recorder.markers = self.recorder.markers or params.get("markers") is True
        elif params.get("on") is False:
            if self.recorder is not None:
                self.recorder.close()
                self.recorder = None
        else:
            raise BadRequest("record needs 'on': true or false")
        path = str(self.home.cast_path(self.id))
        answer: JSONObject = {"recording": self.recorder is not None, "path": path}
        if self.recorder is not None:  # what it records besides the output
            answer.update(input=self.recorder.input, markers=self.recorder.markers)
        if self.record.get("recordingError") and self.recorder is None:
            answer["error"] = self.record["recordingError"]
        if self.error_note is not noted and self.error_note is not None:  # set or cleared
            return self._once_noted(self.error_note, answer)
        return answer

    def _hold(self, peer: Peer) -> None:
        """From now on the connection holds the session's life: when it closes before the
        program ended (its client is gone, killed even), the session is ended as by a
        `kill`. `run` holds its session so: it leaves nothing behind, whatever ends it."""
        peer.held = self.held = True  # no more requests on this connection
        peer.on_close.append(self._holder_gone)
        log.info("held: the session ends when this connection closes")
        peer.send(protocol.ok({}))

    def _never_held(self) -> None:
        """A session started to be held (`held` in its spec: `run`) that no connection took
        within HOLD_WAIT of its start: its starter died before it could (SIGKILL in those
        few milliseconds), and nobody else would end it."""
        if self.held or self.finalizing or self.kill_task is not None:
            return
        log.info("the session was started to be held, and nobody held it: ending it")
        asyncio.get_running_loop().create_task(self.kill(grace=1.0))

    def _holder_gone(self) -> None:
        if self.finalizing or self.kill_task is not None:
            return  # ended already (the worker closes every connection at its end)
        log.info("the connection holding the session closed: ending the session")
        asyncio.get_running_loop().create_task(self.kill(grace=1.0))

    def _wait(self, params: JSONObject) -> Answer:
        return self.wait(parse_wait(params))

    async def _kill_request(self, params: JSONObject) -> JSONObject:
        grace = params.get("grace", 2.0)
        if not protocol.finite(grace) or not 0 <= float(grace) <= protocol.MAX_GRACE:  # type: ignore[arg-type]  # finite() checked the type
            raise BadRequest(f"grace must be a number of seconds in 0..{protocol.MAX_GRACE:g}")
        if self.finalizing and (self.kill_task is None or self.kill_task.done()):
            # Ended by itself, or by a kill that has answered: this one has nothing to end
            # (the worker lingers only while it cannot record the exit: a full disk, say).
            raise RequestFailed("exited", self._exited_message())
        result = await self.kill(float(grace))  # type: ignore[arg-type]  # finite() checked the type
        if result.survivors:
            raise RequestFailed(
                "kill_unconfirmed",
                f"processes still alive after SIGKILL: {result.survivors}",
                survivors=result.survivors,
            )
        answer: JSONObject = {"escalated": result.escalated, **self._exit_fields()}
        if self.exit_recorded:  # the record's word, given here: the caller need not read it
            answer["status"] = "exited"
        return answer

    def _forget(self, params: JSONObject) -> JSONObject:
        """Remove this ended session for good: the record, the active pointer to it, its
        files (`StateStore.forget`). `run` asks as soon as it has the final screen, before
        the worker closes its connections. Refused until the end is settled: until then the
        worker may still write the record, and would bring it back. The lock is tried, not
        waited for (the loop must not block): held, the caller removes it the full way."""
        if not self.finalized.is_set():
            raise RequestFailed("running", f"session {self.id} has not ended")
        try:
            self.quick_store.forget({self.id})
        except AgenttyError as exc:
            raise RequestFailed("state", str(exc), exc.exit_code) from None
        return {}

    handlers: ClassVar[dict[str, Callable[[Requests, JSONObject], Answer]]] = {
        "ping": _ping,
        "info": _info,
        "get": _get,
        "text": _text,
        "key": _key,
        "resize": _resize,
        "signal": _signal,
        "wait": _wait,
        "kill": _kill_request,
        "record": _record,
        "forget": _forget,
    }


def key_marker(names: list[str], parsed: list[keys.Key]) -> str:
    """A recording's marker for a `key` call: the keys' names, one that types a character
    (a character or Space, repeated or not: `1*3`, with Shift or Alt but not Ctrl: Alt's ESC
    comes with the character) as `·` (pressed one by one at a password prompt, they spelt
    it; input is recorded only when asked)."""
    shown = (
        "\u00b7" if (len(k.base) == 1 or k.base == "space") and not k.modifiers & 4 else n
        for n, k in zip(names, parsed, strict=True)
    )
    return "key " + " ".join(shown)


def _utf8(text: str, what: str, *, escapes: bool = True) -> bytes:
    """`text` as bytes; with `escapes`, undecodable argv bytes (surrogate escapes) become
    those bytes again. Any other lone surrogate is no character: a bad request, not a crash."""
    try:
        return text.encode("utf-8", "surrogateescape" if escapes else "strict")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise BadRequest(
            f"{what} holds a lone surrogate (U+{code:04X}), which is not a character; "
            "send bytes with data_b64"
        ) from None


def _group_of(pid: int) -> int:
    """The process group of `pid`, or 0 once it is gone (it may end at any moment)."""
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return 0


def _unread_input(tty_name: str) -> int | None:
    """Bytes of input the program has not read yet (FIONREAD on its side of the PTY, opened
    just for the question: the worker holds no slave fd, which would keep the PTY from
    reporting the program's end); None when that cannot be asked."""
    if not tty_name:
        return None
    try:
        fd = os.open(tty_name, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        raw = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
        return int.from_bytes(raw, sys.byteorder, signed=True)
    except OSError:
        return None
    finally:
        os.close(fd)


def _int_param(
    params: JSONObject, key: str, low: int, high: int, default: int | None = None
) -> int | None:
    value = params.get(key, default)
    if value is None:
        if default is None and key in ("cols", "rows"):
            raise BadRequest(f"{key} is required")
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f"{key} must be an integer in {low}..{high}")
    return value


def _drop_when_gone(peer: Peer, later: Later) -> None:
    """A client that leaves with a wait pending cancels it: the wait stops being checked on
    every screen change (an MCP client may abandon hundreds)."""

    def gone() -> None:
        later.resolve(RequestFailed("cancelled", "the client closed the connection"))

    def answered(_outcome: Outcome) -> None:
        if gone in peer.on_close:
            peer.on_close.remove(gone)

    peer.on_close.append(gone)
    later.then(answered)

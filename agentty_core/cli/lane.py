"""The fast lane: the agent commands' common forms without the full path's imports.

Agents call `get`, `text`, `key`, `paste`, `send`, `wait`, `kill` and `status` hundreds of
times per task. The full command imports json, re, pathlib, socket and argparse before it
sends a byte: ~25 ms on a small VM, as much again as the interpreter's own start. The lane
serves those commands with a session by id, unique prefix or name and `--json`, on the
interpreter's C modules only (`_socket`, `_json`): names and prefixes resolve from
`sessions.json` read with the C scanner, a regex is compiled and checked by the worker.
`status` has a module of its own (`cli/hotstatus.py`).

It makes the full path's privacy checks (a private home and socket directory of ours,
private regular files of ours, a peer of our uid and, where the record was read, the
recorded worker's pid) and hands everything else to the full path untouched: any other
option, an unknown or ambiguous session, a missing socket (unless the session ended: then
`get` and `wait` read its final screen, `cli/hotfinal.py`), an error answer that
means nothing happened, a corrupt or missing state file. When a request that acts was sent
and its answer is lost, it reports that instead of sending it twice; `kill` hands over (the
full path has fallbacks for a worker that does not answer), `get` and `wait` ask again.
`send` is several requests on one connection: a step refused after others acted is
reported here, never handed over (the full path would send those steps again).
"""

from __future__ import annotations

import os
import sys

from agentty_core.cli import hotread

TYPE_CHECKING = False  # without importing typing: this module is the hot path
if TYPE_CHECKING:
    from _socket import socket

    from agentty_core.cli.fast import Namespace

EXIT_TIMEOUT = 3  # errors.EXIT_TIMEOUT
# `wait`'s wire names and the parser's attributes (`waitspec.WaitConditions`)
WAIT_CONDITIONS = (
    ("text", "text"),
    ("regex", "regex"),
    ("gone", "gone"),
    ("stable_ms", "stable"),
    ("changed_since", "changed_since"),
    ("after", "after"),
    ("input", "input"),
    ("exit", "exit"),
    ("scrollback", "scrollback"),
)
REPEATABLE = frozenset({"get", "wait"})  # change nothing: the full path may ask again
TIMEOUT = 5  # seconds, as the full path's default
# `kill`: how long the ping is waited for before a look at whether the worker is stopped
# (SIGSTOP, a debugger), which will not answer: its session is then ended from outside.
STOPPED_LOOK = 0.05
LOOK_EVERY = 1.0  # `kill`: how often its long wait for the answer looks again
ACTING = ("text", "key", "signal", "resize", "record")  # `protocol.ACTING`
PING = b'{"v":1,"method":"ping","params":{}}\n'
# A session whose worker did not answer within the full path's own wait (stopped, say):
# `kill` then goes the full path's way for such a worker at once (`Client.kill(silent=)`).
silent_worker: str | None = None
MAX_LINE = 1 << 20  # protocol.MAX_LINE: the longest request line a worker reads
UNTIL_ROOM = 24  # the most an `until` written again may add (a float's longest repr)
# Errors after which nothing was written: the full path may safely run the command again
# (and reports the error in its own words).
NOTHING_HAPPENED = frozenset(
    {"bad_request", "invalid_key", "exited", "input_full", "unknown_method", "busy", "too_large"}
)


def fast_lane(words: list[str]) -> int | None:
    """The command's exit code, or None: the full path must handle it."""
    from agentty_core.cli.fast import parse

    args = parse(words)
    if args is None:
        return None
    if args.command == "status":
        from agentty_core.cli import hotstatus

        return hotstatus.status(args)
    requests = _requests(args)
    if requests is None:
        return None
    command = args.command
    home = hotread.home()
    if home is None:
        return None
    target = hotread.target(home, getattr(args, "session", None), command == "kill")
    if target is None:
        return _ended(args, home)
    sid, expect_pid = target
    answer_within = _answer_within(args)
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            sock.connect(os.path.join(home, "sockets", sid + ".sock"))
            cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        except OSError:
            return _ended(args, home)  # no worker there: ended, or the full path tells why
        peer_pid = int.from_bytes(cred[0:4], sys.byteorder)
        if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
            return None  # the full path refuses it, with its message
        if expect_pid is not None and peer_pid != expect_pid:
            return None  # not the recorded worker: the full path diagnoses it
        if command != "kill" and hotread.stopped(peer_pid):  # no answer would come: not sent
            _say_stopped(peer_pid)
            return 1
        set_deadline(sock, _socket.SO_SNDTIMEO, TIMEOUT)
        # As the full path pings first, a kill goes with a ping in the same write: a worker
        # that cannot answer it within TIMEOUT is not waited on for the whole kill.
        set_deadline(sock, _socket.SO_RCVTIMEO, TIMEOUT if command == "kill" else answer_within)
        try:
            sock.sendall(PING + requests[0] if command == "kill" else requests[0])
        except OSError:
            return None  # not sent (a send either fails whole here or is a short line)
        rest = bytearray()  # the kill's answer may come in the ping's read
        if command == "kill":  # a stopped worker is seen at once, not after TIMEOUT
            set_deadline(sock, _socket.SO_RCVTIMEO, STOPPED_LOOK)
            reply = hotread.read_reply(sock, silent=hotread.SILENT, rest=rest)
            if reply is hotread.SILENT and not hotread.stopped(peer_pid):
                set_deadline(sock, _socket.SO_RCVTIMEO, TIMEOUT - STOPPED_LOOK)
                reply = hotread.read_reply(sock, silent=hotread.SILENT, rest=rest)
        else:
            reply = hotread.read_reply(sock, silent=hotread.SILENT, rest=rest)
        if reply is hotread.SILENT:
            if hotread.stopped(peer_pid):
                global silent_worker
                silent_worker = sid  # `kill` then ends it from outside at once
                if command == "kill":
                    return None
                # In the full path's words: a request that acts is not done late either (its
                # `until`), and one that changes nothing would only be waited for again.
                _say_stopped(peer_pid)
                return 1
            elif command == "kill":  # slow, not stopped (a loaded machine): wait on
                reply = _while_running(sock, rest, peer_pid, answer_within)
                if reply is hotread.SILENT:  # stopped meanwhile
                    silent_worker = sid
                    return None
            elif command not in REPEATABLE:  # as the full path's wait ran out: its words
                hotread.error("worker did not answer in time")
                return 1
            else:
                reply = None
        if command == "kill" and reply is not None and reply.get("ok") is True:
            reply = _while_running(sock, rest, peer_pid, answer_within)  # the kill's answer
            if reply is hotread.SILENT:  # the worker was stopped during its kill
                silent_worker = sid
                return None
        if reply is not None and reply.get("v") != 1:
            return None  # another protocol version: the full path says so
        if reply is None or not isinstance(reply.get("ok"), bool):
            if command in REPEATABLE or command == "kill":
                return None  # nothing changed, or kill's fallbacks (orphans by marker)
            if has_ended(home, sid):
                # Dropped by a worker that was ending (still in its listening queue when
                # it closed): the full path refuses input to an ended session in the
                # record's words, as it would have here, and sends nothing again.
                return None
            hotread.error(f"the worker did not answer the {command} request")
            return 1
        if reply["ok"] is not True:
            return _refused(args, sid, sock, reply)
        result = reply.get("result")
        result = result if isinstance(result, dict) else {}
        answers = [result]
        for request in requests[1:]:  # `send`'s later steps: the first one acted already
            problem = _next_step(sid, sock, request, answers)
            if problem is not None:
                return problem
        if args.command == "send":  # `Client.send`: the seq from before the first, all bytes
            from agentty_core.input_steps import sent_bytes

            result = {"seq": result.get("seq"), "bytes": sent_bytes(answers)}
        return _answered(args, sid, result)
    finally:
        sock.close()


def _next_step(
    sid: str, sock: socket, request: bytes, answers: list[dict[str, object]]
) -> int | None:
    """Send one more of `send`'s requests; None once answered (its result added to
    `answers`), else the exit code after the error the full path would print (it cannot
    take over: earlier steps acted). Its `until` is made now: it is waited for TIMEOUT from
    now, not from the first step."""
    try:
        sock.sendall(_stamped_now(request))
    except OSError:
        reply = None
    else:
        reply = hotread.read_reply(sock, silent=hotread.SILENT)
    if reply is hotread.SILENT:
        hotread.error("worker did not answer in time")  # the full path's words
        return 1
    if reply is None or reply.get("v") != 1 or not isinstance(reply.get("ok"), bool):
        hotread.error("the worker did not answer the send request")
        return 1
    if reply["ok"] is True:
        result = reply.get("result")
        answers.append(result if isinstance(result, dict) else {})
        return None
    error = reply.get("error")
    error = error if isinstance(error, dict) else {}
    if error.get("code") == "exited":  # `Client.send` asks the state file why, as we do
        from agentty_core.client import Client
        from agentty_core.errors import AgenttyError

        try:
            Client().require_running(sid)
        except AgenttyError as exc:
            hotread.error(str(exc))
            return exc.exit_code
    hotread.error(str(error.get("message", "worker error")))
    exit_code = error.get("exit_code")
    return exit_code if isinstance(exit_code, int) and exit_code > 0 else 1


def has_ended(home: str, sid: str) -> bool:
    """The record says the session's program has ended (False when it cannot be read)."""
    recs = hotread.records(home)
    rec = next((r for r in recs if r["id"] == sid), None) if recs is not None else None
    return rec is not None and rec.get("status") not in ("starting", "running")


def _ended(args: Namespace, home: str) -> int | None:
    """`get` and `wait` on a session that has ended read its final screen (`hotfinal`)."""
    if args.command not in REPEATABLE:
        return None
    from agentty_core.cli import hotfinal

    found = hotfinal.answer(args, home)
    return None if found is None else _answered(args, *found)


def _answer_within(args: Namespace) -> float:
    """How long the full path waits for the answer (`Client.wait`, `Client.kill`)."""
    if args.command == "wait":
        return float(args.timeout) + 5.0
    if args.command == "kill":
        return float(args.timeout) * 3 + 10
    return TIMEOUT


def _while_running(
    sock: socket, rest: bytearray, pid: int, within: float
) -> dict[str, object] | None:
    """`kill`'s answer, waited for `within` seconds while the worker runs (looked at every
    LOOK_EVERY seconds); `hotread.SILENT` once it is stopped (its kill then goes on from
    outside at once: it held the caller for the whole wait, grace x 3 + 10 s)."""
    import _socket
    import time

    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        set_deadline(sock, _socket.SO_RCVTIMEO, max(0.001, min(LOOK_EVERY, left)))
        reply = hotread.read_reply(sock, silent=hotread.SILENT, rest=rest)
        if reply is not hotread.SILENT:
            return reply
        if time.monotonic() >= deadline:
            return None
        if hotread.stopped(pid):
            return hotread.SILENT


def _say_stopped(pid: int) -> None:
    from agentty_core.errors import no_answer

    hotread.error(no_answer(pid))


def set_deadline(sock: socket, option: int, seconds: float) -> None:
    micros = max(1, int(seconds * 1_000_000))
    timeval = (micros // 1_000_000).to_bytes(8, sys.byteorder)
    sock.setsockopt(1, option, timeval + (micros % 1_000_000).to_bytes(8, sys.byteorder))


def _requests(args: Namespace) -> list[bytes] | None:
    """The request lines for a form the lane serves (one, or `send`'s steps in order); None
    for anything else."""
    command = args.command
    params: dict[str, object]
    if command == "send":
        from agentty_core.errors import AgenttyError
        from agentty_core.input_steps import send_steps

        try:  # every key checked before anything is sent, as `Client.send` does
            steps = send_steps(args.args, literal=args.literal, enter=args.enter)
        except AgenttyError:
            return None  # the full path says what is wrong
        lines = []
        for method, step_params in steps:  # each stamped again as it goes (`_next_step`)
            line = request_line(method, step_params)
            if line is None:
                return None
            lines.append(line)
        return lines
    if command == "get":
        if args.raw or args.bytes is not None or getattr(args, "png", None) is not None:
            return None  # base64 output or a picture: the full path
        if args.ansi and (args.lines is not None or args.scrollback) and not args.json:
            return None  # refused: the full path says why
        params = {}
        if args.lines is not None:
            params["lines"] = args.lines
        if args.scrollback:
            params["scrollback"] = True
        if args.ansi:
            params["ansi"] = True
    elif command in ("text", "paste"):
        payload = args.payload
        if command == "text" and (args.file is not None or payload in (["-"], [])):
            return None  # a file or stdin: the full path reads it (and refuses nothing)
        if command == "paste" and payload == "-":
            return None
        data = payload if isinstance(payload, str) else " ".join(payload)
        enter = command == "text" and bool(args.enter)
        params = {"enter": enter, "paste": command == "paste", "data": data}
    elif command == "key":
        params = {"keys": list(args.keys)}
    elif command == "wait":
        if "AGENTTY_UNREAD_HANGS_UP" in os.environ:
            return None  # a call from another host: the full path watches its reader
        params = {}
        for name, attr in WAIT_CONDITIONS:
            value = getattr(args, attr)
            if value is not None and value is not False:
                params[name] = value
        if not params.keys() - {"scrollback", "after"} or params.get("stable_ms") == 0:
            return None  # refused by `WaitConditions`: the full path says why
        params["timeout"] = args.timeout
    elif command == "kill":
        params = {"grace": args.timeout}
    else:
        return None
    line = request_line("text" if command == "paste" else command, params)  # a paste is a text
    return None if line is None else [line]


def _stamped_now(line: bytes) -> bytes:
    """An acting request line (`request_line`'s, whose `until` comes last) with its `until`
    TIMEOUT from now; no longer than the limit: it had UNTIL_ROOM to spare."""
    import time

    head, found, _ = line.rpartition(b'"until": ')
    if not found:
        return line
    return head + found + repr(time.monotonic() + TIMEOUT).encode() + b"}\n"


def request_line(method: str, params: dict[str, object], within: float = TIMEOUT) -> bytes | None:
    """A request line; None for one the worker would refuse as too long (the full path
    refuses it before sending anything, `ipc.client.sendable`). One that acts is not done
    if the worker reads it more than `within` seconds from now (`protocol`: late requests):
    its caller has stopped waiting by then."""
    message: dict[str, object] = {"v": 1, "method": method, "params": params}
    if method in ACTING:
        import time  # loaded by the interpreter itself: free

        message["until"] = time.monotonic() + within
    try:
        text = hotread.dumps(message, ascii_only=True)
    except (TypeError, ValueError):
        return None
    return None if len(text) + UNTIL_ROOM >= MAX_LINE else (text + "\n").encode("ascii")


def _refused(args: Namespace, sid: str, sock: socket, reply: dict[str, object]) -> int | None:
    """An error answer: what the full path prints, or None where it does more (a final
    screen, a message of its own) and running it again changes nothing."""
    error = reply.get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    command = args.command
    if code == "late":  # read after its `until` (`ipc.client.unwrap`): not done
        hotread.error("worker did not answer in time")
        return 1
    if command == "kill" and code == "exited":  # ended before the kill: as `Client.kill`
        from agentty_core.errors import SessionNotRunning

        refused = SessionNotRunning.already(sid, str(error.get("message", "")))
        hotread.error(str(refused))
        return refused.exit_code
    if command == "wait" and code == "timeout":
        said = error.get("screen")
        elapsed = said.get("elapsed_ms") if isinstance(said, dict) else None
        return _timed_out(args, sid, sock, str(error.get("message", "worker error")), elapsed)
    if command in REPEATABLE or code in NOTHING_HAPPENED:
        return None
    hotread.error(str(error.get("message", "worker error")))
    exit_code = error.get("exit_code")
    return exit_code if isinstance(exit_code, int) and exit_code > 0 else 1


def _answered(args: Namespace, sid: str, result: dict[str, object]) -> int | None:
    command = args.command
    if command == "kill":
        return _killed(args, sid, result)
    if args.json:
        hotread.emit(result)
    elif command == "get":
        sys.stdout.write(hotread.screen_text(result, "ansi" if args.ansi else "lines"))
    elif command == "wait":
        fired, sig = result.get("fired"), result.get("signal")
        tail = ""
        if fired == "exit":
            tail = (
                f"[exited: signal {sig}]\n" if sig else f"[exited: code {result.get('exitCode')}]\n"
            )
        sys.stdout.write(hotread.screen_text(result, "lines") + tail)
    return 0


def _timed_out(
    args: Namespace, sid: str, sock: socket, message: str, elapsed: object = None
) -> int:
    """`wait` ran out of time: the message, then the screen as it is now (`WaitTimeout`),
    with the time the worker waited (`elapsed_ms`, as an answer that fired has it)."""
    screen: dict[str, object] | None = None
    try:
        sock.sendall(b'{"v": 1, "method": "get", "params": {}}\n')
        reply = hotread.read_reply(sock)
    except OSError:
        reply = None
    if reply is not None and reply.get("v") == 1 and reply.get("ok") is True:
        result = reply.get("result")
        screen = result if isinstance(result, dict) else {}
    if screen is None:  # ended just now, say: the full path's `get` reads its final screen
        from agentty_core.client import Client
        from agentty_core.errors import AgenttyError

        try:
            screen = Client().get(sid)
        except AgenttyError as exc:
            hotread.error(str(exc))
            return exc.exit_code
    hotread.error(message)
    if args.json:
        waited = {} if elapsed is None else {"elapsed_ms": elapsed}
        hotread.emit({"fired": None, "timeout": True, **screen, **waited})
    else:
        sys.stdout.write(hotread.screen_text(screen, "lines"))
    return EXIT_TIMEOUT


def _killed(args: Namespace, sid: str, result: dict[str, object]) -> int:
    """The worker confirmed the end: the record's final fields, as `Client.kill` reports
    (from the answer when the worker says its record holds them: no read of the state)."""
    if (result.get("exitCode"), result.get("signal")) != (None, None):
        rec: dict[str, object] | None = {**result, "status": "exited"}  # the worker knows
    else:
        home = hotread.home()
        recs = hotread.records(home) if home is not None else None
        rec = next((r for r in recs if r["id"] == sid), None) if recs is not None else None
    if rec is None:  # unreadable just now: the full path's reader (it recovers or says why)
        from agentty_core.client import Client
        from agentty_core.errors import AgenttyError

        try:
            ended = Client()._ended_fields(sid)
        except AgenttyError as exc:
            hotread.error(str(exc))
            return exc.exit_code
    else:
        ended = {k: rec.get(k) for k in ("status", "exitCode", "signal")}
    final = {"id": sid, **result, **ended}
    if args.json:
        hotread.emit(final)
        return 0
    steps = final.get("escalated") or []
    how = f" after {', '.join(hotread.str_list(steps))}" if steps else ""
    if final.get("status") == "lost":
        pids = hotread.str_list(final.get("orphansKilled"))
        sys.stdout.write(
            f"killed {sid}: its worker was gone; ended {len(pids)} orphan process(es){how}\n"
        )
    sys.stdout.write(hotread.killed_line(final, how) + "\n")
    return 0

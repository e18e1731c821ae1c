"""`RemoteClient`: the sessions of another host's agentty, with `Client`'s calls.

Listing, starting, killing, logs and gc run the remote command line (`agentty ... --json`
over ssh, one channel of the host's multiplexed master each). Talking to a running session
(get, text, key, paste, resize, signal, wait, subscribe) goes through `agentty relay`, one
kept per session: the worker's own protocol, so a call costs a round trip on the open
channel and a wait is answered the moment the remote screen matches.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Mapping, Sequence

from agentty_core import keys, protocol
from agentty_core.client import describe_end
from agentty_core.errors import (
    AgenttyError,
    AmbiguousSession,
    ProtocolError,
    RemoteError,
    SessionNotFound,
    SessionNotRunning,
    TransportError,
    UsageError,
    WaitTimeout,
    WorkerUnreachable,
)
from agentty_core.input_steps import oversized, text_params
from agentty_core.paths import SESSION_ID_RE, Home
from agentty_core.protocol import JSONObject
from agentty_core.remote import transport
from agentty_core.remote.hosts import Host, resolve
from agentty_core.remote.relay import RelayConnection, RemoteSubscription, cli_error
from agentty_core.state.records import Record, checked, is_live

DEFAULT_TIMEOUT = 5.0
# Relays kept open per client, least recently used closed first: each is a channel of the
# host's one ssh connection, and sshd allows 10 of those by default (MaxSessions).
MAX_RELAYS = 4
_SAFE_TO_REPEAT = frozenset({"get", "info", "ping", "wait"})
_WAIT_FLAGS = {
    "text": "--text",
    "regex": "--regex",
    "gone": "--gone",
    "stable_ms": "--stable",
    "changed_since": "--changed-since",
}


class RemoteClient:
    """Sessions of the agentty on `host` (a hosts.toml name or an ssh destination)."""

    def __init__(
        self, host: Host | str, timeout: float = DEFAULT_TIMEOUT, home: Home | None = None
    ) -> None:
        self.host = host if isinstance(host, Host) else resolve(host)
        self.timeout = timeout
        self._home_root = (home or Home.resolve()).root  # where the ssh master's socket lives
        self._relays: dict[str, RelayConnection] = {}
        # Threads share the client (the dashboard's senders, pane and pollers): a relay is
        # taken out of the dict for a call, so two calls never use one relay at once.
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()  # command-line calls in flight

    def abort(self) -> None:
        """End the command-line calls in flight, from any thread (each raises in its own):
        a dashboard that quits never waits for a host that does not answer."""
        for proc in list(self._running):
            transport.end_group(proc)

    def close(self) -> None:
        """End the relays kept open (the sessions run on)."""
        while True:
            with self._lock:
                if not self._relays:
                    return
                conn = self._relays.popitem()[1]
            conn.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ the remote command line

    def cli(
        self, words: Sequence[str], *, input: bytes | None = None, timeout: float | None = None
    ) -> JSONObject:
        """`agentty WORDS --json` on the host, parsed; its failure as a local call's error."""
        return self._parsed(self.cli_answer(words, input=input, timeout=timeout))

    def cli_answer(
        self, words: Sequence[str], *, input: bytes | None = None, timeout: float | None = None
    ) -> tuple[int, bytes, str]:
        """`agentty WORDS --json` on the host: (exit code, stdout, stderr), unparsed."""
        command, *rest = words
        limit = timeout if timeout is not None else self.timeout + transport.connect_timeout()
        return transport.capture(
            self.host,
            [command, "--json", *rest],
            self._home_root,
            input=input,
            timeout=limit,
            running=self._running,
        )

    def _parsed(self, answer: tuple[int, bytes, str]) -> JSONObject:
        code, out, err = answer
        value = _json_or_none(out)
        if code != 0:
            raise cli_error(code, err, value if isinstance(value, dict) else None)
        if not isinstance(value, dict):
            raise TransportError(self.host.name, "failed", f"{self.host.name}: no JSON answer")
        return value

    def _started(self, answer: tuple[int, bytes, str]) -> JSONObject:
        """A `start`'s answer, parsed. One that is not JSON (the host printed a banner on
        stdout first) still started a session there, which nobody would be told of: it is
        ended, found by the record among the answer's lines, as the CLI ends a session
        whose id it cannot print."""
        try:
            return self._parsed(answer)
        except TransportError as failed:
            code, out, _ = answer
            found = [rec for line in out.splitlines() if (rec := checked(_json_or_none(line)))]
            if code != 0 or not found:
                raise
            sid = str(found[-1]["id"])
            try:
                ended = self.cli_answer(["kill", "-s", sid], timeout=30.0)[0] == 0
            except AgenttyError:
                ended = False
            then = "the session was ended" if ended else f"session {sid} there runs on"
            raise TransportError(failed.host, failed.reason, f"{failed}; {then}") from None

    def status(self) -> JSONObject:
        return self.cli(["status"])

    def sessions(self, *, live_info: bool = False) -> list[Record]:
        return _records(self.status().get("sessions"))

    def resolve(self, ref: str | None) -> Record:
        """The record of an id, a unique id prefix or a name (None: the active session)."""
        status = self.status()
        sessions = _records(status.get("sessions"))
        if ref is None:
            ref = str(status.get("active") or "")
            if not ref:
                from agentty_core.errors import NoActiveSession

                raise NoActiveSession()
        for rec in sessions:
            if rec.get("id") == ref or rec.get("name") == ref:
                return rec
        matches = [r for r in sessions if str(r.get("id", "")).startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise AmbiguousSession(ref, [str(r["id"]) for r in matches])
        raise SessionNotFound(ref)

    def require_running(self, ref: str | None) -> Record:
        rec = self.resolve(ref)
        if not is_live(rec):
            raise SessionNotRunning(rec["id"], describe_end(rec))
        return rec

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
    ) -> Record:
        """Start a session on the host (it becomes the active one there)."""
        words = ["start", "--cols", str(cols), "--rows", str(rows)]
        if name is not None:
            words += ["--name", name]
        if cwd is not None:
            words += ["--cwd", cwd]
        for key, value in (env or {}).items():
            words += ["--env", f"{key}={value}"]
        if record:
            words += ["--record"] + (["--record-input"] if record.get("input") else [])
            words += ["--record-markers"] if record.get("markers") else []
        if shell is not None:
            words += ["--shell", shell]
        else:
            words += ["--", *(argv or [])]
        limit = self.timeout + transport.connect_timeout() + 30
        started = self._started(self.cli_answer(words, timeout=limit))
        started_record = checked(started)
        if started_record is None:
            raise ProtocolError(f"{self.host.name}: start answered no session record")
        return started_record

    # ------------------------------------------------------------ through the relay

    def _id(self, ref: str | None) -> str:
        if ref is not None and SESSION_ID_RE.match(ref):
            return ref
        return str(self.resolve(ref)["id"])

    def _call(
        self, ref: str | None, method: str, params: JSONObject, timeout: float | None = None
    ) -> JSONObject:
        sid = self._id(ref)
        wait = self.timeout if timeout is None else timeout
        with self._lock:
            conn = self._relays.pop(sid, None)
        if conn is not None and not conn.alive():
            conn.close()
            conn = None
        reused = conn is not None
        if conn is None:
            conn = RelayConnection(self.host, sid, self._home_root)
        try:
            result = conn.call(method, params, timeout=wait)
        except RemoteError:
            self._keep(sid, conn)  # an error answer leaves the relay in step
            raise
        except BaseException as exc:
            conn.close()
            if reused and method in _SAFE_TO_REPEAT and isinstance(exc, WorkerUnreachable):
                return self._call(sid, method, params, timeout)
            raise
        self._keep(sid, conn)
        return result

    def _call_running(self, ref: str | None, method: str, params: JSONObject) -> JSONObject:
        """Input for a running session (what `Session` sends), over the session's relay."""
        return self._call(ref, method, params)

    def _keep(self, sid: str, conn: RelayConnection) -> None:
        doomed = []
        with self._lock:
            spare = self._relays.pop(sid, None)  # another thread's, kept meanwhile
            if spare is not None:
                doomed.append(spare)
            self._relays[sid] = conn  # (re)inserted last: the dict is in order of use
            while len(self._relays) > MAX_RELAYS:
                doomed.append(self._relays.pop(next(iter(self._relays))))
        for old in doomed:
            old.close()

    def get(self, ref: str | None = None, **params: object) -> JSONObject:
        try:
            return self._call(ref, "get", dict(params))
        except (SessionNotRunning, WorkerUnreachable):
            # An ended session: its final screen, as the remote `get` gives it.
            words = ["get", "-s", self._id(ref)]
            words += ["--scrollback"] if params.get("scrollback") else []
            return self.cli(words)

    def text(
        self, ref: str | None, data: str | bytes, *, enter: bool = False, paste: bool = False
    ) -> JSONObject:
        params = text_params(data, enter=enter, paste=paste)
        size = oversized(params)  # (refused by the worker as a line too long)
        if size is not None:
            raise UsageError(
                f"{self.host.name}: an input goes to a host in one request, and this one is "
                f"{size} bytes as JSON, over the {protocol.MAX_LINE} a worker reads: send it "
                f"in pieces, or use 'agentty --host {self.host.name} text --file F' (up to "
                "64 MiB); nothing was sent"
            )
        return self._call(ref, "text", params)

    def paste(self, ref: str | None, data: str | bytes) -> JSONObject:
        return self.text(ref, data, paste=True)

    def key(self, ref: str | None, names: Sequence[str]) -> JSONObject:
        keys.parse_all(list(names))  # validate before anything is sent
        return self._call(ref, "key", {"keys": list(names)})

    def resize(self, ref: str | None, cols: int, rows: int) -> JSONObject:
        return self._call(ref, "resize", {"cols": cols, "rows": rows})

    def record(
        self, ref: str | None, on: bool, *, input: bool = False, markers: bool = False
    ) -> JSONObject:
        """Start or stop the recording of a session on the host (its file is the host's)."""
        return self._call(ref, "record", {"on": on, "input": input, "markers": markers})

    def signal(self, ref: str | None, name: str, *, leader: bool = False) -> JSONObject:
        return self._call(ref, "signal", {"name": name, "leader": leader})

    def wait(self, ref: str | None, *, timeout: float = 30.0, **conditions: object) -> JSONObject:
        """Answered by the remote worker the moment a condition holds; an ended session's
        wait (its last screen, its exit) by the remote command line."""
        sid = self._id(ref)
        params: JSONObject = {k: v for k, v in conditions.items() if v not in (None, False)}
        params["timeout"] = timeout
        try:
            return self._call(sid, "wait", params, timeout=timeout + 5.0)
        except RemoteError as exc:
            if exc.code == "timeout":
                raise WaitTimeout(exc.message, self.get(sid)) from None
            if exc.code != "exited":
                raise
        except SessionNotRunning:
            pass
        return self.cli_wait(sid, params, timeout)

    def cli_wait(self, sid: str, params: JSONObject, timeout: float) -> JSONObject:
        """The wait, by the remote command line (an ended session's last screen, its exit)."""
        words = ["wait", "-s", sid, "--timeout", str(timeout)]
        for key, flag in _WAIT_FLAGS.items():
            if params.get(key) is not None:
                words += [flag, str(params[key])]
        for key in ("input", "exit", "scrollback"):
            if params.get(key):
                words.append(f"--{key}")
        return self.cli(words, timeout=timeout + self.timeout + transport.connect_timeout())

    def subscribe(self, ref: str | None, *, interval: float | None = None) -> RemoteSubscription:
        """Screen events pushed by the remote worker, through a relay of their own."""
        return RemoteSubscription(self.host, self._id(ref), self._home_root, interval)

    # ------------------------------------------------------------ the command line again

    def kill(self, ref: str | None = None, *, grace: float = 2.0) -> JSONObject:
        rec = self.resolve(ref)
        sid = str(rec["id"])
        if rec.get("status") in ("exited", "failed"):
            raise SessionNotRunning(sid, f"already {describe_end(rec)}")
        with self._lock:
            relay = self._relays.pop(sid, None)
        if relay is not None:
            relay.close()
        return self.cli(["kill", "-s", sid, "--timeout", str(grace)], timeout=grace * 3 + 30)

    def log_text(self, ref: str | None = None) -> str:
        """The session's worker log, read on the host."""
        return str(self.cli(["logs", "-s", self._id(ref)]).get("log", ""))

    def gc(self, older_than: float | None = None) -> list[str]:
        words = ["gc"] + ([] if older_than is None else ["--older-than", str(older_than)])
        removed = self.cli(words).get("removed")
        return [str(x) for x in removed] if isinstance(removed, list) else []

    def gc_one(self, ref: str) -> str:
        """Remove one ended session of the host's (`gc --session`); its id."""
        removed = self.cli(["gc", "-s", ref]).get("removed")
        return str(removed[0]) if isinstance(removed, list) and removed else ref

    def close_master(self) -> None:
        """End the host's ssh master now rather than after ControlPersist."""
        transport.close_master(self.host, self._home_root)


def _json_or_none(data: bytes) -> object:
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # (nested past the parser's depth)
        return None


def _records(listed: object) -> list[Record]:
    """The well-formed records of a remote `status --json` (a bad one is skipped, as here)."""
    if not isinstance(listed, list):
        return []
    return [rec for raw in listed if (rec := checked(raw)) is not None]

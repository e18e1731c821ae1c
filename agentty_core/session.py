"""The Python API: a typed handle on one session.

    from agentty_core import Session

    with Session.start(["python3", "-q"]) as py:
        py.wait(text=">>>")
        seq = py.text("6*7", enter=True)
        print(py.wait(regex=r"^42$", changed_since=seq).screen.lines)

`Session` wraps `Client`, the same API the CLI and the dashboard use, so the semantics (and
the exception tree in `agentty_core.errors`) are identical. Used as a context manager, the
session is killed on exit.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from agentty_core.client import Client, text_params
from agentty_core.errors import (
    AgenttyError,
    ProtocolError,
    RemoteError,
    SessionNotRunning,
    WaitTimeout,
    WorkerUnreachable,
)
from agentty_core.ipc import client as ipc_client
from agentty_core.keys import parse_all
from agentty_core.paths import Home
from agentty_core.protocol import JSONObject, str_list
from agentty_core.waitspec import WaitConditions


@dataclass(frozen=True)
class Cursor:
    row: int
    col: int
    visible: bool


@dataclass(frozen=True)
class InputState:
    """Whether the program waits for keyboard input, read from the kernel. `secret`: it reads
    a line with echo off (a password prompt); a REPL or TUI in raw mode is not secret."""

    state: str  # reading | busy | exited | unknown
    echo: bool | None
    canonical: bool | None
    foreground_pid: int | None
    foreground_name: str | None
    secret: bool = False


@dataclass(frozen=True)
class Screen:
    """What the session's terminal shows, as plain text plus its state."""

    lines: tuple[str, ...]
    cursor: Cursor
    cols: int
    rows: int
    seq: int
    title: str
    alt_screen: bool
    modes: Mapping[str, bool]
    input: InputState
    exited: bool
    exit_code: int | None
    signal: str | None
    scrollback: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The screen as one string, trimmed as `agentty get` prints it (see screen_text)."""
        from agentty_core.screen_text import trim_lines

        return "\n".join(trim_lines(self.lines))

    @classmethod
    def from_json(cls, data: JSONObject) -> Screen:
        cursor = _obj(data.get("cursor"))
        size = _obj(data.get("size"))
        state = _obj(data.get("input"))
        fg = _obj(state.get("foreground"))
        modes = _obj(data.get("modes"))
        return cls(
            lines=tuple(str_list(data.get("lines"))),
            cursor=Cursor(
                _int(cursor.get("row")), _int(cursor.get("col")), bool(cursor.get("visible", True))
            ),
            cols=_int(size.get("cols")),
            rows=_int(size.get("rows")),
            seq=_int(data.get("seq")),
            title=str(data.get("title") or ""),
            alt_screen=bool(data.get("altScreen")),
            modes={str(k): bool(v) for k, v in modes.items()},
            input=InputState(
                state=str(state.get("state", "unknown")),
                echo=_opt_bool(state.get("echo")),
                canonical=_opt_bool(state.get("canonical")),
                foreground_pid=_opt_int(fg.get("pid")),
                foreground_name=str(fg["name"]) if "name" in fg else None,
                secret=state.get("secret") is True,
            ),
            exited=bool(data.get("exited")),
            exit_code=_opt_int(data.get("exitCode")),
            signal=str(data["signal"]) if data.get("signal") else None,
            scrollback=tuple(str_list(data.get("scrollback"))),
        )


@dataclass(frozen=True)
class WaitResult:
    """Which condition fired (text, regex, gone, stable, changed, input, exit), and when."""

    fired: str
    elapsed_ms: float
    screen: Screen
    match: tuple[int, int] | None = None


@dataclass(frozen=True)
class SessionInfo:
    """A session's record, as `status --json` shows it."""

    id: str
    name: str | None
    status: str
    argv: tuple[str, ...]
    cwd: str
    pid: int | None
    exit_code: int | None
    signal: str | None
    record: Mapping[str, object] = field(repr=False, default_factory=dict)

    @classmethod
    def from_record(cls, rec: Mapping[str, object]) -> SessionInfo:
        name = rec.get("name")
        return cls(
            id=str(rec["id"]),
            name=str(name) if name else None,
            status=str(rec.get("status")),
            argv=tuple(str_list(rec.get("argv"))),
            cwd=str(rec.get("cwd", "")),
            pid=_opt_int(rec.get("pid")),
            exit_code=_opt_int(rec.get("exitCode")),
            signal=str(rec["signal"]) if rec.get("signal") else None,
            record=dict(rec),
        )


class Session:
    """One background PTY session."""

    def __init__(self, session_id: str, client: Client | None = None) -> None:
        self.client = client or Client()
        self.id = session_id
        self._conn: ipc_client.Connection | None = None

    def _fast(
        self, method: str, params: JSONObject, timeout: float | None = None
    ) -> JSONObject | None:
        """Ask the worker over a kept-open connection: no record lookup, liveness check or
        connect per call. None when that connection fails; the caller then goes the long
        way through `Client`, which tells a dead worker from an ended session."""
        if self._conn is None:
            try:
                rec = self.client.require_running(self.id)
                pid = rec.get("workerPid")
                self._conn = ipc_client.Connection(
                    str(self.client.home.socket_path(self.id)),
                    timeout=self.client.timeout,
                    expect_pid=pid if isinstance(pid, int) else None,
                )
            except AgenttyError:
                return None
        try:
            return self._conn.call(method, params, timeout=timeout)
        except (WorkerUnreachable, ProtocolError):
            self.close()
            return None

    def close(self) -> None:
        """Drop the kept-open connection (the session itself runs on)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------ finding and starting

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        name: str | None = None,
        cwd: str | None = None,
        size: tuple[int, int] = (80, 24),
        env: Mapping[str, str] | None = None,
        shell: bool = False,
        home: Home | None = None,
    ) -> Session:
        """Start `argv` (exactly, no shell; `shell=True` runs `argv[0]` with `$SHELL -lc`)."""
        client = Client(home)
        cols, rows = size
        if shell:
            rec = client.start(shell=argv[0], name=name, cwd=cwd, cols=cols, rows=rows, env=env)
        else:
            rec = client.start(argv, name=name, cwd=cwd, cols=cols, rows=rows, env=env)
        return cls(str(rec["id"]), client)

    @classmethod
    def find(cls, ref: str, *, home: Home | None = None) -> Session:
        """A session by id, unique id prefix or name."""
        client = Client(home)
        return cls(str(client.resolve(ref)["id"]), client)

    @classmethod
    def list(cls, *, home: Home | None = None) -> builtins.list[SessionInfo]:
        return [SessionInfo.from_record(r) for r in Client(home).sessions()]

    @property
    def info(self) -> SessionInfo:
        return SessionInfo.from_record(self.client.resolve(self.id))

    def __repr__(self) -> str:
        return f"Session({self.id!r})"

    # ------------------------------------------------------------ I/O

    def get(self, *, scrollback: bool = False) -> Screen:
        return Screen.from_json(self.client.get(self.id, scrollback=scrollback))

    def text(self, data: str | bytes, *, enter: bool = False) -> int:
        """Type `data`; returns the screen's seq from before, for `wait(changed_since=...)`."""
        result = self._fast("text", text_params(data, enter=enter))
        if result is None:
            result = self.client.text(self.id, data, enter=enter)
        return _int(result.get("seq"))

    def key(self, *names: str) -> int:
        """Press keys (see `agentty_core.keys`); returns the seq from before."""
        parse_all(list(names))  # an unknown name is InvalidKey here, and nothing is sent
        result = self._fast("key", {"keys": list(names)})
        if result is None:
            result = self.client.key(self.id, list(names))
        return _int(result.get("seq"))

    def paste(self, data: str | bytes) -> int:
        return _int(self.client.paste(self.id, data).get("seq"))

    def wait(
        self,
        *,
        text: str | None = None,
        regex: str | None = None,
        gone: str | None = None,
        stable: int | None = None,
        changed_since: int | None = None,
        input: bool = False,
        exit: bool = False,
        scrollback: bool = False,
        timeout: float = 30.0,
    ) -> WaitResult:
        """Block until any condition holds (checked by the worker as output arrives).

        `stable` is in milliseconds. Raises `WaitTimeout` (with `.screen`) on timeout, and
        `UsageError` for a wait without a condition or a value out of range (nothing sent)."""
        spec = WaitConditions(
            text=text,
            regex=regex,
            gone=gone,
            stable_ms=stable,
            changed_since=changed_since,
            input=input,
            exit=exit,
            scrollback=scrollback,
            timeout=timeout,
        )
        params = spec.params()
        result: JSONObject | None = None
        if not exit:  # an ended session is answered from its saved screen: the long way
            try:
                result = self._fast("wait", params, timeout=timeout + 5.0)
            except RemoteError as exc:
                if exc.code == "timeout":
                    raise WaitTimeout(exc.message, self.client.get(self.id)) from None
                if exc.code != "exited":
                    raise
        if result is None:
            result = self.client.wait(self.id, timeout=timeout, **spec.conditions())
        match = _obj(result.get("match"))
        return WaitResult(
            fired=str(result.get("fired")),
            elapsed_ms=float(result.get("elapsed_ms") or 0),  # type: ignore[arg-type]  # a JSON number
            screen=Screen.from_json(result),
            match=(_int(match["row"]), _int(match["col"])) if match else None,
        )

    def resize(self, cols: int, rows: int) -> None:
        self.client.resize(self.id, cols, rows)

    def signal(self, name: str, *, leader: bool = False) -> None:
        self.client.signal(self.id, name, leader=leader)

    def kill(self, *, grace: float = 2.0) -> JSONObject:
        """End the whole process tree (confirmed); an already ended session is not an error."""
        self.close()
        try:
            return self.client.kill(self.id, grace=grace)
        except SessionNotRunning:
            return {"id": self.id, "status": self.info.status}

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill(grace=0.5)


def _obj(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None

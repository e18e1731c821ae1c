"""The values the Python API hands out: a `Screen`, a `WaitResult`, a `SessionInfo`.

Shared by `Session` (threads) and `AsyncSession` (asyncio), which return the same types and
raise the same errors; parsed from the worker's JSON once, here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agentty_core.errors import SessionNotRunning, WaitTimeout
from agentty_core.protocol import JSONObject, str_list


@dataclass(frozen=True)
class Cursor:
    row: int
    col: int
    visible: bool


@dataclass(frozen=True)
class InputState:
    """Whether the program waits for keyboard input, read from the kernel. `secret`: it reads
    a line with echo off (a password prompt); a REPL or TUI in raw mode is not secret."""

    state: str  # reading | busy | stopped | exited | unknown
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
    raw: JSONObject = field(repr=False, compare=False, default_factory=dict)  # the JSON

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
            raw=data,
        )


@dataclass(frozen=True)
class WaitResult:
    """Which condition fired (text, regex, gone, stable, changed, input, exit), and when."""

    fired: str
    elapsed_ms: float
    screen: Screen
    match: tuple[int, int] | None = None

    @classmethod
    def from_json(cls, result: JSONObject) -> WaitResult:
        match = _obj(result.get("match"))
        elapsed = result.get("elapsed_ms")
        return cls(
            fired=str(result.get("fired")),
            elapsed_ms=float(elapsed) if isinstance(elapsed, (int, float)) else 0.0,
            screen=Screen.from_json(result),
            match=(_int(match["row"]), _int(match["col"])) if match else None,
        )


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


class SessionWaitTimeout(WaitTimeout):
    """The `WaitTimeout` that `Session` and `AsyncSession` raise: `screen` is a `Screen`
    (what the screen showed at the timeout); `payload` is its JSON, as `Client` gives it."""

    screen: Screen  # type: ignore[assignment]  # a Screen here; Client's callers get the JSON

    def __init__(self, message: str, payload: JSONObject) -> None:
        super().__init__(message, payload)
        self.payload = payload
        self.screen = Screen.from_json(payload)


class SessionEnded(SessionNotRunning):
    """The `SessionNotRunning` that `Session.wait` and `AsyncSession.wait` raise when the
    program ended and no condition held on its last screen: `screen` is that `Screen`, as
    a `SessionWaitTimeout`'s is (it was the JSON); `payload` is its JSON."""

    screen: Screen  # type: ignore[assignment]  # a Screen here; Client's callers get the JSON

    def __init__(self, ended: SessionNotRunning) -> None:
        super().__init__(ended.session_id, "")
        self.message = ended.message
        self.args = ended.args
        self.log_path, self.input_sent = ended.log_path, ended.input_sent
        self.input_seq = ended.input_seq
        self.payload = ended.screen
        self.screen = Screen.from_json(ended.screen)


def _obj(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None

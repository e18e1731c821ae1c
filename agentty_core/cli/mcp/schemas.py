"""What the MCP tools' schemas tell a model: every parameter described, closed sets as enums.

The SDK derives each tool's input schema from its signature and its output schema from its
return annotation; the types here carry the descriptions (units, ranges, defaults) so a model
reads them in `tools/list` instead of guessing. Outputs are pydantic models, so the output
schema is typed rather than "an object".
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
)

from agentty_core.input_steps import MAX_INPUT
from agentty_core.waitspec import MAX_STABLE_MS

MAX_OFFSET = 1 << 40  # a line of the history (`get`'s offset)
MAX_LINES = 200  # lines per screen block: a flooding program cannot fill a model's context
MAX_LINE_CHARS = 500
LOG_TAIL_BYTES = 16_384
SIGNAL_NAMES = ("INT", "TERM", "HUP", "QUIT", "USR1", "USR2", "WINCH", "CONT", "STOP", "KILL")
KEY_HELP = (
    "Key names: Enter Tab Esc Backspace Delete Insert Space Up Down Left Right Home End "
    "PageUp PageDown F1..F12 Shift+Tab Shift+Enter Ctrl+Enter Alt+Enter Ctrl+A..Ctrl+Z Alt+<char>, "
    "modifiers Ctrl/Alt/Shift on named keys, any single character, and KEY*N to repeat "
    "(N 1..1000)."
)

# ------------------------------------------------------------------ parameters


def _integral(value: object) -> object:
    """80.0 is the integer 80 in JSON (some clients send every number as a float); a
    fraction, a bool or a string is left for the strict check to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Numbers as JSON means them, and nothing else: pydantic's lax mode took true for 1 and
# "90" for 90, so a model's slip became another call.
Whole = Annotated[StrictInt, BeforeValidator(_integral)]

Session = Annotated[
    str | None,
    Field(
        description=(
            "Which session: its id, a unique id prefix, or its name. Default: the session "
            "this MCP connection started or attached last."
        )
    ),
]
Host = Annotated[
    str | None,
    Field(
        description=(
            "Which machine: a host name from hosts.toml or an ssh destination (box, "
            "user@box, ssh://user@box:2222), reached over ssh. Default: this machine, or the "
            "default session's host when session is omitted too."
        )
    ),
]
Timeout = Annotated[
    StrictFloat,
    Field(
        json_schema_extra={"minimum": 0, "maximum": 86400},
        description="Seconds to wait before giving up, 0..86400 (default 30). A timeout is "
        "not an error: the result has timedOut=true and the current screen.",
    ),
]
Grace = Annotated[
    StrictFloat,
    Field(
        json_schema_extra={"minimum": 0, "maximum": 60},
        description="Seconds each step (HUP, TERM, then KILL) is given, 0..60 (default 2), "
        "as the CLI's kill --timeout.",
    ),
]
# Ranges are advertised in the schema and checked by the tools, so a value out of range gets
# agentty's message and code (the SDK's own validation answers without a code).
Cols = Annotated[
    Whole,
    Field(json_schema_extra={"minimum": 2, "maximum": 1000}, description="Columns, 2..1000."),
]
Rows = Annotated[
    Whole,
    Field(json_schema_extra={"minimum": 2, "maximum": 1000}, description="Rows, 2..1000."),
]
Argv = Annotated[
    list[str] | None,
    Field(
        json_schema_extra={"minItems": 1},
        description='The program and its arguments, passed exactly (no shell), e.g. ["python3", '
        '"-q"]. Give argv or shell, not both.',
    ),
]
Shell = Annotated[
    str | None,
    Field(description="A command line run by $SHELL -lc (pipes, &&); instead of argv."),
]
Cwd = Annotated[str | None, Field(description="Working directory (default: the server's).")]
Env = Annotated[
    dict[str, str] | None,
    Field(description="Environment variables to set on top of the server's."),
]
# A text to type: its UTF-8 is checked against MAX_INPUT bytes; no longer a string can pass.
Text = Annotated[str, Field(json_schema_extra={"maxLength": MAX_INPUT})]
Keys = Annotated[
    list[str],
    Field(json_schema_extra={"minItems": 1}, description=f"Keys to press, in order. {KEY_HELP}"),
]
Signal = Annotated[
    Literal[SIGNAL_NAMES],  # type: ignore[valid-type]
    Field(description="The signal, without SIG: INT is Ctrl+C, TERM asks to end, KILL forces."),
]

# ------------------------------------------------------------------ results


COMMAND_CHARS = 500  # of a command line shown: an argv of megabytes is not a listing


def _cut_command(text: str | None) -> str | None:
    if text is None or len(text) <= COMMAND_CHARS:
        return text
    return f"{text[:COMMAND_CHARS]}... ({len(text) - COMMAND_CHARS} more characters)"


Command = Annotated[
    str | None,
    AfterValidator(_cut_command),
    Field(description=f"The command line it runs (cut after {COMMAND_CHARS} characters)."),
]


class _Result(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a record has much a model need not read


class Cursor(BaseModel):
    row: int = Field(description="0-based row of the cursor on the screen.")
    col: int = Field(description="0-based column of the cursor.")
    visible: bool | None = Field(default=None, description="Whether the program shows it.")


class Foreground(BaseModel):
    pid: int = Field(description="The terminal's foreground process (group leader).")
    name: str = Field(description="Its command name, e.g. bash, vim, python3.")


class InputState(BaseModel):
    model_config = ConfigDict(extra="allow")
    state: Literal["reading", "busy", "stopped", "exited", "unknown"] = Field(
        description="reading: the program waits for keys; busy: it is working; stopped: "
        "by a signal (it reads once continued); exited; unknown: its state could not be "
        "read (another user's process, say)."
    )
    echo: bool | None = Field(default=None, description="Whether typed keys are echoed.")
    canonical: bool | None = Field(
        default=None, description="Line mode (true) or raw keys (false, e.g. an editor)."
    )
    secret: bool | None = Field(
        default=None,
        description="A password prompt: a line read with echo off (typing will not show). "
        "A shell or REPL in raw mode has echo off too, but is not secret.",
    )
    foreground: Foreground | None = Field(
        default=None, description="The process the terminal's keys go to."
    )


class Size(BaseModel):
    cols: int = Field(description="The terminal's width in columns.")
    rows: int = Field(description="Its height in rows.")


class Modes(BaseModel):
    """What the program turned on: how its keys and pastes are read."""

    model_config = ConfigDict(extra="allow")
    applicationCursor: bool | None = Field(
        default=None, description="Arrow keys send application sequences (ESC O A)."
    )
    bracketedPaste: bool | None = Field(
        default=None, description="A paste arrives bracketed, taken as one edit (paste)."
    )
    mouse: bool | None = Field(default=None, description="The program asked for mouse events.")
    applicationKeypad: bool | None = Field(default=None, description="The keypad's own codes.")


class Match(BaseModel):
    line: int = Field(description="Index of the line, 0 = the oldest line of scrollback.")
    text: str


class Screen(_Result):
    """A screen: the text block is the screen itself; this is everything, for programs."""

    id: str = Field(description="The session id.")
    screen: str = Field(description="The rendered screen as plain text, one line per row.")
    seq: int | None = Field(
        default=None, description="Screen version; pass to wait(changed_since=seq)."
    )
    cursor: Cursor | None = None
    size: Size | None = None
    altScreen: bool | None = Field(
        default=None,
        description="True while a full-screen program (vim, less, htop) shows its own screen "
        "(the alternate one: no scrollback, the shell's screen back when it ends).",
    )
    title: str | None = Field(default=None, description="The window title the program set.")
    modes: Modes | None = None
    input: InputState | None = Field(default=None, description="What the program waits for.")
    exited: bool | None = Field(default=None, description="True once the program ended.")
    exitCode: int | None = Field(default=None, description="The program's exit code.")
    signal: str | None = Field(default=None, description="The signal that ended it, if any.")
    firstLine: int | None = Field(
        default=None, description="Index of the first line shown (0 = oldest in scrollback)."
    )
    totalLines: int | None = Field(default=None, description="Lines available in all.")
    matches: list[Match] | None = Field(default=None, description="Lines found by search.")
    note: str | None = Field(default=None, description="What was left out, if anything.")
    ansi: str | None = Field(default=None, description="The screen with colour escapes.")


class Where(BaseModel):
    row: int = Field(description="0-based row of the match.")
    col: int = Field(description="0-based column where it starts.")


class WaitResult(Screen):
    fired: str | None = Field(
        default=None,
        description="The condition that held: text, regex, gone, stable, changed, input, exit.",
    )
    timedOut: bool = Field(default=False, description="True when no condition held in time.")
    elapsedMs: float | None = Field(default=None, description="How long the wait took (ms).")
    match: Where | None = Field(
        default=None,
        description="Where text or regex matched: row and column on the screen (with "
        "scrollback, rows count from the oldest history line).",
    )
    message: str | None = Field(
        default=None, description="Why none held: it timed out, or the program ended."
    )


class Answer(BaseModel):
    """One of a run's answers: what to wait for, then what to send."""

    model_config = ConfigDict(extra="forbid")

    expect: str | None = Field(
        default=None,
        description="Wait until this text is on the screen, within one row (a prompt), "
        "before answering; either way, the answer waits until the program reads input.",
    )
    input: Annotated[str, Field(json_schema_extra={"maxLength": MAX_INPUT})] | None = Field(
        default=None, description="Type this, then Enter ('' is Enter alone)."
    )
    text: Annotated[str, Field(json_schema_extra={"maxLength": MAX_INPUT})] | None = Field(
        default=None, description="Type this as it is, no Enter (a form's field)."
    )
    keys: list[str] | None = Field(
        default=None, description=f"Press these keys, e.g. ['Down', 'Enter']. {KEY_HELP}"
    )


class RunResult(Screen):
    """The final screen of a run: the session itself is removed."""

    id: str = Field(description="The run's session id (removed with the run: for the record).")

    timedOut: bool = Field(
        default=False,
        description="True when the program did not end in time: it was ended then (how: "
        "exitCode, signal), and the screen is the one it had.",
    )
    elapsedMs: float | None = Field(default=None, description="How long the run took (ms).")
    unanswered: int | None = Field(
        default=None, description="Answers not given: the program ended before it asked."
    )
    message: str | None = Field(
        default=None, description="What went otherwise: the timeout, the early end."
    )


class Started(_Result):
    id: str = Field(description="The new session's id (now this connection's default).")
    host: str | None = Field(default=None, description="The host it runs on (none: here).")
    name: str | None = None
    status: str = Field(description="running once the program runs.")
    pid: int | None = Field(default=None, description="The program's process id.")
    command: Command = None


class Then(BaseModel):
    """A wait that counts only output after the input: neither the echo of what was typed
    nor the rows the input found that show nothing new (the last result, the prompt it was
    typed at) fire it. Any one condition that holds fires it."""

    model_config = ConfigDict(extra="forbid")  # a misspelt `timout` is refused, not dropped

    text: str | None = Field(
        default=None,
        description="Until this text is on the screen, within one row (the cursor's row "
        "reads up to the cursor: 'Name: ' finds a prompt's trailing space).",
    )
    regex: str | None = Field(
        default=None, description="Until a row matches this Python regex (one row at a time)."
    )
    gone: str | None = Field(default=None, description="Until this text has left the screen.")
    stable_ms: Whole | None = Field(
        default=None,
        json_schema_extra={"minimum": 1, "maximum": MAX_STABLE_MS},
        description="Until the screen has not changed for this many milliseconds.",
    )
    input: StrictBool = Field(default=False, description="Until the program waits for keys again.")
    exit: StrictBool = Field(default=False, description="Until the program exits.")
    scrollback: StrictBool = Field(default=False, description="text/regex/gone search history too.")
    timeout: StrictFloat = Field(
        default=30.0,
        json_schema_extra={"minimum": 0, "maximum": 86400},
        description="Seconds, 0..86400 (default 30). A timeout is a result, not an error.",
    )


ThenParam = Annotated[
    Then | None,
    Field(
        description="Wait after the input, in the same call: the result is then the screen "
        "once a condition held on output newer than the input (as wait(after=seq))."
    ),
]


class Sent(_Result):
    """Input sent; with `wait`, the wait that followed it."""

    seq: int = Field(description="Screen version before the input: pass to wait(after=seq).")
    waited: WaitResult | None = Field(
        default=None, description="With `wait`: the screen once a condition held (or timedOut)."
    )


class SessionInfo(_Result):
    id: str
    name: str | None = None
    status: str = Field(description="running, exited, failed or lost (its worker died).")
    command: Command = None
    seq: int | None = Field(default=None, description="Screen version (running).")
    exitCode: int | None = None
    signal: str | None = None
    input: InputState | None = Field(default=None, description="Live input state (running).")
    lastActiveAt: str | None = Field(default=None, description="ISO time of last output.")
    default: bool = Field(default=False, description="This connection's default session.")


class SessionList(_Result):
    host: str | None = Field(default=None, description="The host listed (none: here).")
    sessions: list[SessionInfo]
    default: str | None = Field(default=None, description="This connection's default session.")


class Screenshot(_Result):
    width: int = Field(description="Picture width in pixels: cols * 8 * scale.")
    height: int = Field(description="Picture height in pixels: rows * 16 * scale.")
    seq: int = Field(description="Screen version shown, for wait(changed_since).")


class Resized(_Result):
    cols: int
    rows: int


class Signalled(_Result):
    signal: str
    pids: list[int] = Field(default_factory=list, description="The processes signalled.")


class Killed(_Result):
    id: str
    status: str | None = None
    exitCode: int | None = None
    signal: str | None = None
    escalated: list[str] | None = Field(default=None, description="Signals it took.")


class Recording(_Result):
    recording: bool | None = Field(default=None, description="Whether it records now.")
    path: str | None = Field(default=None, description="The asciicast file.")
    input: bool | None = Field(default=None, description="Whether it records input too.")
    markers: bool | None = Field(default=None, description="Whether it marks each input.")


class Log(_Result):
    host: str | None = Field(default=None, description="The host it is on (none: here).")
    path: str = Field(description="The worker's log file (on that host).")
    log: str = Field(description=f"Its last {LOG_TAIL_BYTES} bytes.")

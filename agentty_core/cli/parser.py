"""The `agentty` command line: every command, option and help text, built with argparse.

Kept apart from `cli.main` (which runs the commands) so the definitions read as one page and
`help --json` is generated from the same objects that parse the arguments. Each command is
one small builder in `BUILDERS`; `build_parser` builds only the subparser a call needs:
agents call the hot commands hundreds of times.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from agentty_core._version import __version__
from agentty_core.cli.output import PROG, shown
from agentty_core.errors import EXIT_CODES, EXIT_SIGNALLED, EXIT_USAGE

TYPE_CHECKING = False  # typing costs milliseconds the hot path does not spend
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn

    Subparsers = argparse._SubParsersAction["ArgumentParser"]


class _Once(argparse._StoreAction):
    """A single-valued option (argparse's default action), refused when given twice: argparse
    keeps the last value, and `wait --text A --text B` waited for B alone."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given = parser._given if isinstance(parser, ArgumentParser) else set()
        if option_string is not None and self.dest in given:
            parser.error(f"{'/'.join(self.option_strings)} given more than once")
        given.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but usage errors are one line with exit code 2 like every other error,
    and a single-valued option is given at most once (`help --json`: not repeatable)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, _Once)
        self.register("action", "store", _Once)
        self._given: set[str] = set()
        self._words: list[str] = []  # the words parsed last (`error` looks at them)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self._given = set()  # (each parse: a parser may read several command lines)
        words = args[0] if args else kwargs.get("args")
        self._words = [w for w in words if isinstance(w, str)] if words is not None else []
        return super().parse_known_args(*args, **kwargs)

    def parse_args(self, *args: Any, **kwargs: Any) -> Any:
        """As argparse's, but words left over are said with the command's own help."""
        parsed, extras = self.parse_known_args(*args, **kwargs)
        if extras:
            command = getattr(parsed, "command", None)
            prog = f"{self.prog} {command}" if isinstance(command, str) else self.prog
            said = f"unrecognized arguments: {' '.join(extras)}"
            self._fail(said + _dash_hint(prog, extras), prog)
        return parsed

    def error(self, message: str) -> NoReturn:
        known = self._option_string_actions
        unknown = [w for w in self._words if w.partition("=")[0] not in known]
        self._fail(message + _dash_hint(self.prog, unknown), self.prog)

    def _fail(self, message: str, prog: str) -> NoReturn:
        # The message may quote what was given as is (an unknown argument, an ambiguous
        # option): escaped, as every error line is.
        self.exit(EXIT_USAGE, f"{PROG}: error: {shown(message)} (see '{prog} --help')\n")

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse makes a formatter for every add_argument (to check the metavar), and a
        # formatter without a width imports shutil for the terminal's: a tenth of `run`.
        return self.formatter_class(prog=self.prog, width=terminal_columns() - 2)  # type: ignore[call-arg]


# Commands whose words are typed: one that starts with '-' reads as an option unless '--'
# comes before it (`text --enter ls -la` failed as "unrecognized arguments: -la").
TYPED = frozenset({"text", "send", "paste"})


def _dash_hint(prog: str, words: list[str]) -> str:
    """How to type `words` that read as options, for a command that types them."""
    command = prog.rpartition(" ")[2]
    dashed = next((w for w in words if w.startswith("-") and w not in ("-", "--")), None)
    if command not in TYPED or dashed is None:
        return ""
    return f"; to type a word that starts with '-', put '--' before it ({prog} -- {dashed})"


def terminal_columns() -> int:
    """`shutil.get_terminal_size().columns`: $COLUMNS, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def _session_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-s",
        "--session",
        metavar="S",
        help="session id, unique id prefix or name (default: active)",
    )


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _plain(text: str) -> str:
    """`text` if written in ASCII without `_` (int() and float() read any script's digits
    and `1_000`, which the fast path and tmux refuse); else "" (no number)."""
    return text if text.isascii() and "_" not in text else ""


def _positive_int(text: str) -> int:
    try:
        value = int(_plain(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0 or value > 10_000_000:
        raise argparse.ArgumentTypeError(f"out of range: {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(_plain(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"seconds must be in 0..86400: {text!r}")
    return value


def _grace(text: str) -> float:
    """`kill --timeout`: the worker allows each step at most a minute."""
    try:
        value = float(_plain(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 60:  # (NaN too)
        raise argparse.ArgumentTypeError(f"the grace per step must be in 0..60 seconds: {text!r}")
    return value


def _speed(text: str) -> float:
    """`replay --speed`: 0 plays without delays; a speed near 0 would wait for ever."""
    try:
        value = float(_plain(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != 0 and not 0.01 <= value <= 1000:  # (NaN too)
        raise argparse.ArgumentTypeError(f"speed must be 0 (no delays) or in 0.01..1000: {text!r}")
    return value


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or "\0" in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE: {text!r}")
    return key, value


def _help(sub: Subparsers) -> None:
    p = sub.add_parser(
        "help", help="show help (--json: the command schema; --agent: a guide for agents)"
    )
    p.add_argument("topic", nargs="?", help="a command to show help for")
    p.add_argument(
        "--agent", action="store_true", help="print the guide for AI agents (docs/agents.md)"
    )
    _json_option(p)


def _status(sub: Subparsers) -> None:
    p = sub.add_parser("status", help="show the home, the active session and all sessions")
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="only the ids and names of running sessions, one per line",
    )
    _json_option(p)


def _start(sub: Subparsers) -> None:
    p = sub.add_parser(
        "start",
        help="start a program in a new background PTY session",
        description="Start PROGRAM with exactly the given arguments (no shell) on a new PTY. "
        "Prints the session id once the program runs and its worker answers; the new "
        "session becomes the active one. With AGENTTY_EMULATOR=avt in the environment "
        "(and pip install 'agentty[avt]') the session runs on the compiled emulator.",
        usage="agentty start [options] -- PROGRAM [ARG...]\n"
        "       agentty start [options] --shell 'CMDLINE'",
    )
    p.add_argument("--name", help="a unique name for the session (letters, digits, . _ -)")
    p.add_argument("--cwd", help="working directory (default: the current one)")
    p.add_argument("--cols", type=_positive_int, default=80, help="terminal width (default 80)")
    p.add_argument("--rows", type=_positive_int, default=24, help="terminal height (default 24)")
    p.add_argument(
        "--env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set an environment variable (repeatable)",
    )
    p.add_argument("--shell", metavar="CMDLINE", help="run CMDLINE with $SHELL -lc (opt-in)")
    p.add_argument(
        "--record", action="store_true", help="record output to logs/<id>.cast (asciicast v2)"
    )
    p.add_argument(
        "--record-input",
        action="store_true",
        help="record typed input too (may hold secrets; records without --record)",
    )
    p.add_argument(
        "--record-markers",
        action="store_true",
        help="a marker for each text/key call (records without --record)",
    )
    program = p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- PROGRAM [ARG...]")
    program.required_unless = ["--shell"]  # type: ignore[attr-defined]  # for `help --json`
    _json_option(p)


def _attach(sub: Subparsers) -> None:
    p = sub.add_parser("attach", help="make SESSION the active session")
    p.add_argument("target", metavar="SESSION", help="session id, unique id prefix or name")
    _json_option(p)


def _get(sub: Subparsers) -> None:
    p = sub.add_parser(
        "get",
        help="print the rendered screen",
        description="Print the session's rendered screen as plain text (trailing blank "
        "lines and spaces trimmed). Works on exited sessions too (their last screen).",
    )
    _session_option(p)
    p.add_argument(
        "--lines",
        type=_positive_int,
        metavar="N",
        help="the last N lines of scrollback + screen",
    )
    p.add_argument("--scrollback", action="store_true", help="retained scrollback, then the screen")
    p.add_argument(
        "--ansi",
        action="store_true",
        help="the screen's rows with colours and attributes as SGR codes (the screen only)",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="the tail of the raw output bytes (while the session runs)",
    )
    p.add_argument(
        "--bytes",
        type=_positive_int,
        metavar="N",
        help="how many bytes of the raw output (implies --raw; default 4096)",
    )
    p.add_argument(
        "--png",
        metavar="FILE",
        help="write the screen as a PNG picture (colours, attributes, cursor) to FILE ('-': "
        "stdout); needs Pillow: pip install 'agentty[png]'",
    )
    _json_option(p)


def _text(sub: Subparsers) -> None:
    p = sub.add_parser(
        "text",
        help="type text into the session (no Enter unless --enter)",
        description="Write PAYLOAD words joined by one space, as is. --enter sends Enter "
        "with the text to a program reading lines, and once the program has read the text "
        "to one reading keys (a TUI); with bracketed paste enabled, multi-line text goes as "
        "a bracketed paste, its last newline typed after it (the lines run, as typed).",
    )
    _session_option(p)
    p.add_argument("payload", nargs="*", metavar="PAYLOAD")
    p.add_argument("--enter", action="store_true", help="press Enter after the text")
    p.add_argument(
        "--file", metavar="F", help="read the payload from file F ('-' for stdin), exact bytes"
    )
    _json_option(p)


def _paste(sub: Subparsers) -> None:
    p = sub.add_parser(
        "paste",
        help="paste text (bracketed paste when the program enabled it)",
        description="Paste TEXT as a terminal does: a bracketed paste when the program "
        "turned that on (a shell, a REPL, an editor), which takes it as one edit, its "
        "newlines kept in it and nothing run until Enter ('key Enter'; 'text' types lines "
        "that run); plain otherwise, each newline ending a line as it arrives.",
    )
    _session_option(p)
    p.add_argument("payload", metavar="TEXT", help="the text, or '-' to read stdin")
    _json_option(p)


def _key(sub: Subparsers) -> None:
    p = sub.add_parser(
        "key",
        help="press one or more keys",
        description="Press keys in order: Enter Tab Esc Backspace Delete Insert Space Up Down "
        "Left Right Home End PageUp PageDown F1..F12 Shift+Tab Shift+Enter Ctrl+Enter "
        "Alt+Enter Ctrl+A..Ctrl+Z Alt+<char>, modifiers on named keys (Ctrl+Up), any single "
        "character, and KEY*N to repeat (Down*5). Other tools' spellings are accepted as "
        "aliases: tmux's C-c M-x S-Up ^C Escape BSpace BTab DC IC NPage PPage. Unknown "
        "names are an error; nothing is sent.",
    )
    _session_option(p)
    p.add_argument("keys", nargs="+", metavar="KEY")
    _json_option(p)


def _send(sub: Subparsers) -> None:
    p = sub.add_parser(
        "send",
        help="mixed input in one call: key names are pressed, anything else is typed",
        description="As tmux send-keys: each ARG that is a key name (see 'key', and tmux's "
        "spellings C-c M-x Escape BSpace) is pressed, any other ARG is typed as is, without "
        "spaces between ARGs: send i 'a line' Esc ':wq' Enter. A single character and "
        "CHAR*N are typed (6*7 is text); a word spelt like a key that names none "
        "(Ctrl+Banana) is an error and nothing is sent. --literal types every ARG.",
    )
    _session_option(p)
    p.add_argument("args", nargs="+", metavar="ARG")
    p.add_argument("--literal", action="store_true", help="type every ARG, key names too")
    p.add_argument("--enter", action="store_true", help="press Enter at the end")
    _json_option(p)


def _wait(sub: Subparsers) -> None:
    p = sub.add_parser(
        "wait",
        help="wait until the screen shows something, settles, changes, asks for input or exits",
        description="Wait until any of the conditions holds (answered by the worker the "
        "moment it does). On success prints the screen; on timeout exits 3, names what was "
        "awaited on stderr and prints the current screen. To read the answer to a command "
        "rather than its echo: seq=$(agentty text --json --enter 'make' | jq .seq); agentty "
        "wait --after $seq --text BUILD-OK (with --after, --text and --regex read the screen "
        "with the echo of typed input blanked).",
    )
    _session_option(p)
    p.add_argument("--text", metavar="STR", help="the screen contains STR")
    p.add_argument("--regex", metavar="RE", help="a screen line matches RE")
    p.add_argument("--gone", metavar="STR", help="STR is no longer on screen")
    p.add_argument("--stable", type=_positive_int, metavar="MS", help="no screen change for MS ms")
    p.add_argument(
        "--changed-since",
        type=_positive_int,
        metavar="SEQ",
        help="the screen changed after SEQ",
    )
    p.add_argument(
        "--after",
        type=_positive_int,
        metavar="SEQ",
        help="AND for every condition: it counts only on a screen newer than SEQ (the seq "
        "text/key/send --json return), so the old screen cannot fire it; --exit still fires. "
        "--text and --regex then skip the echo of typed input: where the terminal drew "
        "what was typed, it reads as blank (--gone does not)",
    )
    p.add_argument("--input", action="store_true", help="the program waits for keyboard input")
    p.add_argument("--exit", action="store_true", help="the program exited")
    p.add_argument("--scrollback", action="store_true", help="search scrollback too")
    p.add_argument(
        "--timeout", type=_seconds, default=30.0, metavar="SECONDS", help="0..86400 (default 30)"
    )
    _json_option(p)


def _resize(sub: Subparsers) -> None:
    p = sub.add_parser("resize", help="resize the session's terminal")
    _session_option(p)
    p.add_argument("--cols", type=_positive_int, required=True, help="terminal width, 2..1000")
    p.add_argument("--rows", type=_positive_int, required=True, help="terminal height, 2..1000")
    _json_option(p)


def _signal(sub: Subparsers) -> None:
    p = sub.add_parser("signal", help="send a signal to the foreground process group")
    _session_option(p)
    p.add_argument("name", metavar="NAME", help="INT TERM HUP QUIT USR1 USR2 WINCH CONT STOP KILL")
    p.add_argument("--leader", action="store_true", help="signal the session's first process only")
    _json_option(p)


def _kill(sub: Subparsers) -> None:
    p = sub.add_parser(
        "kill",
        help="end the session's whole process tree and confirm it",
        description="SIGHUP, then SIGTERM (each with SIGCONT: a stopped process acts on "
        "neither), then SIGKILL to the session's process group, session and descendants, "
        "each after a grace period; exits 0 only once nothing is left.",
    )
    _session_option(p)
    p.add_argument(
        "--all",
        action="store_true",
        help=(
            "every running session of the home, and what a lost one left running, at once"
            " (not with --session)"
        ),
    )
    p.add_argument(
        "--timeout",
        type=_grace,
        default=2.0,
        metavar="SECONDS",
        help="grace per step, 0..60 (default 2)",
    )
    _json_option(p)


def _logs(sub: Subparsers) -> None:
    p = sub.add_parser("logs", help="print the session's worker log")
    _session_option(p)
    _json_option(p)


class _Answer(argparse._AppendAction):
    """`run`'s --input and --key: each is also added, in command-line order, to `answers`,
    where the answer of rank N goes to the --expect of rank N. An append action still (its
    own list stays, unread): `help --json` keeps saying what it said of --input."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        super().__call__(parser, namespace, values, option_string)
        namespace.answers = [*getattr(namespace, "answers", []), (self.dest, values)]


def _run(sub: Subparsers) -> None:
    p = sub.add_parser(
        "run",
        help="one shot: start, answer prompts, wait for exit, print the screen, clean up",
        description="Start PROGRAM in a session, answer each --expect once its text is on "
        "screen and the program reads input, with the --input, --text or --key of the same "
        "rank (an answer without an --expect waits until the program reads input), wait for "
        "the exit, print the final screen, remove the session, and exit with the program's "
        "exit code (3 on timeout).",
        usage="agentty run [--timeout S] [--expect TEXT (--input TEXT | --text TEXT | "
        "--key KEYS)]... [--cols N] [--rows N] [--cwd DIR] [--json] -- PROGRAM [ARG...]",
    )
    p.add_argument(
        "--timeout", type=_seconds, default=60.0, metavar="SECONDS", help="0..86400 (default 60)"
    )
    p.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="TEXT",
        help="a prompt: once TEXT is on screen and the program reads, the answer of its rank",
    )
    p.add_argument(
        "--input", action=_Answer, default=[], metavar="TEXT", help="an answer: TEXT, then Enter"
    )
    p.add_argument(
        "--text",
        action=_Answer,
        default=[],
        metavar="TEXT",
        help="an answer: TEXT typed as is, no Enter (a TUI's field, vim's insert mode)",
    )
    p.add_argument(
        "--key",
        action=_Answer,
        default=[],
        metavar="KEYS",
        help="an answer: keys pressed, names as for `agentty key` (--key 'Down Enter')",
    )
    p.set_defaults(answers=[])
    p.add_argument("--cols", type=_positive_int, default=80, help="terminal width (default 80)")
    p.add_argument("--rows", type=_positive_int, default=24, help="terminal height (default 24)")
    p.add_argument("--cwd", help="working directory (default: the current one)")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- PROGRAM [ARG...]")
    _json_option(p)


def _record(sub: Subparsers) -> None:
    p = sub.add_parser("record", help="start or stop recording a running session")
    _session_option(p)
    p.add_argument("state", choices=["on", "off"])
    p.add_argument("--input", action="store_true", help="record typed input too")
    p.add_argument("--markers", action="store_true", help="a marker for each text/key call")
    _json_option(p)


def _replay(sub: Subparsers) -> None:
    p = sub.add_parser(
        "replay",
        help="play a session's recording (or a .cast file) in this terminal",
    )
    p.add_argument("target", metavar="SESSION|FILE")
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="playback speed, 0.01..1000 (default 1; 0: no delays)",
    )


def _orphans(sub: Subparsers) -> None:
    p = sub.add_parser(
        "orphans",
        help="list (or --kill) processes of sessions whose worker is gone",
        description="Processes carrying the AGENTTY_SESSION_ID of a session of this home "
        "whose worker is gone. --kill ends them (HUP, TERM, KILL), after proving "
        "ownership by the marker, uid, pid and start time.",
    )
    p.add_argument("--kill", action="store_true", help="end them")
    _json_option(p)


def _gc(sub: Subparsers) -> None:
    p = sub.add_parser(
        "gc",
        help="remove ended sessions: records, sockets, logs, final screens, recordings",
        description="Remove the records, sockets, logs, final screens and recordings (.cast) "
        "of exited, failed and lost sessions. Running sessions are never touched.",
    )
    p.add_argument(
        "--older-than",
        type=_seconds,
        metavar="SECONDS",
        help="only sessions that ended at least this long ago (0..86400)",
    )
    p.add_argument(
        "-s",
        "--session",
        metavar="REF",
        help="only this ended session (id, unique prefix or name); a running one is refused",
    )
    _json_option(p)


def _doctor(sub: Subparsers) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the home, sockets, orphans and state file; say what to fix",
    )
    p.add_argument(  # handled before parsing (cli/remote.py); here for --help
        "--host",
        metavar="HOST",
        default=argparse.SUPPRESS,
        help="check the link to HOST, its version and its home",
    )
    _json_option(p)


def _completion(sub: Subparsers) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="Print a completion script; session names and ids are completed "
        "live. bash: agentty completion bash > ~/.local/share/bash-completion/"
        'completions/agentty; zsh: agentty completion zsh > "${fpath[1]}/_agentty"; '
        "fish: agentty completion fish > ~/.config/fish/completions/agentty.fish",
    )
    p.add_argument("shell", choices=["bash", "zsh", "fish"])


def _mcp(sub: Subparsers) -> None:
    sub.add_parser(
        "mcp",
        help="serve the session tools over MCP on stdio (needs agentty[mcp])",
        description="A stdio MCP server with the tools start, attach, list, get, screenshot, "
        "type_text, press_keys, paste, send, wait, resize, signal, kill, record and logs.",
    )


def _relay(sub: Subparsers) -> None:
    p = sub.add_parser(
        "relay",
        help="bridge stdin/stdout to SESSION's socket (run over ssh by --host callers)",
        description="Connect to the session's worker and copy stdin to its socket and its "
        "answers to stdout: the worker's newline-delimited JSON protocol, across ssh.",
    )
    p.add_argument("target", metavar="SESSION", help="session id, unique id prefix or name")


def _ui(sub: Subparsers) -> None:
    p = sub.add_parser(
        "ui",
        help="open the dashboard (Textual)",
        description="Open the Textual dashboard: live session panes, attach and type, "
        "send input, kill, worker logs, orphan warnings; this machine's sessions and those "
        "of every host in hosts.toml, grouped by host (a host that is down says why).",
    )
    p.add_argument(
        "--demo", action="store_true", help="start a demo session first if none is running"
    )
    p.add_argument(
        "--host",
        action="append",
        metavar="HOST",
        help="show HOST's sessions: a hosts.toml name or an ssh destination (repeatable; "
        "default: every host in hosts.toml)",
    )
    p.add_argument(
        "--no-local", action="store_true", help="hide this machine's sessions (hosts only)"
    )


# Each command's subparser, in the order `--help` lists them. A builder adds one subparser and
# nothing else, so `build_parser(only=...)` can build just the command a call runs.
BUILDERS: dict[str, Callable[[Subparsers], None]] = {
    "help": _help,
    "status": _status,
    "start": _start,
    "attach": _attach,
    "get": _get,
    "text": _text,
    "paste": _paste,
    "key": _key,
    "send": _send,
    "wait": _wait,
    "resize": _resize,
    "signal": _signal,
    "kill": _kill,
    "logs": _logs,
    "run": _run,
    "record": _record,
    "replay": _replay,
    "orphans": _orphans,
    "gc": _gc,
    "doctor": _doctor,
    "completion": _completion,
    "mcp": _mcp,
    "relay": _relay,
    "ui": _ui,
}


def build_parser(only: str | None = None) -> ArgumentParser:
    """The parser; with `only`, just that command's subparser (the hot path builds one)."""
    parser = ArgumentParser(
        prog=PROG,
        description="Run interactive programs in background PTY sessions; type into them, "
        "read their rendered screen, wait for output, and stop them cleanly.",
        epilog="Exit codes: "
        + "; ".join(f"{code} {text}" for code, text in [*EXIT_CODES.items(), EXIT_SIGNALLED])
        + ". Run 'agentty help --json' for the machine-readable schema.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(  # handled before parsing (cli/remote.py); here for --help
        "--host",
        metavar="HOST",
        default=argparse.SUPPRESS,
        help="run the command on HOST's agentty over ssh: a destination ([user@]box, "
        "ssh://user@box:2222) or a name in hosts.toml (default: $AGENTTY_HOST)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name, add in BUILDERS.items():
        if only is None or only == name:
            add(sub)
    return parser

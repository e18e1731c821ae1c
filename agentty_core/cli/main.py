"""The `agentty` command: the only module that prints.

Built on argparse and the standard library, because agents call it hundreds of times per
task: `get`, `text`, `key` and `wait` never import Textual, pyte, psutil or filelock.
Errors go to stderr as one line, `agentty: error: ...`, with the exit codes in `EXIT_CODES`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from agentty_core.cli import hotread
from agentty_core.cli.hotpath import OutputFailed
from agentty_core.cli.output import PROG, emit, error, print_screen, screen_text, shown
from agentty_core.client import Client
from agentty_core.errors import (
    EXIT_FAILED,
    EXIT_USAGE,
    AgenttyError,
    SessionNotFound,
    SessionNotRunning,
    UsageError,
    WaitTimeout,
)
from agentty_core.protocol import JSONObject, str_list
from agentty_core.screen_text import clipped
from agentty_core.state.records import is_live

TYPE_CHECKING = False  # typing and argparse cost milliseconds the hot path does not spend
if TYPE_CHECKING:
    import argparse

    from agentty_core.cli.parser import ArgumentParser

# ---------------------------------------------------------------- commands


def _client() -> Client:
    return Client()


def cmd_help(args: argparse.Namespace, parser: ArgumentParser) -> int:
    if args.agent:
        from importlib.resources import files

        sys.stdout.write(files("agentty_core").joinpath("agents.md").read_text("utf-8"))
        return 0
    if args.json:
        from agentty_core.cli.schema import schema

        doc = schema(parser)
        if args.topic:  # that command's alone (a name that is none is refused, as without --json)
            _subparser(parser, args.topic)
            commands = doc["commands"]
            assert isinstance(commands, list)
            doc["commands"] = [c for c in commands if c["name"] == args.topic]
        emit(doc)
        return 0
    if args.topic:
        _subparser(parser, args.topic).print_help()
    else:
        parser.print_help()
    return 0


def _subparser(parser: ArgumentParser, name: str) -> argparse.ArgumentParser:
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]  # type: ignore[no-any-return]  # argparse is untyped here
    raise UsageError(f"no such command: {name}")


def cmd_status(args: argparse.Namespace) -> int:
    if args.quiet and args.json:
        raise UsageError("--quiet cannot be combined with --json (which lists every field)")
    if args.quiet:  # the workers asked too: a program may have ended unrecorded
        for rec in _client().sessions(live_info=True):
            if rec.get("status") == "running":
                print(shown(str(rec["id"])))
                if rec.get("name"):
                    print(shown(str(rec["name"])))
        return 0
    status = _client().status()
    from agentty_core.launch import spawner_client

    status["spawner"] = spawner_client.info(str(status["home"]))
    if args.json:
        emit(status)
        return 0
    sessions = status["sessions"]
    assert isinstance(sessions, list)
    print(f"home: {shown(str(status['home']))}")
    print(f"active: {shown(str(status['active'] or '-'))}")
    print(f"spawner: {shown(spawner_client.describe(status['spawner']))}")
    orphans = status.get("orphans")
    if isinstance(orphans, list) and orphans:
        print(f"warning: {len(orphans)} orphan process(es) of dead workers; see 'agentty orphans'")
    if not sessions:
        print("no sessions")
        return 0
    print(f"{'ID':8}  {'NAME':12}  {'STATUS':9}  {'EXIT':6}  COMMAND")
    for rec in sessions:
        mark = "*" if rec.get("id") == status["active"] else " "
        code = rec.get("signal") or rec.get("exitCode")
        # Program-controlled text (argv) is shown escaped: it must not drive the terminal.
        command = shown(str(rec.get("command", "")))  # its line breaks shown, not spaces
        name, state = shown(str(rec.get("name") or "-")), shown(str(rec.get("status", "?")))
        print(
            f"{shown(str(rec['id'])):8}{mark} {clipped(name, 12):12}  "
            f"{state:9}  {'-' if code is None else shown(str(code)):6}  {clipped(command, 60)}"
        )
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if args.shell is None and not argv:
        raise UsageError("start needs a program: agentty start [options] -- PROGRAM [ARG...]")
    from agentty_core.cli.hotpath import let_finish
    from agentty_core.state.records import read_active

    previous = read_active(_client().home)
    record = _client().start(
        argv or None,
        shell=args.shell,
        name=args.name,
        cwd=args.cwd,
        cols=args.cols,
        rows=args.rows,
        env=dict(args.env),
        record=(
            {"input": args.record_input, "markers": args.record_markers}
            if args.record or args.record_input or args.record_markers
            else None
        ),
        on_ready=let_finish,
    )
    try:
        if args.json:
            emit(record)
        else:
            print(record["id"])
        if sys.stdout is not None:  # (None: started with it closed)
            sys.stdout.flush()
    except OutputFailed as exc:
        from agentty_core.cli.startlane import unannounced

        raise unannounced(str(record["id"]), previous, exc) from None
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    record = _client().attach(args.target)
    if args.json:
        emit(record)
    else:
        name = f" ({shown(str(record['name']))})" if record.get("name") else ""
        print(f"active session: {record['id']}{name}")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    conflict = _get_conflict(args)
    if conflict:
        raise UsageError(conflict)
    params: dict[str, object] = {}
    if args.lines is not None:
        params["lines"] = args.lines
    if args.scrollback:
        params["scrollback"] = True
    if args.ansi:
        params["ansi"] = True
    if args.raw or args.bytes is not None:
        args.raw = True
        params["raw"] = True
        params["bytes"] = 4096 if args.bytes is None else args.bytes
    if args.png is not None:
        return _write_png(_client().get(args.session, ansi=True), args)
    screen = _client().get(args.session, **params)
    if args.raw and "rawBase64" not in screen:  # an ended session: its final screen only
        raise AgenttyError(
            f"session {shown(str(screen.get('id')))} has ended: its raw output is not kept"
            " (get prints its final screen)"
        )
    print_screen(screen, args)
    return 0


def _get_conflict(args: argparse.Namespace) -> str | None:
    """`--raw` (`--bytes`) is the output's bytes, with no screen to colour, cut or scroll;
    `--png` and `--ansi` are the screen alone. Asked together, one would be ignored."""
    screen_options = [
        name
        for name, given in (
            ("--ansi", args.ansi),
            ("--lines", args.lines is not None),
            ("--scrollback", args.scrollback),
        )
        if given
    ]
    raw = "--raw" if args.raw else "--bytes" if args.bytes is not None else None
    if raw and args.png is not None:
        return f"{raw} cannot be combined with --png"
    if args.png == "-" and args.json:
        return "--png - cannot be combined with --json (the picture is the output)"
    if args.png == "-" and sys.stdout is not None and sys.stdout.isatty():
        return "--png - would write a picture's bytes to your terminal: redirect it, or --png FILE"
    if raw and screen_options:
        return f"{raw} cannot be combined with {screen_options[0]}"
    if args.png is not None and (args.lines is not None or args.scrollback):
        return f"--png cannot be combined with {screen_options[-1]} (it pictures the screen)"
    if args.ansi and len(screen_options) > 1 and not args.json:  # (`--json` has both apart)
        return f"--ansi cannot be combined with {screen_options[1]} (it is the screen's own rows)"
    return None


def _write_png(screen: JSONObject, args: argparse.Namespace) -> int:
    """`get --png FILE`: the screen drawn by render.png (Pillow imported only there)."""
    from agentty_core.render.png import png_bytes

    data = png_bytes(screen)
    if args.png == "-":
        sys.stdout.buffer.write(data)
        return 0
    try:
        with open(args.png, "wb") as f:
            f.write(data)
    except OSError as exc:  # (the operation failed, as a stdout that cannot be written)
        raise AgenttyError(f"cannot write {shown(args.png)}: {exc.strerror or exc}") from None
    size = screen.get("size")
    info: JSONObject = {"path": args.png, "bytes": len(data), "seq": screen.get("seq")}
    if isinstance(size, dict):
        info.update(cols=size.get("cols"), rows=size.get("rows"))
    if args.json:
        emit(info)
    else:
        print(f"wrote {shown(args.png)} ({len(data)} bytes)")
    return 0


def cmd_text(args: argparse.Namespace) -> int:
    if args.file is not None:
        if args.payload:
            raise UsageError("give the text either as PAYLOAD words or with --file, not both")
        data: str | bytes = hotread.read_input(args.file)
    elif args.payload == ["-"]:
        data = hotread.read_input("-")
    elif not args.payload and not args.enter:
        raise UsageError("nothing to type: give PAYLOAD words, --file F or --enter")
    else:
        data = " ".join(args.payload)
    result = _client().text(args.session, data, enter=args.enter)
    if args.json:
        emit(result)
    return 0


def cmd_paste(args: argparse.Namespace) -> int:
    data: str | bytes = hotread.read_input("-") if args.payload == "-" else args.payload
    result = _client().paste(args.session, data)
    if args.json:
        emit(result)
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    result = _client().key(args.session, args.keys)
    if args.json:
        emit(result)
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    result = _client().send(args.session, args.args, literal=args.literal, enter=args.enter)
    if args.json:
        emit(result)
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    from agentty_core.waitspec import NoWaitCondition, WaitConditions

    if os.environ.get("AGENTTY_UNREAD_HANGS_UP"):  # (`remote.transport.UNREAD_HANGS_UP`)
        from agentty_core.cli.run import watch_reader

        watch_reader()  # the caller on another host gone: hung up, not waited out

    try:
        spec = WaitConditions(
            text=args.text,
            regex=args.regex,
            gone=args.gone,
            stable_ms=args.stable,
            changed_since=args.changed_since,
            after=args.after,
            input=args.input,
            exit=args.exit,
            scrollback=args.scrollback,
            timeout=args.timeout,
        )
    except NoWaitCondition:
        raise UsageError(
            "wait needs a condition: --text, --regex, --gone, --stable, --changed-since, "
            "--input or --exit"
        ) from None
    try:
        screen = _client().wait(args.session, timeout=spec.timeout, **spec.conditions())
    except (WaitTimeout, SessionNotRunning) as exc:
        ended = isinstance(exc, SessionNotRunning)
        if ended and not exc.screen:  # (its worker lost, say: no last screen to show)
            raise
        error(exc)  # what the screen showed when it timed out, or when the program ended
        if args.json:  # (an ended session's screen says `exited`)
            emit({"fired": None, **({} if ended else {"timeout": True}), **exc.screen})
        else:
            sys.stdout.write(screen_text(exc.screen))
        return exc.exit_code
    if args.json:
        emit(screen)
    elif screen.get("fired") == "exit" and screen.get("signal"):
        sys.stdout.write(screen_text(screen) + f"[exited: signal {screen['signal']}]\n")
    elif screen.get("fired") == "exit":
        sys.stdout.write(screen_text(screen) + f"[exited: code {screen.get('exitCode')}]\n")
    else:
        sys.stdout.write(screen_text(screen))
    return 0


def cmd_resize(args: argparse.Namespace) -> int:
    result = _client().resize(args.session, args.cols, args.rows)
    if args.json:
        emit(result)
    return 0


def cmd_signal(args: argparse.Namespace) -> int:
    result = _client().signal(args.session, args.name, leader=args.leader)
    if args.json:
        emit(result)
    else:
        print(f"sent {result['signal']} to {', '.join(str_list(result.get('pids')))}")
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    from agentty_core.cli import lane

    if args.all:
        return _kill_all(args)
    silent = lane.silent_worker  # the lane's ping went unanswered: not asked again
    result = _client().kill(args.session, grace=args.timeout, silent=silent)
    if args.json:
        emit(result)
    else:
        print(_killed(result))
    return 0


def _killed(result: JSONObject) -> str:
    steps = result.get("escalated") or []
    how = f" after {', '.join(str_list(steps))}" if steps else ""
    if result.get("status") == "lost":
        pids = str_list(result.get("orphansKilled"))
        return (
            f"killed {result['id']}: its worker was gone; ended {len(pids)} orphan process(es){how}"
        )
    return hotread.killed_line(result, how)


def _kill_all(args: argparse.Namespace) -> int:
    """`kill --all`: every running session at once (an agent's clean-up: a loop over
    `status -q` met each named session twice, by its id and by its name), and every lost
    one that still has processes running (its worker died, a child of the program lives
    on), but the one this command runs in, if any (its SIGHUP would end the command before
    it said a word). Exits 0 once all of them are confirmed ended (one that ended, or was
    removed, by itself meanwhile is said so), else with the first failure's code."""
    if args.session is not None:
        raise UsageError("kill: give either --session or --all, not both")
    from concurrent.futures import ThreadPoolExecutor

    client = _client()
    own = os.environ.get("AGENTTY_SESSION_ID")  # run inside a session of this home: not it
    listed = client.sessions()
    lost = {str(r["id"]) for r in listed if r.get("status") == "lost"}
    surviving = {o.session_id for o in client.orphans()} & lost if lost else set()
    live = [str(r["id"]) for r in listed if is_live(r) or r["id"] in surviving]
    targets = [sid for sid in live if sid != own]

    def kill(sid: str) -> JSONObject | AgenttyError:
        try:
            return client.kill(sid, grace=args.timeout)
        except (SessionNotRunning, SessionNotFound) as exc:  # ended (and removed) meanwhile
            return {"id": sid, "alreadyEnded": True, "message": str(exc)}
        except AgenttyError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(16, len(targets) or 1)) as pool:
        outcomes = list(pool.map(kill, targets))
    failed = [(sid, o) for sid, o in zip(targets, outcomes, strict=True) if not isinstance(o, dict)]
    killed = [o for o in outcomes if isinstance(o, dict)]
    skipped = [sid for sid in live if sid == own]
    if args.json:
        errors = [{"id": sid, "error": str(e), "exitCode": e.exit_code} for sid, e in failed]
        emit({"killed": killed, "failed": errors, "skipped": skipped})
    else:
        for result in killed:
            print(shown(str(result["message"])) if result.get("alreadyEnded") else _killed(result))
        for sid in skipped:
            print(f"left {sid} running: this command runs in it")
        if not live:
            print("no running sessions")  # (nor a lost one's processes)
    for sid, exc in failed:
        error(f"{sid}: {exc}")
    return failed[0][1].exit_code if failed else 0


def cmd_logs(args: argparse.Namespace) -> int:
    from agentty_core.state.records import read_private_file

    path = _client().logs(args.session)
    raw = read_private_file(path) or b""
    if args.json:
        emit({"path": str(path), "log": raw.decode("utf-8", "replace")})
    else:
        sys.stdout.write(raw.decode("utf-8", "replace"))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from agentty_core.cli.run import run

    return run(args)


def cmd_record(args: argparse.Namespace) -> int:
    result = _client().record(
        args.session, args.state == "on", input=args.input, markers=args.markers
    )
    failed = args.state == "on" and not result["recording"]  # (no room for it, say)
    if args.json:
        emit(result)
        return EXIT_FAILED if failed else 0
    if failed:
        raise AgenttyError(str(result.get("error") or "the recording did not start"))
    print(f"recording {'to ' + str(result['path']) if result['recording'] else 'stopped'}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agentty_core.cli.hotpath import interrupt_on_end_signals
    from agentty_core.worker.recording import open_cast, replay

    interrupt_on_end_signals()  # SIGTERM/SIGHUP as Ctrl-C: the terminal is put back (143/129)
    try:
        path = _client().cast_path(args.target)
    except SessionNotFound:
        if "/" in args.target or args.target.endswith(".cast"):  # meant as a file
            what = "not a regular file" if os.path.exists(args.target) else "no such file"
            raise UsageError(f"{what}: {shown(args.target)}") from None
        raise
    named = path == Path(args.target)  # a file the caller named, not a session's recording
    try:
        with open_cast(path, follow=named) as cast:  # (StateError: the home's file is odd)
            replay(cast, speed=args.speed)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot replay {path}: {exc}") from None
    return 0


def cmd_orphans(args: argparse.Namespace) -> int:
    client = _client()
    found = client.orphans()
    listed = [o.as_json() for o in found]
    if args.kill and found:
        result = client.end_orphans(found)
        if args.json:
            emit({"orphans": listed, **result})
        else:
            print(f"ended {len(found)} orphan process(es): {' '.join(str(o.pid) for o in found)}")
        return 0
    if args.json:
        emit({"orphans": listed})
    elif not found:
        print("no orphans")
    else:
        print(f"{'PID':>7}  {'SESSION':8}  {'AGE':>7}  COMMAND")
        for o in found:
            command = shown(o.command)  # a surviving process's command line: program-controlled
            age = f"{o.age_seconds:>6.0f}s"
            print(f"{o.pid:>7}  {shown(o.session_id):8}  {age}  {clipped(command, 60)}")
        print("end them with: agentty orphans --kill")
    return 0


GC_IDS_SHOWN = 20  # ids `gc` names on its line


def cmd_gc(args: argparse.Namespace) -> int:
    client = _client()
    if args.session is not None:
        if args.older_than is not None:
            raise UsageError("gc: --session names the session: not with --older-than")
        removed = [client.gc_one(args.session)]
    else:
        removed = client.gc(older_than=args.older_than)
    kept = sorted({o.session_id for o in client.orphans()})
    if args.json:
        emit({"removed": removed, "keptWithOrphans": kept})
        return 0
    # A malformed record's id may be anything; an agent's month of sessions, 60000 ids on
    # one line (`--json` lists them all).
    ids = " ".join(shown(sid) for sid in removed[:GC_IDS_SHOWN])
    if len(removed) > GC_IDS_SHOWN:
        ids += f" and {len(removed) - GC_IDS_SHOWN} more (--json lists them)"
    print(
        f"removed {len(removed)} session(s)"
        + (f" with their logs, final screens and recordings: {ids}" if removed else "")
    )
    if kept:
        print(
            f"kept {len(kept)} lost session(s) whose processes still run: "
            f"{' '.join(shown(sid) for sid in kept)} (end them with 'agentty orphans --kill')"
        )
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from agentty_core.cli.doctor import run_checks

    checks = run_checks()
    ok = all(c["ok"] for c in checks)
    if args.json:
        emit({"ok": ok, "checks": checks})
    else:
        for check in checks:
            mark = "ok  " if check["ok"] else "FAIL"
            print(f"{mark}  {check['name']}: {shown(str(check['detail']))}")
            if not check["ok"] and check["fix"]:
                print(f"      fix: {shown(str(check['fix']))}")
    return 0 if ok else 1


def cmd_completion(args: argparse.Namespace) -> int:
    import shtab  # only here: completion scripts are generated once, never on the hot path

    from agentty_core.cli.parser import build_parser

    parser = build_parser()
    sessions = shtab.cmd(f"{PROG} status -q 2>/dev/null")
    for action in _all_actions(parser):
        if action.dest in ("session", "target"):
            action.complete = sessions  # type: ignore[attr-defined]  # shtab's extension point
        elif action.dest == "cwd":
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]  # shtab's extension point
        elif action.dest == "file":
            action.complete = shtab.FILE  # type: ignore[attr-defined]  # shtab's extension point
    sys.stdout.write(shtab.complete(parser, shell=args.shell))
    return 0


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    import argparse

    found = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_all_actions(sub))
    return found


def cmd_mcp(args: argparse.Namespace) -> int:
    try:
        from agentty_core.cli.mcp.lifecycle import main as serve
    except ImportError as exc:
        raise UsageError(
            f"the MCP server needs the mcp extra: pip install 'agentty[mcp]' ({exc})"
        ) from None
    serve()
    return 0


def cmd_relay(args: argparse.Namespace) -> int:
    from agentty_core.cli.relay import relay

    return relay(args.target)


def cmd_ui(args: argparse.Namespace) -> int:
    # The dashboard runs in its own interpreter so this module never imports Textual.
    extra = ["--demo"] if args.demo else []
    extra += [f"--host={host}" for host in args.host or []]
    extra += ["--no-local"] if args.no_local else []
    os.execv(sys.executable, [sys.executable, "-m", "agentty_ui", *extra])


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "status": cmd_status,
    "start": cmd_start,
    "attach": cmd_attach,
    "get": cmd_get,
    "text": cmd_text,
    "paste": cmd_paste,
    "key": cmd_key,
    "send": cmd_send,
    "wait": cmd_wait,
    "resize": cmd_resize,
    "signal": cmd_signal,
    "kill": cmd_kill,
    "logs": cmd_logs,
    "run": cmd_run,
    "record": cmd_record,
    "replay": cmd_replay,
    "orphans": cmd_orphans,
    "gc": cmd_gc,
    "doctor": cmd_doctor,
    "completion": cmd_completion,
    "mcp": cmd_mcp,
    "relay": cmd_relay,
    "ui": cmd_ui,
}


def _command_word(argv: Sequence[str]) -> str | None:
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
        if word in ("-h", "--help", "--version"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        return _main(sys.argv[1:])
    from agentty_core.cli.hotpath import give_back_interrupts

    try:  # in-process: what `start` did to Ctrl-C (`let_finish`) ends with the command
        return _main(list(argv))
    finally:
        give_back_interrupts()


def _main(words: list[str]) -> int:
    from agentty_core.cli.fast import parse

    fast = parse(words)
    if fast is not None:
        return _run(COMMANDS[fast.command], fast)  # type: ignore[arg-type]  # same attributes as argparse's
    from agentty_core.cli.parser import build_parser

    parser = build_parser(_command_word(words))
    args = parser.parse_args(words)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "help":
        return _run(lambda a: cmd_help(a, parser), args)
    return _run(COMMANDS[args.command], args)


def _run(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command; errors become one line on stderr and their exit code."""
    try:
        return command(args)
    except AgenttyError as exc:
        error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        from agentty_core.cli.hotpath import interrupted_code

        return interrupted_code()  # 130, or 143 / 129 for a `start` SIGTERM or SIGHUP ended
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())

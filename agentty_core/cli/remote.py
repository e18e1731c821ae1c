"""`agentty --host HOST COMMAND ...`: the command runs on HOST's agentty, over ssh.

The command line is handed over as it is (the remote agentty parses it), so output, `--json`
and exit codes are those of a local call there. What happens here: picking the host
(`--host`, `--host=`, `doctor --host`, or `AGENTTY_HOST`), refusing the commands that only
make sense on this machine, feeding a local `text --file F` through stdin, and
`doctor --host`, which checks the link, the remote version and the remote home.
"""

from __future__ import annotations

import os
import sys

from agentty_core.errors import AgenttyError, TransportError, UsageError
from agentty_core.screen_text import printable_lines

TYPE_CHECKING = False  # without importing typing: every AGENTTY_HOST call comes through here
if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentty_core.remote.hosts import Host

# Commands that run on this machine even when AGENTTY_HOST is set; `--host` refuses them.
LOCAL_ONLY = frozenset({"help", "completion", "mcp", "relay", "ui"})


def wants_host(words: Sequence[str]) -> bool:
    """Whether this command line goes to another host (cheap: the entry point asks)."""
    if words and (words[0] == "--host" or words[0].startswith("--host=")):
        return True
    if words and words[0] == "doctor" and any(_is_host_option(w) for w in words[1:]):
        return True
    return bool(os.environ.get("AGENTTY_HOST"))


def _is_host_option(word: str) -> bool:
    return word == "--host" or word.startswith("--host=")


def split_host(words: Sequence[str]) -> tuple[str | None, list[str], bool]:
    """(host, the command line without the host option, whether --host was given)."""
    words = list(words)
    if words and _is_host_option(words[0]):
        return _once(_take(words, 0), "agentty")
    if words and words[0] == "doctor":
        for i, word in enumerate(words[1:], start=1):
            if _is_host_option(word):
                return _once(_take(words, i), "agentty doctor")
    return os.environ.get("AGENTTY_HOST") or None, words, False


def _once(taken: tuple[str, list[str], bool], prog: str) -> tuple[str, list[str], bool]:
    """A second --host (before the command, or anywhere in `doctor`'s) is refused in the
    parser's words (`parser._Once`): the command would have run on the first host."""
    _, rest, _ = taken
    command = _command(rest)
    before = rest if prog != "agentty" or command is None else rest[: rest.index(command)]
    if any(_is_host_option(word) for word in before):
        raise UsageError(f"--host given more than once (see '{prog} --help')")
    return taken


def _take(words: list[str], i: int) -> tuple[str, list[str], bool]:
    if words[i].startswith("--host="):
        return words[i].partition("=")[2], words[:i] + words[i + 1 :], True
    if i + 1 >= len(words):
        raise UsageError(
            "--host needs a value: --host HOST (an ssh destination or a hosts.toml name)"
        )
    return words[i + 1], words[:i] + words[i + 2 :], True


def _command(words: Sequence[str]) -> str | None:
    for word in words:
        if not word.startswith("-"):
            return word
        if word in ("-h", "--help", "--version"):
            return None
    return None


def main(words: Sequence[str]) -> int:
    global _stdout_closed
    _stdout_closed = not _open(1)
    if _stdout_closed:  # held by /dev/null: a file opened later (the hosts cache) must not
        null = os.open(os.devnull, os.O_WRONLY)  # become our stdout, and take the output
        if null != 1:
            os.dup2(null, 1)
            os.close(null)
    try:
        name, rest, explicit = split_host(words)
        command = _command(rest)
        if name is None or (command in LOCAL_ONLY and not explicit):
            from agentty_core.cli.main import main as local

            return local(rest)
        if command in LOCAL_ONLY:
            raise UsageError(f"'{command}' runs on this machine; it does not take --host")
        from agentty_core.remote.hosts import resolve

        host = resolve(name)
        if command != "run":  # (`run` ends its program its own way: `remote_run`)
            from agentty_core.cli.hotpath import interrupt_on_end_signals

            interrupt_on_end_signals()  # a harness's SIGTERM ends the call, not just us
        if command == "doctor":
            if any(_is_host_option(word) for word in rest):  # (`--host a doctor --host b`)
                raise UsageError("--host given more than once (see 'agentty doctor --help')")
            return doctor(host, rest)
        return _forward(host, rest, command)
    except AgenttyError as exc:
        from agentty_core.cli.hotread import error  # the remote side's words, escaped

        error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        from agentty_core.cli.hotpath import interrupted_code

        return interrupted_code()  # 130, or 143 / 129 for SIGTERM / SIGHUP


_stdout_closed = False  # started with descriptor 1 closed (`>&-`): no output asked for


def _open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _home_root() -> str:
    from agentty_core.remote.transport import home_root  # the lean check, as the fast lane

    return home_root()


def _forward(host: Host, words: list[str], command: str | None) -> int:
    from agentty_core.remote import link, transport

    if command == "run":
        from agentty_core.cli.remote_run import asks_help, forward_run

        if not asks_help(words):
            return forward_run(host, words, _home_root())
    data: bytes | None = None
    if command == "text":
        words, data = _local_file(words)
    reads_stdin = "-" in words and data is None
    root = _home_root()
    if command in link.LINKED and not reads_stdin and link.enabled():
        import time

        began = time.monotonic()
        answer = link.ask(host, words, root, input=data)  # the host's warm link, if one runs
        if answer is not None:
            code, out, err = answer
            if sys.stdout is not None:  # (started with it closed: `>&-`)
                sys.stdout.flush()
            if err:
                write_all(2, printable_lines(err.decode("utf-8", "replace")).encode())
            if command == "start":
                _print_started(host, out, root)
            else:
                _print(out)
            return code
        if command == "wait":  # asked again the ssh way: in the time it has left
            words = transport.with_time_spent(words, time.monotonic() - began)
    try:
        if command == "start" and not reads_stdin:
            code, out = transport.run_kept(host, words, root)
            _print_started(host, out, root)
        elif _stdout_closed and not reads_stdin:  # (relayed, it would go to /dev/null)
            code, out = transport.run_kept(host, words, root)
            _print(out)
        else:
            code = transport.run(host, words, root, stdin=reads_stdin, input=data)
    except transport.StdoutFailed as exc:
        from agentty_core.cli.hotpath import OutputFailed

        raise OutputFailed(exc.error) from None
    link.launch_if_wanted()  # the host answered: the next call finds its link
    return code


def _print(out: bytes) -> None:
    """A call's output, printed; with our stdout closed outright (`>&-`), an answer that
    has output fails as a local call's does (exit 1, one line): it exited 0, the answer
    written to the /dev/null holding descriptor 1 (a remote round)."""
    from agentty_core.cli.hotpath import OutputFailed

    if _stdout_closed and out:
        import errno

        raise OutputFailed(OSError(errno.EBADF, "stdout is closed"))
    write_all(1, out)


def _print_started(host: Host, out: bytes, root: str) -> None:
    """A remote `start`'s id (or record), printed; a session whose id cannot be printed is
    ended there, as a local `start` ends it (`startlane.unannounced`): nobody could be
    told of it. A stdout closed outright asks for no id: the session stays (as a local
    `start`'s). From here on a signal no longer stops the start (`let_finish`)."""

    from agentty_core.cli.hotpath import OutputFailed, let_finish

    let_finish()
    if _stdout_closed:  # closed outright (`>&-`): no id asked for
        return
    try:
        write_all(1, out)
    except OutputFailed as failed:
        sid = _started_id(out)
        if sid is None:
            raise
        from agentty_core.remote import transport

        try:
            transport.capture(host, ["kill", "-s", sid], root, timeout=30.0)
        except AgenttyError:
            raise OutputFailed(failed.error, f"session {sid} on {host.name} runs on") from None
        raise OutputFailed(failed.error, "the session was ended") from None


def _started_id(out: bytes) -> str | None:
    """The id a `start` printed: the line, or `--json`'s record's."""
    text = out.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        import json

        try:
            text = str(json.loads(text).get("id"))
        except (ValueError, AttributeError, RecursionError):
            return None
    return text if len(text) == 8 and all(c in "0123456789abcdef" for c in text) else None


def write_all(fd: int, data: bytes) -> None:
    """All of `data` on `fd` (`transport.write_all`, as the ssh way passes output on); on
    stdout, a failure is `OutputFailed` (one line, exit 1)."""
    from agentty_core.remote import transport

    try:
        transport.write_all(fd, data)
    except transport.StdoutFailed as failed:
        if fd != 1:
            raise failed.error from None
        from agentty_core.cli.hotpath import OutputFailed

        raise OutputFailed(failed.error) from None


def serve(words: Sequence[str]) -> int:
    """`agentty _serve` (hidden): the far end of a host's link (`remote/serve.py`), run over
    ssh by the link; requests run in children forked from this warm process."""
    from agentty_core.cli import hotpath
    from agentty_core.remote import serve as server

    def warm() -> None:
        # The fast lane's commands only (get, text, key, wait, status ...: the calls agents
        # repeat): a fork costs per page of the heap, and the full path's imports (argparse,
        # json, pathlib) would triple it for every call, to spare the rarer ones theirs.
        import _json  # noqa: F401  (C extensions the lane loads: once here, not per call)
        import _socket  # noqa: F401

        import agentty_core.cli.fast
        import agentty_core.cli.hotstatus
        import agentty_core.cli.lane  # noqa: F401

    def prime() -> None:
        # The fast lane's parsing, JSON and home check, run once without acting.
        from agentty_core.cli import fast, hotread

        for words in (["get"], ["get", "--json"], ["text", "x"], ["key", "Enter"]):
            fast.parse(words)
        fast.parse(["wait", "--text", "x"])
        fast.parse(["status", "--json"])
        hotread.loads('{"v": 1, "ok": true, "result": {"lines": ["a"], "seq": 1.5, "x": null}}')
        hotread.dumps({"lines": ["a"], "seq": 1}, ascii_only=False)
        hotread.home()

    return server.main(hotpath.main, warm, prime)


def _local_file(words: list[str]) -> tuple[list[str], bytes | None]:
    """`text --file F`: F is a file here, so its bytes travel on stdin (`--file -`)."""
    for i, word in enumerate(words):
        path = None
        if word == "--file" and i + 1 < len(words):
            path, end = words[i + 1], i + 2
        elif word.startswith("--file="):
            path, end = word.partition("=")[2], i + 1
        if path is None or path == "-":
            continue
        from agentty_core.cli.hotread import read_input

        return [*words[:i], "--file", "-", *words[end:]], read_input(path)
    return words, None


# ---------------------------------------------------------------- doctor --host


def _check(name: str, ok: bool, detail: str, fix: str = "") -> dict[str, object]:
    return {"name": name, "ok": ok, "detail": detail, "fix": "" if ok else fix}


def doctor(host: Host, words: list[str]) -> int:
    """The link, the remote agentty's version, then the remote doctor's own checks."""
    import json  # here, not at the top: every forwarded command imports this module

    from agentty_core._version import __version__
    from agentty_core.remote import transport

    as_json = "--json" in words
    root = _home_root()
    how = (
        f"command {' '.join(host.command)}"
        if host.command is not None
        else f"ssh {host.destination}" + (f" port {host.port}" if host.port else "")
    )
    checks = [_check("host", True, f"{host.name}: {how}, agentty {host.agentty!r}")]
    limit = transport.connect_timeout() + 30.0
    try:
        _, out, _ = transport.capture(host, ["--version"], root, timeout=limit)
    except TransportError as exc:
        checks.append(_check("connection", False, str(exc), f"{exc.reason}: see the message"))
        return _report(host.name, checks, as_json)
    remote_version = out.decode("utf-8", "replace").strip().removeprefix("agentty ").strip()
    checks.append(_check("connection", True, f"{host.transport} link works"))
    checks.append(_check("link", True, _describe_link(host, root)))
    checks.append(
        _check(
            "remote version",
            remote_version == __version__,
            f"agentty {remote_version} there, {__version__} here",
            "install the same agentty version on both machines",
        )
    )
    try:
        _, out, err = transport.capture(host, ["doctor", "--json"], root, timeout=limit)
        remote = json.loads(out)
        remote_checks = remote["checks"]
        assert isinstance(remote_checks, list)
    except TransportError as exc:
        checks.append(_check("remote doctor", False, str(exc), "run it again"))
        return _report(host.name, checks, as_json)
    except (ValueError, KeyError, TypeError, AssertionError, RecursionError):
        checks.append(
            _check("remote doctor", False, f"no report ({err.strip()[:200]})", "update agentty")
        )
        return _report(host.name, checks, as_json)
    checks += [_remote_check(check) for check in remote_checks]
    return _report(host.name, checks, as_json)


def _remote_check(check: object) -> dict[str, object]:
    """One check of the remote doctor's report, as ours are: an agentty of another version
    may leave out a field or give it another type (a check without `ok` fails)."""
    if not isinstance(check, dict):
        return _check("remote check", False, f"unreadable: {str(check)[:200]}", "update agentty")
    fields = {key: str(check.get(key) or "")[:1000] for key in ("name", "detail", "fix")}
    ok = check.get("ok") is True
    return _check(f"remote {fields['name']}", ok, fields["detail"], fields["fix"] or "see above")


def _describe_link(host: Host, root: str) -> str:
    """The host's warm link (`remote/link.py`), for doctor: informational, never a failure
    (calls go the ssh way without it)."""
    from agentty_core.remote import link

    if not link.enabled():
        return "off (AGENTTY_LINK=0): every call opens an ssh channel"
    found = link.stats(host, root)
    if found is None:
        return "none running: the next call starts one"
    return (
        f"pid {found.get('pid')}, up since {found.get('since')}, {found.get('served')} calls "
        f"served, remote agentty _serve pid {found.get('remotePid')}"
    )


def _report(name: str, checks: list[dict[str, object]], as_json: bool) -> int:
    ok = all(c["ok"] for c in checks)
    if as_json:
        import json

        sys.stdout.write(json.dumps({"ok": ok, "host": name, "checks": checks}) + "\n")
    else:
        from agentty_core.cli.hotread import shown  # the remote side's words, escaped

        for check in checks:
            mark = "ok  " if check["ok"] else "FAIL"
            print(f"{mark}  {shown(str(check['name']))}: {shown(str(check['detail']))}")
            if not check["ok"] and check["fix"]:
                print(f"      fix: {shown(str(check['fix']))}")
    return 0 if ok else 1

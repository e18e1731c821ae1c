"""`status` on the fast lane: the table, `-q` and `--json`, byte for byte as `cli.main.cmd_status`
prints them, on the interpreter's C modules only (`_json`, `_socket`).

The full path reads `sessions.json`, checks each worker's identity (psutil-free already, but
behind pathlib, argparse and json: ~4x the interpreter's start), asks every running worker
for its live fields (and how its program ended, when a full disk kept it from recording
that) and names the home's warm spawner. This module does the same
when the home is in order: every record's liveness is what the file says (a running
session's worker alive by pid and start token, as `proc.identity` checks it; nothing lost;
no final screen of a session still marked running) and every worker answers. Anything else
goes the full way, which writes down what it finds (a lost session, an orphan sweep, a
corrupt file recovered, a missing socket re-created): the lane never writes.
"""

from __future__ import annotations

import os
import sys

from agentty_core.cli import hotread

TYPE_CHECKING = False  # without importing typing: this module is the hot path
if TYPE_CHECKING:
    from _socket import socket

    from agentty_core.cli.fast import Namespace

INFO_TIMEOUT = 1.0  # seconds, as `Client._merge_live_info` gives all the workers together
INFO_GRACE = 0.2  # what an ask made after that wait still gets (`client_calls.INFO_GRACE`)
BATCH = 64  # sockets open at once: far below any descriptor limit
LIVE_FIELDS = ("lastActiveAt", "input", "seq", "cols", "rows")  # `state.records.LIVE_FIELDS`
ENDED_FIELDS = ("status", "exitCode", "signal", "endedAt")  # and `ENDED_FIELDS`
# An ended session's input state, as `get --json` gives it (`proc.inputstate.exited`).
ENDED_INPUT = {
    "state": "exited",
    "echo": None,
    "canonical": None,
    "secret": False,
    "foreground": None,
}
INFO_REQUEST = b'{"v": 1, "method": "info", "params": {}}\n'
SPAWNER_INFO = "spawner.json"  # spawning.INFO_NAME


def status(args: Namespace) -> int | None:
    """The command's exit code, or None: the full path must handle it."""
    if args.quiet and args.json:
        return None  # the full path's refusal
    raw_home = os.environ.get("AGENTTY_HOME") or os.path.join(os.path.expanduser("~"), ".agentty")
    if ".." in os.path.expanduser(raw_home).split("/"):
        return None  # pathlib keeps "..", abspath folds it: the full path names the home
    home = hotread.home()
    if home is None or not hotread.private_dir(os.path.join(home, "logs")):
        return None
    stored: set[object] = set()
    recs = hotread.records(home, stored)
    active = hotread.active(home)
    if recs is None or active is False or not _settled(home, recs, bool(args.quiet)):
        return None
    if _unrecorded(home, stored):  # maybe a running session missing from the list
        return None
    if not _merge_live_info(home, recs):  # a program may have ended unrecorded: every form
        return None
    write = sys.stdout.write
    if args.quiet:  # the ids and names of running sessions
        for rec in recs:
            if rec.get("status") == "running":
                write(hotread.shown(str(rec["id"])) + "\n")
                if rec.get("name"):
                    write(hotread.shown(str(rec["name"])) + "\n")
        return 0
    try:
        spawner = _spawner(home)
    except ValueError:
        return None
    if args.json:
        from agentty_core._version import __version__

        doc = {"version": __version__, "home": home, "active": active, "sessions": recs}
        hotread.emit({**doc, "spawner": spawner})
        return 0
    write(f"home: {hotread.shown(home)}\n")
    write(f"active: {hotread.shown(str(active or '-'))}\n")
    write(f"spawner: {hotread.shown(_describe(spawner))}\n")
    if not recs:
        write("no sessions\n")
        return 0
    write(f"{'ID':8}  {'NAME':12}  {'STATUS':9}  {'EXIT':6}  COMMAND\n")
    for rec in recs:
        mark = "*" if rec.get("id") == active else " "
        code = rec.get("signal") or rec.get("exitCode")
        command = hotread.shown(str(rec.get("command", "")))  # its line breaks shown
        name = hotread.shown(str(rec.get("name") or "-"))
        state = hotread.shown(str(rec.get("status", "?")))
        shown_code = "-" if code is None else hotread.shown(str(code))
        write(
            f"{hotread.shown(str(rec['id'])):8}{mark} {hotread.clipped(name, 12):12}  "
            f"{state:9}  {shown_code:6}  {hotread.clipped(command, 60)}\n"
        )
    return 0


def _unrecorded(home: str, stored: set[object]) -> bool:
    """Is somebody listening on a session socket that no record names, malformed ones
    included (`ipc.unlisted.unrecorded_sockets`)? The full path asks it, and brings its
    session back to the list. A socket nobody listens on (its worker died; `gc` sweeps it)
    is not handed over each time."""
    import _socket

    try:
        names = os.listdir(os.path.join(home, "sockets"))
    except OSError:
        return False
    hexdigits = "0123456789abcdef"
    for name in names:
        sid = name[:-5] if name.endswith(".sock") else ""
        if len(sid) != 8 or sid in stored or not all(c in hexdigits for c in sid):
            continue
        probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        try:
            probe.setblocking(False)
            probe.connect(os.path.join(home, "sockets", name))
        except (ConnectionRefusedError, FileNotFoundError):
            continue  # nobody listens (or it is gone)
        except OSError:
            return True  # listened on, with a full backlog (stopped, say)
        finally:
            probe.close()
        return True
    return False


def _settled(home: str, recs: list[dict[str, object]], quiet: bool) -> bool:
    """Whether `Client.sessions` would show every record as the file has it (and, but for
    `-q`, no orphans are looked for: they are with a lost session)."""
    boot_id: list[str] = []
    for rec in recs:
        status = rec.get("status")
        if status == "lost" and (
            not quiet
            or (
                not hotread.worker_alive(rec, boot_id)
                and os.path.exists(f"{home}/logs/{rec.get('id')}.final.json")
            )
        ):
            return False  # orphans are looked for, or its exit is read from its final screen
        watched = status == "running" or (status == "starting" and rec.get("workerPid") is not None)
        if watched and not hotread.worker_alive(rec, boot_id):
            return False  # the full path writes down its end (lost; a start: failed)
        if status == "running" and os.path.exists(f"{home}/logs/{rec.get('id')}.final.json"):
            return False  # ended, its worker still recording it: the full path reads the file
    return True


def _spawner(home: str) -> dict[str, object] | None:
    """`spawner_client.info`: the running spawner's `spawner.json`, None if there is none
    alive; ValueError where the full path's reader may see it otherwise (not UTF-8 JSON)."""
    raw = hotread.read_private(os.path.join(home, SPAWNER_INFO))
    if raw is None:
        return None
    try:
        data = hotread.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ValueError("too deep") from None
    if not isinstance(data, dict):
        return None
    pid, token = data.get("pid"), data.get("start")
    if not isinstance(pid, int) or not isinstance(token, str):
        return None
    return data if hotread.worker_alive({"workerPid": pid, "workerStart": token}, []) else None


def _describe(found: dict[str, object] | None) -> str:
    """`spawner_client.describe`."""
    if isinstance(found, dict):
        state = "ready" if found.get("ready", True) else "starting"
        return f"pid {found.get('pid')}, {state} since {found.get('since')}"
    enabled = (
        sys.platform == "linux"
        and hasattr(os, "pidfd_open")
        and os.environ.get("AGENTTY_SPAWNER", "1").strip() != "0"
    )
    return "off (AGENTTY_SPAWNER=0)" if not enabled else "none running"


def _merge_live_info(home: str, recs: list[dict[str, object]]) -> bool:
    """`Client._merge_live_info`: each running worker's live fields, asked of all at once
    (every request of a batch sent before any answer is read); a worker that does not answer
    within INFO_TIMEOUT of the first ask, or INFO_GRACE of its own, is gone without. False
    where the full path would do more than go without them (a socket missing or not the
    worker's, a worker that hangs up): it looks into that and may write it down."""
    for i, rec in enumerate(recs):
        if rec.get("status") not in ("starting", "running"):
            recs[i] = {**rec, "input": dict(ENDED_INPUT)}
    running = [i for i, rec in enumerate(recs) if rec.get("status") == "running"]
    import time  # loaded by the interpreter itself: free

    deadline = time.monotonic() + INFO_TIMEOUT  # one wait for all: a stopped worker per
    for first in range(0, len(running), BATCH):  # batch cost a second each
        batch = running[first : first + BATCH]
        socks: list[socket] = []
        try:
            for i in batch:
                sock = _ask(home, recs[i], max(deadline - time.monotonic(), INFO_GRACE))
                if sock is None:
                    return False
                socks.append(sock)
            until = max(deadline, time.monotonic() + INFO_GRACE)
            for i, sock in zip(batch, socks, strict=True):
                sock.settimeout(max(until - time.monotonic(), 0.001))
                reply = hotread.read_reply(sock, silent=hotread.SILENT)
                if reply is hotread.SILENT:
                    continue  # stopped, say: gone without, as the full path does
                if reply is None:
                    return False  # a hang-up, or not JSON
                info = _info(reply)
                if isinstance(info, dict):
                    merged = {**recs[i], **{k: info.get(k) for k in LIVE_FIELDS}}
                    if "recordingError" in info or "recordingError" in recs[i]:
                        merged["recordingError"] = info.get("recordingError")
                    if info.get("status") == "exited":  # not recorded yet (a full disk)
                        merged.update({k: info.get(k) for k in ENDED_FIELDS})
                    if hotread.well_formed(merged):
                        recs[i] = merged
        finally:
            for sock in socks:
                sock.close()
    return True


def _ask(home: str, rec: dict[str, object], timeout: float) -> socket | None:
    """A connection to the recorded worker with the info request sent; None if not."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)  # a stopped worker's full backlog holds up the connect
        sock.connect(os.path.join(home, "sockets", f"{rec['id']}.sock"))
        cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        pid = int.from_bytes(cred[0:4], sys.byteorder)
        uid = int.from_bytes(cred[4:8], sys.byteorder)
        if uid != os.getuid() or pid != rec.get("workerPid"):
            sock.close()
            return None
        sock.sendall(INFO_REQUEST)
    except OSError:
        sock.close()
        return None
    return sock


def _info(reply: dict[str, object]) -> object:
    """The `record` of an info answer (`ipc.client.unwrap`); None for an error answer or
    another protocol version, which the full path goes without as well."""
    if type(reply.get("v")) is not int or reply.get("v") != 1 or reply.get("ok") is not True:
        return None
    result = reply.get("result")
    return result.get("record") if isinstance(result, dict) else None

"""A host's link: one detached local process keeping `agentty _serve` open on the host.

`agentty --host H get` over plain ssh pays, every call, for an ssh channel, the remote
shell, and a remote interpreter importing agentty. The link pays for them once: it runs
`ssh ... H agentty _serve` (through the host's ControlMaster, as every call does), keeps
it, and serves `--host` calls on a Unix socket in the private home (`<home>/links/`, 0700
directory, 0600 socket, a peer of another uid refused). No protocol on the network of our
own, no port: the bytes between here and there are ssh's.

A caller (`remote/link.py`) sends one request line: `{"v", "argv", "stdin"?}` or
`{"v", "stats": true}`. Answers are lines: `?` ready to send it, to which the caller says
`go` (a caller that gave up waiting for `?` went the ssh way and says nothing: the request
is not sent, however long this process stalled); `+` the request went to the host; an
empty line, every second while it runs (the caller tells a slow command from a wedged
link); `=RC OUTLEN ERRLEN` then the command's stdout and stderr bytes; `-REASON` nothing was
sent (the caller goes the ssh way); `!REASON` sent, and the answer lost.

It exits after `AGENTTY_LINK_IDLE` seconds (default 600) without a request, on SIGTERM,
when its socket is removed or replaced, and when ssh or the remote server ends (the next
call starts a new one: a remote upgrade is picked up). One per host: it holds a lock.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import time
from typing import Any

from agentty_core.paths import FileIdentity, identity_of, still_at

IDLE = 600.0
HELLO_WAIT = 40.0  # seconds for ssh to connect and the remote agentty to import
REQUEST_TIMEOUT = 2.0  # a caller that connects and sends nothing
HEARTBEAT = 1.0
# A far side that beats (`remote/serve.py`) and is silent this long with requests pending is
# wedged (stopped, say): its requests are answered "lost" and the link ends, so the callers
# go the ssh way instead of taking the link's own heartbeats for its answer on the way.
FAR_SILENCE = 10.0
CHECK_EVERY = 1.0
LIMIT = 1 << 27  # the longest answer line (base64 of a command's output)
VERSION = 1  # the remote server's greeting (`remote/serve.py`)
CALLERS = 2  # the callers' protocol (`remote/link.py`: 2, a request is sent on their go)
DRAIN = 5.0  # seconds a SIGTERM waits for the answers of requests the host has


def _log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    sys.stderr.write(f"{stamp} link {os.getpid()}: {message}\n")
    sys.stderr.flush()


class Link:
    def __init__(self, spec: dict[str, object]) -> None:
        self.argv = [str(a) for a in spec["argv"]]  # type: ignore[attr-defined]
        self.path = str(spec["socket"])
        self.idle = float(spec.get("idle", IDLE))  # type: ignore[arg-type]
        self.host = str(spec.get("host"))
        self.proc: asyncio.subprocess.Process | None = None
        self.pending: dict[int, asyncio.Future[dict[str, object]]] = {}
        self.next_id = 0
        self.last = time.monotonic()
        self.served = 0
        self.since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.remote_pid: object = None
        self.beats = False  # the far side says it is alive while requests run
        self.heard = time.monotonic()  # its last line, or the request it had nothing for
        self.written = 0  # bytes given to ssh for the far side, all told
        self.drained = 0  # ... of which ssh had taken, at the last look
        self.bound: FileIdentity | None = None  # our socket's (`paths.identity_of`)
        self.done: asyncio.Future[str] | None = None

    # ------------------------------------------------------------------ start and end

    async def start(self) -> bool:
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=None,  # ours: the link's log
                limit=LIMIT,
                start_new_session=False,
            )
        except OSError as exc:  # ssh (or the `command` prefix) missing: back off, as a refusal
            _log(f"cannot run {self.argv[0]}: {exc}")
            return False
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), HELLO_WAIT)
            hello = json.loads(line)
        except (asyncio.TimeoutError, ValueError, RecursionError, asyncio.LimitOverrunError):
            return False
        if not isinstance(hello, dict) or hello.get("hello") != VERSION:
            return False
        self.remote_pid = hello.get("pid")
        self.beats = isinstance(hello.get("beat"), (int, float))  # older ones do not
        _log(f"{self.host}: remote agentty {hello.get('version')} pid {self.remote_pid}")
        return True

    def listen(self) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a dead link's: we hold the lock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self.bound = identity_of(self.path)
        sock.listen(64)
        return sock

    def socket_is_ours(self) -> bool:
        return still_at(self.path, self.bound)

    def describe(self) -> dict[str, object]:
        return {
            "pid": os.getpid(),
            "host": self.host,
            "since": self.since,
            "served": self.served,
            "pending": len(self.pending),
            "remotePid": self.remote_pid,
            "idle": self.idle,
        }

    async def stop(self) -> None:
        if self.socket_is_ours():
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the remote server's stdin ends: it exits, then ssh
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    # ------------------------------------------------------------------ the remote side

    async def read_answers(self) -> None:
        """The far side's lines, read in chunks: every chunk is a sign of life (a large
        answer on a slow link takes as long as it takes, its line whole only at its end)."""
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        buf = bytearray()
        while len(buf) <= LIMIT:
            try:
                chunk = await proc.stdout.read(1 << 16)
            except (OSError, ValueError):
                break
            if not chunk:
                break
            self.heard = time.monotonic()
            searched = len(buf)  # only the new bytes can end a line
            buf += chunk
            while (end := buf.find(b"\n", searched)) >= 0:
                line = bytes(buf[:end])
                del buf[: end + 1]
                searched = 0
                self._take_answer(line)
        self.give_up("the remote agentty or its ssh ended")

    def _take_answer(self, line: bytes) -> None:
        try:
            answer = json.loads(line)
        except (ValueError, RecursionError):
            return
        if not isinstance(answer, dict):
            return  # (a beat is a dict without an id: a sign of life, nothing more)
        future = self.pending.pop(answer.get("id"), None)  # type: ignore[arg-type]
        if future is not None and not future.done():
            future.set_result(answer)
        if answer.get("refused") == "upgraded":
            self.finish("agentty was upgraded there")

    def finish(self, why: str) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(why)

    # ------------------------------------------------------------------ callers

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.TimeoutError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
            return
        line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
        request = json.loads(line)
        if not isinstance(request, dict) or request.get("v") != CALLERS:
            writer.write(b"-version\n")
            return
        if request.get("stats"):
            body = json.dumps(self.describe()).encode()
            writer.write(b"=0 %d 0\n" % len(body) + body)
            return
        argv = request.get("argv")
        if not isinstance(argv, list):
            writer.write(b"-malformed\n")
            return
        self.last = time.monotonic()
        if not self._can_send(writer):
            return
        writer.write(b"?\n")  # ready: sent on the caller's go, which a late caller never gives
        await writer.drain()
        if await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT) != b"go\n":
            return
        proc = self.proc
        if not self._can_send(writer) or proc is None or proc.stdin is None:
            return
        self.next_id += 1
        rid = self.next_id
        message: dict[str, object] = {"id": rid, "argv": argv}
        if isinstance(request.get("stdin"), str):
            message["stdin"] = request["stdin"]
        future: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        if not self.pending:
            self.heard = time.monotonic()  # nothing was owed until now: no silence yet
        self.pending[rid] = future
        try:  # the request and its acknowledgement in one step: nothing runs in between
            self._send(proc.stdin, json.dumps(message).encode() + b"\n")
        except (OSError, RuntimeError):
            self.pending.pop(rid, None)
            writer.write(b"-down\n")
            return
        writer.write(b"+\n")
        self.served += 1
        # The caller sends nothing more: a read that ends means it went away (interrupted,
        # or it gave up on a wedged link), and the command is cancelled there.
        gone = asyncio.ensure_future(reader.read(1))
        watched: set[asyncio.Future[Any]] = {future, gone}
        try:
            while not future.done():
                done, _ = await asyncio.wait(
                    watched, timeout=HEARTBEAT, return_when=asyncio.FIRST_COMPLETED
                )
                if gone in done:
                    self.pending.pop(rid, None)
                    with contextlib.suppress(OSError, RuntimeError):
                        self._send(proc.stdin, json.dumps({"cancel": rid}).encode() + b"\n")
                    return
                if not done:
                    writer.write(b"\n")
                    await writer.drain()
        finally:
            gone.cancel()
        self.last = time.monotonic()
        answer = future.result()
        writer.write(_frame(answer))
        await writer.drain()

    def _can_send(self, writer: asyncio.StreamWriter) -> bool:
        """Whether a request can go to the host now; if not, the caller is told why (it
        goes the ssh way: nothing was sent)."""
        proc = self.proc
        if self.done is not None and self.done.done():
            why = b"-ending\n"
        elif proc is None or proc.stdin is None or proc.returncode is not None:
            why = b"-down\n"
        else:
            return True
        writer.write(why)
        return False

    # ------------------------------------------------------------------ the loop

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY)
            if not self.socket_is_ours():
                self.finish("socket removed or replaced")
            elif not self.pending and time.monotonic() - self.last > self.idle:
                self.finish("idle")
            elif self.pending and self.beats and self._silent_for() > FAR_SILENCE:
                self.give_up("the remote agentty stopped answering")

    def _send(self, stdin: asyncio.StreamWriter, data: bytes) -> None:
        stdin.write(data)
        self.written += len(data)

    def _silent_for(self) -> float:
        """Seconds the far side has said nothing while it owes answers; a request going up
        to it (a large stdin on a slow link) is no silence of its while it moves: bytes
        ssh took since the last look count as a sign of life (a buffer that only waits,
        the far side stuck, does not)."""
        now = time.monotonic()
        stdin = self.proc.stdin if self.proc is not None else None
        if stdin is not None:
            drained = self.written - stdin.transport.get_write_buffer_size()
            if drained > self.drained:
                self.drained = drained
                self.heard = now
        return now - self.heard

    def give_up(self, why: str) -> None:
        """The far side is wedged: what it owes is lost (a caller asks again the ssh way
        what is safe to repeat) and the link ends; the next call starts a new one."""
        for future in self.pending.values():
            if not future.done():
                future.set_result({"lost": why})
        self.pending.clear()
        self.finish(why)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.done = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, self.finish, "SIGTERM")
        if not await self.start():
            _log(f"{self.host}: the remote agentty did not answer: exiting")
            _mark_failed(self.path)
            await self.stop()
            return 1
        listener = self.listen()
        server = await asyncio.start_unix_server(self.handle, sock=listener, limit=LIMIT)
        _log(f"{self.host}: ready on {self.path} (idle exit after {self.idle:g}s)")
        tasks = [asyncio.ensure_future(self.read_answers()), asyncio.ensure_future(self.watch())]
        why = await self.done
        _log(f"{self.host}: {why}: exiting")
        server.close()  # no new request; those the host has are answered first
        if self.socket_is_ours():
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        deadline = time.monotonic() + (DRAIN if why == "SIGTERM" else 24 * 3600.0)
        while self.pending and time.monotonic() < deadline and not tasks[0].done():
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await self.stop()
        return 0


def _frame(answer: dict[str, object]) -> bytes:
    if "lost" in answer:
        return b"!lost\n"
    if "refused" in answer:
        return b"-" + str(answer["refused"]).encode("ascii", "replace") + b"\n"
    rc = answer.get("rc")
    out, err = answer.get("out"), answer.get("err")
    if not isinstance(rc, int) or not isinstance(out, str) or not isinstance(err, str):
        return b"!malformed\n"
    out_b, err_b = binascii.a2b_base64(out), binascii.a2b_base64(err)
    return b"=%d %d %d\n" % (rc, len(out_b), len(err_b)) + out_b + err_b


def _mark_failed(path: str) -> None:
    """Callers do not start another link for a while (an old agentty there, say)."""
    with contextlib.suppress(OSError):
        fd = os.open(path + ".off", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)
        os.utime(path + ".off")


def main() -> int:
    spec = json.loads(sys.argv[1])
    assert isinstance(spec, dict)
    with contextlib.suppress(ValueError):
        spec["idle"] = float(os.environ.get("AGENTTY_LINK_IDLE") or IDLE)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    lock = os.open(str(spec["socket"]) + ".lock", flags, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another one runs for this host
    os.ftruncate(lock, 0)
    os.write(lock, str(os.getpid()).encode())  # for `link.stop`, which checks the lock
    link = Link(spec)
    try:
        return asyncio.run(link.run())
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

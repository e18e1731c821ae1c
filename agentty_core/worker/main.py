# ruff: noqa: E402  (ssl is blocked before anything can import asyncio)
"""The worker process's entry point: `python -m agentty_core.worker.main`.

`start` runs this detached, with the session spec as JSON on stdin, the status pipe's fd in
`AGENTTY_STATUS_FD` and stdout/stderr on the session's log file. This module sets up the
process (stdin on /dev/null, the capped log) and makes sure that whatever ends the worker
ends the program's process group first.
"""

from __future__ import annotations

import sys

# asyncio imports ssl when it can (OpenSSL: ~10 ms and ~2 MiB per worker); a worker never
# speaks TLS, and asyncio runs without it.
sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]

import contextlib
import json
import logging
import os
import signal
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentty_core.worker.core import Worker

LOG_CAP = 256 * 1024  # the worker log never holds program output; this bounds the rest


class CappedLogHandler(logging.Handler):
    """Writes to the session's log on fd 2 (opened once, O_APPEND and O_NOFOLLOW, by `start`
    or by main() for an early worker; never re-opened by path) and empties it when it
    outgrows the cap."""

    def __init__(self, fd: int = 2, cap: int = LOG_CAP) -> None:
        super().__init__()
        self.fd = fd
        self.cap = cap

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode("utf-8", "replace")
            if os.fstat(self.fd).st_size + len(data) > self.cap:
                os.ftruncate(self.fd, 0)
                data = b"[earlier log lines dropped: size cap]\n" + data
            os.write(self.fd, data)
        except OSError:
            self.handleError(record)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_handler: CappedLogHandler | None = None


def log_handler() -> CappedLogHandler:
    """The session log's handler (on fd 2, whatever file that is), made once."""
    global _handler
    if _handler is None:
        _handler = CappedLogHandler()
        _handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return _handler


def prepare_logging() -> None:
    """In the warm spawner, before it freezes its heap: a worker's handler made (installed
    nowhere) and the root logger's level set, so that a forked worker sets up its logging
    without making a handler, a lock and a formatter, or clearing every logger's level
    cache (~0.1 MiB of each idle worker's private memory). With no handler here, the
    spawner's own INFO records still go nowhere."""
    log_handler()
    logging.getLogger().setLevel(logging.INFO)


def _setup_logging() -> None:
    root = logging.getLogger()
    root.handlers[:] = [log_handler()]
    if root.level != logging.INFO:  # the warm spawner set it already (clearing every
        root.setLevel(logging.INFO)  # logger's cache: pages a forked worker would copy)


def _kill_child_group(worker: Worker) -> None:
    """Last resort when the worker itself fails: the program must not outlive it."""
    if worker.child is not None:
        from agentty_core.proc.killtree import kill_now

        with contextlib.suppress(OSError):
            os.killpg(worker.child.pid, signal.SIGKILL)
        kill_now(worker._session_processes())


def _refuse(status_fd: int, message: str) -> int:
    """Fail before the session exists: say why on the status pipe, which `start` reports
    (an early worker's own output still goes nowhere at this point)."""
    traceback.print_exc()
    if status_fd >= 0:
        line = json.dumps({"ok": False, "error": message, "exit_code": 1}) + "\n"
        with contextlib.suppress(OSError):
            os.write(status_fd, line.encode())
    return 1


def main() -> int:
    status_fd = int(os.environ.pop("AGENTTY_STATUS_FD", "-1"))
    try:
        # Imported before the spec is read: `start` writes the intent record meanwhile.
        import agentty_core.paths
        import agentty_core.proc.killtree  # what ending the session needs (`core._load_the_end`)
        import agentty_core.worker.core  # noqa: F401
    except Exception as exc:  # a broken installation, say
        return _refuse(status_fd, f"the worker cannot start: {type(exc).__name__}: {exc}")
    raw = sys.stdin.buffer.read()
    if not raw:
        return 0  # `start` gave up before handing a session over
    try:
        spec = json.loads(raw)
        log_to = spec.get("log_to")
        if isinstance(log_to, str):  # started early, on /dev/null: now the session's log
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
            log_fd = os.open(log_to, flags, 0o600)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.close(log_fd)
    except (ValueError, OSError) as exc:
        return _refuse(status_fd, f"the worker cannot start: {exc}")
    return serve(spec, status_fd)


def serve(spec: dict[str, object], status_fd: int) -> int:
    """Run the session `spec` describes, reporting on `status_fd` (-1: none); also what a
    worker forked for the `start` fast lane runs once it wrote the intent record itself."""
    from agentty_core.paths import Home
    from agentty_core.worker.base import log_line
    from agentty_core.worker.core import Worker, log

    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    home = Home(Path(str(spec["home"])))
    _setup_logging()
    worker = Worker(spec, home, status_fd if status_fd >= 0 else None)
    log_line(
        log.name,
        f"worker {os.getpid()} starting session {worker.id} (emulator {worker.emulator_name}):"
        f" {spec['argv']}",
    )
    from agentty_core.errors import AgenttyError
    from agentty_core.worker import loop

    try:
        return loop.run(worker.run())
    except BaseException as exc:
        # agentty's own errors (the state lock held past its timeout, say) are said in their
        # words, as the caller says them on the direct path; anything else is a crash.
        if isinstance(exc, AgenttyError):
            said, code = str(exc), exc.exit_code
            log.error("%s", said)
        else:
            said, code = f"worker failed: {exc}", 1
            log.error("worker failed:\n%s", traceback.format_exc())
        _kill_child_group(worker)
        # Before `start` had its answer, the start failed (`run` then removes it, as any
        # failed start); after, a running session lost its worker.
        started = worker.status_fd is None
        worker._report({"ok": False, "error": said, "exit_code": code})
        fields: dict[str, object] = {"status": "lost"}
        if not started:
            from agentty_core.state.store import now_iso

            fields = {"status": "failed", "endedAt": now_iso()}
        with contextlib.suppress(Exception):
            worker.store.update(worker.id, error=said, **fields)
        return 1


if __name__ == "__main__":
    sys.exit(main())

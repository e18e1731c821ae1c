"""The end of a session: reaping the program, draining its last output, finalizing (final
screen, exit record, socket removed), killing the session's processes on request or signal,
and listing those processes.

The exit is never given up for a lock held too long or a full disk: the worker keeps
trying (with backoff, for up to EXIT_PATIENCE) and keeps its socket answering `get`
meanwhile; readers can take the exit from the final-screen file it saved."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import select
import signal
import time
from typing import TYPE_CHECKING

from agentty_core import failpoints
from agentty_core.errors import AgenttyError
from agentty_core.proc import inputstate
from agentty_core.proc.identity import exiting
from agentty_core.state.store import iso, now_iso, temp_file_beside
from agentty_core.worker.answers import RequestFailed
from agentty_core.worker.base import WorkerBase, directory_identity, log_line

if TYPE_CHECKING:
    from pathlib import Path

    from agentty_core.proc.killtree import Handle, KillResult

log = logging.getLogger("agentty.worker")

# After the program exited, its last output is read until the PTY reports EOF. A job it left
# in the background may hold the PTY open forever: then the PTY counts as closed after
# EXIT_DRAIN of quiet. With nobody left, EOF comes once everything is read, however long a
# loaded machine takes to hand the rest over; EXIT_DRAIN_MAX of quiet is the backstop.
EXIT_DRAIN = 0.25
EXIT_DRAIN_MAX = 5.0
EXITING_WAIT = 0.05  # for a program the kernel is ending to become a zombie (`_reap_exiting`)
SURVIVORS_RECHECK = 30.0  # a kill's survivors are looked for again at least this often
# Writing the exit: tries without waiting on the lock, so the loop keeps serving; every
# RETRY_POLL for the first EXIT_FIRST_TRY (as often as a blocking lock polls), then backing
# off to one every RETRY_BACKOFF_MAX, for up to EXIT_PATIENCE. A kill and the waits are
# answered once it is written, or once EXIT_SAVED_TRY passed with the final screen saved
# (every reader takes the exit from it: `client_records`), or after EXIT_FIRST_TRY; the
# tries then go on in the background.
EXIT_FIRST_TRY = 5.0
EXIT_SAVED_TRY = 0.25  # a lock held a moment by another writer: the record comes at once
EXIT_PATIENCE = 600.0
RETRY_POLL = 0.005
RETRY_BACKOFF_MAX = 1.0


class Tries:
    """When to try a write again: every RETRY_POLL for the first `poll_for` seconds after
    the first try (as often as a blocking lock polls: a lock held a moment costs no more
    than that), then twice as long each time, up to RETRY_BACKOFF_MAX. One schedule from
    the first try to the last: the tries in the background go on where the first ones
    left off, instead of polling every RETRY_POLL all over again."""

    def __init__(self, poll_for: float = EXIT_FIRST_TRY) -> None:
        self.started = time.monotonic()
        self.poll_for = poll_for
        self.delay = RETRY_POLL

    def next_wait(self, patience: float) -> float | None:
        """How long to wait before the next try; None once `patience` seconds have passed
        since the first."""
        elapsed = time.monotonic() - self.started
        if elapsed >= patience:
            return None
        if elapsed >= self.poll_for:
            self.delay = min(self.delay * 2, RETRY_BACKOFF_MAX)
        return min(self.delay, patience - elapsed)


class Lifecycle(WorkerBase):
    """Exit, drain, finalize and kill."""

    def _reap(self) -> None:
        """SIGCHLD: reap every exited child (we are a subreaper); note the program's status."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if self.child is not None and pid == self.child.pid:
                self.exit_status = status
                # The PTY may still hold output (read it all: the final screen must be
                # complete), and a background job may keep it open (then stop once quiet).
                self._drain_after_exit()
                self._maybe_finalize()

    def _reap_exiting(self) -> None:
        """The program found gone (its terminal closed) before its SIGCHLD was handled: its
        exit, for an answer built now, which said `exited: false` beside an input state
        `exited`. A process that closes its files as it exits is a zombie a moment later:
        waited for, up to EXITING_WAIT, while the kernel says it is exiting."""
        self._reap()
        child = self.child
        if self.exit_status is not None or child is None or not exiting(child.pid):
            return
        try:
            pidfd = os.pidfd_open(child.pid)
        except OSError:
            return
        try:
            waiting = select.poll()  # (not select(): no FD_SETSIZE limit on the descriptor)
            waiting.register(pidfd, select.POLLIN)
            waiting.poll(EXITING_WAIT * 1000)
        finally:
            os.close(pidfd)
        self._reap()

    def _drain_after_exit(self) -> None:
        if self.pty_closed:
            return
        quiet = time.monotonic() - self.last_read
        if quiet >= EXIT_DRAIN and (quiet >= EXIT_DRAIN_MAX or self._anyone_left()):
            self._on_pty_closed()
        else:
            delay = max(EXIT_DRAIN - quiet, 0.05)
            asyncio.get_running_loop().call_later(delay, self._drain_after_exit)

    def _anyone_left(self) -> bool:
        from agentty_core.proc.killtree import alive

        return bool(alive(self._session_processes()))

    def _maybe_finalize(self) -> None:
        if self.exit_status is None or not self.pty_closed or self.finalizing:
            return
        # A kill under way finalizes itself; one that is done left survivors (stopped in
        # a frozen cgroup, say), which have gone since: the session ends now.
        if self.kill_task is None or self.kill_task.done():
            asyncio.get_running_loop().create_task(self._finalize(reap_leftovers=True))

    def _exit_fields(self) -> dict[str, object]:
        status = self.exit_status
        if status is None:
            return {"exitCode": None, "signal": None}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return {"exitCode": 128 + sig, "signal": signal.Signals(sig).name}
        return {"exitCode": os.waitstatus_to_exitcode(status), "signal": None}

    async def _finalize(self, *, reap_leftovers: bool) -> None:
        if self.finalizing:
            return
        self.finalizing = True
        try:
            await self._finalize_once(reap_leftovers)
        except Exception as exc:
            # A fault of ours in recording the end must not keep the worker up without a
            # program, its home perhaps gone, for ever (a crash here did, for 80 minutes):
            # the waits and the caller hear of it, and the worker ends; a reader finds the
            # record's worker gone and says the session is lost.
            log.exception("the session's end could not be recorded: the worker ends")
            for later in list(self.waits):
                later.resolve(RequestFailed("exited", f"{self._exited_message()} ({exc})"))
            self._close_socket({"status": "lost", "error": str(exc)})
            raise

    async def _finalize_once(self, reap_leftovers: bool) -> None:
        failpoints.hit("worker.finalize")
        if reap_leftovers:
            # Background jobs the program left behind belong to the session: end them.
            from agentty_core.proc.killtree import ladder, run_async

            await run_async(ladder(self._session_processes, grace=0.5))
        if self.recorder is not None:
            if self.exit_status is not None:
                self.recorder.exited(self._exited_how())
            self.recorder.close()
        fields = {
            **self._exit_fields(),
            "status": "exited",
            "endedAt": now_iso(),
            "lastActiveAt": iso(self.active_at),
            "cols": self.emu.cols,  # the size it ended with, as its final screen has it
            "rows": self.emu.rows,
        }
        if "recordingError" in self.record:  # in case noting it alone did not get through
            fields["recordingError"] = self.record["recordingError"]
        self.record.update(fields)
        tries = Tries()
        if reap_leftovers and self._forget_wanted() and self._forget_now():
            problem, final = None, b""  # nothing to record: `run` has the screen in its answer
        else:
            final = self._final_screen()
            problem = await self._persist(
                fields, EXIT_FIRST_TRY, final=final, tries=tries, once_saved=EXIT_SAVED_TRY
            )
            self.exit_recorded = problem is None
        self._check_waits()
        for later in list(self.waits):
            later.resolve(RequestFailed("exited", self._exited_message()))
        self._push_final()
        for peer in list(self.subscribers):
            peer.finish()
        if problem is None and (not final or self.final_saved or self.final_hopeless):
            self._close_socket(fields)
        elif problem is None:
            self._in_background(self._keep_saving_final(fields, final))
        else:
            self._in_background(self._keep_recording_exit(fields, final, tries))

    def _final_screen(self) -> bytes:
        """The final screen file's contents: `get --ansi`/`--png` after the exit read it."""
        snapshot = self.screen_payload(scrollback=True, ansi=True)
        snapshot.update(self._exit_fields(), exited=True, input=inputstate.exited())
        if self.echoes.echoes or self.echoes.befores:  # what a wait `after` an input reads
            from agentty_core.protocol import str_list
            from agentty_core.screen_text import screen_to_cursor

            history = str_list(snapshot.get("scrollback"))
            try:
                masks = self.echoes.saved(self.emu, screen_to_cursor(snapshot), history)
            except Exception:  # the end is recorded whatever: waits then read it unmasked
                log.exception("cannot keep the masked rows with the final screen")
            else:
                snapshot["masks"] = masks
        return json.dumps(snapshot).encode()

    def _forget_now(self) -> bool:
        """Remove the session instead of recording its exit (one locked write where `run`
        made two); False if the lock is held or the write fails: the exit is recorded as
        always, and the caller removes it (`forget`) once it has the answer."""
        try:
            self.quick_store.forget({self.id})
        except (AgenttyError, OSError):  # OSError: a file of it that cannot be removed
            return False
        self.forgotten = True
        self.exit_unsynced = True  # the directory's sync after the answers, as for the exit
        return True

    async def _keep_recording_exit(
        self, fields: dict[str, object], final: bytes, tries: Tries
    ) -> None:
        """The exit could not be written yet (the state lock held, a full disk): keep trying,
        on the schedule the first tries began, while the socket still answers `get` with the
        exit on the screen. Said in the log once the first tries are over: a lock held a
        moment past the answer (EXIT_SAVED_TRY) is no news."""
        left: str | None = await self._persist(fields, EXIT_FIRST_TRY, final=final, tries=tries)
        if left is not None:
            log.warning(
                "cannot record the exit yet: %s; retrying for up to %g s", left, EXIT_PATIENCE
            )
            left = await self._persist(fields, EXIT_PATIENCE, final=final, tries=tries)
            if left is None:
                log.info("recorded the exit")
        if left is None:
            if final and not (self.final_saved or self.final_hopeless):
                # Room for the record came first: the screen is still to be saved (the
                # worker ended here, and it was lost for good).
                await self._keep_saving_final(fields, final)
                return
        else:
            log.error("gave up recording the exit: %s", left)
        self._close_socket(fields)

    async def _keep_saving_final(self, fields: dict[str, object], final: bytes) -> None:
        """The exit is recorded and its final screen did not fit (a full disk under logs/):
        keep trying, backing off to a try a second (nobody waits on it: a reader sees the
        exit meanwhile), or the screen is lost for good once we exit."""
        tries = Tries(poll_for=0.0)
        log.warning("cannot save the final screen yet; retrying for up to %g s", EXIT_PATIENCE)
        while not (self.final_saved or self.final_hopeless or self._home_gone()):
            wait = tries.next_wait(EXIT_PATIENCE)
            if wait is None:
                break
            await asyncio.sleep(wait)
            if not self._still_recorded():
                break  # removed meanwhile (`gc`): its screen would be nobody's
            self._save_final(final)
        if self.final_saved:
            log.info("saved the final screen")
        else:
            log.error("gave up saving the final screen: %s", self.final_error)
        self._close_socket(fields)

    async def _persist(
        self,
        fields: dict[str, object],
        patience: float,
        *,
        final: bytes | None = None,
        tries: Tries | None = None,
        once_saved: float | None = None,
    ) -> str | None:
        """Write `fields` into the record (after `final` as the final screen, when given and
        not saved yet: readers take the exit from it should the worker die before the
        record), trying again on `tries`' schedule until `patience` seconds after its first
        try (`once_saved` once the final screen is saved), without blocking the loop. None
        once written; else the last problem."""
        tries = Tries() if tries is None else tries
        while True:
            self._save_final(final)
            try:
                # A list being rebuilt (a corrupt file set aside) gets the record back.
                self.quick_store.update_or_restore(self.id, self.record, **fields)
            except AgenttyError as exc:
                problem = str(exc)
            else:
                self.exit_unsynced = True  # synced once the answers are out (`core.run`)
                self._save_final(final)  # space may have come back between the two
                return None
            if self._home_gone():
                # Removed or replaced under us: no try can write there, nobody would read it.
                return f"{problem} (the home {self.home.root} is gone)"
            if once_saved is not None and self.final_saved:
                patience = min(patience, once_saved)
            wait = tries.next_wait(patience)
            if wait is None:
                return problem
            await asyncio.sleep(wait)

    def _still_recorded(self) -> bool:
        """Whether the list still has our record (True where it cannot be read)."""
        from agentty_core.state import records

        try:
            return any(rec["id"] == self.id for rec in records.records(self.home))
        except AgenttyError:
            return True

    def _home_gone(self) -> bool:
        """The home directory this worker started in is no longer there (removed, or another
        one made in its place): a held lock or a full disk may pass, this does not."""
        return self.home_at is None or directory_identity(self.home.root) != self.home_at

    def _save_final(self, final: bytes | None) -> None:
        """Save the final screen, if given and not saved yet; log only the first failure.
        After a failed try, the next waits until the disk shows room for all of it: on a
        full disk, the tries do not each write (and throw away) as much of it as fits. The
        first try does not ask (a file system may say it is full and still take it)."""
        if final is None or self.final_saved:
            return
        path = self.home.final_path(self.id)
        try:
            if self.final_error is not None and not _room_for(path.parent, len(final)):
                raise OSError(errno.ENOSPC, f"no room for its {len(final)} bytes")
            try:
                _replace(path, final)
            except OSError as exc:
                if exc.errno != errno.EFBIG:
                    raise
                if not _lift_file_size_limit():  # at its hard limit: no try will do better
                    self.final_hopeless = True
                    raise
                _replace(path, final)  # (the caller's `ulimit -f`, meant for the program)
        except OSError as exc:
            if self.final_error is None:
                log.error("cannot save the final screen: %s", exc)
            self.final_error = str(exc)
        else:
            self.final_saved = True

    def _close_socket(self, fields: dict[str, object]) -> None:
        """The end: no more connections, the socket removed, the worker free to exit."""
        if self.server is not None:
            self.server.close()
        with contextlib.suppress(OSError, AgenttyError):
            path = self.home.socket_path(self.id)
            if os.lstat(path).st_ino == getattr(self, "socket_inode", None):
                path.unlink()
        exited = fields.get("status") == "exited" and self.exit_status is not None
        how = self._exited_how() if exited else fields.get("error")
        log_line(log.name, f"session {self.id} ended: {fields.get('status')} ({how})")
        self.finalized.set()

    def _exited_how(self) -> str:
        """ "code 7" or "signal SIGKILL"."""
        fields = self._exit_fields()
        if fields["signal"]:
            return f"signal {fields['signal']}"
        return f"code {fields['exitCode']}"

    def _exited_message(self) -> str:
        return f"session {self.id} exited ({self._exited_how()})"

    def _ended(self) -> RequestFailed:
        """The refusal of input to a program that has ended: in the words the record gives
        once the exit is written ("exited (code 0)"), so that a caller reads the same whether
        it asked just before or just after that write."""
        if self.exit_status is None:  # the PTY closed first: the status comes in a moment
            return RequestFailed("exited", f"session {self.id} has exited")
        return RequestFailed("exited", self._exited_message())

    def _session_processes(self) -> list[Handle]:
        """Everything of this session: its group and session, the foreground group, and
        every descendant of the worker (which, as subreaper, inherits double-forked ones)."""
        from agentty_core.proc.killtree import session_processes

        leader = foreground = None
        if self.child is not None:
            leader = self.child.pid
            if not self.pty_closed:
                with contextlib.suppress(OSError):
                    fg = os.tcgetpgrp(self.child.fd)  # 0 until the child claims the tty
                    if fg > 1 and fg != self.child.pid:
                        foreground = fg
        return session_processes(leader, foreground, reaper=True)

    async def kill(self, grace: float) -> KillResult:
        """End the session (a kill under way is joined; one still in its ladder with a
        longer grace gives way to this one, whose ladder starts again at its pace: a
        `kill --timeout 0` after a `--timeout 15` waited out the 15 s, and its caller gave
        up first). After one that left survivors, the next tries again: its answer says
        who is alive now, not who was."""
        task = self.kill_task
        if task is None or (task.done() and not self.finalizing):
            self._start_kill(grace)
        elif not task.done() and self.kill_laddering and grace < self.kill_grace:
            task.cancel()
            self._start_kill(grace)
        while True:
            task = self.kill_task
            assert task is not None
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.cancelled() and self.kill_task is not task:
                    continue  # given way to a faster kill: its answer is this one's too
                raise

    def _start_kill(self, grace: float) -> None:
        self.kill_grace = grace
        self.kill_laddering = True  # now: a kill asked before the task's first step runs
        self.kill_task = asyncio.get_running_loop().create_task(self._kill(grace))  # (sees it)

    async def _kill(self, grace: float) -> KillResult:
        from agentty_core.proc.killtree import ladder, run_async

        result = await run_async(ladder(self._session_processes, grace=grace))
        self.kill_laddering = False
        # What the kill took, for `agentty logs` (a program that ignores SIGHUP took seconds
        # and the log said only how the session ended).
        left = f"; still running: {result.survivors}" if result.survivors else ""
        sent = ", ".join(result.escalated) or "no signal (nothing was left)"
        log.info("killed after %s (%g s a step)%s", sent, grace, left)
        if result.survivors:
            if not self.awaiting_survivors:  # (a kill tried again: the wait goes on)
                self.awaiting_survivors = True
                self._in_background(self._end_when_gone())
            return result
        # Nothing of the session is left: what the PTY holds is all the output there is (the
        # final screen gets it, a last word on SIGHUP included), and the exit drain's wait
        # for the PTY to close (and its look for processes left) has nothing to wait for.
        self._drain_output()
        self._close_pty()
        deadline = time.monotonic() + 2.0
        while self.exit_status is None and time.monotonic() < deadline:
            self._reap()  # SIGCHLD's handler may not have run yet: the status is there now
            if self.exit_status is None:
                await asyncio.sleep(0.01)
        await self._finalize(reap_leftovers=False)
        return result

    async def _end_when_gone(self) -> None:
        """After a kill that left survivors (stopped in a frozen cgroup, say): the session
        ends once they are gone (their pidfds say when). Its program may have been reaped
        and its PTY closed during the kill, whose end was left to the kill: nothing else
        would end it then. Looked at again every SURVIVORS_RECHECK: one that SIGKILL could
        not reach (another user's) may have started others."""
        from agentty_core.proc.killtree import alive, all_ended

        try:
            while not self.finalizing:
                left = tuple(p.pid for p in alive(self._session_processes()))
                if not left:
                    break
                await all_ended(left, SURVIVORS_RECHECK)
        finally:
            self.awaiting_survivors = False
        self._maybe_finalize()

    def _on_terminate(self, sig: int) -> None:
        log.info("received %s: ending the session", signal.Signals(sig).name)
        asyncio.get_running_loop().create_task(self.kill(grace=1.0))


def _lift_file_size_limit() -> bool:
    """Raise our soft RLIMIT_FSIZE to the hard one; whether that lifted it. The worker has
    the caller's limits so that its program gets them; its own files are not the
    program's (the program has ended by the time its final screen is written)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft == hard:
        return False
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    except (OSError, ValueError):
        return False
    return True


def _room_for(directory: Path, size: int) -> bool:
    """Whether the file system of `directory` has room for a file of `size` bytes (a block
    to spare); True where it cannot tell."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return True
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail  # root may use the reserve
    return blocks * st.f_frsize >= size + st.f_frsize


def _replace(path: Path, data: bytes) -> None:
    """`atomic_write` without its two fsyncs (a few ms each, on every exit and kill): the
    final screen is for readers while the machine runs (the exit, should the worker die
    before recording it), so it must be whole against a crash of the worker, which write
    and replace assure; after a power loss no session outlives the boot anyway. An empty
    or torn file there reads as no final screen (reliability.md 2.6: the fsyncs are for
    power loss)."""
    fd, tmp = temp_file_beside(path)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

"""Writing session state: every read-modify-write under one OS lock, every write atomic.

The lock is an `flock` on `sessions.json.lock` (mode 0600, no fallback to a soft lock): the
kernel releases it when its holder dies, so there is no stale-lock guessing. A caller that
finds it held waits with `filelock.FileLock` on the same file; an uncontended caller, and
every worker (`lean`), takes the very same flock without importing the filelock package.
A waiter tries again soon, then less often (`wait_until`).
It is held only while local files are read and rewritten, never across a spawn or a wait.
Writes go to a random temp file in the same directory, are fsynced, then `os.replace`d, and
the directory is fsynced: a crash at any instant leaves the old file or the new one. A
directory fsync that fails is logged, not raised: the rename it follows is already done.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from agentty_core import failpoints
from agentty_core.errors import StateError, StateLockTimeout
from agentty_core.lazylog import LazyLogger
from agentty_core.paths import Home
from agentty_core.state.records import (
    REBUILDING,
    SCHEMA_VERSION,
    CorruptState,
    RawRecord,
    Record,
    checked,
    empty_state,
    parse_state,
    read_active,
    read_private_file,
    skipped,
)

TYPE_CHECKING = False  # without importing typing: `start` and `run` write state
if TYPE_CHECKING:
    from filelock import FileLock

log = LazyLogger(__name__)

LOCK_TIMEOUT = 10.0
# A waiter's pauses between tries of the lock (`wait_until`): 4 ms of 0.5, 16 of 1, 20 of 2,
# then RETRY.
PAUSES: tuple[float, ...] = (0.0005,) * 8 + (0.001,) * 16 + (0.002,) * 10
RETRY = 0.005


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def iso(timestamp: float) -> str:
    """`time.time()` as now_iso() writes it: cheap to keep, formatted only when read."""
    moment = _dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds")


def atomic_write(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Replace `path` with `data` so that readers see the old or the new bytes, never a mix:
    one fsync of the new file before the rename, one of the directory after it (what makes
    the rename itself durable). `sync_dir=False` leaves that to the caller, who syncs the
    directory once for several files (`sync_directory`)."""
    fd, tmp = temp_file_beside(path)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        failpoints.hit("state.after_tmp_write")
        os.fsync(fd)
        os.close(fd)
        fd = -1
        failpoints.hit("state.before_replace")
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir:
        sync_directory(path.parent)


def temp_file_beside(path: Path) -> tuple[int, str]:
    """A new file beside `path`, `tempfile.mkstemp`'s way (a random name `.NAME.*.tmp`,
    created exclusively, 0600, never through a link), without importing tempfile: with
    shutil and random it costs a `start` more than the write itself."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        tmp = os.path.join(path.parent, f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(path.parent))


class Kept:
    """A file as it was, kept aside under a temporary name while it is changed for a write
    of the list: put back (`put_back`) if that write fails, let go (`drop`) once it is done.
    Kept by a hard link: putting it back needs no new block on the full disk that failed
    the write. The name is one the temp-file sweep removes after a crash; a file that
    cannot be linked (no hard links there) is not put back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.existed = True
        self.aside: Path | None = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            os.link(path, self.aside, follow_symlinks=False)
        except FileNotFoundError:
            self.aside, self.existed = None, False
        except OSError:
            self.aside = None

    def put_back(self) -> None:
        try:
            if self.aside is not None:
                os.replace(self.aside, self.path)
            elif not self.existed:
                self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot put %s back as it was: %s", self.path, exc)
        self.aside = None

    def drop(self) -> None:
        if self.aside is not None:
            with contextlib.suppress(OSError):
                self.aside.unlink()
            self.aside = None


def sync_directory(path: Path) -> bool:
    """Make the renames into `path` durable (one fsync covers every entry changed so far).

    Called after a rename, which every reader and the next writer already see: the change
    is made. A failure here (EIO) only leaves in doubt whether it survives a crash of the
    machine, so it is logged, never raised: a caller told its write failed would retry a
    change that is in place, or undo one that stands. False when durability is in doubt."""
    try:
        dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            failpoints.hit("state.sync_dir")
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        log.warning(
            "%s syncing %s: the change is made but may not survive a crash of the machine",
            exc.strerror or exc,
            path,
        )
        return False
    return True


def _hard_lock(path: str, timeout: float) -> FileLock:
    """An flock-based lock that never degrades to a soft (file-exists) lock.

    filelock 4.x falls back to a soft lock where flock is missing unless told not to; older
    releases (the newest that run on Python 3.10) have no fallback and fail closed already.
    Imported here, when a caller has to wait for the lock (`_CallerLock`)."""
    from filelock import FileLock

    try:
        return FileLock(path, timeout=timeout, mode=0o600, fallback_to_soft=False)
    except TypeError:
        return FileLock(path, timeout=timeout, mode=0o600)


def encode_state(doc: Mapping[str, object]) -> bytes:
    """The state file's bytes: one record a line, each by the C encoder. Written under the
    lock by every start and exit, so its cost is every concurrent writer's wait: `indent`
    would run the pure-Python encoder, ~3x slower on a list of 50 sessions."""
    parts = []
    for key, value in doc.items():
        if key == "sessions" and isinstance(value, list) and value:
            text = ",\n".join(json.dumps(rec, ensure_ascii=True) for rec in value)
            text = "[\n" + text + "\n]"
        else:
            text = json.dumps(value, ensure_ascii=True)
        parts.append(json.dumps(key, ensure_ascii=True) + ": " + text)
    return ("{" + ",\n".join(parts) + "}\n").encode()


class _LockTimeout(Exception):
    pass


def wait_until(taken: Callable[[], bool], timeout: float) -> bool:
    """Try `taken` until it says the lock is ours, for up to `timeout` seconds; False if it
    never did. A holder is almost always a writer about to finish (a write takes 1-3 ms), so
    the first pauses are short (PAUSES), then RETRY apart: trying every 5 ms from the
    first, each waiter had the lock a median ~2.5 ms after it was let go, and 20 concurrent
    `start`s queued on it for tens of milliseconds each. (inotify would say when the lock
    file is closed, but its close event comes before the lock is let go, and closing a
    watch costs 8-16 ms.)"""
    if taken():
        return True
    if timeout <= 0:
        return False
    import time

    deadline = time.monotonic() + timeout
    tries = 0
    while not taken():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(remaining, PAUSES[tries] if tries < len(PAUSES) else RETRY))
        tries += 1
    return True


class _Flock:
    """The same lock for a worker without filelock: an `flock` on the same lock file, so the
    two exclude each other. A worker writes its record three times in its life; importing
    filelock 4 (hashlib, OpenSSL, decimal, platform) cost it 4.9 MiB and 25 ms before ready."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.fd = -1

    def acquire(self) -> None:
        import fcntl

        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.path, flags, 0o600)

        def taken() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        try:
            if not wait_until(taken, self.timeout):
                raise _LockTimeout
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def release(self) -> None:
        fd, self.fd = self.fd, -1
        os.close(fd)  # closing the only descriptor releases the flock


class _CallerLock:
    """A caller's lock: free (almost every time), a bare `flock` as `_Flock` takes it; held
    elsewhere, waited for by filelock with its timeout. Importing filelock 4 (logging,
    inspect, secrets, typing: 15-20 ms of CPU) was paid by every `start` and `run` that took
    the full path; only a caller that has to wait pays for it now. Reentrant per thread, as
    filelock's lock is."""

    def __init__(self, path: str, timeout: float) -> None:
        import threading

        self.path = path
        self.timeout = timeout
        self.held = threading.local()  # this thread's depth, and the lock that holds it

    def acquire(self) -> None:
        held = self.held
        if getattr(held, "depth", 0):
            held.depth += 1
            return
        bare = _Flock(self.path, 0.0)  # one try, no wait
        try:
            bare.acquire()
            held.lock = bare
        except _LockTimeout:
            held.lock = self._wait()
        held.depth = 1

    def _wait(self) -> FileLock:
        from filelock import Timeout

        lock = _hard_lock(self.path, self.timeout)

        def taken() -> bool:
            try:
                lock.acquire(blocking=False)
            except Timeout:
                return False
            return True

        if not wait_until(taken, self.timeout):
            raise _LockTimeout
        return lock

    def release(self) -> None:
        held = self.held
        held.depth -= 1
        if not held.depth:
            held.lock.release()
            held.lock = None


class StateStore:
    """The writer's view of `$AGENTTY_HOME`. `lean=True` (the worker's) locks with a bare
    `flock` instead of filelock; both lock the same file the same way. `ask_workers` (given
    by callers, never by a worker) rebuilds a list that is being rebuilt from the live
    workers' answers; a store without it writes into that list and leaves the rebuilding to
    the next caller that has it. The state layer itself never talks to workers.
    `sync_dir=False`: no write syncs the directory; the owner does, when it suits it
    (`sync_directory`: a worker, once `start` or a `kill` has its answer)."""

    def __init__(
        self,
        home: Home,
        timeout: float = LOCK_TIMEOUT,
        *,
        lean: bool = False,
        ask_workers: Callable[[Home], list[Record]] | None = None,
        sync_dir: bool = True,
    ) -> None:
        self.home = home
        self.timeout = timeout
        self.lean = lean
        self.sync_dir = sync_dir
        self.ask_workers = None if lean else ask_workers
        self._lock: _CallerLock | _Flock | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock is None:
            path = str(self.home.lock_file)
            self._lock = (
                _Flock(path, self.timeout) if self.lean else _CallerLock(path, self.timeout)
            )
        try:
            self._lock.acquire()
        except _LockTimeout:
            from agentty_core.state.lock_holders import held_by

            holder = held_by(self.home.lock_file)  # (a command stopped with Ctrl-Z, say)
            raise StateLockTimeout(
                f"timed out after {self.timeout:g}s waiting for {self.home.lock_file}"
                + (f", {holder}" if holder else "")
            ) from None
        except OSError as exc:
            raise StateError(f"cannot lock {self.home.lock_file}: {exc.strerror or exc}") from None
        try:
            failpoints.hit("state.after_lock")
            yield
        finally:
            self._lock.release()

    def _load(self) -> dict[str, object]:
        raw = read_private_file(self.home.state_file)
        if raw is None:
            return empty_state()
        try:
            return parse_state(raw, str(self.home.state_file))
        except CorruptState as exc:
            return self._set_aside(raw, exc)

    def _set_aside(self, raw: bytes, exc: CorruptState) -> dict[str, object]:
        """Keep a corrupt file under another name and start an empty list marked
        `rebuilding`. Only local files are touched here, under the lock: the live workers are
        asked for their records by the next caller, after it let go of the lock (`mutate`).
        A worker never asks (it would ask itself too, while its own loop waits on this)."""
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        aside = self.home.root / f"sessions.json.corrupt-{stamp}"
        try:
            os.link(self.home.state_file, aside)  # the bad bytes stay where they were if ...
        except OSError:
            try:  # a file system without hard links
                atomic_write(aside, raw)
            except OSError as err:
                raise StateError(f"{exc}; cannot keep it aside: {err.strerror or err}") from None
        doc = empty_state()
        doc[REBUILDING] = True
        try:
            self._write(doc)  # ... this replacement cannot be written (a full disk)
        except StateError:
            with contextlib.suppress(OSError):
                aside.unlink()
            raise
        log.warning("%s; moved it to %s, rebuilding the list from live workers", exc, aside)
        return doc

    def _write(self, doc: dict[str, object], *, sync_dir: bool = True) -> None:
        data = encode_state(doc)
        try:
            atomic_write(self.home.state_file, data, sync_dir=sync_dir)
        except OSError as exc:
            raise StateError(
                f"{exc.strerror or exc} writing {self.home.state_file} (it is unchanged)"
            ) from None

    def _sync_dir(self) -> None:
        """The directory fsync of a write done under the lock, taken after the lock is let
        go: the renamed file is already what every reader and the next writer see (a crash
        of a process loses nothing); only a crash of the machine before this fsync could
        undo the rename, and the writer does not report its change as done before it. The
        lock is then held for one fsync instead of two: concurrent `start`s wait less.
        Its failure is logged, not raised (`sync_directory`): the write is done."""
        sync_directory(self.home.root)

    def _sweep_temp_files(self) -> None:
        """Remove temp files a writer killed mid-write left behind. Safe under the lock:
        every writer creates and renames its temp file while holding it."""
        try:
            names = os.listdir(self.home.root)
        except OSError:
            return
        for name in names:
            if name.endswith(".tmp") and name.startswith((".sessions.json.", ".active.")):
                with contextlib.suppress(OSError):
                    os.unlink(self.home.root / name)

    def mutate(
        self,
        change: Callable[[list[Record]], object],
        *,
        durable: bool = True,
        undo: Callable[[], object] | None = None,
    ) -> None:
        """Apply `change` to the session list under the lock and write the result. Not
        `durable`: the directory is not synced (a write that a durable one follows before it
        counts, as a start's intent record: lost in a crash, the start had not returned).
        `undo`: see `_mutate`."""

        def adapted(sessions: list[RawRecord], rebuilding: bool) -> object:
            return change(sessions)  # type: ignore[arg-type]  # Record is a dict at run time

        self._mutate(adapted, durable=durable, undo=undo)

    def _mutate(
        self,
        change: Callable[[list[RawRecord], bool], object],
        *,
        durable: bool = True,
        undo: Callable[[], object] | None = None,
    ) -> None:
        """`mutate`, telling `change` whether the list is being rebuilt (see `_set_aside`).

        A caller that finds the list being rebuilt lets go of the lock, asks the live workers
        for their records, and merges them in under the lock again: workers then never wait
        on the lock for a caller that waits on them. Records written meanwhile (a worker
        recording its exit) are newer than what their workers said and are kept. `undo`
        runs under the lock if the write fails (what `change` did to other files)."""
        answers: list[Record] | None = None
        while True:
            with self._locked():
                self._sweep_temp_files()
                doc = self._load()
                version = doc.get("schema_version", SCHEMA_VERSION)
                if isinstance(version, int) and version > SCHEMA_VERSION:
                    raise StateError(
                        f"{self.home.state_file} was written by a newer agentty "
                        f"(schema {version} > {SCHEMA_VERSION}); upgrade agentty"
                    )
                sessions: list[RawRecord] = doc["sessions"]  # type: ignore[assignment]
                rebuilding = doc.get(REBUILDING) is True
                if rebuilding and answers is not None:
                    present = {rec.get("id") for rec in sessions}
                    sessions.extend(dict(rec) for rec in answers if rec["id"] not in present)
                    del doc[REBUILDING]
                    rebuilding = False
                if not rebuilding or self.ask_workers is None:
                    change(sessions, rebuilding)
                    doc["schema_version"] = SCHEMA_VERSION
                    try:
                        self._write(doc, sync_dir=False)
                    except BaseException:
                        if undo is not None:
                            undo()
                        raise
                    break
            answers = self.ask_workers(self.home)  # outside the lock
        if durable and self.sync_dir:
            self._sync_dir()

    def add(self, record: Record) -> None:
        self.mutate(lambda sessions: sessions.append(record))

    def update(self, session_id: str, /, **fields: object) -> Record | None:
        """Merge `fields` into one record (unknown fields are kept); None if it is gone."""
        return self.update_or_restore(session_id, None, **fields)

    def update_or_restore(
        self,
        session_id: str,
        whole: Mapping[str, object] | None,
        also: Callable[[], object] | None = None,
        /,
        **fields: object,
    ) -> Record | None:
        """`update`, for a worker: `whole` is its record as it knows it, put back (with
        `fields`) if the list is being rebuilt and does not hold it yet, or if it went
        missing otherwise (a restored backup, a hand edit) while the session's log is still
        there. No worker brings back a record that `gc` (or `run`, or an interrupted start)
        removed: they remove the log with it. `also` runs under the same lock before the
        write; if it raises, nothing is written; if it returns a callable, that is called
        under the lock should the write fail (to undo what `also` did: both or neither)."""
        found: list[RawRecord] = []
        undos: list[Callable[[], object]] = []

        def change(sessions: list[RawRecord], rebuilding: bool) -> None:
            for rec in sessions:
                if rec.get("id") == session_id:
                    rec.update(fields)
                    found.append(rec)
            if not found and whole is not None and (rebuilding or self._kept(session_id)):
                found.append({**whole, **fields, "id": session_id})
                sessions.append(found[0])
            if also is not None:
                undo = also()
                if callable(undo):
                    undos.append(undo)

        def undo_also() -> None:
            for undo in undos:
                undo()

        self._mutate(change, undo=undo_also)
        return checked(found[0]) if found else None

    def _kept(self, session_id: str) -> bool:
        """Whether the session's files are still there: its record was not removed for it."""
        return os.path.lexists(self.home.log_path(session_id))

    def remove(self, session_ids: set[str]) -> None:
        def change(sessions: list[Record]) -> None:
            sessions[:] = [r for r in sessions if r.get("id") not in session_ids]

        self.mutate(change)

    def forget(self, session_ids: set[str], *, instead: str | None = None) -> None:
        """Remove ended sessions for good: their records, the active pointer if it names one
        of them (or, `instead`, it names that session if it is still recorded: an
        interrupted start's undo), and their files (log, final screen, recording). What
        `gc` does to each session it collects and `run` to its own (the socket is its
        worker's to remove)."""
        if not session_ids:
            return

        def change(sessions: list[Record]) -> None:
            sessions[:] = [r for r in sessions if r.get("id") not in session_ids]
            for session_id in session_ids:  # under the lock: a worker that finds its record
                with contextlib.suppress(FileNotFoundError):  # gone then finds no log either
                    self.home.log_path(session_id).unlink()  # (`_kept`)
            self._point_away(sessions, session_ids, instead, pointer)

        pointer: list[Kept] = []
        self._mutate_with_pointer(change, pointer)
        for session_id in session_ids:
            for path in (self.home.final_path(session_id), self.home.cast_path(session_id)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def fail(self, session_id: str, message: str, *, previous: str | None) -> None:
        """A start that did not come up: its record says why, and the active pointer, if its
        worker set it (with the running record) before it died, names `previous` again if
        that is still recorded (else none): a bare `get` went to the failed session."""

        def change(sessions: list[Record]) -> None:
            for rec in sessions:
                if rec.get("id") == session_id:
                    rec.update({"status": "failed", "error": message, "endedAt": now_iso()})
            self._point_away(sessions, {session_id}, previous, pointer)

        pointer: list[Kept] = []
        self._mutate_with_pointer(change, pointer)

    def _point_away(
        self, sessions: list[Record], session_ids: set[str], instead: str | None, kept: list[Kept]
    ) -> None:
        """Under the same lock as the records (no start points it elsewhere meanwhile, and
        a worker that only tries the lock changes both or neither): the active pointer, if
        it names one of `session_ids`, names `instead` if that is recorded, else nothing.
        The pointer as it was is in `kept`, should the list not be written."""
        if read_active(self.home) not in session_ids:
            return
        kept.append(Kept(self.home.active_file))
        if instead is not None and any(r.get("id") == instead for r in sessions):
            atomic_write(self.home.active_file, instead.encode() + b"\n", sync_dir=False)
            return  # (the directory is synced after the records' write)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.home.active_file)

    def _mutate_with_pointer(
        self, change: Callable[[list[Record]], object], kept: list[Kept]
    ) -> None:
        """`mutate`, the pointer `change` moved (`_point_away`) put back if the write fails."""

        def put_back() -> None:
            for pointer in kept:
                pointer.put_back()

        try:
            self.mutate(change, undo=put_back)
        finally:
            for pointer in kept:
                pointer.drop()

    def remove_bad(self, spare: Callable[[RawRecord], bool]) -> list[str]:
        """Remove the records readers skip (`records.skipped`: malformed, or a later record
        of an id), except those `spare` keeps (one whose worker still runs: it may yet
        record its exit); returns their ids, as text."""
        removed: list[str] = []

        def change(sessions: list[RawRecord], rebuilding: bool) -> None:
            doomed = set()
            for index, problem in skipped(sessions):  # type: ignore[arg-type]  # dicts
                if not spare(sessions[index]):
                    log.warning("removing a skipped record: %s", problem)
                    removed.append(str(sessions[index].get("id")))
                    doomed.add(index)
            sessions[:] = [rec for i, rec in enumerate(sessions) if i not in doomed]

        self._mutate(change)
        return removed

    def set_active(self, session_id: str | None) -> None:
        with self._locked():
            if session_id is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.home.active_file)
            else:
                try:
                    atomic_write(self.home.active_file, session_id.encode() + b"\n")
                except OSError as exc:
                    raise StateError(
                        f"{exc.strerror or exc} writing {self.home.active_file}"
                    ) from None

"""The link to a remote agentty: OpenSSH (or a command prefix such as `docker exec -i box`).

No protocol of our own and no listening port: a remote call is `ssh ... -- agentty ARGS`,
whose stdout, stderr and exit code are the remote command's. What is ours:

- the ssh options: one multiplexed master per host (`ControlMaster=auto`, a `ControlPath` in
  the private home, `ControlPersist`), so a call after the first costs a channel, not a
  handshake; `BatchMode=yes` (never a password prompt), a bounded `ConnectTimeout`, no agent
  or X11 forwarding (`-a -x`), and `--` before the destination;
- the remote argv, quoted with `shlex` for the remote user's shell, so spaces, quotes, `$`,
  `;` and newlines arrive exactly (the `command` transport passes argv as is: no shell);
- telling a failure of the link from an answer of the remote agentty: ssh's own failures
  exit 255 and a missing agentty exits 126/127 without agentty's `agentty: error:` line.
  Those become `TransportError` (exit code 4) with one line saying which and what to do.
"""

from __future__ import annotations

import os
import sys

from agentty_core.errors import TransportError
from agentty_core.ownership import private_dir as private_dir  # hosts.py's, too
from agentty_core.screen_text import printable_lines

# A `--host` call pays for every import here, as the fast lane does: nothing beyond the
# interpreter's own modules on the way to ssh (no re, pathlib, collections, subprocess);
# the full path's checks (agentty_core.paths) run when the lean ones do not pass.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Sequence
    from typing import IO

    from agentty_core.remote.hosts import Host


CONNECT_TIMEOUT = 10  # seconds; AGENTTY_CONNECT_TIMEOUT overrides it
CONTROL_PERSIST = 300  # seconds an idle master stays up
ALIVE_INTERVAL = 5  # a silent link is declared dead after ALIVE_INTERVAL * ALIVE_COUNT
ALIVE_COUNT = 3
# sun_path holds 107 bytes; ssh binds a temporary name 17 bytes longer than the ControlPath.
_MAX_CONTROL_PATH = 107 - 17
SSH_FAILED = 255  # ssh's exit code for its own errors


def connect_timeout() -> int:
    text = os.environ.get("AGENTTY_CONNECT_TIMEOUT", "")
    return int(text) if text.isdigit() and int(text) > 0 else CONNECT_TIMEOUT


def default_home() -> str:
    """Where the home is (`paths.default_home`), as a string, checked by nobody yet."""
    root = os.environ.get("AGENTTY_HOME") or os.path.join(os.path.expanduser("~"), ".agentty")
    return os.path.abspath(os.path.expanduser(root))


def home_root() -> str:
    """This machine's agentty home (the ssh masters' sockets live in it): the lean check
    when it passes, else `Home.resolve()`, which creates it or says what is wrong."""
    root = default_home()
    if private_dir(root):
        return root
    from agentty_core.paths import Home

    return str(Home.resolve().root)


def quote(word: str) -> str:
    """`shlex.quote` (the same output) without importing `re`."""
    if word and all(c in _SAFE for c in word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")


def control_path(host: Host, home_root: str | os.PathLike[str]) -> str | None:
    """The master's socket for `host`, in `<home>/ssh/` (0700); None when the path would not
    fit in a socket address (then every call makes its own connection)."""
    key = f"{host.ssh_config}\0{host.destination}\0{host.port}".encode()
    directory = os.path.join(os.fspath(home_root), "ssh")
    path = os.path.join(directory, _sha256(key)[:16])
    if len(os.fsencode(path)) > _MAX_CONTROL_PATH:
        return None
    if not private_dir(directory):
        from pathlib import Path

        from agentty_core.paths import ensure_private_dir

        ensure_private_dir(Path(directory))
    return path


def _sha256(data: bytes) -> str:
    """The interpreter's built-in SHA-256 when it has one (hashlib loads OpenSSL: slower to
    import than the whole rest of a `--host` call's own work)."""
    for name in ("_sha256", "_sha2", "hashlib"):  # CPython <= 3.11, 3.12+, anywhere
        try:
            module = __import__(name)
        except ImportError:
            continue
        if hasattr(module, "sha256"):
            break
    return str(module.sha256(data).hexdigest())


def _ssh_options(
    host: Host, home_root: str | os.PathLike[str], *, master: bool = False
) -> list[str]:
    """ssh's options for `host`. Only the `master` (`share_master`'s `ssh -f -N`) may
    become the host's master: a call under ControlMaster=auto whose master had just gone
    became it (forked, titled `ssh: PATH [mux]`), outside the lock and the clearing of a
    stopped master. A call is a channel on the master, or (none up) a connection of its
    own that ends with it."""
    opts = ["ssh", "-a", "-x", "-T"]
    if host.ssh_config:
        opts += ["-F", host.ssh_config]
    if host.port is not None:
        opts += ["-p", str(host.port)]
    opts += [
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={connect_timeout()}",
        "-o", f"ServerAliveInterval={ALIVE_INTERVAL}",
        "-o", f"ServerAliveCountMax={ALIVE_COUNT}",
        "-o", "ForwardAgent=no",
        "-o", "ForwardX11=no",
        "-o", "ClearAllForwardings=yes",
        "-o", "LogLevel=ERROR",
    ]  # fmt: skip
    path = control_path(host, home_root)
    if path is None:
        opts += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
    elif master:
        opts += [
            "-o", "ControlMaster=auto",
            "-o", f"ControlPath={path}",
            "-o", f"ControlPersist={CONTROL_PERSIST}",
        ]  # fmt: skip
    else:
        opts += ["-o", "ControlMaster=no", "-o", f"ControlPath={path}"]
    return opts


# Set for a call whose caller may go away while it waits (`wait`): there, a reader of its
# output that goes (the channel closed by the caller's Ctrl-C; ssh passes no signal on) is
# taken as a hang-up, as `run` takes it, instead of the wait running on to its timeout.
UNREAD_HANGS_UP = "AGENTTY_UNREAD_HANGS_UP"


def remote_words(host: Host, words: Sequence[str], *, watched: bool = False) -> list[str]:
    """The argv to run on the host: its agentty (with its home) and `words`; `watched`:
    ended when its output's reader goes (UNREAD_HANGS_UP)."""
    env = [f"AGENTTY_HOME={host.home}"] if host.home else []
    env += [f"{UNREAD_HANGS_UP}=1"] if watched else []
    return [*(["env", *env] if env else []), host.agentty, *words]


def argv_for(
    host: Host, words: Sequence[str], home_root: str | os.PathLike[str], *, watched: bool = False
) -> list[str]:
    """The local argv that runs `agentty WORDS` on `host` (run it after `share_master`)."""
    remote = remote_words(host, words, watched=watched)
    if host.command is not None:
        return [*host.command, *remote]
    assert host.destination is not None
    # One string for the remote shell, each word quoted: it arrives as this exact argv.
    return [*_ssh_options(host, home_root), "--", host.destination, " ".join(map(quote, remote))]


def share_master(
    host: Host, home_root: str | os.PathLike[str], within: float | None = None
) -> None:
    """Start the host's ssh master unless one answers, once for all callers.

    With `ControlMaster=auto` alone, calls made at once at a host with no master each
    connected on their own to become it: 20 at once met sshd's MaxStartups (10
    unauthenticated connections) and some failed (exit 4) though nothing was wrong. The
    first caller starts the master here (`ssh -f -N`: back once it is connected), under
    the host's lock; the others wait for it and are channels on it. A master that could
    not start (the host is down, a key is refused) is the call's failure, and the failure
    of the calls that waited for it: what ssh said, raised as the TransportError a call of
    their own would have met, without waiting for it again. A call that comes later tries
    again (the host may be back). `within`: the caller's own time limit, which the wait
    for the master keeps to (the connect timeout and a grace by default), but for
    STARTER_GRACE for the reason of a master that failed as it ran out. Blocking: an
    event loop runs it in a thread."""
    path = None if host.command is not None else control_path(host, home_root)
    if path is None or _master_answers(path):
        return
    import fcntl
    import time

    limit = connect_timeout() + MASTER_GRACE if within is None else within
    deadline = time.monotonic() + limit
    asked_at = time.time() - COARSE_CLOCK
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path + ".lock", flags, 0o600)
    except OSError:
        return
    try:
        locked = False
        while not locked:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:
                if time.monotonic() >= deadline + STARTER_GRACE:
                    break
                time.sleep(0.005)
        if locked and _master_answers(path, clear=True):
            return
        said = _failed_since(path, asked_at)
        if said is None and (not locked or time.monotonic() >= deadline):
            # The one starting it is given longer than us, or let go in our grace without
            # a reason (interrupted): our time is up, connect on our own.
            return
        if said is None:
            said = _start_master(host, home_root, path, deadline, limit)
    except OSError:
        return
    finally:
        os.close(fd)
    if said is not None:
        raise classify(host, SSH_FAILED, said) or TransportError(host.name, "failed", said)


MASTER_GRACE = 5.0  # seconds beyond the connect timeout a master may take to log in
# The caller starting the master gives up on it at its deadline, then ends its ssh and
# writes why: one waiting with the same limit (it asked a moment later) waits this much
# longer for that reason rather than connect on its own as its time runs out.
STARTER_GRACE = 1.0
COARSE_CLOCK = 0.01  # a file's mtime comes from a clock this much behind time.time()
# Calls that are channels on one master at once: sshd refuses sessions over its MaxSessions
# (10 by default; the link, relays and waits hold some), and ssh then connects on its own
# with two lines of warning (too many of those at once meet MaxStartups again). A call waits
# for a slot while others give theirs back, or up to SLOT_WAIT after the last did, and never
# more than SLOT_WAIT_MOST in all (many callers and short calls: one that loses every race
# would wait for ever); then it goes.
SLOTS = 4
SLOT_WAIT = 1.0
SLOT_WAIT_MOST = 10.0
# Channels for `wait`s, apart (one may hold its channel for minutes): with the short calls'
# SLOTS and the link's channel, within sshd's MaxSessions (10 by default). 20 waits at once
# went past it: ssh printed its refusals and fell back to connections of their own, which
# met MaxStartups, and a call failed with exit 4.
WAIT_SLOTS = 5


def take_slot(host: Host, home_root: str | os.PathLike[str]) -> int:
    """A descriptor holding one of the host's SLOTS (`give_back` once the call's ssh
    ended), or -1: no master is shared (a `command` host, no control path) or none came
    free in time. A slot is an `flock` on `<master>.slotN` (a caller that dies lets it go);
    its mtime is when it was last given back."""
    taken = _take(host, home_root, "slot", SLOTS, SLOT_WAIT_MOST, stale=SLOT_WAIT)
    return -1 if taken is None else taken


def take_wait_slot(host: Host, home_root: str | os.PathLike[str], within: float) -> int | None:
    """A descriptor holding one of the host's WAIT_SLOTS, taken within `within` seconds
    (waits do not go without one: they wait for one to come free); -1 when no master is
    shared; None when none came free in time."""
    return _take(host, home_root, "wait", WAIT_SLOTS, within, stale=None)


# How often a call that found every slot taken looks again: soon (slots are given back as
# calls end), then less often (a wait queued behind long waits looked every 5 ms for as long
# as its timeout: 1.6% of a core each).
SLOT_POLL_FIRST, SLOT_POLL_MOST = 0.005, 0.05


def _take(
    host: Host,
    home_root: str | os.PathLike[str],
    kind: str,
    count: int,
    within: float,
    stale: float | None,
) -> int | None:
    """One of `count` flocks on `<master>.<kind>N`: its descriptor, -1 when no master is
    shared, None when none came free `within` seconds. `stale`: go without one (-1) once
    none was given back for that long (the holders are long calls)."""
    path = None if host.command is not None else control_path(host, home_root)
    if path is None:
        return -1
    import fcntl
    import time

    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    # A slot's mtime is wall-clock time, so is what it is compared with; the bound on the
    # whole wait is not: a clock set back during it would otherwise stretch it as far.
    waited_from, gives_up_at = time.time(), time.monotonic() + within
    pause = SLOT_POLL_FIRST
    while True:
        turned = waited_from
        for n in range(count):
            try:
                fd = os.open(f"{path}.{kind}{n}", flags, 0o600)
            except OSError:
                return -1
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                turned = max(turned, os.fstat(fd).st_mtime)
                os.close(fd)
            else:
                return fd
        if stale is not None and time.time() - turned >= stale:
            return -1  # held and not given back lately (long calls, say): go anyway
        if time.monotonic() >= gives_up_at:
            return -1 if stale is not None else None
        time.sleep(min(pause, max(0.0, gives_up_at - time.monotonic())))
        pause = min(pause * 2, SLOT_POLL_MOST)


WAIT_TIMEOUT = 30.0  # `wait --timeout`'s default (cli/parser.py)


def _timeout_word(words: Sequence[str]) -> tuple[int, str, bool] | None:
    """Where `wait`'s --timeout value is in `words` (its index, the value, whether it is
    joined with `=`), read as argparse reads them: the last --timeout counts, abbreviated
    or not (`--ti`), and a value that starts with `--` is given as `--text=--timeout`."""
    found = None
    for i, word in enumerate(words):
        name, eq, value = word.partition("=")
        if len(name) >= 4 and "--timeout".startswith(name):
            if eq:
                found = (i, value, True)
            elif i + 1 < len(words):
                found = (i + 1, words[i + 1], False)
    return found


def wait_timeout(words: Sequence[str]) -> float | None:
    """`wait`'s --timeout in `words` (its default if not given); None if no number."""
    return _seconds(_timeout_word(words))


def _seconds(found: tuple[int, str, bool] | None) -> float | None:
    if found is None:
        return WAIT_TIMEOUT
    try:
        given = float(found[1])
    except ValueError:
        return None
    return given if -float("inf") < given < float("inf") else None  # (nan, inf: refused)


def with_time_spent(words: list[str], spent: float) -> list[str]:
    """`wait`'s words with `spent` seconds taken off its --timeout: a wait the link lost
    (stopped, or its far side killed) was asked again the ssh way with all of it, and took
    its timeout twice. A value that is not a number is left to the remote side to refuse."""
    found = _timeout_word(words)
    given = _seconds(found)
    if spent < 0.05 or given is None:
        return words
    left = f"{max(0.0, given - spent):.3f}"
    if found is None:
        return [*words, "--timeout", left]
    out = list(words)
    at, _, joined = found
    out[at] = f"--timeout={left}" if joined else left
    return out


def give_back(slot: int) -> None:
    if slot >= 0:
        try:
            os.utime(slot)  # for those waiting: slots are turning over
        finally:
            os.close(slot)


HELLO_WAIT = 1.0  # a master greets a connection at once: one silent this long is wedged


def _master_answers(path: str, *, clear: bool = False) -> bool:
    """A master listens on `path` and greets us (ssh's mux hello). A socket left by a dead
    one refuses; a stopped one accepts (the kernel does it for it) and says nothing, and
    every call made a channel on it would wait for ever. `clear` (under the host's lock): a
    silent master that is ours and stopped (SIGSTOP, a debugger) is killed and its socket
    removed, so that a new one can take its place."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
        sock.settimeout(HELLO_WAIT)
        try:
            if sock.recv(64):
                return True
        except TimeoutError:
            pass
        if clear:
            _clear_silent_master(path)
    except OSError:
        pass
    finally:
        sock.close()
    return False


def _clear_silent_master(path: str) -> None:
    """Kill a silent master that is stopped, and remove its socket: found by its command
    line (`ssh -f` forked after it bound the socket, so the socket's peer pid is its
    parent's, gone), among our own processes. One that is only slow is left: the call
    that cannot use it fails in its time."""
    import signal

    from agentty_core.spawning import stopped

    for name in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != os.getuid():
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                words = f.read().split(b"\0")
        except OSError:
            continue
        if _is_master_of(path, words) and stopped(int(name)):
            try:
                os.kill(int(name), signal.SIGKILL)
            except OSError:
                return  # gone meanwhile, or not ours to end
            # Removed only once it is killed: ssh removes its ControlPath as it exits,
            # whoever's socket is there by then (a live master would remove its successor's).
            os.unlink(path)
            return


def _is_master_of(path: str, words: list[bytes]) -> bool:
    """Whether a command line (its words) is a master on `path`, our home's: `ssh -f -N`
    as `_start_master` runs it, or one that an ssh under ControlMaster=auto forked itself
    (an older agentty's call, one run by hand with our options), which overwrote its argv
    with its title, `ssh: PATH [mux]`."""
    if f"ControlPath={path}".encode() in words and b"-N" in words:
        return True
    return b" ".join(words).strip(b" \0") == f"ssh: {path} [mux]".encode()


def _failed_since(path: str, since: float) -> str | None:
    """What ssh said when a master failed to start after `since` (while we waited)."""
    try:
        with open(path + ".failed", encoding="utf-8", errors="replace") as f:
            if os.fstat(f.fileno()).st_mtime >= since:
                return f.read()
    except OSError:
        pass
    return None


def _start_master(
    host: Host, home_root: str | os.PathLike[str], path: str, deadline: float, limit: float
) -> str | None:
    """`ssh -f -N` with the master's options: back once the master is connected and
    listening; it stays (ControlPersist). None once it runs, else what ssh said (kept in
    `<master>.failed` for the callers waiting). Its stderr is a file, not a pipe: the
    master outlives us, and a pipe of ours held by it would keep our reader waiting."""
    import signal

    argv = [*_ssh_options(host, home_root, master=True), "-f", "-N", "--", str(host.destination)]
    said_path = path + ".err"
    flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    err = os.open(said_path, flags, 0o600)
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, err, 2),
        ]
        try:
            pid = os.posix_spawnp(argv[0], argv, child_env(), file_actions=actions)
        except OSError as exc:
            raise spawn_error(host, argv, exc) from None
        code = _wait_master(pid, deadline)
        if code == 0:
            os.unlink(said_path)
            return None
        said = os.pread(err, 1 << 16, 0).decode("utf-8", "replace").strip()
        if code == -signal.SIGKILL:
            late = f"{NOT_UP} {limit:g} s"
            said = f"{said}; {late}" if said else late
        elif not said:
            said = f"ssh exited with {code} without a message"
        # What the callers that waited for it read: the same words as this one's.
        os.ftruncate(err, 0)
        os.pwrite(err, said.encode(), 0)
        os.replace(said_path, path + ".failed")
        return said
    finally:
        os.close(err)


NOT_UP = "ssh connection timed out: not up within"  # a master given up on at its deadline


def _wait_master(pid: int, deadline: float) -> int:
    """The exit code of the `ssh -f -N` starting (-SIGKILL: killed at `deadline`). A call
    told to stop meanwhile (Ctrl-C, SIGTERM as one) kills it first: left, it connected on
    for as long as its ConnectTimeout, an orphan (once it forked, connected, the master
    is its child, and stays)."""
    import signal
    import time

    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.005)
    except BaseException:
        _kill_and_reap(pid)
        raise
    _kill_and_reap(pid)
    return -signal.SIGKILL


def _kill_and_reap(pid: int) -> None:
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ChildProcessError, ProcessLookupError):  # reaped already
        pass


def child_env() -> dict[str, str]:
    """Our environment without AGENTTY_HOST: a `command` prefix runs the other agentty as
    our child, which must not send the command on to the host again."""
    env = dict(os.environ)
    env.pop("AGENTTY_HOST", None)
    return env


def close_master(host: Host, home_root: str | os.PathLike[str]) -> None:
    """End the host's ssh master, if one runs (tests, and a host removed from the config)."""
    if host.command is not None:
        return
    path = control_path(host, home_root)
    if path is None or not os.path.exists(path):
        return
    assert host.destination is not None
    import subprocess

    subprocess.run(
        [*_ssh_options(host, home_root), "-O", "exit", "--", host.destination],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=10,
        check=False,
    )


# ---------------------------------------------------------------- failures of the link


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def killed(host: Host, code: int) -> TransportError | None:
    """The transport ended by a signal we did not send: no answer came (an ssh killed, say).
    SIGPIPE is not the link's: our own reader went away (`| head`)."""
    import signal

    if code >= 0 or code == -signal.SIGPIPE:
        return None
    name = host.name
    what = "ssh" if host.command is None else repr(host.command[0])
    return TransportError(
        name,
        "lost",
        f"{name}: {what} was ended by signal {-code} before the answer came; {_maybe_ran(name)}",
    )


def _maybe_ran(name: str) -> str:
    """What to do when the answer is lost, not the command: it may have run there (what
    changes something: input typed, a session started or killed), and "run the command
    again" had it run twice."""
    return (
        f"the command may have run there: check ('agentty --host {name} status', 'get') "
        f"before trying it again; 'agentty doctor --host {name}' if it keeps failing"
    )


def classify(host: Host, code: int, stderr: str, out: bytes | None = None) -> TransportError | None:
    """The link's failure this exit code and stderr mean, or None: the remote agentty ran
    (and its answer, error or not, is the caller's). `out`: its stdout, where the caller
    has it (a call passed through to our stdout does not)."""
    name = host.name
    said = _last_line(stderr)
    if code in (126, 127) and not any(line.startswith("agentty: ") for line in stderr.splitlines()):
        key = f'agentty = "/path/to/agentty" in [hosts.{name}] of hosts.toml'
        return TransportError(
            name,
            "missing",
            f"{name}: agentty is not installed there, or not on a non-login shell's PATH "
            f"({said}); install it there or set {key}",
        )
    if host.command is not None:
        if code > 0 and out == b"" and _not_agentty(stderr):
            # Nothing on stdout and not agentty's words: the prefix failed before it ran
            # (`docker exec` to a stopped container: "Error response from daemon: ...").
            # A prefix's own warnings come with agentty's answer, or its report on stdout.
            return TransportError(
                name,
                "failed",
                f"{name}: {host.command[0]!r} failed (exit {code}: {said}); check that it "
                f"reaches the other side, and [hosts.{name}] in hosts.toml",
            )
        return None
    if code != SSH_FAILED:
        return None
    text = stderr.lower()
    if "host key verification failed" in text or "host identification has changed" in text:
        return TransportError(
            name,
            "hostkey",
            f"{name}: ssh refused the host key (unknown or changed: {said}); verify it and add "
            "it to known_hosts (e.g. connect once with plain ssh), agentty never accepts one",
        )
    if "permission denied" in text or "too many authentication failures" in text:
        return TransportError(
            name,
            "auth",
            f"{name}: ssh authentication refused ({said}); agentty runs ssh with BatchMode=yes, "
            "so load the key into ssh-agent or set IdentityFile for this host in ~/.ssh/config",
        )
    if "timed out" in text:
        return TransportError(
            name,
            "timeout",
            f"{name}: {_timed_out(said)}; check that the host is up and that this address "
            "and port reach its sshd",
        )
    if any(
        s in text
        for s in ("connection refused", "could not resolve", "no route", "network is unreachable")
    ):
        return TransportError(
            name,
            "unreachable",
            f"{name}: cannot connect ({said}); check the host name, that the machine is up "
            "and that sshd runs there",
        )
    if any(s in text for s in ("closed by", "connection reset", "broken pipe", "closed")):
        return TransportError(
            name,
            "lost",
            f"{name}: the ssh connection dropped ({said}); {_maybe_ran(name)}",
        )
    if not stderr.strip():  # at LogLevel=ERROR ssh says nothing when the host hangs up
        return TransportError(
            name,
            "lost",
            f"{name}: ssh ended without a message (the host closed the connection?); "
            f"{_maybe_ran(name)}",
        )
    return TransportError(
        name, "failed", f"{name}: ssh failed ({said}); run 'agentty doctor --host {name}'"
    )


def timed(failure: TransportError, took: float) -> TransportError:
    """A timeout said with the time it took, when that was longer than the connect timeout
    it names: a host that stopped answering its shared connection holds a call until the
    master's keepalives give it up (~20 s), then ssh connects anew for the connect timeout,
    and "no answer within 10 s" came after 30 (a remote round)."""
    limit = connect_timeout()
    said = str(failure)
    within = f"no answer within {limit} s"
    if failure.reason != "timeout" or took < limit + 2 or within not in said:
        return failure
    held = f"no answer for {took:.0f} s (the shared connection held the call until it was"
    held += f" given up, then a new one got {within})"
    return TransportError(failure.host, failure.reason, said.replace(within, held, 1))


def _timed_out(said: str) -> str:
    """What timed out, with one limit: ours for a master given up on (the connect timeout
    and a grace, or the caller's), else ssh's connect timeout ("no answer within 5 s (...
    not up within 10 s)" gave both)."""
    at = said.find(NOT_UP)
    if at < 0:
        return f"no answer within {connect_timeout()} s ({said})"
    before = said[:at].rstrip("; ")
    return said[at:] + (f" ({before})" if before else "")


def _not_agentty(stderr: str) -> bool:
    """Words, none of them agentty's: no `agentty:` line, no traceback of its own."""
    lines = stderr.splitlines()
    return bool(stderr.strip()) and not any(
        line.startswith(("agentty: ", "Traceback (most recent call last):")) for line in lines
    )


def dying_with_us(argv: list[str]) -> list[str]:
    """`argv` to be started so that it ends when we do, SIGKILLed (a harness's timeout) or
    not: through setpriv's `--pdeathsig KILL` where it is there. A call's ssh lived on, its
    channel open, and the remote `run` went on for nobody (a local `run` ends its program).
    The program is looked for on PATH here (`proc.command.which`), so that a missing one is
    said as before. For the command line's calls only, made on its main thread: the signal
    comes when the thread that started the child ends (the API's calls run on pool threads)."""
    from agentty_core.proc.command import which
    from agentty_core.spawning import setpriv

    helper = setpriv()
    if helper is None:
        return argv
    program = argv[0] if "/" in argv[0] else which(argv[0], child_env().get("PATH", os.defpath))
    if program is None:
        raise FileNotFoundError(2, "No such file or directory", argv[0])
    return [helper, "--pdeathsig", "KILL", "--", program, *argv[1:]]


def spawn_error(host: Host, argv: Sequence[str], exc: OSError) -> TransportError:
    return TransportError(
        host.name,
        "failed",
        f"{host.name}: cannot run {argv[0]!r} ({exc.strerror or exc}); install it or fix "
        f"[hosts.{host.name}] in hosts.toml",
    )


class TooLarge(Exception):
    """A pipe gave more than `collect` was told to keep."""


# The most a captured call's output may be (the link's answers have the same limit): an
# answer is read whole into memory, and a host could send without end.
MAX_CAPTURE = 1 << 27


def too_large(host: Host, limit: int | None = None) -> TransportError:
    """An answer over `limit` bytes (MAX_CAPTURE by default; a relay's line: its reader's)."""
    limit = MAX_CAPTURE if limit is None else limit
    return TransportError(host.name, "failed", f"{host.name}: its answer is over {limit >> 20} MiB")


class StdoutFailed(Exception):
    """Our stdout could not take what the remote command printed (`> /dev/full`, a reader
    gone): the caller says so in its words (`cli/remote`: exit 1). Not an OSError, so that
    nothing on the way takes it for a failure of the link."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


def run(
    host: Host,
    words: Sequence[str],
    home_root: str | os.PathLike[str],
    *,
    stdin: bool = False,
    input: bytes | None = None,
) -> int:
    """Run `agentty WORDS` on `host`, what it prints passed on to our stdout as it comes
    (and our stdin given to it if `stdin`, or `input`); its stderr and exit code as a local
    call's. Raises TransportError when the link failed, StdoutFailed when our stdout did."""
    return _run(host, words, home_root, stdin=stdin, input=input, keep=False)[0]


def run_kept(
    host: Host, words: Sequence[str], home_root: str | os.PathLike[str]
) -> tuple[int, bytes]:
    """`run`, with what it printed kept and returned instead (`start`: its caller prints
    the id, and ends the session if it cannot)."""
    return _run(host, words, home_root, stdin=False, input=None, keep=True)


def _run(
    host: Host,
    words: Sequence[str],
    home_root: str | os.PathLike[str],
    *,
    stdin: bool,
    input: bytes | None,
    keep: bool,
) -> tuple[int, bytes]:
    share_master(host, home_root)
    # A `wait` may hold its channel for minutes: it takes a slot of its own (4 short ones
    # held by waits made every other call wait its second), in its time; one that gets
    # none in time is asked once, with no time left, as a short call.
    import time

    waits = next((w for w in words if not w.startswith("-")), None) == "wait"
    slot = -1
    if waits and (timeout := wait_timeout(words)) is not None:
        began = time.monotonic()
        taken = take_wait_slot(host, home_root, timeout)
        if taken is None:
            words, waits = with_time_spent(list(words), timeout), False
        else:
            slot = taken
            words = with_time_spent(list(words), time.monotonic() - began)
    if not waits:
        slot = take_slot(host, home_root)
    argv = argv_for(host, words, home_root, watched=waits)
    sent = time.monotonic()
    try:
        if input is not None:
            return _run_with_input(host, argv, input), b""
        code, stderr, out = _spawn_and_wait(host, argv, stdin, keep)
    finally:
        give_back(slot)
    failure = killed(host, code) or classify(host, code, stderr)
    if failure is not None:  # (a wait's own time is no part of the failure's)
        raise failure if waits else timed(failure, time.monotonic() - sent)
    if stderr:
        sys.stderr.write(printable_lines(stderr))
    return code, out


def _spawn_and_wait(host: Host, argv: list[str], stdin: bool, keep: bool) -> tuple[int, str, bytes]:
    """Run argv (with our stdin, or /dev/null), its stdout and stderr read here: stdout
    passed on to ours as it comes (or, `keep`, returned), so that our stdout's failure is
    ours to report; the exit code, stderr and the stdout kept. posix_spawn and pipes:
    `subprocess` is not imported for it."""
    read_end, write_end = os.pipe()  # all close-on-exec; dup2 gives the child a copy
    out_read, out_write = os.pipe()
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
        (os.POSIX_SPAWN_DUP2, write_end, 2),
        (os.POSIX_SPAWN_DUP2, out_write, 1),
    ]
    if not stdin:
        actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
    try:
        spawned = dying_with_us(argv)
        pid = os.posix_spawnp(spawned[0], spawned, child_env(), file_actions=actions)
    except OSError as exc:
        os.close(read_end)
        os.close(out_read)
        raise spawn_error(host, argv, exc) from None
    finally:
        os.close(write_end)
        os.close(out_write)
    status: list[int] = []

    def exited() -> bool:
        if not status:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status.append(code)
        return bool(status)

    try:
        relay = None if keep else (out_read, 1)
        said = collect([read_end, out_read], exited, relay=relay, limit=MAX_CAPTURE)
    except BaseException as exc:  # Ctrl-C, SIGTERM / SIGHUP as one (`remote.main`), ...
        if not status:
            _end_child(pid)
        if isinstance(exc, TooLarge):
            raise too_large(host) from None
        raise
    finally:
        os.close(read_end)
        os.close(out_read)
    if not status:
        status.append(os.waitpid(pid, 0)[1])
    assert said is not None  # (no deadline)
    stderr = said[0].decode("utf-8", "replace")
    return os.waitstatus_to_exitcode(status[0]), stderr, said[1]


END_GRACE = 1.0  # seconds an interrupted call's transport has to end before SIGKILL


def _end_child(pid: int) -> None:
    """End the transport of a call interrupted here, and reap it. A terminal's Ctrl-C went
    to it too (our process group), but a signal sent to us alone (a harness's timeout) did
    not: it would run its call on, holding our stdout open. SIGTERM lets ssh close its
    channel (the remote command finds its reader gone when it next writes: a remote `wait`
    runs on to its timeout there); one that does not end is killed."""
    import signal
    import time

    try:
        os.kill(pid, signal.SIGTERM)
        until = time.monotonic() + END_GRACE
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            if time.monotonic() > until:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
            time.sleep(0.01)
    except ChildProcessError:  # reaped already
        pass


LAST_READS = 16  # reads of 64 KiB at most, per pipe, once LINGER is over (a 1 MiB pipe)
LINGER = 0.5  # seconds pipes are still read once the process they were given to has exited
_LOOK = 0.1  # seconds between looks at whether it has, while they stay open


def collect(
    fds: list[int],
    exited: Callable[[], bool],
    deadline: float | None = None,
    feed: tuple[IO[bytes], bytes] | None = None,
    relay: tuple[int, int] | None = None,
    limit: int | None = None,
) -> list[bytes] | None:
    """What comes on the pipes `fds` until each ends; None once `deadline` (monotonic)
    passed first. Once `exited()` says their process has, they are read for LINGER more
    at most: a process it left running (a `command` prefix's), or the ssh master it handed
    them to (a multiplexed channel), may hold them open for as long as it runs, and the
    answer is in by then. `feed`: a pipe to write those bytes to meanwhile (then closed).
    `relay` (from, to): what comes on `from` is written to `to` at once, not kept (a
    failed write: StdoutFailed). `limit`: the most bytes kept from one pipe (past it:
    TooLarge)."""
    import select
    import time

    got = {fd: bytearray() for fd in fds}
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    open_fds = set(fds)
    pending = memoryview(feed[1]) if feed is not None else None
    feed_fd = -1
    if feed is not None:
        if pending:
            feed_fd = feed[0].fileno()
            os.set_blocking(feed_fd, False)
            poller.register(feed_fd, select.POLLOUT)
        else:
            feed[0].close()

    def take(fd: int) -> None:
        chunk = os.read(fd, 1 << 16)
        if chunk and relay is not None and fd == relay[0]:
            write_all(relay[1], chunk)
        elif chunk:
            got[fd] += chunk
            if limit is not None and len(got[fd]) > limit:
                raise TooLarge(limit)
        else:
            poller.unregister(fd)
            open_fds.discard(fd)

    ended_at: float | None = None
    while open_fds:
        now = time.monotonic()
        if ended_at is None and exited():
            ended_at = now
        wait = _LOOK
        if deadline is not None:
            if now >= deadline:
                return None
            wait = min(wait, deadline - now)
        if ended_at is not None:
            if now >= ended_at + LINGER:
                # What is in the pipes already is the answer's end: taken without waiting
                # (time spent writing to a slow stdout is no reason to drop it), up to a
                # pipe's worth each from a writer that goes on writing.
                for _ in range(LAST_READS):
                    ready = [fd for fd, _events in poller.poll(0) if fd in open_fds]
                    if not ready:
                        break
                    for fd in ready:
                        take(fd)
                break
            wait = min(wait, ended_at + LINGER - now)
        for fd, _events in poller.poll(wait * 1000):
            if feed is not None and fd == feed_fd:
                assert pending is not None
                try:
                    pending = pending[os.write(fd, pending[: 1 << 16]) :]
                except BlockingIOError:
                    continue
                except OSError:  # (it stopped reading: what it answers says why)
                    pending = pending[:0]
                if not pending:
                    poller.unregister(fd)
                    feed[0].close()  # (the file object's: closed once, by it)
                continue
            take(fd)
    return [bytes(got[fd]) for fd in fds]


def write_all(fd: int, data: bytes) -> None:
    """All of `data` on `fd` (our stdout or stderr), waiting while it is full; StdoutFailed
    if it fails. It may be non-blocking (shared with a process that made it so, ssh for
    one): full, it says EAGAIN, and is waited on as a blocking one would be."""
    import select

    view = memoryview(data)
    try:
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                poller = select.poll()
                poller.register(fd, select.POLLOUT)
                poller.poll()
    except OSError as exc:
        raise StdoutFailed(exc) from None


def _run_with_input(host: Host, argv: list[str], data: bytes) -> int:
    """`run` with bytes for the remote stdin (`text --file F`)."""
    import contextlib
    import subprocess

    try:
        proc = subprocess.Popen(
            dying_with_us(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
        )
    except OSError as exc:
        raise spawn_error(host, argv, exc) from None
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.fileno()
    try:
        said = collect(
            [proc.stderr.fileno(), out],
            lambda: proc.poll() is not None,
            feed=(proc.stdin, data),
            relay=(out, 1),  # as `_spawn_and_wait`'s
            limit=MAX_CAPTURE,
        )
    except BaseException as exc:  # as `_spawn_and_wait`'s
        if proc.poll() is None:
            _end_child(proc.pid)
            proc.returncode = -1  # (reaped there: Popen must not wait for it again)
        if isinstance(exc, TooLarge):
            raise too_large(host) from None
        raise
    finally:
        for pipe in (proc.stdin, proc.stderr, proc.stdout):
            with contextlib.suppress(OSError):  # (the feed closes stdin once all went)
                pipe.close()
    proc.wait()
    assert said is not None  # (no deadline)
    stderr = said[0].decode("utf-8", "replace")
    failure = killed(host, proc.returncode) or classify(host, proc.returncode, stderr)
    if failure is not None:
        raise failure
    if stderr:
        sys.stderr.write(printable_lines(stderr))
    return proc.returncode


def capture(
    host: Host,
    words: Sequence[str],
    home_root: str | os.PathLike[str],
    *,
    input: bytes | None = None,
    timeout: float | None = None,
    running: set[subprocess.Popen[bytes]] | None = None,
) -> tuple[int, bytes, str]:
    """Run `agentty WORDS` on `host`: (exit code, stdout, stderr). Raises TransportError when
    the link failed, or when it gave no answer within `timeout`. The process is in `running`
    while it runs, so another thread can end it (a dashboard that quits)."""
    import time

    began = time.monotonic()
    share_master(host, home_root, within=timeout)
    argv = argv_for(host, words, home_root)
    slot = take_slot(host, home_root)
    if timeout is not None:  # one limit for the whole call, the master's start included
        timeout = max(0.1, timeout - (time.monotonic() - began))
    try:
        return _capture(host, argv, input, timeout, running)
    finally:
        give_back(slot)


def _capture(
    host: Host,
    argv: list[str],
    input: bytes | None,
    timeout: float | None,
    running: set[subprocess.Popen[bytes]] | None,
) -> tuple[int, bytes, str]:
    import contextlib
    import subprocess
    import time

    began = time.monotonic()
    try:
        # In a group of its own: given up on, it is ended with what it started (a `command`
        # prefix's shell and its children), which would hold its pipes open.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
            start_new_session=True,
        )
    except OSError as exc:
        raise spawn_error(host, argv, exc) from None
    if running is not None:
        running.add(proc)
    assert proc.stdout is not None and proc.stderr is not None
    deadline = None if timeout is None else began + timeout
    feed = None if proc.stdin is None else (proc.stdin, input or b"")
    gave_up = True
    try:
        got = collect(
            [proc.stdout.fileno(), proc.stderr.fileno()],
            lambda: proc.poll() is not None,
            deadline,
            feed,
            limit=MAX_CAPTURE,
        )
        if got is not None:
            left = None if deadline is None else max(LINGER, deadline - time.monotonic())
            proc.wait(left)  # (its pipes ended, or it did: a moment at most)
            gave_up = False
    except subprocess.TimeoutExpired:
        got = None
    except TooLarge:
        raise too_large(host) from None
    finally:
        if running is not None:
            running.discard(proc)
        if gave_up:
            end_group(proc)
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
    if got is None:
        raise TransportError(host.name, "timeout", f"{host.name}: no answer within {timeout:.3g} s")
    out, err = got
    stderr = err.decode("utf-8", "replace")
    failure = killed(host, proc.returncode) or classify(host, proc.returncode, stderr, out)
    if failure is not None:
        raise failure
    return proc.returncode, out, stderr


def end_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL to a `capture` process and what it started (its own process group, whose id
    is not reused while any of them is left)."""
    import contextlib
    import signal

    with contextlib.suppress(OSError):  # all gone already
        os.killpg(proc.pid, signal.SIGKILL)


def open_pipe(
    host: Host, words: Sequence[str], home_root: str | os.PathLike[str], *, share: bool = True
) -> subprocess.Popen[bytes]:
    """`agentty WORDS` on `host` with its stdin and stdout as pipes (the relay's channel);
    `share` False: the caller ran `share_master` itself (off its event loop)."""
    import subprocess

    if share:
        share_master(host, home_root)
    argv = argv_for(host, words, home_root)
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
        )
    except OSError as exc:
        raise spawn_error(host, argv, exc) from None

"""One exception tree for the whole core.

Every error carries the exit code the CLI maps it to, so `cli.py` is the only place that
turns errors into text and numbers, and the dashboard can turn them into notifications.
"""

from __future__ import annotations

TYPE_CHECKING = False  # without importing typing: this module is on the hot path
if TYPE_CHECKING:
    from typing import Literal

    # Why a worker did not answer; `Client` picks its recovery by this, never by the text.
    UnreachableReason = Literal[
        "socket_missing",  # no socket file: a dead worker, or one whose socket was deleted
        "refused",  # a socket nobody listens on
        "permission",
        "connect_failed",  # any other connect error
        "wrong_peer",  # served by another process than the record's worker
        "send_failed",
        "timeout",
        "closed",  # the worker closed the connection (it may have exited)
        "recv_failed",
        "stopped",  # stopped (SIGSTOP) while a long answer was waited for (`kill`'s)
    ]

ECHO_CHARS = 60  # of a caller's value that a message repeats (`echoed`)
NO_ANSWER = "worker did not answer in time"


def no_answer(stopped_pid: int | None = None) -> str:
    """Why a worker's answer did not come: with the pid of a worker that is stopped
    (SIGSTOP, a debugger), that, and what resumes or ends it."""
    if stopped_pid is None:
        return NO_ANSWER
    return (
        f"{NO_ANSWER}: it is stopped (pid {stopped_pid}; kill -CONT {stopped_pid} resumes it,"
        " agentty kill ends the session)"
    )


def cut(value: str, most: int = ECHO_CHARS) -> str:
    """`value` for a message, cut short: a 1 MB key name or cwd came back whole."""
    return value if len(value) <= most else value[:most] + "..."


def echoed(value: object, most: int = ECHO_CHARS) -> str:
    """`value` for a message, quoted (its escapes shown) and cut short (a string: what
    else a caller passed is shown as it is, `None`)."""
    return repr(cut(value, most)) if isinstance(value, str) else repr(value)[:most]


# Exit codes, documented in `agentty help`.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_TRANSPORT = 4
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "ok",
    EXIT_FAILED: "the operation failed (worker died, kill not confirmed, state error, ...)",
    EXIT_USAGE: "usage error, no such session, or no active session",
    EXIT_TIMEOUT: "wait timed out (the current screen is printed)",
    EXIT_TRANSPORT: "--host: the host could not be reached (down, auth or host key refused, "
    "agentty missing there); the line says which and how to fix it",
    EXIT_NOT_EXECUTABLE: "start: the program is not executable",
    EXIT_NOT_FOUND: "start: the program was not found",
}
# Not one code but a range, listed after EXIT_CODES wherever they are.
EXIT_SIGNALLED = (
    "128+N",
    "stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP): run ended its program "
    "first; start left nothing of the session",
)


class AgenttyError(Exception):
    """Base of every error agentty reports; `exit_code` is what the CLI exits with."""

    exit_code = EXIT_FAILED
    # Bytes of an input sent in parts that the worker took before this failed (`Client.text`):
    # said, so that a caller does not send them twice.
    input_sent: int | None = None
    input_seq: int | None = None  # and the screen's seq from before its first part

    def __init__(self, message: str, *, log_path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log_path = log_path

    def __str__(self) -> str:
        if self.log_path:
            return f"{self.message} (see {self.log_path})"
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as it is, not rebuilt through `__init__` (whose arguments differ from one
        error to the next): raised in a process pool's worker, it reaches the caller."""
        return (_rebuilt, (type(self), self.args, self.__dict__))


def _rebuilt(
    cls: type[AgenttyError], args: tuple[object, ...], state: dict[str, object]
) -> AgenttyError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class UsageError(AgenttyError):
    """Bad arguments: the caller can fix the call."""

    exit_code = EXIT_USAGE


class NoActiveSession(UsageError):
    def __init__(self) -> None:
        super().__init__("no active session (start one, or pass --session)")


class SessionNotFound(UsageError):
    def __init__(self, ref: str) -> None:
        shown = ref if ref and ref.isprintable() and ref.strip() == ref else repr(ref)
        super().__init__(f"no such session: {shown}")
        self.ref = ref


class AmbiguousSession(UsageError):
    def __init__(self, ref: str, matches: list[str]) -> None:
        super().__init__(f"session prefix {ref!r} is ambiguous: {', '.join(sorted(matches))}")


class InvalidKey(UsageError):
    """An unknown key name; nothing was sent."""


class SessionNotRunning(AgenttyError):
    """The session exited (or its worker died): it takes no input any more. `screen`: its
    last one, when a wait it could no longer meet ended on it (empty otherwise)."""

    def __init__(
        self, session_id: str, detail: str, screen: dict[str, object] | None = None
    ) -> None:
        super().__init__(f"session {session_id} {detail}")
        self.session_id = session_id
        self.screen = screen or {}

    @classmethod
    def from_refusal(cls, session_id: str, message: str) -> SessionNotRunning:
        """From a worker's `exited` refusal, in its words ("session ID exited (code 0)": the
        record's, once the exit is written)."""
        words = message.split(" ", 2)
        if len(words) == 3 and words[0] == "session":
            return cls(words[1], words[2])
        return cls(session_id, "has exited")

    @classmethod
    def already(cls, session_id: str, message: str) -> SessionNotRunning:
        """`kill` of a session the worker says has exited (its record may not say so yet:
        a full disk, a held lock): "session ID already exited (code 5)", as `kill` says it
        when the record does."""
        detail = message.removeprefix(f"session {session_id} ").removeprefix("has ")
        return cls(session_id, f"already {detail}")


class WorkerUnreachable(AgenttyError):
    """The worker is alive (or was) but did not answer; `reason` says how. `unread`: the
    request is known never to have been read (still in the socket's queue: a stopped
    worker), so it was not done, and asking again cannot do it twice."""

    unread = False

    def __init__(self, message: str, reason: UnreachableReason) -> None:
        super().__init__(message)
        self.reason: UnreachableReason = reason


class ProtocolError(AgenttyError):
    """The worker answered something that is not valid protocol."""


class ProtocolMismatch(ProtocolError):
    """The worker speaks another version of the protocol (agentty was upgraded or
    downgraded while the session ran): nothing is sent to it but the request that found out."""

    def __init__(self, theirs: object, ours: int, session: str = "") -> None:
        who = f"the worker of session {session}" if session else "the worker"
        super().__init__(
            f"{who} speaks protocol version {theirs!r}, this agentty speaks version {ours}: "
            "use the agentty that started the session, or kill it and start it again"
        )
        self.theirs = theirs
        self.ours = ours


class RemoteError(AgenttyError):
    """The worker refused a request; its message is passed on as is."""

    def __init__(self, message: str, *, code: str = "error", exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code


class RefusedRequest(RemoteError, UsageError):
    """The worker refused a request as malformed or out of range (its exit code the usage
    one): nothing was done, and the caller can fix the call, as for any UsageError."""


class SpawnError(AgenttyError):
    """`start` failed: the program did not start, or the worker did not become ready."""

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILED, log_path: str | None = None):
        super().__init__(message, log_path=log_path)
        self.exit_code = exit_code
        self.session_id: str | None = None  # the failed session's record, if one was left


class StateError(AgenttyError):
    """The state directory or file cannot be used safely."""


class StateLockTimeout(StateError):
    pass


class UnsafePath(StateError):
    """A directory or file agentty would use is not private to this user."""


class KillNotConfirmed(AgenttyError):
    def __init__(self, session_id: str, survivors: list[int]) -> None:
        pids = ", ".join(str(p) for p in survivors)
        super().__init__(f"session {session_id}: processes still alive after SIGKILL: {pids}")
        self.survivors = survivors


class TransportError(AgenttyError):
    """`--host`: the link itself failed (ssh or the command prefix), not the remote agentty.

    `reason` is one word for programs and the dashboard: unreachable, timeout, auth, hostkey,
    missing (no agentty there), lost (the link dropped), or failed."""

    exit_code = EXIT_TRANSPORT

    def __init__(self, host: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.host = host
        self.reason = reason


class WaitTimeout(AgenttyError):
    """A wait ran out of time; `screen` holds what the screen showed then."""

    exit_code = EXIT_TIMEOUT

    def __init__(self, message: str, screen: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.screen = screen or {}

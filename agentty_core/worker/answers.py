"""How a request is answered: its result now, a Later given by a direct call, or a
RequestFailed the worker refuses it with. Shared by the request handlers and the waits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias

from agentty_core.protocol import JSONObject

Outcome: TypeAlias = "JSONObject | BaseException"


class Later:
    """An answer given later by a direct call. A wait fires inside the callback that read
    the program's output, and its answer goes out in that same turn of the loop; through
    asyncio futures it would take a turn per future (a tenth of a round trip)."""

    __slots__ = ("_receivers", "outcome")

    def __init__(self) -> None:
        self.outcome: Outcome | None = None
        self._receivers: list[Callable[[Outcome], None]] = []

    def done(self) -> bool:
        return self.outcome is not None

    def resolve(self, outcome: Outcome) -> None:
        """The first outcome counts; later ones (a timer racing the output) are dropped."""
        if self.outcome is None:
            self.outcome = outcome
            receivers, self._receivers = self._receivers, []
            for receiver in receivers:
                receiver(outcome)

    def then(self, receiver: Callable[[Outcome], None]) -> None:
        if self.outcome is None:
            self._receivers.append(receiver)
        else:
            receiver(self.outcome)


# What a request handler gives: its result now, a Later, or an awaitable of it.
Answer: TypeAlias = "JSONObject | Later | Awaitable[JSONObject]"


class RequestFailed(Exception):
    """A request the worker refuses, with the protocol error code and CLI exit code."""

    def __init__(self, code: str, message: str, exit_code: int = 1, **extra: object) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code
        self.extra = extra

"""The MCP `run` tool: `run`'s plan (`cli/run.plan`) carried out on a place, here or on a host.

The session is the run's own, as the CLI's `run` keeps it: held while it runs (its worker
ends it once the hold lets go: the server killed, the link lost), ended at a timeout, an
error or a cancelled call, and removed in every case, so nothing is left behind but the
result. A call cancelled while the session starts lets the start finish, then ends what it
started: cancelled in between, a start would leave a program nobody knows of. The answers
are checked before anything runs, as the CLI checks its options.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from agentty_core.cli.mcp import pending
from agentty_core.cli.mcp.backend import Place
from agentty_core.cli.mcp.errors import CodedUsageError
from agentty_core.cli.mcp.schemas import Answer
from agentty_core.cli.run import Step, plan, timed_out
from agentty_core.errors import AgenttyError, SpawnError, WaitTimeout
from agentty_core.input_steps import text_params
from agentty_core.protocol import JSONObject
from agentty_core.screen_text import row_text_problem
from agentty_core.waitspec import WaitConditions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from agentty_core.cli.run import Plan

MAX_EXPECT = 4096  # characters: a row is at most 1000 cells (found within one row)
END_GRACE = 2.0  # the kill's grace per step, as `kill`'s default


class _StepTimeout(WaitTimeout):
    """A wait of the plan's that timed out, and its step (the message names what it
    waited for)."""

    def __init__(self, exc: WaitTimeout, step: Step) -> None:
        super().__init__(exc.message, exc.screen)
        self.step = step


def checked(answers: list[Answer]) -> tuple[list[str], list[tuple[str, str | list[str]]]]:
    """The answers as `plan` takes them (expects, then (kind, value) each); a wrong one is
    refused before anything runs."""
    from agentty_core import keys

    expect: list[str] = []
    steps: list[tuple[str, str | list[str]]] = []
    for n, answer in enumerate(answers, 1):
        given = [kind for kind in ("input", "text", "keys") if getattr(answer, kind) is not None]
        if len(given) != 1:
            raise CodedUsageError(
                f"answer {n}: give one of input, text or keys (it had {len(given)})",
                "invalid_argument",
            )
        if answer.expect is not None:
            if problem := row_text_problem(f"answer {n}'s expect", answer.expect):
                raise CodedUsageError(problem, "invalid_argument")
            if not answer.expect:
                raise CodedUsageError(f"answer {n}: expect is empty", "invalid_argument")
            if len(answer.expect) > MAX_EXPECT:  # (refused before the program starts)
                raise CodedUsageError(
                    f"answer {n}: expect is longer than a row can show "
                    f"({len(answer.expect)} > {MAX_EXPECT} characters)",
                    "invalid_argument",
                )
        expect.append(answer.expect or "")
        if answer.keys is not None:
            if not answer.keys:
                raise CodedUsageError(f"answer {n}: keys is empty", "invalid_argument")
            keys.parse_all(list(answer.keys))  # (invalid_key, naming it)
            steps.append(("key", list(answer.keys)))
        elif answer.text is not None:
            if not answer.text:
                raise CodedUsageError(
                    f"answer {n}: text is empty (input '' is an Enter)", "invalid_argument"
                )
            steps.append(("text", answer.text))
        else:
            steps.append(("input", str(answer.input)))
    return expect, steps


async def run_to_end(
    place: Place,
    argv: list[str] | None,
    answers: list[Answer],
    *,
    shell: str | None,
    cwd: str | None,
    env: dict[str, str] | None,
    cols: int,
    rows: int,
    timeout: float,
) -> JSONObject:
    """Start the program, carry out the plan, and leave nothing behind; the final screen
    with `elapsed_ms`, and `timedOut`/`unanswered`/`message` when they apply."""
    expect, replies = checked(answers)
    this = asyncio.current_task()
    if this is not None:  # held, and waited for by a server that leaves (cancelled, too)
        pending.keep(this)
    loop = asyncio.get_running_loop()
    began = loop.time()
    starting = pending.keep(_start_held(place, argv, shell, cwd, env, cols, rows))
    try:
        sid, let_go = await asyncio.shield(starting)
    except asyncio.CancelledError:
        starting.add_done_callback(lambda done: _undo(place, done))
        raise
    screen: JSONObject | None = None
    try:
        try:
            steps = plan(expect, replies, options=False)
            screen, warning = await _carry_out(place, sid, steps, began + timeout)
        except _StepTimeout as exc:
            screen, warning = {**exc.screen, "timedOut": True}, timed_out(timeout, exc.step)
        # Its input state says nothing once it ended, nor the last wait's match.
        screen.pop("input", None)
        screen.pop("match", None)
        screen["elapsed_ms"] = round((loop.time() - began) * 1000, 3)
        if warning is not None:
            screen["message"] = warning
    finally:
        ended = screen is not None and screen.get("timedOut") is not True
        cleaned = pending.keep(_clean_up(place, sid, let_go, ended=ended))
        how, problem = await asyncio.shield(cleaned)
    if how:  # ended by the run (its timeout): how, as `kill` says it
        screen.update(exited=True, exitCode=how.get("exitCode"), signal=how.get("signal"))
    if problem is not None:
        screen["message"] = f"{screen['message']}; {problem}" if screen.get("message") else problem
    return screen


async def _start_held(
    place: Place,
    argv: list[str] | None,
    shell: str | None,
    cwd: str | None,
    env: dict[str, str] | None,
    cols: int,
    rows: int,
) -> tuple[str, Callable[[], None] | None]:
    """Start the session and hold it; its id and what lets it go (None: it ended already)."""
    try:
        rec = await place.start(
            argv, shell=shell, name=None, cwd=cwd, cols=cols, rows=rows, env=env,
            record=False, held=True,
        )  # fmt: skip
    except SpawnError as exc:
        if exc.session_id is not None:  # the program did not start: its record goes too
            with contextlib.suppress(AgenttyError):
                await place.remove(exc.session_id)
                exc.log_path = None  # (and its log with it: not to be pointed to)
        raise
    sid = str(rec["id"])
    try:
        return sid, await place.hold(sid)
    except AgenttyError:  # it ended already (or its worker did): nothing to hold
        return sid, None


def _undo(place: Place, started: asyncio.Future[tuple[str, Callable[[], None] | None]]) -> None:
    """A start whose call was cancelled meanwhile: once it is done, end and remove it."""
    if started.cancelled() or started.exception() is not None:
        return
    sid, let_go = started.result()
    pending.keep(_clean_up(place, sid, let_go, ended=False))


async def _clean_up(
    place: Place, sid: str, let_go: Callable[[], None] | None, *, ended: bool
) -> tuple[JSONObject, str | None]:
    """End the session unless it `ended`, let go of it, remove it: how the kill ended it
    (nothing if there was none), and what went wrong, if anything (said with the result:
    errors here must not hide the run's own)."""
    how: JSONObject = {}
    if not ended:
        with contextlib.suppress(AgenttyError):
            how = await place.kill(sid, grace=END_GRACE)
    if let_go is not None:
        let_go()
    try:
        await place.remove(sid)
    except AgenttyError as exc:  # (the state lock held past its timeout, say)
        return how, f"the ended session {sid} could not be removed: {exc}"
    return how, None


async def _carry_out(
    place: Place, sid: str, steps: Plan, deadline: float
) -> tuple[JSONObject, str | None]:
    """The plan's requests, in order, on `place`; its final screen and warning."""
    loop = asyncio.get_running_loop()
    answer: JSONObject | None = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration as done:
            ended: tuple[JSONObject, str | None] = done.value
            return ended
        params, answer = step.params, None
        if step.method == "wait":
            spec = WaitConditions(**params, timeout=max(0.0, deadline - loop.time()))  # type: ignore[arg-type]  # plan's conditions
            try:
                answer = await place.wait(sid, spec)
            except WaitTimeout as exc:
                if exc.screen.get("exited") is not True:
                    raise _StepTimeout(exc, step) from None
                answer = exc.screen  # it ended as the time ran out: an end, not a timeout
        elif step.method == "key":
            await place.act(sid, "key", {"keys": params["keys"]})
        else:
            text = text_params(str(params["data"]), enter=params["enter"] is True)
            await place.act(sid, "text", text)

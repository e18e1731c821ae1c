"""The MCP `run` tool: `run`'s plan (`cli/run.plan`) carried out on a place, here or on a host.

The session is the run's own, as the CLI's `run` keeps it: held while it runs (its worker
ends it once the hold lets go: the server killed, the link lost), ended at a timeout, an
error or a cancelled call, and removed at the end, so nothing is left behind but the result.
The answers are checked before anything runs, as the CLI checks its options.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

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

END_GRACE = 2.0  # the kill's grace per step, as `kill`'s default


class _StepTimeout(WaitTimeout):
    """A wait of the plan's that timed out, and its step (the message names what it
    waited for)."""

    def __init__(self, exc: WaitTimeout, step: Step) -> None:
        super().__init__(exc.message, exc.screen)
        self.step = step


def checked(answers: list[Answer]) -> tuple[list[str], list[tuple[str, str]]]:
    """The answers as `plan` takes them (expects, then (kind, value) each); a wrong one is
    refused before anything runs."""
    from agentty_core import keys

    expect: list[str] = []
    steps: list[tuple[str, str]] = []
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
        expect.append(answer.expect or "")
        if answer.keys is not None:
            if not answer.keys:
                raise CodedUsageError(f"answer {n}: keys is empty", "invalid_argument")
            keys.parse_all(list(answer.keys))  # (invalid_key, naming it)
            steps.append(("key", " ".join(answer.keys)))
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
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        rec = await place.start(
            argv,
            shell=shell,
            name=None,
            cwd=cwd,
            cols=cols,
            rows=rows,
            env=env,
            record=False,
            held=True,
        )
    except SpawnError as exc:
        if exc.session_id is not None:  # the program did not start: its record goes too
            with contextlib.suppress(AgenttyError):
                await place.remove(exc.session_id)
        raise
    sid = str(rec["id"])
    let_go = await _hold(place, sid)
    try:
        try:
            steps = plan(expect, replies, options=False)
            screen, warning = await _carry_out(place, sid, steps, began + timeout)
        except _StepTimeout as exc:
            screen, warning = {**exc.screen, "timedOut": True}, timed_out(timeout, exc.step)
            await _end(place, sid)
        except BaseException:
            await _end(place, sid)  # (a cancelled call too: asyncio lets it await)
            raise
        # Its input state says nothing once it ended, nor the last wait's match.
        screen.pop("input", None)
        screen.pop("match", None)
        screen["elapsed_ms"] = round((loop.time() - began) * 1000, 3)
        if warning is not None:
            screen["message"] = warning
    finally:
        if let_go is not None:
            let_go()
    try:
        await place.remove(sid)
    except AgenttyError as exc:  # (the state lock held past its timeout, say)
        left = f"the ended session {sid} could not be removed: {exc}"
        screen["message"] = f"{screen['message']}; {left}" if screen.get("message") else left
    return screen


async def _hold(place: Place, sid: str) -> Callable[[], None] | None:
    try:
        return await place.hold(sid)
    except AgenttyError:  # it ended already (or its worker did): nothing to hold
        return None


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
                raise _StepTimeout(exc, step) from None
        elif step.method == "key":
            await place.act(sid, "key", {"keys": params["keys"]})
        else:
            text = text_params(str(params["data"]), enter=params["enter"] is True)
            await place.act(sid, "text", text)


async def _end(place: Place, sid: str) -> None:
    """Kill the session (confirmed); an error here must not hide the first one."""
    with contextlib.suppress(AgenttyError):
        await place.kill(sid, grace=END_GRACE)

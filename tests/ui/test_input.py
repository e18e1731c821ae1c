"""Typed input reaches the session it was meant for, and only that one."""

from __future__ import annotations

import os
import signal
import time

from textual.pilot import Pilot
from textual.widgets import Label

from agentty_core.client import Client
from agentty_ui.app import AgenttyApp, create_app
from agentty_ui.widgets.input_bar import InputBar
from agentty_ui.widgets.session_list import SessionList
from tests.ui.conftest import wait_for

SIZE = (110, 36)


def make_app(client: Client) -> AgenttyApp:
    return create_app(client, poll_interval=0.2)


def notified(app: AgenttyApp, needle: str) -> bool:
    return any(needle in f"{n.title} {n.message}" for n in app._notifications)


def screen_of(client: Client, sid: str) -> str:
    lines = client.get(sid)["lines"]
    assert isinstance(lines, list)
    return "\n".join(str(line) for line in lines)


async def open_bar(app: AgenttyApp, pilot: Pilot[None], sid: str) -> InputBar:
    """The input bar, opened with `i` on the session `sid`."""
    app.query_one(SessionList).select(sid)
    await wait_for(pilot, lambda: app.selected == sid)
    await pilot.press("i")
    bar = app.query_one(InputBar)
    assert bar.has_class("-visible")
    return bar


async def test_the_bar_never_types_into_another_session_when_its_own_is_gone(
    client: Client,
) -> None:
    """The tester's repro: the bar's session killed and pruned from another shell while the
    bar is open; the selection moves to the neighbour, and the line went there."""
    victim = str(client.start(["cat"], name="victim2")["id"])
    neighbor = str(client.start(["cat"], name="neighbor2")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: {victim, neighbor} <= set(app.records))
        bar = await open_bar(app, pilot, victim)
        client.kill(victim, grace=0.5)
        client.gc()
        await wait_for(pilot, lambda: victim not in app.records and app.selected == neighbor)
        await pilot.press(*"echo WRONGTARGET", "enter")
        time.sleep(0.3)  # (a line sent would be echoed by now)
        assert "WRONGTARGET" not in screen_of(client, neighbor)
        await wait_for(pilot, lambda: notified(app, "not sent"))
        assert notified(app, victim)
        target = str(bar.query_one("#input-target", Label).render())
        assert victim in target and "victim2" in target  # the bar says where it types


async def test_the_bar_refuses_once_its_session_has_ended(client: Client) -> None:
    sid = str(client.start(["cat"], name="ends")["id"])
    other = str(client.start(["cat"], name="other")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: {sid, other} <= set(app.records))
        await open_bar(app, pilot, sid)
        client.kill(sid, grace=0.5)
        await wait_for(pilot, lambda: app.records[sid]["status"] == "exited")
        await pilot.press(*"late", "enter")
        await wait_for(pilot, lambda: notified(app, "not sent"))
        assert notified(app, f"{sid} (ends) has exited")
        time.sleep(0.3)
        assert "late" not in screen_of(client, other)


async def test_the_bar_keeps_its_session_when_a_filter_hides_every_row(client: Client) -> None:
    """Enter dropped the line without a word (the field cleared, no toast) once a filter
    hid every row: the bar types into the session it was opened for, which it names."""
    sid = str(client.start(["cat"], name="kept")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: sid in app.records)
        await open_bar(app, pilot, sid)
        app.query_one(SessionList).filter = "nomatch"
        await wait_for(pilot, lambda: app.selected is None)
        await pilot.press(*"still-here", "enter")
        await wait_for(pilot, lambda: screen_of(client, sid).count("still-here") == 2)


async def test_a_stopped_worker_holds_up_only_its_own_sessions_input(client: Client) -> None:
    """Input for local sessions went through one queue: a stopped worker's queued lines
    (each waiting out the client's timeout) held up every other session's typing, and the
    toasts did not say which session the input was for."""
    rec = client.start(["cat"], name="frozen")
    frozen, worker = str(rec["id"]), rec["workerPid"]
    assert isinstance(worker, int)
    lively = str(client.start(["cat"], name="lively")["id"])
    app = make_app(client)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: {frozen, lively} <= set(app.records))
        os.kill(worker, signal.SIGSTOP)
        try:
            await open_bar(app, pilot, frozen)
            await pilot.press(*"one", "enter", *"two", "enter")
            await pilot.press("escape")
            await open_bar(app, pilot, lively)
            await pilot.press(*"quick", "enter")
            await wait_for(pilot, lambda: screen_of(client, lively).count("quick") == 2, 1.5)
            # (The stopped worker's input waits for it, said once, naming the session.)
            await wait_for(pilot, lambda: notified(app, "Input held"), 10)
            assert notified(app, f"{frozen} (frozen)") and not notified(app, "Input not sent")
        finally:
            os.kill(worker, signal.SIGCONT)
        await wait_for(pilot, lambda: screen_of(client, frozen).count("two") == 2, 20)

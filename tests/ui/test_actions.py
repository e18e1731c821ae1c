"""The action table is the one source of the bindings, the help screen and the palette."""

from __future__ import annotations

from textual.binding import Binding

from agentty_core.client import Client
from agentty_ui.actions import ACTIONS, keys_help
from agentty_ui.app import AgenttyApp, create_app
from agentty_ui.screens.help import HelpScreen


def test_every_action_is_bound_helped_and_implemented() -> None:
    bound = {b.action: b.key for b in AgenttyApp.BINDINGS if isinstance(b, Binding)}
    helped = dict(keys_help())
    for action in ACTIONS:
        assert bound[action.name] == action.key
        assert helped[action.keys] == action.help
        assert callable(getattr(AgenttyApp, f"action_{action.name}", None)), action.name
    assert len(bound) == len(ACTIONS)


async def test_palette_offers_the_table(client: Client) -> None:
    app = create_app(client, poll_interval=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        for action in ACTIONS:
            if action.palette:
                assert commands[action.title].help == action.help
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert app.screen.bindings == keys_help()

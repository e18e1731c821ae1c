"""`agentty help --json`: the command schema, generated from the argparse definitions.

Generated rather than written by hand so that it cannot drift from what the CLI accepts.
"""

from __future__ import annotations

import argparse

from agentty_core._version import __version__
from agentty_core.errors import EXIT_CODES, EXIT_SIGNALLED
from agentty_core.keys import key_names


def _option(action: argparse.Action) -> dict[str, object]:
    takes_value = action.nargs != 0
    return {
        "names": list(action.option_strings),
        "dest": action.dest,
        "help": action.help or "",
        "takesValue": takes_value,
        "metavar": action.metavar if isinstance(action.metavar, str) else None,
        "required": action.required,
        "repeatable": isinstance(action, argparse._AppendAction),
        "default": (
            action.default
            if isinstance(action.default, (int, float, str)) and action.default != argparse.SUPPRESS
            else None
        ),
    }


def _command(name: str, parser: argparse.ArgumentParser, summary: str) -> dict[str, object]:
    positionals, options = [], []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            options.append(_option(action))
        else:
            positional: dict[str, object] = {
                "name": action.metavar if isinstance(action.metavar, str) else action.dest,
                "help": action.help or "",
                "variadic": action.nargs in ("*", "+", argparse.REMAINDER),
                "required": action.nargs not in ("?", "*"),
            }
            unless = getattr(action, "required_unless", None)  # options that stand in for it
            if unless:
                positional.update(required=False, requiredUnless=list(unless))
            positionals.append(positional)
    return {"name": name, "summary": summary, "positionals": positionals, "options": options}


def schema(parser: argparse.ArgumentParser) -> dict[str, object]:
    commands = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                commands.append(_command(name, sub, helps.get(name, "")))
    return {
        "name": "agentty",
        "version": __version__,
        "commands": commands,
        "keys": key_names(),
        "exitCodes": {str(code): text for code, text in [*EXIT_CODES.items(), EXIT_SIGNALLED]},
        "globalOptions": ["--version", "--help", "--host"],
    }

"""`python -m agentty_ui [--demo] [--host HOST]... [--no-local]`: the dashboard (what
`agentty ui` runs). Without `--host`, every host of hosts.toml is shown next to this
machine's sessions."""

from __future__ import annotations

import argparse
import sys

from agentty_core.client import Client
from agentty_core.errors import EXIT_USAGE, AgenttyError, UsageError
from agentty_core.remote.client import RemoteClient
from agentty_core.remote.hosts import configured, resolve
from agentty_core.screen_text import printable
from agentty_core.state.records import is_live

from .app import create_app

DEMO = r"""
import time
colors = [31, 32, 33, 34, 35, 36]
print("\x1b[1magentty demo\x1b[0m: a Python REPL. Attach with enter, ctrl+] detaches.")
for i, c in enumerate(colors):
    print(f"\x1b[{c}m" + "█" * (6 + 4 * i) + f"\x1b[0m  colour {c}  \x1b[{c};1mbold\x1b[0m")
print("wide: 漢字 かな ✓   \x1b[4munderline\x1b[0m \x1b[7mreverse\x1b[0m \x1b[3mitalic\x1b[0m")
"""


def start_demo(client: Client) -> None:
    """Start the `demo` session unless some session is already running."""
    if any(is_live(r) for r in client.sessions()):
        return
    client.start([sys.executable, "-q", "-i", "-c", DEMO], name="demo")


def host_clients(names: list[str] | None) -> list[RemoteClient]:
    """The hosts to show: those named (hosts.toml names or ssh destinations), else every
    host of hosts.toml. Nothing connects here: each host is polled in its own thread."""
    hosts = [resolve(name) for name in dict.fromkeys(names)] if names else configured()
    return [RemoteClient(host, timeout=3.0) for host in hosts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agentty ui", description="the agentty dashboard")
    parser.add_argument("--demo", action="store_true", help="start a demo session if none runs")
    parser.add_argument(
        "--host",
        action="append",
        metavar="HOST",
        help="show HOST's sessions (repeatable; default: every host in hosts.toml)",
    )
    parser.add_argument("--no-local", action="store_true", help="hide this machine's sessions")
    args = parser.parse_args(argv)
    try:
        hosts = host_clients(args.host)
        if args.no_local and not hosts:
            raise UsageError("--no-local leaves nothing to show: name a --host or add hosts.toml")
        # The home is checked here (an unsafe one is refused), before the screen is taken.
        client = Client(timeout=3.0)
    except AgenttyError as exc:
        error(exc)
        return exc.exit_code
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # (Run anyway, it drew its screen into a file and waited for keys from a pipe.)
        error(
            "the dashboard needs a terminal, and stdin or stdout is not one; for scripts: "
            "agentty status, get, wait"
        )
        return EXIT_USAGE
    if args.demo and not args.no_local:
        try:
            start_demo(client)
        except AgenttyError as exc:
            error(f"cannot start the demo: {exc}")
    create_app(client, hosts=hosts, local=not args.no_local).run()
    return 0


def error(message: object) -> None:
    """One line on stderr, escaped, as every agentty command reports an error."""
    print(f"agentty: error: {printable(str(message))}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

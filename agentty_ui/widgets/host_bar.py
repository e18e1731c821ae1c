"""The homes the dashboard shows, one badge each, and the hosts' polling.

Each host is polled in a thread of its own with a bounded timeout (the ssh connect timeout
plus the client's), at most one poll in flight per host: a host that is down or blackholes
delays only its own badge, never the UI or another host. A failed poll marks the host down
with the link's one-line reason; the next poll that answers brings it back.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from agentty_core.errors import AgenttyError
from agentty_core.screen_text import printable
from agentty_core.state.records import Record

from ..fleet import Fleet, host_label

MARKS = {"connecting": "…", "up": "●", "down": "✗"}


def said(host: str, reason: str) -> str:
    """`host: reason`, once (the link's errors already start with the host's name),
    escaped: the reason may quote what the remote side or its transport printed."""
    return printable(reason if reason.startswith(f"{host}: ") else f"{host}: {reason}")


@dataclass(frozen=True)
class HostState:
    """What the dashboard knows of one home: connecting, up (with its count) or down."""

    state: str = "connecting"
    count: int = 0
    reason: str | None = None


class HostBadge(Static):
    """`● build 20`: a home's state, name and number of sessions."""

    host_state: reactive[HostState] = reactive(HostState)

    def __init__(self, host: str | None) -> None:
        super().__init__(classes="host-badge")
        self.host = host

    def render(self) -> Text:
        state = self.host_state
        label = host_label(self.host)
        tail = {"connecting": "connecting", "down": "down"}.get(state.state, str(state.count))
        return Text.assemble((MARKS[state.state], "bold"), f" {label} ", (tail, "dim"))

    def watch_host_state(self, old: HostState, new: HostState) -> None:
        self.remove_class(f"-{old.state}")
        self.add_class(f"-{new.state}")


class HostBar(Vertical):
    """Badges of every home shown, the reason of each host that is down; polls the hosts."""

    class Polled(Message):
        """A host's listing answered (`records`) or failed (`error`: the one line)."""

        def __init__(self, host: str, records: list[Record] | None, error: str | None) -> None:
            super().__init__()
            self.host, self.records, self.error = host, records, error

    def __init__(self, fleet: Fleet, *, interval: float = 2.0, id: str | None = None) -> None:
        super().__init__(id=id)
        self.fleet = fleet
        self.interval = interval
        self.states: dict[str | None, HostState] = {home: HostState() for home in fleet.homes}
        self._busy: set[str] = set()  # hosts with a poll in flight

    def compose(self) -> ComposeResult:
        with Horizontal(id="host-badges"):
            for home in self.fleet.homes:
                yield HostBadge(home)
        yield Static(id="host-down", markup=False)

    def on_mount(self) -> None:
        self.display = self.fleet.remote
        if self.fleet.hosts:
            self.set_interval(self.interval, self.poll)
            self.poll()

    @property
    def down(self) -> dict[str, str]:
        """Each host that is down, with its reason."""
        return {str(h): s.reason or "down" for h, s in self.states.items() if s.state == "down"}

    def poll(self) -> None:
        """Poll every host that has no poll in flight."""
        for host in self.fleet.hosts:
            if host not in self._busy:
                self._busy.add(host)
                self._poll(host)

    @work(thread=True, group="host-poll")
    def _poll(self, host: str) -> None:
        try:
            records = self.fleet.hosts[host].sessions()
        except (AgenttyError, OSError) as exc:
            self.post_message(self.Polled(host, None, str(exc) or type(exc).__name__))
            return
        self.post_message(self.Polled(host, self.fleet.tag(records, host), None))

    def on_host_bar_polled(self, message: Polled) -> None:
        """Update the badge; the message goes on to the app, which lists the sessions."""
        self._busy.discard(message.host)
        if message.records is not None:
            self._set(message.host, HostState("up", len(message.records)))
        else:
            self._set(message.host, HostState("down", reason=message.error))

    def set_count(self, host: str | None, count: int) -> None:
        """This machine's count (its sessions are polled by the app)."""
        self._set(host, HostState("up", count))

    def _set(self, host: str | None, state: HostState) -> None:
        if self.states.get(host) == state:
            return
        self.states[host] = state
        for badge in self.query(HostBadge):
            if badge.host == host:
                badge.host_state = state
        reasons = [f"✗ {said(host, why)}" for host, why in self.down.items()]
        text = self.query_one("#host-down", Static)
        text.update("\n".join(reasons))
        text.display = bool(reasons)

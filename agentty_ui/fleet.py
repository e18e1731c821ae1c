"""The homes the dashboard shows, this machine's and each host's, behind one set of calls.

A session is known to the dashboard by its key: its id on this machine, `id@host` on a host
(ids are hex, so the first `@` splits a key). The widgets and the app hand keys to `Fleet`,
which routes each call to the client of the key's home: `Client` here, `RemoteClient` (the
command line and `agentty relay` over ssh) there. The dashboard talks to sessions only
through these clients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from agentty_core.client import Client
from agentty_core.errors import UsageError
from agentty_core.protocol import JSONObject
from agentty_core.remote.client import RemoteClient
from agentty_core.screen_text import printable
from agentty_core.state.records import Record

LOCAL = "local"  # how the host column names this machine


class Stream(Protocol):
    """A screen-event subscription, local (`Subscription`) or across a relay."""

    ended: bool

    def events(self, cancelled: Callable[[], bool] = ...) -> Iterator[JSONObject]: ...

    def close(self) -> None: ...


class Subscribes(Protocol):
    """What a live view needs: a stream of a session's screen events, by key (and, once
    a session has ended, its final screen)."""

    def subscribe(self, key: str, /, *, interval: float | None = None) -> Stream: ...

    def get(self, key: str, **params: object) -> JSONObject: ...


def make_key(session_id: str, host: str | None) -> str:
    return session_id if host is None else f"{session_id}@{host}"


def split_key(key: str) -> tuple[str, str | None]:
    """(session id, host name or None for this machine)."""
    sid, at, host = key.partition("@")
    return (sid, host) if at else (key, None)


def host_label(host: str | None) -> str:
    """How a home is named on screen: a host's name is the person's (hosts.toml, --host),
    escaped."""
    return LOCAL if host is None else printable(host)


class Fleet:
    """This machine's client (None: not shown) and one `RemoteClient` per host, in order."""

    def __init__(self, local: Client | None, hosts: Sequence[RemoteClient] = ()) -> None:
        self.local = local
        self.hosts: dict[str, RemoteClient] = {c.host.name: c for c in hosts}

    @property
    def remote(self) -> bool:
        """Whether any host besides this machine is shown (the host column is shown then)."""
        return bool(self.hosts)

    @property
    def homes(self) -> list[str | None]:
        """Every home shown, in order: None (this machine) first, then the hosts."""
        return ([None] if self.local is not None else []) + list(self.hosts)

    def rank(self, host: str | None) -> int:
        """The group order of a home in the session list."""
        homes = self.homes
        return homes.index(host) if host in homes else len(homes)

    def client(self, host: str | None) -> Client | RemoteClient:
        if host is None:
            if self.local is None:
                raise UsageError("this machine's sessions are not shown (--no-local)")
            return self.local
        try:
            return self.hosts[host]
        except KeyError:
            raise UsageError(f"host {host!r} is not shown on this dashboard") from None

    def _route(self, key: str) -> tuple[Client | RemoteClient, str]:
        sid, host = split_key(key)
        return self.client(host), sid

    def tag(self, records: list[Record], host: str | None) -> list[Record]:
        """A home's records under their dashboard keys (a host's ids become `id@host`)."""
        if host is None:
            return records
        return [{**r, "id": make_key(r["id"], host)} for r in records]

    # ------------------------------------------------------------ calls, routed by key

    def get(self, key: str, **params: object) -> JSONObject:
        client, sid = self._route(key)
        return client.get(sid, **params)

    def subscribe(self, key: str, *, interval: float | None = None) -> Stream:
        client, sid = self._route(key)
        return client.subscribe(sid, interval=interval)

    def text(self, key: str, data: str, *, enter: bool = False) -> JSONObject:
        client, sid = self._route(key)
        return client.text(sid, data, enter=enter)

    def paste(self, key: str, data: str) -> JSONObject:
        client, sid = self._route(key)
        return client.paste(sid, data)

    def key(self, key: str, names: Sequence[str]) -> JSONObject:
        client, sid = self._route(key)
        return client.key(sid, names)

    def resize(self, key: str, cols: int, rows: int) -> JSONObject:
        client, sid = self._route(key)
        return client.resize(sid, cols, rows)

    def kill(self, key: str) -> JSONObject:
        client, sid = self._route(key)
        result = client.kill(sid)
        return {**result, "id": key}

    def log_text(self, key: str) -> str:
        """A host's session's worker log, read there (a local log is followed as a file)."""
        client, sid = self._route(key)
        if isinstance(client, RemoteClient):
            return client.log_text(sid)
        return client.logs(sid).read_text("utf-8", "replace")

    def start(
        self, host: str | None, argv: list[str], *, name: str | None, cwd: str | None
    ) -> Record:
        """Start a session in a home; its record under its dashboard key."""
        record = self.client(host).start(argv, name=name, cwd=cwd)
        return self.tag([record], host)[0]

    def gc(self, host: str | None) -> list[str]:
        return [make_key(sid, host) for sid in self.client(host).gc()]

    def close(self) -> None:
        """End the host clients' calls in flight and the relays they keep (their sessions
        run on): the dashboard quits at once, whatever state a host is in."""
        for client in self.hosts.values():
            client.abort()
            client.close()

"""Which machine `--host HOST` means: an ssh destination, or an entry of hosts.toml.

`$XDG_CONFIG_HOME/agentty/hosts.toml` (default `~/.config/agentty/hosts.toml`) names hosts:

    [hosts.build]
    ssh = "me@build.example.com"      # or ssh://me@build:2222
    ssh_config = "~/.ssh/work_config" # optional, handed to ssh -F
    agentty = "/home/me/.local/bin/agentty"  # the remote command (default: agentty)
    home = "/home/me/.agentty-ci"     # the remote AGENTTY_HOME (default: the remote user's)

    [hosts.box]
    command = ["docker", "exec", "-i", "box"]  # any argv prefix that gives a stdio channel

A host string never becomes an option of ssh or of the command prefix: one that starts with
`-`, or holds whitespace or control characters, is refused here, before anything runs.
"""

from __future__ import annotations

import os
import sys

from agentty_core.errors import UsageError

TYPE_CHECKING = False  # every `--host` call imports this module: no re, no pathlib
if TYPE_CHECKING:
    from pathlib import Path


# user@host, host, or an IPv6 literal in brackets; no spaces, no leading '-'.
_DEST_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.%+@:[]~-"
)  # user@host, host, or an IPv6 literal in brackets; no spaces, no leading '-'
_KEYS = frozenset({"ssh", "ssh_config", "command", "agentty", "home"})


_FIELDS = ("name", "destination", "port", "ssh_config", "command", "agentty", "home")


class Host:
    """One remote agentty: how to reach it and which agentty and home to use there.

    Immutable, compared and hashed by value. A plain class rather than a dataclass: every
    `--host` call builds one, and `dataclasses` costs its importer `inspect` and `ast`."""

    __slots__ = _FIELDS

    name: str  # as given on the command line (an entry's name or the destination itself)
    destination: str | None  # ssh's destination, without a port
    port: int | None
    ssh_config: str | None
    command: tuple[str, ...] | None  # the argv prefix of the `command` transport
    agentty: str
    home: str | None

    def __init__(
        self,
        name: str,
        destination: str | None = None,
        port: int | None = None,
        ssh_config: str | None = None,
        command: tuple[str, ...] | None = None,
        agentty: str = "agentty",
        home: str | None = None,
    ) -> None:
        values = (name, destination, port, ssh_config, command, agentty, home)
        for slot, value in zip(_FIELDS, values, strict=True):
            object.__setattr__(self, slot, value)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"Host is immutable: cannot set {key}")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, slot) for slot in _FIELDS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Host) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{slot}={getattr(self, slot)!r}" for slot in _FIELDS)
        return f"Host({fields})"

    @property
    def transport(self) -> str:
        return "command" if self.command is not None else "ssh"


def config_path() -> Path:
    from pathlib import Path

    return Path(_config_file())


def _config_file() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "agentty", "hosts.toml")


def _refuse(what: str, value: str) -> UsageError:
    return UsageError(f"invalid {what} {value!r}: {_why(value)}")


def _why(value: str) -> str:
    if not value:
        return "it is empty"
    if value.startswith("-"):
        return "it starts with '-' (a host is never an ssh option)"
    return "use [user@]host, [user@]host with ssh://...:PORT, or a name from hosts.toml"


def parse_destination(text: str) -> tuple[str, int | None]:
    """`box`, `user@box`, `ssh://user@box:2222` -> (destination, port)."""
    dest, port = text, None
    if text.startswith("ssh://"):
        dest = text[len("ssh://") :].rstrip("/")
        if dest.startswith("[") and "]" in dest:  # ssh://[::1]:22
            inner, _, rest = dest.partition("]")
            dest = inner + "]"
            if rest.startswith(":"):
                port = _port(text, rest[1:])
        elif dest.count(":") == 1:
            dest, _, port_text = dest.partition(":")
            port = _port(text, port_text)
        dest = dest.replace("[", "").replace("]", "")
    if not dest or dest.startswith("-") or not set(dest) <= _DEST_CHARS or dest.startswith("@"):
        raise _refuse("host", text)
    return dest, port


def _port(text: str, port_text: str) -> int:
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"invalid host {text!r}: bad port {port_text!r}")
    return int(port_text)


def load_entries(path: str | os.PathLike[str] | None = None) -> dict[str, dict[str, object]]:
    """The `[hosts.NAME]` tables of hosts.toml; {} when the file does not exist.

    The parsed tables are kept in the private home (`hosts.cache`, marshal), keyed by the
    file's identity, size and mtime: `tomllib` (and the `typing` and `datetime` it imports)
    costs a `--host` call more than everything else it does here."""
    path = os.fspath(path) if path else _config_file()
    try:
        with open(path, "rb") as f:
            stamp = _stamp(path, os.fstat(f.fileno()))
            cached = _cached(stamp)
            if cached is not None:
                return cached
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the same module, from PyPI
        import tomli as tomllib
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    hosts = doc.get("hosts", {})
    if not isinstance(hosts, dict):
        raise UsageError(f"{path}: 'hosts' must be a table of [hosts.NAME] tables")
    entries: dict[str, dict[str, object]] = {}
    for name, entry in hosts.items():
        if not isinstance(entry, dict):
            raise UsageError(f"{path}: [hosts.{name}] must be a table")
        entries[str(name)] = entry
    _cache(stamp, entries)
    return entries


def _stamp(path: str, st: os.stat_result) -> tuple[object, ...]:
    return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _cache_file() -> str | None:
    """`<home>/hosts.cache` when the home exists and is private (never created for this)."""
    from agentty_core.remote import transport

    root = transport.default_home()
    return os.path.join(root, "hosts.cache") if transport.private_dir(root) else None


def _cached(stamp: tuple[object, ...]) -> dict[str, dict[str, object]] | None:
    import marshal  # built in: free

    where = _cache_file()
    if where is None:
        return None
    try:
        with open(where, "rb") as f:
            key, entries = marshal.loads(f.read())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if key != stamp or not isinstance(entries, dict):
        return None
    if not all(isinstance(k, str) and isinstance(v, dict) for k, v in entries.items()):
        return None
    return entries


def _cache(stamp: tuple[object, ...], entries: dict[str, dict[str, object]]) -> None:
    """Keep the parsed tables for the next call (atomically; a failure only costs a parse)."""
    import marshal

    where = _cache_file()
    if where is None:
        return
    try:
        # A TOML date cannot be marshalled (ValueError): such a file is parsed every time.
        data = memoryview(marshal.dumps((stamp, entries)))  # type: ignore[arg-type]
        temp = f"{where}.{os.getpid()}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
        os.replace(temp, where)
    except (OSError, ValueError):
        try:  # noqa: SIM105  (contextlib stays off the --host path)
            os.unlink(f"{where}.{os.getpid()}")
        except OSError:
            pass


def _entry(name: str, entry: dict[str, object], path: str) -> Host:
    if not name or name.startswith("-") or not name.isprintable() or any(c.isspace() for c in name):
        # As a host string is refused: the name is shown in lines, tables and commands.
        raise UsageError(
            f"{path}: the host name {name!r} must not start with '-' nor hold whitespace or "
            "control characters"
        )
    where = f"{path} [hosts.{name}]"
    unknown = set(entry) - _KEYS
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    ssh, command = entry.get("ssh"), entry.get("command")
    if (ssh is None) == (command is None):
        raise UsageError(f"{where}: give exactly one of 'ssh' (a destination) or 'command'")
    strings = {k: entry.get(k) for k in ("ssh_config", "agentty", "home")}
    for key, value in strings.items():
        if value is not None and (not isinstance(value, str) or not value or "\0" in value):
            raise UsageError(f"{where}: '{key}' must be a non-empty string")
    agentty = strings["agentty"] if isinstance(strings["agentty"], str) else "agentty"
    home = strings["home"] if isinstance(strings["home"], str) else None
    if command is not None:
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(w, str) and w and "\0" not in w for w in command)
        ):
            raise UsageError(f"{where}: 'command' must be a non-empty list of strings")
        if strings["ssh_config"] is not None:
            raise UsageError(f"{where}: 'ssh_config' goes with 'ssh', not with 'command'")
        return Host(name, command=tuple(command), agentty=agentty, home=home)
    if not isinstance(ssh, str):
        raise UsageError(f"{where}: 'ssh' must be a string such as 'user@box'")
    dest, port = parse_destination(ssh)
    cfg = strings["ssh_config"]
    return Host(
        name,
        destination=dest,
        port=port,
        ssh_config=os.path.expanduser(cfg) if isinstance(cfg, str) else None,
        agentty=agentty,
        home=home,
    )


def resolve(name: str, path: str | os.PathLike[str] | None = None) -> Host:
    """The host `name` means: a hosts.toml entry first, else an ssh destination."""
    if not name or name.startswith("-") or not name.isprintable() or name.strip() != name:
        raise _refuse("host", name)
    where = os.fspath(path) if path else _config_file()
    entries = load_entries(where)
    if name in entries:
        return _entry(name, entries[name], where)
    dest, port = parse_destination(name)
    return Host(name, destination=dest, port=port)


def configured(path: str | os.PathLike[str] | None = None) -> list[Host]:
    """Every host of hosts.toml, in file order (the dashboard shows them all)."""
    where = os.fspath(path) if path else _config_file()
    return [_entry(name, entry, where) for name, entry in load_entries(where).items()]

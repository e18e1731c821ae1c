"""HOST strings and hosts.toml: what becomes a destination, and what is refused before
anything runs (a host is never an ssh option)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentty_core.errors import UsageError
from agentty_core.remote import transport
from agentty_core.remote.hosts import Host, parse_destination, resolve


@pytest.mark.parametrize(
    ("text", "dest", "port"),
    [
        ("box", "box", None),
        ("user@box", "user@box", None),
        ("ssh://user@box:2222", "user@box", 2222),
        ("ssh://box", "box", None),
        ("ssh://[::1]:22", "::1", 22),
        ("user@10.0.0.1", "user@10.0.0.1", None),
    ],
)
def test_destinations(text: str, dest: str, port: int | None) -> None:
    assert parse_destination(text) == (dest, port)


@pytest.mark.parametrize(
    "text",
    ["-oProxyCommand=x", "-V", "", " box", "a b", "box\n", "ssh://-x", "ssh://box:0", "@box"],
)
def test_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        resolve(text, tmp_path / "hosts.toml")


def test_entries(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text(
        '[hosts.b]\nssh = "ssh://me@b:2200"\nssh_config = "/cfg"\nagentty = "/v/agentty"\n'
        'home = "/h"\n[hosts.c]\ncommand = ["docker", "exec", "-i", "c"]\n'
    )
    assert resolve("b", path) == Host(
        "b", destination="me@b", port=2200, ssh_config="/cfg", agentty="/v/agentty", home="/h"
    )
    assert resolve("c", path).command == ("docker", "exec", "-i", "c")
    assert resolve("other", path).destination == "other"


@pytest.mark.parametrize("name", [r"esc\u001b]0;T\u0007x", r"nl\nx", "a b", "-o"])  # (TOML escapes)
def test_entry_names_are_refused_as_host_strings_are(name: str, tmp_path: Path) -> None:
    """An entry's name is shown in the dashboard's lines and in commands: one with a control
    character set the terminal's title there (or split its line), though `--host` refused it."""
    from agentty_core.remote.hosts import configured

    path = tmp_path / "hosts.toml"
    path.write_text(f'[hosts."{name}"]\nssh = "box"\n[hosts.ok]\nssh = "box"\n')
    with pytest.raises(UsageError) as refused:
        configured(path)
    assert refused.value.args[0].isprintable(), refused.value
    assert resolve("ok", path).destination == "box"  # (the other entries still serve)


@pytest.mark.parametrize(
    "body",
    [
        '[hosts.x]\nssh = "-oProxyCommand=y"\n',
        '[hosts.x]\nssh = "a"\ncommand = ["b"]\n',
        "[hosts.x]\n",
        "[hosts.x]\ncommand = []\n",
        '[hosts.x]\nssh = "a"\nport = 3\n',
        '[hosts.x]\nssh = "a"\nagentty = 3\n',
        "not toml [",
    ],
)
def test_bad_entries(body: str, tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text(body)
    with pytest.raises(UsageError):
        resolve("x", path)


def test_ssh_argv_is_safe(tmp_path: Path) -> None:
    host = Host("b", destination="me@b", port=22, home="/h o", agentty="/bin/agentty")
    argv = transport.argv_for(host, ["text", "a b", "$x;y"], tmp_path)
    assert argv[:4] == ["ssh", "-a", "-x", "-T"]
    assert argv[-3:-1] == ["--", "me@b"]
    assert argv[-1] == "env 'AGENTTY_HOME=/h o' /bin/agentty text 'a b' '$x;y'"
    assert "BatchMode=yes" in argv and "ControlMaster=no" in argv  # a channel, never a master
    assert any(word.startswith("ControlPath=") for word in argv)
    assert (tmp_path / "ssh").stat().st_mode & 0o777 == 0o700


def test_command_argv_has_no_shell(tmp_path: Path) -> None:
    host = Host("c", command=("docker", "exec", "-i", "c"))
    assert transport.argv_for(host, ["get", "a b"], tmp_path) == [
        "docker", "exec", "-i", "c", "agentty", "get", "a b",
    ]  # fmt: skip


def test_parsed_entries_are_kept_until_the_file_changes(tmp_path: Path) -> None:
    """hosts.toml is parsed once and kept in the home (hosts.cache); any edit of the file
    (same size, same second) is read afresh, a broken cache is parsed over, and a file
    holding a TOML date (which marshal cannot keep) is parsed every time."""
    from agentty_core.paths import Home

    cache = Home.resolve().root / "hosts.cache"  # the home exists (no cache makes it)
    path = tmp_path / "hosts.toml"
    path.write_text('[hosts.b]\nssh = "me@b1"\n')
    assert resolve("b", path).destination == "me@b1"
    assert cache.exists() and cache.stat().st_mode & 0o777 == 0o600
    assert resolve("b", path).destination == "me@b1"  # from the cache
    path.write_text('[hosts.b]\nssh = "me@b2"\n')  # the same size
    assert resolve("b", path).destination == "me@b2"
    cache.write_bytes(b"\x00garbage")
    assert resolve("b", path).destination == "me@b2"
    path.write_text('[hosts.b]\nssh = "me@b3"\n[hosts.d]\nssh = "d"\nwhen = 2026-01-01\n')
    assert resolve("b", path).destination == "me@b3"
    with pytest.raises(UsageError, match="unknown key"):
        resolve("d", path)


def test_remote_words_are_quoted_as_shlex_quotes_them() -> None:
    import random
    import shlex
    import string

    rng = random.Random(15)
    words = ["", "a", "a b", "it's", "$HOME", "x;y", "l1\nl2", "é", "a=b", "-x", "~", "*"]
    words += ["".join(rng.choice(string.printable + "éß") for _ in range(8)) for _ in range(500)]
    for word in words:
        assert transport.quote(word) == shlex.quote(word), word


def test_the_host_path_imports_no_heavy_module(tmp_path: Path) -> None:
    """What every `--host` call imports on its way to ssh: only the interpreter's own modules
    (as the fast lane), not re, pathlib, collections or subprocess."""
    import os
    import subprocess
    import sys

    path = tmp_path / "hosts.toml"
    path.write_text('[hosts.b]\nssh = "ssh://me@b:2200"\n')
    code = (
        "import sys\n"
        "from agentty_core.cli import remote\n"
        "from agentty_core.remote import hosts, transport\n"
        f"host = hosts.resolve('b', {str(path)!r})\n"
        "transport.argv_for(host, ['get', 'a b'], remote._home_root())\n"
        "print(sorted(m for m in ('re', 'pathlib', 'collections', 'subprocess', 'typing')"
        " if m in sys.modules))\n"
    )
    from agentty_core.paths import Home

    Home.resolve()  # the home exists, as after any first call
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
        )
        for _ in range(2)  # the first parses hosts.toml (tomllib), the second has it kept
    ]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr
    assert runs[1].stdout.strip() == "[]"

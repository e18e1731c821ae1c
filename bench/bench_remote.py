"""10. Remote hosts (issue 15): `agentty --host HOST get` through the host's warm link (one
kept `agentty _serve`, remote/linkd.py) and the ssh way (a warm ssh master, AGENTTY_LINK=0)
vs a local `agentty get` vs `ssh HOST tmux capture-pane -p` through the same sshd and
master, in the same run; and how
soon a wait's answer arrives after the remote screen matched (the Python API's relay and the
MCP server's).

The host is a real sshd on 127.0.0.1 (the fixture of tests/remote/conftest.py: a free port,
throwaway keys, the remote side in its own AGENTTY_HOME), so the link costs what ssh costs
without a network. Skipped with a note where sshd is not installed. sshd runs every command
through the user's shell, and bash sources ~/.bashrc when sshd starts it: the host `bench`
skips that (its ssh_config sends SHLVL=1, which this sshd accepts), as on a box whose rc is
cheap; `bench-rc` is the same sshd with the rc this machine's user has. Profile rows split
`get --host` into its parts: the local side (`command = ["env"]`: the --host path and a
child agentty, no ssh), a channel and the remote shell (`ssh HOST true`), a remote
interpreter (`ssh HOST python -I -c pass`), the remote `agentty get` alone.

Targets: `get --host` <= local `get` + 10 ms; a wait's answer within 10 ms of the remote
screen matching (measured from the input that makes it match, so an upper bound).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from agentty_core.client import Client
from agentty_core.paths import Home
from agentty_core.remote import link, transport
from agentty_core.remote.client import RemoteClient
from bench.common import (
    AGENTTY,
    PYTHON,
    TMUX,
    TMUX_HINT,
    Row,
    agentty_home,
    client,
    ms_row,
    run_quiet,
    skipped,
)

B = "10 remote"
HOST = "bench"
HOST_RC = "bench-rc"  # the same sshd, the remote user's ~/.bashrc sourced
HOST_LOCAL = "bench-local"  # the --host path without ssh: `command = ["env"]`
GET_MARGIN_MS = 10.0
WAIT_TARGET_MS = 10.0


@contextlib.contextmanager
def _sshd() -> Iterator[object]:
    """The tests' sshd (tests/remote/conftest.py), or a RuntimeError saying why not."""
    import pytest

    from tests.remote.conftest import SSH, SSHD, Sshd, free_port

    if SSHD is None or SSH is None:
        raise RuntimeError("openssh-server (sshd) is not installed")
    if not os.path.isdir("/run/sshd"):
        if os.getuid() != 0:
            raise RuntimeError("sshd needs /run/sshd (its privilege separation directory)")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="atb-sshd-", dir="/tmp"))
    server = Sshd(root, free_port())
    with open(root / "sshd_config", "a") as config:
        config.write("AcceptEnv SHLVL\n")  # lets `bench` skip the remote ~/.bashrc
    try:
        try:
            server.start()
        except pytest.skip.Exception as exc:
            raise RuntimeError(str(exc)) from None
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _remote(server: object) -> Iterator[tuple[Path, Path]]:
    """hosts.toml naming the sshd `bench` (this venv's agentty, a home of its own), in effect
    for this block; (the remote home, the ssh_config)."""
    remote_home = Path(tempfile.mkdtemp(prefix="atb-rh-", dir="/tmp"))
    os.chmod(remote_home, 0o700)
    config = Path(tempfile.mkdtemp(prefix="atb-cfg-", dir="/tmp"))
    with_rc = server.ssh_config()  # type: ignore[attr-defined]
    # bash sources ~/.bashrc when sshd runs it at SHLVL < 2 (Debian's SSH_SOURCE_BASHRC).
    ssh_config = with_rc.with_name("ssh_config_norc")
    ssh_config.write_text(with_rc.read_text() + "  SetEnv SHLVL=1\n")
    (config / "agentty").mkdir()
    (config / "agentty" / "hosts.toml").write_text(
        "".join(
            f'[hosts.{name}]\nssh = "box"\nssh_config = "{cfg}"\n'
            f'agentty = "{AGENTTY}"\nhome = "{remote_home}"\n'
            for name, cfg in ((HOST, ssh_config), (HOST_RC, with_rc))
        )
        + f'[hosts.{HOST_LOCAL}]\ncommand = ["env"]\nagentty = "{AGENTTY}"\n'
        f'home = "{remote_home}"\n'
    )
    saved = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "AGENTTY_HOST")}
    os.environ["XDG_CONFIG_HOME"] = str(config)
    os.environ.pop("AGENTTY_HOST", None)
    try:
        yield remote_home, ssh_config
    finally:
        from agentty_core.launch import spawner_client
        from bench.common import kill_all

        kill_all(remote_home)
        spawner_client.stop(str(remote_home))
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(config, ignore_errors=True)
        shutil.rmtree(remote_home, ignore_errors=True)


def _ssh(ssh_config: Path, control: str | None, command: str) -> list[str]:
    """Plain ssh to the same sshd, through agentty's master when `control` is given."""
    argv = ["ssh", "-F", str(ssh_config), "-T", "-o", "BatchMode=yes"]
    if control:
        argv += ["-o", f"ControlPath={control}", "-o", "ControlMaster=auto"]
    return [*argv, "-o", "ControlPersist=300", "--", "box", command]


def _wait_latency(
    start_wait: Callable[[str], object], trigger: Client, sid: str, n: int
) -> list[float]:
    """From the input that makes the screen match to the wait's answer here (a wait made
    pending first; the screen matches once the worker has parsed the echo)."""
    out: list[float] = []
    for i in range(-3, n):  # three to warm up
        token = f"w{i + 10}z"
        done: list[float] = []

        def waiter(token: str = token, done: list[float] = done) -> None:
            start_wait(token)
            done.append(time.perf_counter())

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.1)  # a bench, not a test: let the wait reach the worker first
        t0 = time.perf_counter()
        trigger.text(sid, token)
        thread.join(30)
        if i >= 0 and done:
            out.append(done[0] - t0)
        trigger.key(sid, ["Enter"])
    return out


def run(quick: bool) -> list[Row]:
    n = 5 if quick else 60
    try:
        with _sshd() as server, agentty_home() as local_root, _remote(server) as (rhome, cfg):
            return _measure(n, local_root, rhome, cfg)
    except RuntimeError as exc:
        return [skipped(B, "get --host and remote waits", str(exc))]


def _measure(n: int, local_root: Path, rhome: Path, ssh_config: Path) -> list[Row]:
    local = client(local_root)
    lid = str(local.start(["sh", "-c", "echo ready; exec cat"], name="here")["id"])
    local.wait(lid, text="ready", timeout=10)
    remote = RemoteClient(HOST, home=Home.resolve(local_root))
    on_host = Client(Home.resolve(rhome))  # the remote home, reached directly (same machine)
    rid = str(remote.start(["sh", "-c", "echo ready; exec cat"], name="there")["id"])
    on_host.wait(rid, text="ready", timeout=10)
    control = transport.control_path(remote.host, local_root)
    rc_control = transport.control_path(RemoteClient(HOST_RC).host, local_root)
    tmux_sock = str(rhome / "tmux.sock")
    cmds = {
        "local": [AGENTTY, "get", "--session", lid],
        "host": [AGENTTY, "--host", HOST, "get", "--session", rid],
        "host rc": [AGENTTY, "--host", HOST_RC, "get", "--session", rid],
        "host local": [AGENTTY, "--host", HOST_LOCAL, "get", "--session", rid],
        "floor": [PYTHON, "-I", "-c", "pass"],
        "ssh true": _ssh(ssh_config, control, "true"),
        "ssh true rc": _ssh(ssh_config.with_name("ssh_config"), rc_control, "true"),
        "ssh python": _ssh(ssh_config, control, f"{PYTHON} -I -c pass"),
        "ssh agentty get": _ssh(
            ssh_config, control, f"AGENTTY_HOME={rhome} exec {AGENTTY} get --session {rid}"
        ),
    }
    if TMUX:
        run_quiet([TMUX, "-S", tmux_sock, "-f", "/dev/null", "new-session", "-d", "-s", "b", "cat"])
        cmds["tmux"] = _ssh(ssh_config, control, f"tmux -S {tmux_sock} capture-pane -p -t b")
    # The link (remote/link.py) on for the `link` rows, off for the others: the ssh way.
    cmds["host link"] = cmds["host"]
    cmds["host link rc"] = cmds["host rc"]
    envs = {k: {**os.environ, "AGENTTY_LINK": "1" if "link" in k else "0"} for k in cmds}
    samples: dict[str, list[float]] = {k: [] for k in cmds}
    try:
        for _ in range(3):  # the master comes up, caches warm
            for name, argv in cmds.items():
                run_quiet(argv, envs[name])
        for host in (remote.host, RemoteClient(HOST_RC).host):  # the links are up
            deadline = time.monotonic() + 60
            while link.stats(host, str(local_root)) is None and time.monotonic() < deadline:
                time.sleep(0.05)
                run_quiet(cmds["host link"], envs["host link"])
        for _ in range(n):  # interleaved: drift hits each alike
            for name, argv in cmds.items():
                samples[name].append(run_quiet(argv, envs[name]))
        api_wait = _wait_latency(lambda t: remote.wait(rid, text=t, timeout=30), on_host, rid, n)
        local_wait = _wait_latency(lambda t: local.wait(lid, text=t, timeout=30), local, lid, n)
        mcp_wait = _mcp_wait_latency(on_host, rid, HOST, n)
        mcp_local_wait = _mcp_wait_latency(local, lid, None, n)
    finally:
        link.stop(str(local_root))
        remote.close()
        if TMUX:
            run_quiet([TMUX, "-S", tmux_sock, "kill-server"])
        transport.close_master(remote.host, local_root)
        transport.close_master(RemoteClient(HOST_RC).host, local_root)
    local_row = ms_row(B, "agentty get (local)", samples["local"])
    link_row = ms_row(
        B,
        "agentty --host get (the host's warm link)",
        samples["host link"],
        peer="local get",
        peer_median=local_row.median,
        target=f"<= local get + {GET_MARGIN_MS:g} ms",
        note="the default: one kept `agentty _serve` per host, forking per call",
    )
    assert link_row.median is not None and local_row.median is not None
    link_row.ok = link_row.median <= local_row.median + GET_MARGIN_MS
    host_row = ms_row(
        B,
        "agentty --host get, the ssh way (warm ControlMaster, AGENTTY_LINK=0)",
        samples["host"],
        peer="local get",
        peer_median=local_row.median,
        note="what every call paid before the link, and pays when it is off or down",
    )
    rows = [local_row, link_row, host_row]
    if TMUX:
        rows.append(
            ms_row(
                B,
                "ssh HOST tmux capture-pane -p (same master)",
                samples["tmux"],
                peer="agentty --host get",
                peer_median=link_row.median,
                note="peer column: agentty --host get (link); ratio = tmux / agentty",
            )
        )
    else:
        rows.append(skipped(B, "ssh HOST tmux capture-pane -p", TMUX_HINT))
    rows += [
        ms_row(
            B,
            "agentty --host get, the remote ~/.bashrc sourced (the link)",
            samples["host link rc"],
            peer="local get",
            peer_median=local_row.median,
            note="host bench-rc: the link sources the rc once, when it starts",
        ),
        ms_row(
            B,
            "agentty --host get, the remote ~/.bashrc sourced (the ssh way)",
            samples["host rc"],
            peer="local get",
            peer_median=local_row.median,
            note="host bench-rc: what this machine's user rc costs every ssh-way call",
        ),
        ms_row(B, "profile: python -I -c pass (interpreter floor)", samples["floor"]),
        ms_row(
            B,
            "profile: agentty --host get, command = [env] (no ssh)",
            samples["host local"],
            peer="local get",
            peer_median=local_row.median,
            note="the local --host path and a child agentty get",
        ),
        ms_row(B, "profile: ssh HOST true (a channel + the remote shell)", samples["ssh true"]),
        ms_row(B, "profile: ssh HOST true, the remote ~/.bashrc sourced", samples["ssh true rc"]),
        ms_row(B, "profile: ssh HOST python -I -c pass", samples["ssh python"]),
        ms_row(
            B,
            "profile: ssh HOST agentty get (no local agentty)",
            samples["ssh agentty get"],
            note="what --host adds on top: the local interpreter and ssh's start",
        ),
    ]
    local_api = ms_row(B, "wait answer after the screen matches (local API)", local_wait)
    local_mcp = (
        ms_row(B, "wait answer after the screen matches (local MCP)", mcp_local_wait)
        if mcp_local_wait
        else None
    )
    wait_rows = [
        ("wait answer after the remote screen matches (Python API, relay)", api_wait, local_api),
        ("wait answer after the remote screen matches (MCP, async relay)", mcp_wait, local_mcp),
    ]
    for name, values, peer in wait_rows:
        if not values or peer is None:
            rows.append(skipped(B, name, "pip install -e '.[mcp]'"))
            continue
        row = ms_row(
            B,
            name,
            values,
            peer=peer.name.rpartition("(")[2].rstrip(")"),
            peer_median=peer.median,
            target=f"<= {WAIT_TARGET_MS:g} ms",
            note="from the input that makes it match (an upper bound)",
        )
        row.ok = row.median is not None and row.median <= WAIT_TARGET_MS
        rows.append(row)
    rows += [local_api] + ([local_mcp] if local_mcp else [])
    return rows


def _mcp_wait_latency(on_host: Client, rid: str, host: str | None, n: int) -> list[float]:
    """The same through `agentty mcp` (the SDK's stdio client): a `wait` with `host`
    (None: a local session, the peer)."""
    try:
        import anyio
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client
    except ImportError:
        return []

    async def measure() -> list[float]:
        params = StdioServerParameters(command=AGENTTY, args=["mcp"], env=dict(os.environ))
        out: list[float] = []
        async with stdio_client(params) as (read, write), ClientSession(read, write) as mcp:
            await mcp.initialize()
            for i in range(-3, n):
                token = f"m{i + 10}z"
                done: list[float] = []

                async def waiter(token: str = token, done: list[float] = done) -> None:
                    args: dict[str, object] = {"session": rid, "text": token, "timeout": 30}
                    args.update({"host": host} if host else {})
                    result = await mcp.call_tool("wait", args)
                    done.append(time.perf_counter())
                    assert not result.is_error, result.content

                async with anyio.create_task_group() as tg:
                    tg.start_soon(waiter)
                    await anyio.sleep(0.15)  # the wait reaches the worker first
                    t0 = time.perf_counter()
                    await anyio.to_thread.run_sync(on_host.text, rid, token)
                if i >= 0 and done:
                    out.append(done[0] - t0)
                await anyio.to_thread.run_sync(on_host.key, rid, ["Enter"])
        return out

    return anyio.run(measure)


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)

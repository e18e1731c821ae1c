"""2. Round trip: type a line into a tiny echo program and read the answer off the screen.

The program is `sed -u s/^/=/` (unbuffered), so the answer `=pingN` differs from the tty echo
`pingN`. agentty: `Client.text` + `Client.wait(text=...)` (answered by the worker), and the
same over one kept-open `ipc_client.Connection` (the protocol floor). Peers: pexpect
`sendline` + `expect_exact` (delaybeforesend=None; it reads the byte stream, no screen),
tmux `send-keys` + `capture-pane` polling, and libtmux. Target: <= 0.5 ms median,
<= 2x pexpect, >= 6x faster than tmux."""

from __future__ import annotations

import time
from collections.abc import Callable

from agentty_core.ipc.client import Connection
from bench.common import TMUX, TMUX_HINT, Row, Tmux, agentty_home, client, ms_row, skipped

B = "2 round trip"
PROGRAM = ["sed", "-u", "s/^/=/"]


def _loop(n: int, once: Callable[[int], None]) -> list[float]:
    for i in range(5):  # warm-up
        once(-1 - i)
    out = []
    for i in range(n):
        start = time.perf_counter()
        once(i)
        out.append(time.perf_counter() - start)
    return out


def _agentty(n: int) -> tuple[list[float], list[float]]:
    with agentty_home() as root:
        c = client(root)
        rec = c.start(PROGRAM)
        sid = str(rec["id"])
        tag = "a"

        def via_client(i: int) -> None:
            c.text(sid, f"{tag}{i}\r")
            c.wait(sid, text=f"={tag}{i}", timeout=5.0)

        first = _loop(n, via_client)
        tag = "b"
        path = str(c.home.socket_path(sid))
        with Connection(path, expect_pid=int(str(rec["workerPid"]))) as conn:

            def via_conn(i: int) -> None:
                conn.call("text", {"data": f"{tag}{i}\r"})
                conn.call("wait", {"text": f"={tag}{i}", "timeout": 5.0}, timeout=10.0)

            second = _loop(n, via_conn)
    return first, second


def _pexpect(n: int) -> list[float]:
    import pexpect

    child = pexpect.spawn(PROGRAM[0], PROGRAM[1:], encoding="utf-8", echo=True)
    child.delaybeforesend = None
    try:

        def once(i: int) -> None:
            child.sendline(f"p{i}")
            child.expect_exact(f"=p{i}", timeout=5)

        return _loop(n, once)
    finally:
        child.terminate(force=True)


def _tmux(n: int, tmux: Tmux) -> list[float]:
    tmux.new_session("rt", " ".join(PROGRAM))

    def once(i: int) -> None:
        tmux.run("send-keys", "-t", "rt", f"t{i}", "Enter")
        while f"=t{i}" not in tmux.capture("rt"):
            pass

    return _loop(n, once)


def _libtmux(n: int, tmux: Tmux) -> list[float]:
    import libtmux

    server = libtmux.Server(socket_path=tmux.socket)
    session = server.new_session(session_name="lt", window_command=" ".join(PROGRAM))
    pane = session.active_window.active_pane
    assert pane is not None

    def once(i: int) -> None:
        pane.send_keys(f"l{i}", enter=True)
        while not any(f"=l{i}" in line for line in pane.capture_pane()):
            pass

    return _loop(n, once)


def run(quick: bool) -> list[Row]:
    n, n_tmux = (50, 10) if quick else (500, 150)
    via_client, via_conn = _agentty(n)
    pex = ms_row(B, "pexpect sendline+expect_exact", _pexpect(n))
    rows = [pex]
    tmux_row: Row | None = None
    if TMUX:
        with Tmux() as tmux:
            tmux_row = ms_row(B, "tmux send-keys + capture-pane poll", _tmux(n_tmux, tmux))
            rows.append(tmux_row)
            try:
                rows.append(
                    ms_row(B, "libtmux send_keys + capture_pane poll", _libtmux(n_tmux, tmux))
                )
            except ImportError:
                rows.append(skipped(B, "libtmux", "pip install -e '.[bench]'"))
    else:
        rows.append(skipped(B, "tmux send-keys + capture-pane", TMUX_HINT))
    for name, samples in (
        ("agentty Client.text + Client.wait", via_client),
        ("agentty one Connection: text + wait", via_conn),
    ):
        row = ms_row(B, name, samples, peer="pexpect", peer_median=pex.median)
        row.target = "<= 0.5 ms; <= 2x pexpect; >= 6x faster than tmux"
        ok = row.median is not None and row.median <= 0.5 and (row.ratio or 99) <= 2.0
        if tmux_row is not None and tmux_row.median and row.median:
            speedup = tmux_row.median / row.median
            row.note = f"{speedup:.1f}x faster than tmux"
            ok = ok and speedup >= 6.0
        row.ok = ok
        rows.append(row)
    return rows


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)

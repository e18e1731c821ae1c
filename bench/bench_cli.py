"""1. A CLI call as a whole process: every form of the agent commands (`get`, `text`, `key`,
`paste`, `send`, `wait`, `status`, `kill`; a session by id, prefix or name; `--json`; `get` and
`wait --exit` of a session that has ended) vs `tmux
capture-pane -p` vs the interpreter floor (`python -I -c pass`). Targets (issue 14): each
form <= 1.3x the floor, `text --enter` to a program reading lines <= 1.3x, `kill` of a
program that exits on SIGHUP <= 1.5x (a session started for each kill, untimed)."""

from __future__ import annotations

from bench.common import (
    AGENTTY,
    PYTHON,
    TMUX,
    TMUX_HINT,
    Row,
    Tmux,
    agentty_home,
    client,
    ms_row,
    run_quiet,
    skipped,
)

B = "1 cli"
RAW_READER = "import os, tty\ntty.setraw(0)\nos.write(1, b'raw')\nwhile os.read(0, 4096):\n    pass"
FORM_TARGET = 1.3
KILL_TARGET = 1.5


def run(quick: bool) -> list[Row]:
    n = 5 if quick else 60
    floor_cmd = [PYTHON, "-I", "-c", "pass"]
    site_cmd = [PYTHON, "-c", "pass"]
    with agentty_home() as root:
        c = client(root)
        sid = str(c.start(["sh", "-c", "echo ready; exec cat"], name="bench")["id"])
        c.wait(sid, text="ready", timeout=10)
        # Input goes to another session, so the screen of the first keeps its "ready".
        tid = str(c.start(["cat"], name="typing", activate=False)["id"])
        # A program reading keys (raw mode, as readline, a REPL, an editor do): a text's
        # Enter waits until it has read the text.
        rid = str(c.start([PYTHON, "-I", "-c", RAW_READER], name="raw", activate=False)["id"])
        c.wait(rid, text="raw", timeout=10)
        # A program that is done: an agent's last calls read what it left.
        did = str(c.start(["sh", "-c", "echo done"], name="done", activate=False)["id"])
        c.wait(did, exit=True, timeout=10)
        cmds = {
            "agentty get": [AGENTTY, "get", "--session", sid],
            "agentty get --session NAME": [AGENTTY, "get", "--session", "bench"],
            "agentty get --session PREFIX": [AGENTTY, "get", "--session", sid[:4]],
            "agentty get --json": [AGENTTY, "get", "--json", "--session", sid],
            "agentty text": [AGENTTY, "text", "--session", tid, "x"],
            "agentty text --json": [AGENTTY, "text", "--json", "-s", "typing", "x"],
            "agentty text --enter (reads lines)": [AGENTTY, "text", "--enter", "-s", tid, "x"],
            "agentty text --enter (reads keys)": [AGENTTY, "text", "--enter", "-s", rid, "x"],
            "agentty text --enter '' (reads keys)": [AGENTTY, "text", "--enter", "-s", rid, ""],
            "agentty key": [AGENTTY, "key", "--session", tid, "Enter"],
            "agentty key --json": [AGENTTY, "key", "--json", "-s", tid[:4], "Enter"],
            "agentty paste": [AGENTTY, "paste", "--session", tid, "x"],
            "agentty send (text and keys)": [AGENTTY, "send", "-s", tid, "x", "BSpace", "y"],
            "agentty wait --text (holds)": [AGENTTY, "wait", "--text", "ready", "-s", sid],
            "agentty wait --text --json": [AGENTTY, "wait", "--text", "ready", "--json"],
            "agentty wait --exit (ended)": [AGENTTY, "wait", "--exit", "-s", "done"],
            "agentty get (ended)": [AGENTTY, "get", "--session", did],
            "agentty status": [AGENTTY, "status"],
            "agentty status --json": [AGENTTY, "status", "--json"],
        }
        samples: dict[str, list[float]] = {
            k: [] for k in [*cmds, "agentty kill (exits on SIGHUP)", "floor", "site", "tmux"]
        }
        tmux = Tmux() if TMUX else None
        try:
            if tmux:
                tmux.new_session("b", "cat")
            for _ in range(3):  # warm the page cache
                run_quiet(floor_cmd)
                run_quiet(cmds["agentty get"])
            for _ in range(n):  # interleaved, so drift hits every command alike
                samples["floor"].append(run_quiet(floor_cmd))
                samples["site"].append(run_quiet(site_cmd))
                for name, argv in cmds.items():
                    samples[name].append(run_quiet(argv))
                if tmux:
                    samples["tmux"].append(run_quiet(tmux.cmd("capture-pane", "-p", "-t", "b")))
            for _ in range(max(3, n // 3)):  # each kill needs a session of its own
                doomed = str(c.start(["sh", "-c", "echo up; exec cat"], activate=False)["id"])
                c.wait(doomed, text="up", timeout=10)
                samples["agentty kill (exits on SIGHUP)"].append(
                    run_quiet([AGENTTY, "kill", "--session", doomed])
                )
                samples["floor"].append(run_quiet(floor_cmd))
        finally:
            if tmux:
                tmux.close()
    floor = ms_row(B, "python -I -c pass (floor)", samples["floor"])
    rows = [floor]
    rows.append(
        ms_row(
            B,
            "python -c pass (venv site)",
            samples["site"],
            peer="floor",
            peer_median=floor.median,
            note="site-packages .pth processing, paid by every console script",
        )
    )
    for name in [*cmds, "agentty kill (exits on SIGHUP)"]:
        row = ms_row(B, name, samples[name], peer="floor", peer_median=floor.median)
        target = KILL_TARGET if name.startswith("agentty kill") else FORM_TARGET
        row.target = f"<= {target}x floor"
        row.ok = row.ratio is not None and row.ratio <= target
        if name.endswith("(ended)"):
            row.note = "the final screen and the record, read from the files"
        elif name == "agentty status --json":
            row.note = "the lane asks every running worker for its live fields, all at once"
        elif name.startswith("agentty kill"):
            row.note = (
                "the worker's ladder (two walks of its own descendants, SIGHUP), the final "
                "screen saved, the exit recorded (one fsync; the directory's after the answer)"
            )
        rows.append(row)
    if tmux:
        rows.append(
            ms_row(
                B, "tmux capture-pane -p", samples["tmux"], peer="floor", peer_median=floor.median
            )
        )
    else:
        rows.append(skipped(B, "tmux capture-pane -p", TMUX_HINT))
    return rows


if __name__ == "__main__":
    from bench.common import main_for

    main_for(run)

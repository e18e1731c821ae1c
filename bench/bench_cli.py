"""1. A CLI call as a whole process: `agentty get/text/key` vs `tmux capture-pane -p` vs the
interpreter floor (`python -I -c pass`). Target: get, text and key within 2x the floor."""

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


def run(quick: bool) -> list[Row]:
    n = 15 if quick else 60
    floor_cmd = [PYTHON, "-I", "-c", "pass"]
    site_cmd = [PYTHON, "-c", "pass"]
    with agentty_home() as root:
        c = client(root)
        sid = str(c.start(["cat"])["id"])
        cmds = {
            "agentty get": [AGENTTY, "get", "--session", sid],
            "agentty text": [AGENTTY, "text", "--session", sid, "x"],
            "agentty key": [AGENTTY, "key", "--session", sid, "Enter"],
        }
        samples: dict[str, list[float]] = {k: [] for k in [*cmds, "floor", "site", "tmux"]}
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
    for name in cmds:
        row = ms_row(B, name, samples[name], peer="floor", peer_median=floor.median)
        row.target = "<= 2.0x floor"
        row.ok = row.ratio is not None and row.ratio <= 2.0
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

"""Pictures of the dashboard for the README: SVGs from Textual, PNGs from headless Chromium.

Runs against a private, temporary AGENTTY_HOME with a few demo sessions, and kills them all
afterwards. The pictures are the same bytes on every machine and run (demo programs print
fixed text; ids, times, usage and pids are shown through `DemoClient`), so a regenerated
picture differs only when the dashboard does. `make screenshots` runs it; PNGs need
`chromium-headless-shell` and `fonts-firacode` (Debian), and are skipped with a note when
Chromium is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agentty_core.client import Client
from agentty_core.proc.orphans import Orphan, marked_processes
from agentty_core.proc.usage import Usage, UsageSampler
from agentty_core.remote.client import RemoteClient
from agentty_core.remote.hosts import Host
from agentty_core.state.records import Record

OUT = Path(__file__).resolve().parent.parent / "screenshots"
AGENTTY = str(Path(sys.executable).with_name("agentty"))
SIZE = (110, 34)
CHROMIUM = ("chromium-headless-shell", "chromium", "chromium-browser")

# The demo programs print fixed text, so a picture changes only when the dashboard does.
REPORT = r"""
print("\x1b[1mBuild report\x1b[0m  \x1b[2m(agentty demo)\x1b[0m")
for mark, colour, text in [
    ("✓", 32, "compile    12 modules"), ("✓", 32, "unit tests 348 passed"),
    ("!", 33, "lint       2 warnings"), ("✗", 31, "e2e        1 failed: test_login"),
]:
    print(f"  \x1b[{colour};1m{mark}\x1b[0m \x1b[{colour}m{text}\x1b[0m")
print()
for c in [196, 202, 226, 46, 51, 21, 201]:
    print(f"\x1b[48;5;{c}m" + " " * 8 + "\x1b[0m", end="")
print("\n\x1b[4munderline\x1b[0m \x1b[7mreverse\x1b[0m \x1b[3mitalic\x1b[0m ✓ → ✗")
while True:  # a tiny calculator to type into
    try:
        line = input(">>> ")
    except EOFError:
        break
    try:
        print(eval(line, {}))
    except Exception as exc:
        print(f"error: {exc}")
"""
LISTING = r"""
rows = [
    ("drwxr-xr-x", "4.0K", "agentty_core", "1;34"), ("drwxr-xr-x", "4.0K", "agentty_ui", "1;34"),
    ("drwxr-xr-x", "4.0K", "bench", "1;34"), ("drwxr-xr-x", "4.0K", "docs", "1;34"),
    ("drwxr-xr-x", "4.0K", "scripts", "1;34"), ("drwxr-xr-x", "4.0K", "tests", "1;34"),
    ("-rw-r--r--", "1.1K", "LICENSE", "0"), ("-rw-r--r--", "2.3K", "Makefile", "0"),
    ("-rw-r--r--", " 18K", "README.md", "0"), ("-rw-r--r--", "3.9K", "pyproject.toml", "0"),
    ("-rwxr-xr-x", " 612", "run-demo.sh", "1;32"), ("lrwxrwxrwx", "  11", "latest.cast", "1;36"),
]
print("total 64")
for mode, size, name, colour in rows:
    print(f"{mode} 1 agent agent {size} Jan  2 03:04 \x1b[{colour}m{name}\x1b[0m")
"""
STRAY = "trap '' HUP\nsleep 1000000 &\necho started a background job\nwait\n"
TESTS = r"""
print("\x1b[1m============ test session starts ============\x1b[0m")
print("platform linux -- Python 3.12, pytest-8.3")
print("collected 348 items\n")
for name, dots in [
    ("tests/test_api.py", 96), ("tests/test_cli.py", 128), ("tests/test_ui.py", 124),
]:
    print(f"{name} \x1b[32m" + "." * min(dots, 40) + f"\x1b[0m [{dots:3d}]")
print("\n\x1b[32;1m============ 348 passed in 41.20s ============\x1b[0m")
"""
TAIL = r"""
for t, level, colour, text in [
    ("03:04:05", "INFO", 32, "GET /health 200 1.2ms"),
    ("03:04:06", "INFO", 32, "GET /api/items 200 8.4ms"),
    ("03:04:09", "WARN", 33, "slow query: 312ms (items.search)"),
    ("03:04:11", "INFO", 32, "POST /api/items 201 12.9ms"),
]:
    print(f"\x1b[2m{t}\x1b[0m \x1b[{colour}m{level:5}\x1b[0m {text}")
"""

# What the demo client shows instead of what differs between machines and runs.
DEMO_IDS = ("3fa81c02", "7b0e94d1", "c25d6e3a", "e8147b5f")
DEMO_START = 1767323045.0  # 2026-01-02T03:04:05Z
DEMO_NOW = DEMO_START + 300.0
DEMO_USAGE = (Usage(2.0, 14 << 20, 1), Usage(0.0, 3 << 20, 2), Usage(0.0, 2 << 20, 1))
HOST_IDS = {"ci": ("a41f07c9", "5d2e8b13"), "staging": ("9c03f6e7",)}


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat()


class DemoClient(Client):
    """A real client whose listing shows fixed ids, times and pids (`resolve` maps the ids
    back, and every other call goes through it)."""

    def __init__(self) -> None:
        super().__init__(timeout=3.0)
        self.fake: dict[str, str] = {}
        self.real: dict[str, str] = {}

    def alias(self, real: str) -> str:
        fake = self.fake.setdefault(real, DEMO_IDS[len(self.fake) % len(DEMO_IDS)])
        self.real[fake] = real
        return fake

    def sessions(self, *, live_info: bool = False) -> list[Record]:
        out: list[Record] = []
        for i, rec in enumerate(super().sessions(live_info=live_info)):
            started = DEMO_START + 20 * i
            out.append(
                {
                    **rec,
                    "id": self.alias(str(rec["id"])),
                    "startedAt": iso(started),
                    "lastActiveAt": iso(started + 100 + 40 * i),
                }
            )
        return out

    def resolve(self, ref: str | None) -> Record:
        return super().resolve(self.real.get(ref, ref) if ref else ref)

    def orphans(self) -> list[Orphan]:
        # Client.orphans() would compare marked processes with the aliased ids of
        # sessions(); the real ones are needed here.
        live = {
            str(r["id"]) for r in super().sessions() if r.get("status") in ("running", "starting")
        }
        found = [o for o in marked_processes(self.home) if o.session_id not in live]
        return [
            dataclasses.replace(o, pid=4242 + i, session_id=self.alias(o.session_id), age_seconds=9)
            for i, o in enumerate(sorted(found, key=lambda o: o.pid))
        ]


class DemoRemoteClient(RemoteClient):
    """A host (here: the `command` transport to another home on this machine) whose sessions
    show fixed ids and times; `_id` and `resolve` map the ids back."""

    def __init__(self, name: str, home: str) -> None:
        host = Host(name, command=("env", f"AGENTTY_HOME={home}"), agentty=AGENTTY)
        super().__init__(host, timeout=3.0)
        self.fake: dict[str, str] = {}
        self.real: dict[str, str] = {}

    def sessions(self, *, live_info: bool = False) -> list[Record]:
        out: list[Record] = []
        ids = HOST_IDS.get(self.host.name, ())
        for i, rec in enumerate(super().sessions(live_info=live_info)):
            real = str(rec["id"])
            fake = self.fake.setdefault(real, ids[len(self.fake) % len(ids)])
            self.real[fake] = real
            started = DEMO_START - 3600 * (i + 1)
            out.append(
                {**rec, "id": fake, "startedAt": iso(started), "lastActiveAt": iso(DEMO_NOW - 30)}
            )
        return out

    def _id(self, ref: str | None) -> str:
        return self.real.get(ref, ref) if ref else super()._id(ref)

    def resolve(self, ref: str | None) -> Record:
        return super().resolve(self.real.get(ref, ref) if ref else ref)


class DemoSampler(UsageSampler):
    def sample_all(self, pids: dict[str, int]) -> dict[str, Usage]:
        return {sid: DEMO_USAGE[DEMO_IDS.index(sid) % len(DEMO_USAGE)] for sid in pids}


async def shoot() -> dict[str, str]:
    client = DemoClient()
    try:
        shots = await _shoot(client)
        plain = Client(client.home, timeout=3.0)  # real ids and pids, not the pictures'
        plain.end_orphans(grace=0.5)
        plain.gc()  # the lost session of the orphans picture
        shots.update(await _shoot_hosts(client))
        return shots
    finally:
        for rec in client.sessions():
            if rec.get("status") in ("running", "starting", "lost"):
                with contextlib.suppress(Exception):
                    client.kill(str(rec["id"]), grace=0.5)
        with contextlib.suppress(Exception):
            client.end_orphans(grace=0.5)


async def _shoot(client: DemoClient) -> dict[str, str]:

    from textual.widgets import Footer

    from agentty_ui.app import create_app
    from agentty_ui.screens.confirm import ConfirmScreen
    from agentty_ui.screens.grid import GridScreen, MiniPane
    from agentty_ui.widgets.session_list import SessionList
    from agentty_ui.widgets.terminal_view import TerminalView

    # The programs run in the home, by relative name: no machine path reaches a picture.
    home = os.environ["AGENTTY_HOME"]
    for name, text in (("report.py", REPORT), ("listing.py", LISTING), ("stray.sh", STRAY)):
        (Path(home) / name).write_text(text)
    report = client.start(["python3", "report.py"], name="build", cwd=home)
    listing = client.start(["sh", "-c", "python3 listing.py; exec cat"], name="listing", cwd=home)
    top = client.start(["sh", "-c", "echo watching logs; exec cat"], name="watcher", cwd=home)
    stray = client.start(["sh", "stray.sh"], name="stray", cwd=home)
    for rec, text in ((report, ">>>"), (listing, "latest"), (top, "watching"), (stray, "job")):
        client.wait(str(rec["id"]), text=text, timeout=10)
    shots: dict[str, str] = {}
    app = create_app(client, clock=lambda: DEMO_NOW, sampler=DemoSampler())

    async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met")
            await pilot.pause(0.05)

    def listed() -> bool:
        table = app.query_one(SessionList)
        return table.row_count == 4 and all(
            str(table.get_cell(sid, "mem")) for sid in DEMO_IDS if sid in table.rows
        )

    async def shot(name: str, title: str) -> None:
        """Export once the screen is settled: its footer drawn, nothing left to repaint."""
        # (a screen with no footer of its own shows the dashboard's)
        footed = app.screen if app.screen.query(Footer) else app.main
        await until(lambda: footed.query("FooterKey"))
        await pilot.pause()
        shots[name] = app.export_screenshot(title=title)

    async with app.run_test(size=SIZE) as pilot:
        screen = app.query_one("#screen", TerminalView)
        await until(lambda: listed() and ">>>" in screen.text)
        await shot("overview", "agentty")
        await pilot.press("down")
        await until(lambda: "latest.cast" in screen.text)
        await shot("session", "agentty: a colourful listing")
        await pilot.press("up")
        await until(lambda: ">>>" in screen.text)
        await pilot.press("enter", *"6 * 7", "enter")
        await until(lambda: "42\n>>>" in screen.text)
        await shot("attach", "agentty: attached")
        await pilot.press("ctrl+right_square_bracket", "k")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        await shot("kill-modal", "agentty: kill")
        await pilot.press("escape", "g")
        await until(lambda: isinstance(app.screen, GridScreen))
        panes = {p.label.split()[0]: p.query_one(TerminalView) for p in app.screen.query(MiniPane)}
        await until(
            lambda: all(
                marker in panes[name].text
                for name, marker in (
                    ("build", "42\n>>>"),
                    ("listing", "latest"),
                    ("watcher", "watching"),
                    ("stray", "job"),
                )
            )
        )
        await shot("grid", "agentty: grid")
        await pilot.press("escape")
        await until(lambda: not isinstance(app.screen, GridScreen))
        pid = stray["workerPid"]
        assert isinstance(pid, int)
        os.kill(pid, signal.SIGKILL)
        lost = client.alias(str(stray["id"]))
        await until(
            lambda: (
                app.orphans and str(app.query_one(SessionList).get_cell(lost, "status")) == "lost"
            ),
            15,
        )
        await shot("orphans", "agentty: orphan warning")
    return shots


async def _shoot_hosts(client: DemoClient) -> dict[str, str]:
    """This machine's sessions, two hosts (other homes through the `command` transport: no
    ssh needed) and one that is down (ssh to a closed port: the link's one line)."""
    from textual.widgets import Footer

    from agentty_ui.app import create_app
    from agentty_ui.widgets.host_bar import HostBar
    from agentty_ui.widgets.session_list import SessionList
    from agentty_ui.widgets.terminal_view import TerminalView

    homes = {name: tempfile.mkdtemp(prefix=f"at-{name}-", dir="/tmp") for name in HOST_IDS}
    hosts = [DemoRemoteClient(name, home) for name, home in homes.items()]
    down = RemoteClient(Host("gpu-box", destination="127.0.0.1", port=9), timeout=3.0)
    try:
        for home in homes.values():
            os.chmod(home, 0o700)
        ci, staging = hosts
        for name, text in (("tests.py", TESTS), ("tail.py", TAIL)):
            for home in homes.values():
                (Path(home) / name).write_text(text)
        ci.start(["sh", "-c", "python3 tests.py; exec cat"], name="pytest", cwd=homes["ci"])
        ci.start(["sh", "-c", "echo deploying; exec cat"], name="deploy", cwd=homes["ci"])
        staging.start(
            ["sh", "-c", "python3 tail.py; exec cat"], name="api-logs", cwd=homes["staging"]
        )
        app = create_app(
            client, hosts=[*hosts, down], clock=lambda: DEMO_NOW, sampler=DemoSampler()
        )
        async with app.run_test(size=SIZE) as pilot:
            table = app.query_one(SessionList)
            screen = app.query_one("#screen", TerminalView)
            bar = app.query_one(HostBar)
            deadline = time.monotonic() + 30
            while not (table.row_count == 6 and "gpu-box" in bar.down and ">>>" in screen.text):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the hosts did not answer: {bar.states}")
                await pilot.pause(0.05)
            table.select("a41f07c9@ci")
            while "348 passed" not in screen.text:
                if time.monotonic() > deadline:
                    raise TimeoutError("the remote session did not show")
                await pilot.pause(0.05)
            while not app.main.query("FooterKey") or not app.main.query(Footer):
                await pilot.pause(0.05)
            while True:  # the view holds the text before it is drawn: 1 run in 3 missed it
                await pilot.pause()
                shot = app.export_screenshot(title="agentty: sessions on three hosts")
                if "348&#160;passed" in shot:
                    return {"hosts": shot}
                if time.monotonic() > deadline:
                    raise TimeoutError("the remote session's screen was not drawn")
                await pilot.pause(0.05)
    finally:
        for host in hosts:
            for rec in host.sessions():
                with contextlib.suppress(Exception):
                    host.kill(str(rec["id"]), grace=0.5)
            host.close()
        for home in homes.values():
            shutil.rmtree(home, ignore_errors=True)


def svg_size(svg: str) -> tuple[int, int]:
    match = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg)
    return (
        (int(float(match.group(1))) + 1, int(float(match.group(2))) + 1) if match else (1400, 900)
    )


def to_png(svg_path: Path, chromium: str) -> None:
    """Render an SVG with Chromium, inside a page that sets Fira Code as the font."""
    width, height = svg_size(svg_path.read_text())
    page = svg_path.with_suffix(".html")
    page.write_text(
        '<html><head><meta charset="utf-8"><style>html,body{margin:0;background:#1e1e1e}'
        "svg{display:block} text{font-family:'Fira Code',monospace !important}</style></head>"
        f"<body>{svg_path.read_text()}</body></html>"
    )
    png = svg_path.with_suffix(".png")
    subprocess.run(
        [chromium, "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri()],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    page.unlink()


def main() -> int:
    home = tempfile.mkdtemp(prefix="at-shots-", dir="/tmp")
    os.chmod(home, 0o700)
    os.environ["AGENTTY_HOME"] = home
    try:
        shots = asyncio.run(shoot())
    finally:
        shutil.rmtree(home, ignore_errors=True)
    OUT.mkdir(exist_ok=True)
    chromium = next((found for name in CHROMIUM if (found := shutil.which(name))), None)
    for name, svg in shots.items():
        svg_path = OUT / f"{name}.svg"
        svg_path.write_text(svg)
        if chromium:
            to_png(svg_path, chromium)
        print(f"wrote {svg_path}" + (" and .png" if chromium else ""))
    if not chromium:
        print("no chromium-headless-shell: PNGs skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

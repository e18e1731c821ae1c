"""Attached, a session gets the bytes a terminal sends for each key (what tmux passes on),
Alt keys and a quick Esc then a key included: the dashboard reads them as a terminal
writes them, through the driver's parser, and sends them on by agentty key name."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from textual import events
from textual._xterm_parser import XTermParser

from agentty_core.client import Client
from agentty_core.keys import parse
from agentty_core.paths import Home
from agentty_ui.app import create_app
from agentty_ui.widgets.terminal_view import agentty_key

REPO = Path(__file__).resolve().parents[2]

# What the terminal writes -> what the program must read (tmux's send-keys, by hand).
TYPED = [
    ("\x1b:wq", b"\x1b:wq"),  # Escape then `:wq`, in one burst
    ("\x1b:", b"\x1b:"),  # M-:
    ("\x1b1", b"\x1b1"),  # M-1 (not macOS's Option+1, `¡`)
    ("\x1b.", b"\x1b."),
    ("\x1bA", b"\x1bA"),
    ("\x1b ", b"\x1b "),
    ("\x1b\r", b"\x1b\r"),
    ("\x1b\t", b"\x1b\t"),
    ("\x1b\x7f", b"\x1b\x7f"),
    ("\x1bf", b"\x1bf"),
    ("\x1b\x01", b"\x1b\x01"),  # M-C-a
    ("\x1b:w\x1b:q", b"\x1b:w\x1b:q"),  # an Esc cut short by the next one
    ("\x1bx", b"\x1bx"),
    ("ihello\x1b:wq\r", b"ihello\x1b:wq\r"),
    ("\x1b", b"\x1b"),
    ("\x1b\x1b", b"\x1b\x1b"),
    ("\x1b[A", b"\x1b[A"),
    ("\x1b[Z", b"\x1b[Z"),
    ("\x17", b"\x17"),
    ("\x7f", b"\x7f"),
    ("\x08", b"\x08"),  # C-h: Textual names it backspace too (DEL went instead)
    ("\x1c", b"\x1c"),  # C-\ (SIGQUIT): dropped, "BACKSLASH" being no Unicode name
    ("\x1d", b"\x1d"),  # C-]
    ("\x1e", b"\x1e"),  # C-^
    ("\x1f", b"\x1f"),  # C-_ (undo in emacs and readline): dropped likewise
    ("\x00", b"\x00"),  # C-@
    ("A:1 ", b"A:1 "),
    ("é", "é".encode()),
]


def sent(event: events.Key) -> bytes:
    mapped = agentty_key(event)
    assert mapped is not None, event
    kind, data = mapped
    return data.encode() if kind == "text" else parse(data).encode()


@pytest.mark.parametrize(("typed", "expected"), TYPED)
def test_keys_reach_the_program_as_the_terminal_wrote_them(typed: str, expected: bytes) -> None:
    app = create_app(Client(timeout=3.0))
    parser = getattr(app.get_driver_class(), "parser_class", XTermParser)()
    keys = [*parser.feed(typed), *parser.feed("")]  # "": the end (as after the escape delay)
    assert b"".join(sent(k) for k in keys if isinstance(k, events.Key)) == expected


def test_vim_saves_a_file_typed_in_one_burst_through_a_real_terminal(
    client: Client, other_homes: object, tmp_path: Path
) -> None:
    """The dashboard in a real terminal (a session of the test's home) attached to vim (a
    session of another home): `i hello Escape :wq Enter` written at once saves the file."""
    inner = other_homes()  # type: ignore[operator]
    target = tmp_path / "out.txt"
    vim = Client(Home.resolve(inner), timeout=3.0)
    vim.start(["vim", "-u", "NONE", "-N", "-n", str(target)], name="vim")
    vim.wait(None, text="out.txt", timeout=10)
    dashboard = ["env", f"AGENTTY_HOME={inner}", sys.executable, "-m", "agentty_ui"]
    ui = client.start(dashboard, cwd=str(REPO), cols=120, rows=40)["id"]
    client.wait(ui, text="vim", timeout=20)
    client.key(ui, ["Enter"])  # attach
    client.wait(ui, text="ctrl+]", timeout=10)
    client.key(ui, [*"ihello", "Escape", *":wq", "Enter"])  # one write, as tmux send-keys
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not target.exists():
        time.sleep(0.1)
    assert target.read_text() == "hello\n"

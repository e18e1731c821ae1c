"""Large input (issue 16, item 17): any size up to the documented limit reaches the program
as it reads; beyond it `text` refuses up front in one line; a program that never reads gets
a clear error while the worker keeps answering."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from agentty_core.input_steps import INPUT_PART, MAX_INPUT
from tests.helpers.cli import AGENTTY, agentty_json, signals_default, wait_until
from tests.reliability.conftest import PYTHON, agentty, start

# Reads exactly argv[1] bytes of raw input (no echo, no line discipline), then prints
# their count and SHA-256 and waits for the end.
COUNTER = """\
import hashlib, os, sys, tty
want = int(sys.argv[1])
tty.setraw(0)
sys.stdout.write("counter-ready\\r\\n"); sys.stdout.flush()
digest, got = hashlib.sha256(), 0
while got < want:
    chunk = os.read(0, min(65536, want - got))
    if not chunk:
        break
    digest.update(chunk)
    got += len(chunk)
sys.stdout.write(f"got {got} {digest.hexdigest()}\\r\\n"); sys.stdout.flush()
os.read(0, 1)
"""

# Raw mode (so the tty does not discard what it cannot buffer), and never reads.
NEVER_READS = """\
import sys, time, tty
tty.setraw(0)
sys.stdout.write("deaf-ready\\r\\n"); sys.stdout.flush()
time.sleep(600)
"""


@pytest.mark.parametrize("size", [900_000, 5_000_000, 20 << 20])
def test_large_text_file_reaches_the_program(agentty_home: Path, tmp_path: Path, size: int) -> None:
    rec = start("--", PYTHON, "-c", COUNTER, str(size))
    sid = rec["id"]
    agentty("wait", "--session", sid, "--text", "counter-ready", check=True)
    payload = os.urandom(size)
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    sent = agentty("text", "--session", sid, "--file", str(path), timeout=120)
    assert sent.returncode == 0, sent.stderr
    expected = f"got {size} {hashlib.sha256(payload).hexdigest()}"
    agentty("wait", "--session", sid, "--text", expected, "--timeout", "60", check=True)
    assert agentty("kill", "--session", sid).returncode == 0


def test_input_over_the_limit_is_refused_up_front(agentty_home: Path, tmp_path: Path) -> None:
    rec = start("--", PYTHON, "-c", COUNTER, "1")
    sid = rec["id"]
    agentty("wait", "--session", sid, "--text", "counter-ready", check=True)
    path = tmp_path / "huge.bin"
    with open(path, "wb") as f:
        f.truncate(MAX_INPUT + 1)
    assert MAX_INPUT >= 64 << 20
    refused = agentty("text", "--session", sid, "--file", str(path), timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert str(MAX_INPUT + 1) in refused.stderr and str(MAX_INPUT) in refused.stderr
    # Nothing of it was delivered.
    assert "got" not in agentty("get", "--session", sid, check=True).stdout
    assert agentty("kill", "--session", sid).returncode == 0


def test_program_that_never_reads_gets_a_clear_error(agentty_home: Path, tmp_path: Path) -> None:
    rec = start("--", PYTHON, "-c", NEVER_READS)
    sid = rec["id"]
    agentty("wait", "--session", sid, "--text", "deaf-ready", check=True)
    path = tmp_path / "payload.bin"
    path.write_bytes(b"y" * 5_000_000)
    outcome: list[subprocess.CompletedProcess[str]] = []
    sender = threading.Thread(
        target=lambda: outcome.append(
            agentty("text", "--session", sid, "--file", str(path), timeout=180)
        )
    )
    sender.start()
    try:
        # The worker answers others while that input waits for a reader.
        for _ in range(5):
            got = agentty("get", "--session", sid, timeout=30)
            assert got.returncode == 0, got.stderr
    finally:
        sender.join(timeout=180)
    assert outcome, "text hung"
    failed = outcome[0]
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.count("\n") == 1, failed.stderr
    assert "not reading" in failed.stderr and "5000000" in failed.stderr, failed.stderr
    assert "Broken pipe" not in failed.stderr and "too long" not in failed.stderr
    assert agentty("get", "--session", sid).returncode == 0
    assert agentty("kill", "--session", sid).returncode == 0


@pytest.mark.parametrize("spawner", ["0", "1"])
def test_send_refuses_a_run_too_long_for_one_request_before_any_step(
    agentty_home: Path, spawner: str
) -> None:
    """`send` measures each run of text as its request line, before it sends a step. It
    measured the line without the `until` every acting request now carries: a run within
    a few bytes of the limit passed, the Enter before it was pressed, and then the run was
    refused (exit 1): half a `send` done."""
    from agentty_core import protocol
    from agentty_core.input_steps import text_params

    rec = start("--", PYTHON, "-c", COUNTER, "1")
    sid = rec["id"]
    agentty("wait", "--session", sid, "--text", "counter-ready", check=True)
    bare = len(protocol.request("text", text_params("")))
    run = "a" * (protocol.MAX_LINE - bare - 4)  # fits without `until`, not with it
    parts = [run[i : i + 100_000] for i in range(0, len(run), 100_000)]  # (argv's limit)
    env = {**os.environ, "AGENTTY_SPAWNER": spawner}
    refused = subprocess.run(
        [str(Path(PYTHON).with_name("agentty")), "send", "-s", sid, "Enter", *parts],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2, refused.stderr
    assert "more than one request carries" in refused.stderr, refused.stderr
    assert "got" not in agentty("get", "--session", sid, check=True).stdout  # no Enter
    assert agentty("kill", "--session", sid).returncode == 0


# Raw mode; reads nothing until the file argv[1] exists, then all that comes until a quiet
# second, and prints the count.
READS_WHEN_TOLD = """\
import os, select, sys, time, tty
tty.setraw(0)
sys.stdout.write("held-ready\\r\\n"); sys.stdout.flush()
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
got = 0
while select.select([0], [], [], 1.0)[0]:
    got += len(os.read(0, 65536))
sys.stdout.write(f"got {got}\\r\\n"); sys.stdout.flush()
time.sleep(600)
"""


def test_a_part_of_a_large_input_whose_caller_is_gone_is_not_typed(
    agentty_home: Path, tmp_path: Path
) -> None:
    """`text --file` interrupted while a part waited for the program to read: the worker
    typed that part once there was room, after its caller had exited 130 (a single request
    of a caller that is gone was already refused)."""
    go = tmp_path / "go"
    sid = start("--", PYTHON, "-c", READS_WHEN_TOLD, str(go))["id"]
    agentty("wait", "--session", sid, "--text", "held-ready", check=True)
    path = tmp_path / "payload.bin"
    path.write_bytes(b"y" * (3 * INPUT_PART))  # two parts fill the worker's queue
    sender = subprocess.Popen(
        [AGENTTY, "text", "--session", sid, "--file", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=signals_default,
    )
    # The first two parts are answered at once; the third waits for room, its caller
    # blocked on the answer for as long as the program does not read.
    wait_until(lambda: _blocked_for(sender.pid, 0.5), timeout=30)
    sender.send_signal(signal.SIGINT)
    assert sender.wait(timeout=30) == 130
    assert sender.stderr is not None
    sender.stderr.close()
    go.touch()
    done = agentty_json("wait", "--session", sid, "--regex", r"got \d+", "--timeout", "30")
    got = int(next(line for line in done["lines"] if line.startswith("got")).split()[1])
    # The two parts queued before it, and not the third (its bracket and the tty's aside).
    assert 2 * INPUT_PART <= got <= 2 * INPUT_PART + (64 << 10), got
    assert agentty("kill", "--session", sid).returncode == 0


def _blocked_for(pid: int, seconds: float) -> bool:
    """Has `pid` stayed blocked reading a Unix socket (an answer it waits for) for
    `seconds`? A short look, again and again: an answer given at once ends it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if Path(f"/proc/{pid}/wchan").read_text() != "unix_stream_read_generic":
                return False
        except OSError:
            return False
        time.sleep(0.02)
    return True


def test_a_worker_stopped_between_parts_fails_the_input_soon_and_says_what_was_sent(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found through MCP: a 2 MB `type_text` to a worker stopped mid-way waited 3 minutes
    (each part's send blocked for the whole part timeout, 90 s) and then failed without
    saying that part of the text was typed: an agent calling again typed it twice. The
    worker is stopped (SIGSTOP) right after it took the first part."""
    from agentty_core.client import Client
    from agentty_core.errors import WorkerUnreachable

    size = 2_000_000
    rec = start("--", PYTHON, "-c", COUNTER, str(size + 1))
    sid, worker = rec["id"], rec["workerPid"]
    agentty("wait", "--session", sid, "--text", "counter-ready", check=True)
    client = Client()
    call = client._call
    parts: list[object] = []

    def stop_after_the_first_part(*args: object, **kwargs: object) -> object:
        answer = call(*args, **kwargs)  # type: ignore[arg-type]
        parts.append(answer)
        if len(parts) == 1:
            os.kill(worker, signal.SIGSTOP)
        return answer

    monkeypatch.setattr(client, "_call", stop_after_the_first_part)
    began = time.monotonic()
    try:
        with pytest.raises(WorkerUnreachable) as failed:
            client.text(sid, b"z" * size)
        took = time.monotonic() - began
    finally:
        os.kill(worker, signal.SIGCONT)
    assert took < 30, took  # a stall is told from a slow reader by its socket, not 90 s on
    assert failed.value.input_sent == INPUT_PART
    assert f"{INPUT_PART} of {size} bytes were sent" in str(failed.value), failed.value
    assert agentty("kill", "--session", sid).returncode == 0


def test_keys_past_the_input_queue_are_refused_as_too_many_not_blamed_on_the_program() -> None:
    """`key` with over 1 MiB of key bytes said "input queue full (0 bytes pending): the
    program is not reading its input" of a `cat` that was reading (an attacker's round)."""
    from tests.helpers.cli import agentty, agentty_json

    agentty_json("start", "--name", "rd", "--", "cat")
    refused = agentty("key", "--session", "rd", *["a*1000"] * 1100)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr == (
        "agentty: error: the keys make 1100000 bytes, more than a program's input queue holds"
        " (1048576); send them in several calls, or type text with `text`\n"
    )
    assert agentty("key", "--session", "rd", *["a*1000"] * 3, "Enter").returncode == 0
    agentty("wait", "--session", "rd", "--text", "a" * 80, check=True)
    agentty("kill", "--session", "rd", check=True)

"""Recording and replay against what an attacker found: a large recording appended to, a
line of any length in a file to replay, a late `record` request, a file named like a
session, control sequences a recording holds that reach the user's terminal, and a disk
too full for `record on` to append."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest

from agentty_core.worker.lifecycle import EXIT_FIRST_TRY, RETRY_BACKOFF_MAX
from agentty_core.worker.recording import MAX_CAST_BYTES
from tests.helpers.cli import signals_default
from tests.integration.test_hotpath import FULL
from tests.integration.test_hotpath import run as run_way
from tests.reliability.conftest import (
    AGENTTY,
    agentty,
    raw_record,
    start,
    state_lock,
    wait_until,
)
from tests.reliability.test_worker_io_faults import _fill, tmpfs

HEADER = '{"version": 2, "width": 80, "height": 24}\n'


def _replay(
    *args: str, limit_memory: bool = False, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`agentty replay ARGS` (`limit_memory`: in 1 GiB of address space)."""

    def capped() -> None:
        gib = 1 << 30
        resource.setrlimit(resource.RLIMIT_AS, (gib, gib))

    return subprocess.run(
        [AGENTTY, "replay", *args],
        capture_output=True,
        timeout=60,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        preexec_fn=capped if limit_memory else None,
    )


def _events(cast: Path) -> list[list[object]]:
    return [json.loads(line) for line in cast.read_text().splitlines()[1:]]


# 1. `record on` after a large recording reads its tail, not all of it.


def test_record_on_after_a_large_recording_does_not_hold_the_worker(agentty_home: Path) -> None:
    rec = start("--record", "--", "cat")
    agentty("record", "off", check=True)
    cast = agentty_home / "logs" / f"{rec['id']}.cast"
    event = b'[12.345678, "o", "an ordinary line of output\\r\\n"]\n'
    body = event * ((60 << 20) // len(event))
    last = b'[4321.5, "o", "' + b"y" * 300_000 + b'"]\n'  # longer than a first read of the tail
    cast.write_bytes(HEADER.encode() + body + last)
    began = time.monotonic()
    agentty("record", "on", check=True)
    took = time.monotonic() - began
    assert took < 1.5, f"record on took {took:.2f}s"
    agentty("text", "--enter", "after-append", check=True)
    agentty("wait", "--regex", "^after-append$", check=True)
    agentty("kill", check=True)
    with cast.open("rb") as f:
        f.seek(len(HEADER) + len(body) + len(last))
        new = [json.loads(line) for line in f.read().splitlines()]
    assert new and all(isinstance(e[0], float) and e[0] >= 4321.5 for e in new), new


# 2. A line of any length in a file to replay.


def test_replay_of_a_huge_header_line_is_refused_without_reading_it(tmp_path: Path) -> None:
    cast = tmp_path / "x.cast"
    with cast.open("wb") as f:
        f.truncate(2 << 30)  # sparse: 2 GiB of NULs, no newline
    began = time.monotonic()
    proc = _replay("--speed", "0", str(cast), limit_memory=True)
    assert time.monotonic() - began < 10
    assert proc.returncode == 2, proc
    said = proc.stderr.decode()
    assert said == f"agentty: error: cannot replay {cast}: not an asciicast v2 file\n", said


def test_replay_skips_an_event_line_past_the_limit(tmp_path: Path) -> None:
    cast = tmp_path / "x.cast"
    with cast.open("wb") as f:
        f.write(HEADER.encode() + b'[0, "o", "a\\n"]\n')
        f.seek(1 << 30)  # a line of 1 GiB of NULs (sparse)
        f.write(b'\n[0.1, "o", "b\\n"]\n')
    proc = _replay("--speed", "0", str(cast), limit_memory=True)
    assert proc.returncode == 0 and proc.stdout == b"a\nb\n", proc


# 3. A `record` request that timed out on the caller's side is not done later.


def test_record_on_and_off_that_timed_out_are_not_done_once_the_worker_resumes(
    agentty_home: Path,
) -> None:
    plain = start("--name", "plain", "--", "cat")
    recorded = start("--name", "recorded", "--record", "--", "cat")
    for rec in (plain, recorded):
        os.kill(rec["workerPid"], signal.SIGSTOP)
    try:
        on = agentty("record", "on", "-s", "plain", timeout=60)
        off = agentty("record", "off", "-s", "recorded", timeout=60)
        for proc in (on, off):
            assert proc.returncode == 1 and "did not answer" in proc.stderr, proc
    finally:
        for rec in (plain, recorded):
            os.kill(rec["workerPid"], signal.SIGCONT)
    for name in ("plain", "recorded"):  # answered after the late request was read
        agentty("text", "-s", name, "--enter", "typed-now", check=True)
        agentty("wait", "-s", name, "--regex", "^typed-now$", check=True)
    assert not (agentty_home / "logs" / f"{plain['id']}.cast").exists()
    cast = agentty_home / "logs" / f"{recorded['id']}.cast"
    assert "typed-now" in "".join(str(e[2]) for e in _events(cast))
    for name in ("plain", "recorded"):
        agentty("kill", "-s", name, check=True)


# 4. A session wins over a file of the same name in the current directory.


def test_replay_of_a_name_plays_the_session_not_a_file_so_named(
    agentty_home: Path, tmp_path: Path
) -> None:
    start("--name", "demo", "--record", "--", "sh", "-c", "echo from-session; exec sleep 60")
    agentty("wait", "-s", "demo", "--text", "from-session", check=True)
    (tmp_path / "demo").write_text(HEADER + '[0, "o", "from-file\\n"]\n')
    (tmp_path / "demo.cast").write_text(HEADER + '[0, "o", "from-demo-cast\\n"]\n')
    session = _replay("--speed", "0", "demo", cwd=tmp_path)
    assert session.returncode == 0 and b"from-session" in session.stdout, session
    assert b"from-file" not in session.stdout
    path = _replay("--speed", "0", "./demo", cwd=tmp_path)
    assert path.returncode == 0 and path.stdout == b"from-file\n", path
    bare = _replay("--speed", "0", "demo.cast", cwd=tmp_path)  # no session of that name
    assert bare.returncode == 0 and bare.stdout == b"from-demo-cast\n", bare
    agentty("kill", "-s", "demo", check=True)


# 5. What a recording would make the user's terminal do besides showing it.

RESTORE_ALL = (
    b"\x1b[?1049l"  # the alternate screen left
    b"\x1b[?1000l\x1b[?1006l"  # mouse reports off
    b"\x1b[?2004l"  # bracketed paste off
    b"\x1b[?25h"  # the cursor shown
    b"\x1b[0m"  # SGR reset
)


def _cast(path: Path, *outputs: str, gap: float = 0.0) -> Path:
    lines = [HEADER]
    for i, data in enumerate(outputs):
        lines.append(json.dumps([round(i * gap, 3), "o", data]) + "\n")
    path.write_text("".join(lines))
    return path


def test_replay_drops_clipboard_writes_and_terminal_queries(tmp_path: Path) -> None:
    cast = _cast(
        tmp_path / "q.cast",
        "\x1b]0;a title\x07\x1b[31mred\x1b[5;10H",  # kept as they are
        "\x1b]52;c;aGVsbG8=\x07",  # a clipboard write
        "\x1b]5",  # split across events
        "2;c;c2VjcmV0\x1b\\after-clip",
        "\x1b[6n\x1b[c\x1b[>c\x1b[",  # DSR, DA, DA2, and a CSI split
        "?6n\x1b]11;?\x07\x1b]10;?\x1b\\\x1b]4;1;?\x07",  # DECXCPR, colour queries
        "\x1bP$qm\x1b\\\x1bP+q544e\x1b\\",  # DECRQSS, XTGETTCAP
        "\x1b[?1049h\x1b[?1000;1006h\x1b[?2004h\x1b[?25l\x1b[1mend",
    )
    proc = _replay("--speed", "0", str(cast))
    assert proc.returncode == 0, proc
    assert proc.stdout == (
        b"\x1b]0;a title\x07\x1b[31mred\x1b[5;10H"
        b"after-clip"
        b"\x1b[?1049h\x1b[?1000;1006h\x1b[?2004h\x1b[?25l\x1b[1mend" + RESTORE_ALL
    ), proc.stdout


def test_replay_of_plain_output_is_byte_exact(tmp_path: Path) -> None:
    text = "plain \x1b[1;32mgreen\x1b[0m \x1b[2J\x1b[H\x1b]2;title\x1b\\日本\r\n"
    cast = _cast(tmp_path / "p.cast", text[:9], text[9:])
    proc = _replay("--speed", "0", str(cast))
    assert proc.returncode == 0 and proc.stdout == text.encode(), proc


def test_an_interrupted_replay_restores_the_terminal(tmp_path: Path) -> None:
    cast = _cast(
        tmp_path / "i.cast",
        "\x1b[?1049h\x1b[?1000;1006h\x1b[?2004h\x1b[?25l\x1b[1mstarted",
        "never",
        gap=2.0,
    )
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        proc = subprocess.Popen(
            [AGENTTY, "replay", str(cast)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            preexec_fn=signals_default,
        )
        assert proc.stdout is not None
        first = os.read(proc.stdout.fileno(), 4096)
        assert first.endswith(b"started"), first
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=30)
        assert proc.returncode == code, (proc.returncode, err)
        assert rest == RESTORE_ALL, rest
        assert b"Traceback" not in err, err


# 6. `record on` with a disk too full to append says so.


def _with_its_last_page_full(cast: Path) -> None:
    """A recording an append needs a new page for (none left on a full disk)."""
    event = '[0.5, "o", "x"]\n'
    padding = 8192 - len(HEADER) - len(event) - len('[0.25, "o", ""]\n')
    cast.write_text(HEADER + event + f'[0.25, "o", "{"p" * padding}"]\n')
    assert cast.stat().st_size == 8192


def test_record_on_that_cannot_write_fails_and_a_later_one_clears_the_error(
    agentty_home: Path,
) -> None:
    logs = agentty_home / "logs"
    with tmpfs(logs, agentty_home, "1m"):
        rec = start("--record", "--", "cat")
        sid = rec["id"]
        agentty("record", "off", check=True)
        _with_its_last_page_full(logs / f"{sid}.cast")
        filler = _fill(logs)
        try:
            refused = agentty("record", "on")
            assert refused.returncode == 1, refused
            assert "no space left on device" in refused.stderr.lower(), refused.stderr
            assert "recording stopped" not in refused.stderr, refused.stderr
            assert "not recording" in refused.stderr, refused.stderr
            stored = raw_record(agentty_home, sid).get("recordingError")  # (answered after)
            assert "no space left on device" in str(stored).lower()
        finally:
            filler.unlink()
        answer = json.loads(agentty("record", "on", "--json", check=True).stdout)
        assert answer["recording"] is True and "error" not in answer, answer
        assert not raw_record(agentty_home, sid).get("recordingError")
        status = json.loads(agentty("status", "--json", check=True).stdout)
        assert not [s for s in status["sessions"] if s.get("recordingError")], status
        agentty("kill", check=True)


def test_a_first_record_on_that_cannot_write_leaves_no_empty_recording(
    agentty_home: Path,
) -> None:
    """A session never recorded, `record on` on a full disk: refused in one line, and an
    empty `logs/<id>.cast` was left behind, named by the record (an attacker's round)."""
    logs = agentty_home / "logs"
    with tmpfs(logs, agentty_home, "1m"):
        sid = start("--", "cat")["id"]
        filler = _fill(logs)
        try:
            assert agentty("record", "on").returncode == 1
            assert not (logs / f"{sid}.cast").exists()
            assert "cast" not in raw_record(agentty_home, sid)
        finally:
            filler.unlink()
        agentty("kill", check=True)


def test_a_cleared_error_is_not_brought_back_by_the_older_note_still_trying(
    agentty_home: Path,
) -> None:
    """A failed `record on` notes its error in the record, trying for a minute while the
    state lock is held; a later `record on` that starts clears it. The older note, its
    tries spaced out by then, was written after the clearing and brought the error back."""
    logs = agentty_home / "logs"
    with tmpfs(logs, agentty_home, "1m"):
        sid = start("--record", "--", "cat")["id"]
        agentty("record", "off", check=True)
        _with_its_last_page_full(logs / f"{sid}.cast")
        filler = _fill(logs)
        with state_lock(agentty_home):
            assert agentty("record", "on").returncode == 1
            filler.unlink()
            time.sleep(EXIT_FIRST_TRY + 0.5)  # the note's tries, polling at first, space out
            answer = json.loads(agentty("record", "on", "--json", check=True).stdout)
            assert answer["recording"] is True, answer
        time.sleep(RETRY_BACKOFF_MAX * 2.5)  # (the older note's next try came within this)
        assert not raw_record(agentty_home, sid).get("recordingError")
        agentty("kill", check=True)


def test_record_on_with_a_recording_at_its_size_cap_is_refused(agentty_home: Path) -> None:
    """A recording at its cap takes nothing more: `record on` said "recording to ..." and
    recorded nothing."""
    sid = start("--record", "--", "cat")["id"]
    agentty("record", "off", check=True)
    cast = agentty_home / "logs" / f"{sid}.cast"
    with cast.open("a") as f:
        f.truncate(MAX_CAST_BYTES)
    refused = agentty("record", "on")
    assert refused.returncode == 1, refused
    assert "size cap (64 MiB) reached" in refused.stderr and "not recording" in refused.stderr
    assert cast.stat().st_size == MAX_CAST_BYTES
    agentty("kill", check=True)


def test_a_recording_that_reaches_its_size_cap_stops_and_says_so(agentty_home: Path) -> None:
    """It went on "recording" with nothing written, and nothing said why but a marker in
    the file: now it stops, as on a full disk, and the record says why."""
    sid = start("--record", "--", "cat")["id"]
    agentty("record", "off", check=True)
    cast = agentty_home / "logs" / f"{sid}.cast"
    last = '[1.5, "o", "x"]\n'
    with cast.open("a") as f:  # its events padded to 100 bytes short of the cap
        f.write(" " * (MAX_CAST_BYTES - 100 - cast.stat().st_size - len(last)) + "\n" + last)
    agentty("record", "on", check=True)
    agentty("text", "--enter", "y" * 200, check=True)
    stored = wait_until(lambda: raw_record(agentty_home, sid).get("recordingError"))
    assert "size cap (64 MiB) reached" in str(stored) and "recording stopped" in str(stored)
    assert cast.stat().st_size <= MAX_CAST_BYTES
    with cast.open("rb") as f:
        f.seek(-200, os.SEEK_END)
        tail = f.read().decode().splitlines()[-1]
    assert json.loads(tail)[1:] == ["m", "recording stopped: size cap reached"]
    again = json.loads(agentty("record", "on", "--json").stdout)
    assert again["recording"] is False and "size cap" in again["error"], again
    agentty("kill", check=True)


def test_a_recording_error_the_full_disk_keeps_out_of_the_record_is_in_status(
    agentty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The home's own disk full: the recording stops, and its error cannot be written into
    the list on that disk either; `status` said `recordingError` null (for good, once the
    worker gave up noting it). It asks a running worker for it, as for the size (an outside
    round)."""
    home = agentty_home / "small"
    with tmpfs(home, home, "1m"):
        monkeypatch.setenv("AGENTTY_HOME", str(home))
        sid = start("--record", "--", "cat")["id"]
        filler = _fill(home)
        try:
            agentty("text", "--enter", "x" * 8000, check=True)

            def said(way: list[str]) -> str:
                listed = json.loads(run_way(way, "status", "--json").stdout)["sessions"]
                return str(next(s.get("recordingError") for s in listed if s["id"] == sid))

            for way in ([AGENTTY], FULL):
                wait_until(partial(lambda w: "no space left" in said(w).lower(), way), timeout=20)
        finally:
            filler.unlink()
        agentty("kill", check=True)

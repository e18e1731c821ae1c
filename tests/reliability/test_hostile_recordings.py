"""A hostile or broken recording, and odd `replay --speed` values: each is refused in one
line (`agentty: error: ...`, exit 2), at once; the home's recording files are opened as
every reader of the home opens its files, never following a symlink nor waiting on a FIFO.
`record on` asked for more of a session already recording records it from then on."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.reliability.conftest import AGENTTY, agentty, start

HEADER = '{"version": 2, "width": 80, "height": 24}\n'


def replay(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENTTY, "replay", *args], capture_output=True, text=True, timeout=timeout
    )


def one_line_error(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert proc.returncode == code, proc
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("agentty: error: "), proc.stderr
    return proc.stderr


@pytest.mark.parametrize(
    "body",
    [
        HEADER + "[1" + "0" * 400 + ', "o", "x"]\n',  # a time no float holds
        "[" * 100_000 + "]" * 100_000 + "\n",  # a header nested past the parser's depth
        HEADER + "[" * 100_000 + "]" * 100_000 + "\n",  # an event so nested
        HEADER + '[1e400, "o", "x"]\n[0, "o", "y"]\n',  # an infinite time
    ],
    ids=["huge-time", "deep-header", "deep-event", "infinite-time"],
)
def test_a_hostile_cast_file_is_one_line(tmp_path: Path, body: str) -> None:
    cast = tmp_path / "hostile.cast"
    cast.write_text(body)
    for speed in ("0", "1"):
        proc = replay("--speed", speed, str(cast))
        if proc.returncode == 0:  # played (what could be): no more than its capped gaps
            assert "Traceback" not in proc.stderr, proc.stderr
            continue
        assert "cannot replay" in one_line_error(proc)


@pytest.mark.parametrize("speed", ["1e-300", "1e-7", "-1", "nan", "inf", "2000"])
def test_replay_refuses_a_speed_out_of_range(tmp_path: Path, speed: str) -> None:
    cast = tmp_path / "s.cast"
    cast.write_text(HEADER + '[0, "o", "a\\n"]\n[1, "o", "b\\n"]\n')
    assert "speed" in one_line_error(replay("--speed", speed, str(cast)))


@pytest.mark.parametrize("speed", ["0", "0.5", "100"])
def test_replay_plays_at_a_speed_in_range(tmp_path: Path, speed: str) -> None:
    cast = tmp_path / "s.cast"
    cast.write_text(HEADER + '[0, "o", "a\\n"]\n[0.01, "o", "b\\n"]\n')
    proc = replay("--speed", speed, str(cast))
    assert proc.returncode == 0 and proc.stdout == "a\nb\n", proc


def test_replay_plays_on_past_a_lone_surrogate_and_output_that_is_no_text(
    tmp_path: Path,
) -> None:
    """JSON allows a lone surrogate, which no encoding writes: replay stopped there ("cannot
    replay: 'utf-8' codec can't encode"), the events after it never played; an output that
    was an object or null was printed as Python wrote it ({'a': 1}, None)."""
    cast = tmp_path / "odd.cast"
    events = ['[0, "o", "a"]', '[0, "o", "\\ud800"]', '[0, "o", {"a": 1}]', '[0, "o", null]']
    cast.write_text(HEADER + "\n".join([*events, '[0, "o", "b\\n"]']) + "\n")
    proc = replay("--speed", "0", str(cast))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "a?b\n", "")


def test_replay_plays_on_past_bytes_that_are_no_utf8_and_a_time_no_float_holds(
    tmp_path: Path,
) -> None:
    """One byte that is no UTF-8 stopped the replay there, and so did a 400-digit time
    (exit 2 after part of the file had played), where NaN or a string was passed over (an
    outside round)."""
    cast = tmp_path / "odd.cast"
    body = [b'[0, "o", "a"]', b'[0, "o", "bad \xff"]', b"[1" + b"0" * 400 + b', "o", "x"]']
    body += [b'[NaN, "o", "n"]', b'[Infinity, "o", "i"]']  # (a review: their timing lost)
    cast.write_bytes(HEADER.encode() + b"\n".join([*body, b'[0, "o", "b\\n"]']) + b"\n")
    proc = replay("--speed", "0", str(cast))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "abad \ufffdnib\n", ""), proc
    proc = replay("--speed", "1", str(cast), timeout=5)  # no pause for an infinite time
    assert proc.returncode == 0, proc


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_a_session_recording_that_is_no_regular_file_is_refused_at_once(
    agentty_home: Path, kind: str
) -> None:
    rec = start("--record", "--name", "rec", "--", "sh", "-c", "echo hi; exec sleep 60")
    cast = agentty_home / "logs" / f"{rec['id']}.cast"
    cast.unlink()
    if kind == "fifo":
        os.mkfifo(cast, 0o600)
    else:
        cast.symlink_to("/dev/zero")
    message = one_line_error(replay("--speed", "0", "rec", timeout=10), code=1)
    assert ("not a regular file" if kind == "fifo" else "symlink") in message
    agentty("kill", "-s", "rec", check=True)


def test_record_on_with_more_asked_records_it_from_then_on(agentty_home: Path) -> None:
    rec = start("--record", "--", "cat")
    answer = json.loads(agentty("record", "on", "--input", "--markers", "--json").stdout)
    assert answer["recording"] is True and answer["input"] is True and answer["markers"] is True
    agentty("text", "--enter", "typed-now", check=True)
    agentty("wait", "--regex", "^typed-now$", check=True)
    agentty("kill", check=True)
    events = [
        json.loads(line)
        for line in (agentty_home / "logs" / f"{rec['id']}.cast").read_text().splitlines()[1:]
    ]
    assert "typed-now\r" in "".join(e[2] for e in events if e[1] == "i"), events
    assert "text" in [e[2] for e in events if e[1] == "m"], events


def test_record_on_refuses_a_fifo_at_the_recording_path_and_the_worker_answers_on(
    agentty_home: Path,
) -> None:
    """The worker opened it for writing and waited there, its loop with it, for a reader."""
    rec = start("--name", "plain", "--", "cat")
    os.mkfifo(agentty_home / "logs" / f"{rec['id']}.cast", 0o600)
    refused = agentty("record", "on", timeout=20)
    assert refused.returncode == 1 and "not a regular file" in refused.stderr, refused
    assert agentty("get", timeout=10).returncode == 0
    agentty("kill", check=True)


@pytest.mark.parametrize("last", ["1" + "0" * 400, "1e400", "NaN"], ids=["huge", "inf", "nan"])
def test_record_on_appends_valid_json_after_a_hostile_last_time(
    agentty_home: Path, last: str
) -> None:
    """Appending after `record off`/`on` continues the times from the last event: one no
    float holds failed the request (the descriptor left open in the worker), an infinite
    one made every new time `Infinity` (not JSON: players refuse the file)."""
    rec = start("--record", "--", "cat")
    agentty("record", "off", check=True)
    cast = agentty_home / "logs" / f"{rec['id']}.cast"
    cast.write_text(HEADER + f'[{last}, "o", "x"]\n')
    for _ in range(3):
        answer = json.loads(agentty("record", "on", "--json").stdout)
        assert answer["recording"] is True, answer
        agentty("record", "off", check=True)
    assert str(cast) not in _open_files(rec["workerPid"])
    agentty("record", "on", check=True)
    agentty("text", "--enter", "after", check=True)
    agentty("wait", "--regex", "^after$", check=True)
    agentty("kill", check=True)

    def strict(constant: str) -> object:
        raise ValueError(f"not JSON: {constant}")

    new = cast.read_text().splitlines()[2:]
    assert new and all(json.loads(line, parse_constant=strict) for line in new), new


def _open_files(pid: int) -> list[str]:
    """What `pid`'s descriptors refer to (its connections come and go: not counted)."""
    files = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # (closed meanwhile)
            files.append(os.readlink(fd))
    return files

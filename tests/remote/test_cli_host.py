"""`agentty --host HOST COMMAND`: every command against a real sshd on 127.0.0.1, with the
remote side in its own AGENTTY_HOME; output, --json and exit codes as a local call's."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.cli import AGENTTY, agentty
from tests.remote.conftest import HOST, Link

PYTHON = sys.executable


def run_on(
    *args: str, input: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return agentty("--host", HOST, *args, input=input, timeout=timeout)


def remote_status(link: Link) -> dict[str, object]:
    """The remote home as the remote machine sees it (a local call with its home)."""
    env = {**os.environ, "AGENTTY_HOME": str(link.remote_home)}
    proc = agentty("status", "--json", env=env, check=True)
    value = json.loads(proc.stdout)
    assert isinstance(value, dict)
    return value


def test_every_command_over_the_link(link: Link, agentty_home: Path) -> None:
    started = run_on("start", "--json", "--name", "py", "--", PYTHON, "-q")
    assert started.returncode == 0, started.stderr
    sid = json.loads(started.stdout)["id"]
    assert run_on("wait", "--text", ">>>", "--timeout", "30").returncode == 0
    assert run_on("text", "--enter", "print(6*7)").returncode == 0
    waited = run_on("wait", "--regex", "^42$", "--timeout", "30")
    assert waited.returncode == 0, waited.stderr
    assert "42" in waited.stdout
    got = run_on("get")
    assert got.returncode == 0 and "42" in got.stdout
    screen = json.loads(run_on("get", "--json").stdout)
    assert any("42" in line for line in screen["lines"])
    typed = json.loads(run_on("text", "--json", "-s", "py", "1+1").stdout)
    assert isinstance(typed["seq"], int)
    assert run_on("key", "Enter").returncode == 0
    assert run_on("wait", "--regex", "^2$", "--changed-since", str(typed["seq"])).returncode == 0
    assert run_on("paste", "-s", sid, "3*3\n").returncode == 0
    assert run_on("wait", "--regex", "^9$").returncode == 0
    resized = json.loads(run_on("resize", "--json", "--cols", "100", "--rows", "30").stdout)
    assert resized is not None
    assert json.loads(run_on("get", "--json").stdout)["size"] == {"cols": 100, "rows": 30}
    assert run_on("signal", "INT").returncode == 0
    assert run_on("wait", "--text", "KeyboardInterrupt").returncode == 0
    status = json.loads(run_on("status", "--json").stdout)
    assert status["home"] == str(link.remote_home)
    assert [s["id"] for s in status["sessions"]] == [sid]
    assert run_on("attach", "py").returncode == 0
    logs = run_on("logs", "--json")
    assert logs.returncode == 0 and json.loads(logs.stdout)["log"]
    assert json.loads(run_on("orphans", "--json").stdout) == {"orphans": []}
    doctor = run_on("doctor")
    assert doctor.returncode == 0, doctor.stdout
    assert "remote version" in doctor.stdout
    killed = run_on("kill", "--json")
    assert killed.returncode == 0, killed.stderr
    assert json.loads(killed.stdout)["id"] == sid
    gc = json.loads(run_on("gc", "--json").stdout)
    assert gc["removed"] == [sid]
    # Nothing of this happened here: the local home has no sessions.
    local = json.loads(agentty("status", "--json", check=True).stdout)
    assert local["sessions"] == []
    assert remote_status(link)["sessions"] == []


def test_argv_arrives_exactly(link: Link, programs: Path) -> None:
    args = [
        "two words",
        "it's",
        '"double"',
        "$HOME",
        "a;b",
        "semi; rm -rf /nothing",
        "line1\nline2",
        "back\\slash",
        "*",
        "`id`",
        "",
        "--looks-like-an-option",
    ]
    started = run_on("start", "--", PYTHON, str(programs / "argv_json.py"), *args)
    assert started.returncode == 0, started.stderr
    waited = run_on("wait", "--text", "]", "--json")
    assert waited.returncode == 0, waited.stderr
    raw = json.loads(run_on("get", "--json").stdout)["lines"]
    text = "".join(line for line in raw if line)  # a long JSON line wraps across rows
    assert json.loads(text) == args
    # Text typed over the link arrives exactly too.
    payload = "echo '$x' \"y\" ; `z` \\ end"
    assert run_on("text", payload).returncode == 0
    assert run_on("wait", "--text", "\\ end").returncode == 0
    assert payload in run_on("get").stdout
    run_on("key", "Enter")
    assert run_on("wait", "--exit").returncode == 0


def test_exit_codes_and_errors_are_the_remote_ones(link: Link) -> None:
    missing = run_on("get", "-s", "nosuch")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "agentty: error: no such session: nosuch"
    not_found = run_on("start", "--", "/no/such/program")
    assert not_found.returncode == 127  # start's code, not a transport error
    assert "agentty: error:" in not_found.stderr
    run_on("start", "--", PYTHON, "-q")
    timed_out = run_on("wait", "--text", "never there", "--timeout", "0.5")
    assert timed_out.returncode == 3
    assert ">>>" in timed_out.stdout
    usage = run_on("wait")
    assert usage.returncode == 2
    one_shot = run_on("run", "--", PYTHON, "-c", "print('ran there'); raise SystemExit(5)")
    assert one_shot.returncode == 5  # the program's code, as a local `run` exits
    assert "ran there" in one_shot.stdout


def test_run_there_exits_with_the_program_s_code_whatever_it_is(link: Link) -> None:
    """126, 127 and 255 are also what ssh and a shell say when agentty is missing or the
    connection failed: the program's own (its final screen printed) must not read as those."""
    for code in (126, 127, 255, 4):
        ran = run_on("run", "--", "sh", "-c", f"echo ended-{code}; exit {code}")
        assert (ran.returncode, ran.stderr) == (code, ""), (code, ran.stderr)
        assert "ended-" + str(code) in ran.stdout
        as_json = run_on("run", "--json", "--", "sh", "-c", f"exit {code}")
        assert as_json.returncode == code and json.loads(as_json.stdout)["exitCode"] == code
    late = run_on("run", "--timeout", "0.5", "--", "sh", "-c", "echo slow; sleep 30")
    assert late.returncode == 3 and "slow" in late.stdout and "timed out" in late.stderr


def test_run_there_stopped_here_ends_its_program_there(link: Link) -> None:
    """Ctrl-C (the process group's SIGINT) or a SIGTERM of the caller: ssh passes no signal
    on, so the remote `run` must see its channel close and end the program as a local
    `run` does, not run it to its end for nobody. A harness's timeout SIGKILLs the caller
    alone: its ssh lived on (no child that dies with it), the channel open (a remote
    round)."""
    import signal

    from tests.helpers.cli import wait_until

    for sig, group in ((signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGKILL, False)):
        proc = subprocess.Popen(
            [AGENTTY, "--host", HOST, "run", "--", "sh", "-c", "echo up; sleep 400"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_until(lambda: remote_status(link)["sessions"], timeout=30)
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
            assert proc.wait(timeout=30) == (-sig if sig == signal.SIGKILL else 128 + sig)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        wait_until(lambda: remote_status(link)["sessions"] == [], timeout=30)


def test_a_wait_there_ends_with_its_caller_here(link: Link) -> None:
    """Ctrl-C (or SIGTERM) of `agentty --host H wait` the ssh way: the caller exited 130,
    and the wait there ran on to its timeout (up to a day) with nobody to answer (a remote
    round)."""
    import signal

    import psutil

    from tests.helpers.census import processes_of_home
    from tests.helpers.cli import wait_until

    run_on("start", "--", "cat")

    def remote_waits() -> list[psutil.Process]:
        found = []
        for proc in processes_of_home(str(link.remote_home)):
            with contextlib.suppress(psutil.Error):
                if "NEVER" in proc.cmdline():
                    found.append(proc)
        return found

    proc = subprocess.Popen(
        [AGENTTY, "--host", HOST, "wait", "--text", "NEVER", "--timeout", "600"],
        env={**os.environ, "AGENTTY_LINK": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: remote_waits() != [], timeout=30)
        # SIGTERM to the caller alone (its ssh gets none; a SIGINT may be ignored by a
        # caller started under a test runner that ignores it, as xdist's workers do)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        wait_until(lambda: remote_waits() == [], timeout=15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    run_on("kill", "--all")


def test_twenty_waits_at_once_the_ssh_way_each_time_out_cleanly(link: Link) -> None:
    """Waits took no channel slot: 20 at once (no link: off, cold, or backing off after a
    failure) passed sshd's MaxSessions, ssh printed its own refusals, fell back to new
    connections, and met MaxStartups: one exited 4, "may have run there" (a remote round).
    Waits have slots of their own now; one that gets none within its time is asked once,
    with no time left, as a short call."""
    from concurrent.futures import ThreadPoolExecutor

    run_on("start", "--", "cat")
    env = {**os.environ, "AGENTTY_LINK": "0"}

    def one(_: int) -> subprocess.CompletedProcess[str]:
        words = ["--host", HOST, "wait", "--text", "NEVER", "--timeout", "3"]
        return agentty(*words, env=env, timeout=120)

    with ThreadPoolExecutor(20) as pool:
        done = list(pool.map(one, range(20)))
    assert [p.returncode for p in done] == [3] * 20, [(p.returncode, p.stderr) for p in done]
    for proc in done:
        assert proc.stderr.startswith("agentty: error: timed out after "), proc.stderr
        assert "mux_client" not in proc.stderr and "refused" not in proc.stderr, proc.stderr
    run_on("kill", "--all")


def test_a_closed_stdout_fails_an_answer_there_as_here(link: Link) -> None:
    """`get >&-` exits 1 in one line here; over --host it exited 0, the answer written to
    the /dev/null that held descriptor 1 (a remote round), by the link and the ssh way."""
    run_on("start", "--", "sh", "-c", "echo shown; exec cat")
    assert run_on("wait", "--text", "shown").returncode == 0
    closed = {"stdout": None, "stdin": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    for env in ({**os.environ}, {**os.environ, "AGENTTY_LINK": "0"}):
        for words in (["get"], ["status"]):
            proc = subprocess.run(
                [AGENTTY, "--host", HOST, *words],
                env=env,
                text=True,
                timeout=60,
                pass_fds=(),
                preexec_fn=lambda: os.close(1),
                **closed,  # type: ignore[call-overload]
            )
            said = "agentty: error: cannot write the output: stdout is closed\n"
            assert (proc.returncode, proc.stderr) == (1, said), (words, env.get("AGENTTY_LINK"))
    run_on("kill", "--all")


def test_agentty_host_environment_and_host_equals(link: Link) -> None:
    env = {**os.environ, "AGENTTY_HOST": HOST}
    started = agentty("start", "--name", "viaenv", "--", PYTHON, "-q", env=env)
    assert started.returncode == 0, started.stderr
    assert agentty("wait", "--text", ">>>", env=env).returncode == 0
    assert agentty(f"--host={HOST}", "get", "-s", "viaenv").returncode == 0
    # help and completion stay local; --host refuses them.
    assert agentty("help", "--json", env=env).returncode == 0
    refused = agentty("--host", HOST, "completion", "bash")
    assert refused.returncode == 2 and "does not take --host" in refused.stderr


def test_text_file_is_read_here(link: Link, tmp_path: Path) -> None:
    run_on("start", "--", "cat")
    data = tmp_path / "payload.txt"
    data.write_bytes(b"from a local file\n")
    sent = run_on("text", "--file", str(data))
    assert sent.returncode == 0, sent.stderr
    assert run_on("wait", "--text", "from a local file").returncode == 0
    piped = run_on("text", "-", input=b"piped in\n")
    assert piped.returncode == 0, piped.stderr
    assert run_on("wait", "--text", "piped in").returncode == 0


def test_command_transport(link: Link, tmp_path: Path) -> None:
    """A `command` prefix (here `env AGENTTY_HOME=...`: no ssh at all) is a host too."""
    other = tmp_path / "other-home"
    other.mkdir(mode=0o700)
    (link.config_dir / "agentty" / "hosts.toml").write_text(
        f'[hosts.box]\ncommand = ["env", "AGENTTY_HOME={link.remote_home}"]\n'
        f'agentty = "{AGENTTY}"\n'
    )
    started = agentty("--host", "box", "start", "--json", "--", PYTHON, "-q", "-c", "print('a b')")
    assert started.returncode == 0, started.stderr
    assert agentty("--host", "box", "wait", "--exit").returncode == 0
    status = json.loads(agentty("--host", "box", "status", "--json").stdout)
    assert status["home"] == str(link.remote_home)
    doctor = agentty("--host", "box", "doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout
    assert json.loads(doctor.stdout)["ok"] is True
    # AGENTTY_HOST is not handed on: the agentty the prefix runs works on its own home.
    via_env = agentty("status", "--json", env={**os.environ, "AGENTTY_HOST": "box"}, timeout=60)
    assert via_env.returncode == 0, via_env.stderr
    assert json.loads(via_env.stdout)["home"] == str(link.remote_home)


def test_agentty_missing_there_is_a_transport_error(link: Link) -> None:
    (link.config_dir / "agentty" / "hosts.toml").write_text(
        f'[hosts.lo]\nssh = "box"\nssh_config = "{link.sshd.ssh_config()}"\n'
        'agentty = "/no/such/agentty"\n'
    )
    missing = run_on("status")
    assert missing.returncode == 4
    assert "agentty is not installed there" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    doctor = run_on("doctor", "--json")
    assert doctor.returncode == 1
    assert json.loads(doctor.stdout)["checks"][1]["ok"] is False


def test_host_is_never_an_option(link: Link, agentty_home: Path) -> None:
    for bad in ["-oProxyCommand=touch /tmp/pwned", "-V", "", "a b", "ssh://-x@box"]:
        refused = agentty("--host", bad, "status")
        assert refused.returncode == 2, (bad, refused.stderr)
        assert "invalid host" in refused.stderr
    assert not (agentty_home / "ssh").exists() or not any((agentty_home / "ssh").iterdir())

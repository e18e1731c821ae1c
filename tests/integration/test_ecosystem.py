"""One-shot `run`, shell completion, the agent guide, `python -m agentty_core`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import AGENTTY, agentty, agentty_json

TWO_QUESTIONS = "n = input('name? '); a = input('age? '); print(f'{n} is {a}'); raise SystemExit(5)"


def test_run_answers_two_questions_and_exits_with_the_program_code() -> None:
    proc = agentty(
        "run",
        "--expect",
        "name?",
        "--input",
        "Ada",
        "--expect",
        "age?",
        "--input",
        "36",
        "--",
        sys.executable,
        "-c",
        TWO_QUESTIONS,
    )
    assert proc.returncode == 5, proc.stderr
    assert proc.stdout.splitlines() == ["name? Ada", "age? 36", "Ada is 36"]
    assert agentty_json("status")["sessions"] == []  # cleaned up


def test_run_without_expect_waits_for_the_prompt() -> None:
    proc = agentty(
        "run", "--input", "Bob", "--input", "7", "--", sys.executable, "-c", TWO_QUESTIONS
    )
    assert proc.returncode == 5 and "Bob is 7" in proc.stdout


def test_run_timeout_exits_3_and_leaves_nothing() -> None:
    proc = agentty("run", "--timeout", "0.5", "--", "sh", "-c", "echo stuck; sleep 60")
    assert proc.returncode == 3 and "timed out" in proc.stderr and "stuck" in proc.stdout
    assert agentty_json("status")["sessions"] == []


def test_run_keeps_the_active_session() -> None:
    sid = agentty("start", "--", "sleep", "30", check=True).stdout.strip()
    agentty("run", "--", "true", check=True)
    assert agentty_json("status")["active"] == sid
    agentty("kill", check=True)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_valid(shell: str, tmp_path: Path) -> None:
    script = agentty("completion", shell, check=True).stdout
    assert "attach" in script and "--session" in script
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    path = tmp_path / f"agentty.{shell}"
    path.write_text(script)
    check = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}
    subprocess.run([*check[shell], str(path)], check=True, timeout=30)


def test_bash_completion_offers_live_session_names(tmp_path: Path) -> None:
    sid = agentty("start", "--name", "alpha", "--", "sleep", "30", check=True).stdout.strip()
    script = tmp_path / "agentty.bash"
    script.write_text(agentty("completion", "bash", check=True).stdout)
    probe = (
        f"source {script}; COMP_WORDS=(agentty attach ''); COMP_CWORD=2; "
        "COMP_LINE='agentty attach '; COMP_POINT=${#COMP_LINE}; "
        "_shtab_agentty agentty '' attach; echo ${COMPREPLY[@]}"
    )
    bin_dir = str(Path(AGENTTY).parent)
    env = {**os.environ, "PATH": bin_dir + ":" + os.environ["PATH"]}
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=env, timeout=30)
    assert set(out.stdout.split()) == {sid, "alpha"}
    agentty("kill", check=True)


def test_help_agent_prints_the_guide() -> None:
    guide = agentty("help", "--agent", check=True).stdout
    assert guide.startswith("# Driving interactive programs with agentty")
    assert guide == (Path(__file__).parents[2] / "docs" / "agents.md").read_text()


def test_python_dash_m_is_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "agentty_core", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("agentty ")

"""Issue 16, item 9: after input, a wait for input holds only once the program consumed it
and blocked in a new read (else the next answer, a password, may be echoed)."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.conftest import agentty

PAIRS = 3
RUNS = 20


def test_run_never_echoes_a_password(tmp_path: Path) -> None:
    """`run` answers a plain prompt, then a `read -s` one: the secret must arrive after echo
    was turned off, never while the previous read was still returning."""
    script = tmp_path / "prompts.sh"
    lines = []
    for i in range(PAIRS):
        lines.append(f'read -r -p "name{i}: " name{i}')
        lines.append(f'read -r -s -p "password{i}: " pw{i}; echo')
    lines.append('echo "done ${#pw0}"')
    script.write_text("\n".join(lines) + "\n")
    inputs: list[str] = []
    for i in range(PAIRS):
        inputs += ["--input", f"user{i}", "--input", f"s3cret{i}"]
    for attempt in range(RUNS):
        proc = agentty("run", "--timeout", "30", *inputs, "--", "bash", str(script), timeout=60)
        assert proc.returncode == 0, (attempt, proc.stderr)
        assert "done 7" in proc.stdout, (attempt, proc.stdout)
        assert "s3cret" not in proc.stdout, (attempt, proc.stdout)

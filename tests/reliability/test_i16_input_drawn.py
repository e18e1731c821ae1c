"""Issue 16, item 13: a wait for input answers with everything the program drew before it
blocked in its read, however much output was still waiting in the PTY."""

from __future__ import annotations

import sys

from agentty_core.client import Client
from agentty_core.protocol import str_list
from tests.reliability.conftest import start

ROUNDS = 30


def test_wait_input_answers_with_the_prompt_drawn() -> None:
    """A fast client types an answer and at once waits for input; the program answers with
    more output than the worker takes in one read, then prompts. The wait's answer is the
    screen with that prompt on it, not an earlier one nor one cut mid-burst."""
    burst = ("y" * 70 + "\n") * 900  # ~64 KB: several of the worker's reads
    program = (
        "import sys\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        f"    sys.stdout.write({burst!r})\n"
        "    sys.stdout.flush()\n"
        "    input(f'prompt {i}> ')\n"
    )
    rec = start("--", sys.executable, "-c", program)
    with Client() as client:
        for i in range(1, ROUNDS + 1):
            result = client.wait(rec["id"], input=True, timeout=30)
            assert result["fired"] == "input", result
            lines = str_list(result["lines"])
            cursor = result["cursor"]
            assert isinstance(cursor, dict)
            row = cursor["row"]
            assert isinstance(row, int)
            assert lines[row] == f"prompt {i}>", (i, lines[-3:])
            client.text(rec["id"], f"answer {i}", enter=True)

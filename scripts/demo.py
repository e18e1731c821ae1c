"""A short demo of the agent loop: start a Python REPL, type into it, wait, read, stop."""

from __future__ import annotations

import sys

from agentty_core.client import Client


def main() -> int:
    client = Client()
    rec = client.start([sys.executable, "-q"], name=None)
    sid = str(rec["id"])
    print(f"started session {sid}: {rec['command']}")
    client.wait(sid, text=">>>", timeout=10)
    before = client.text(sid, "sum(range(101))", enter=True)
    screen = client.wait(sid, changed_since=before["seq"], regex=r"^5050$", timeout=10)
    screen = client.wait(sid, regex=r"^5050$", timeout=10)
    print(f"the screen after {screen['elapsed_ms']} ms:")
    print("\n".join(line for line in screen["lines"] if line))  # type: ignore[attr-defined]
    result = client.kill(sid)
    print(f"killed {sid}: escalated through {result.get('escalated') or 'nothing (it exited)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

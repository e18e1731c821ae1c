"""Prints its arguments as one JSON line, then waits for Enter (so the test can read it)."""

import json
import sys

sys.stdout.write(json.dumps(sys.argv[1:]) + "\n")
sys.stdout.flush()
sys.stdin.readline()

"""agentty's benchmark suite: `make bench` (full) or `make bench-quick` (smoke); see README.md."""

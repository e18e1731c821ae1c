"""`python -m agentty_core` is the `agentty` command."""

import sys

from .cli import main

sys.exit(main())

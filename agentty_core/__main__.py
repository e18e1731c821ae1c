"""`python -m agentty_core` is the `agentty` command."""

import sys

from agentty_core.cli.hotpath import main

sys.exit(main())

"""`python -m agentty_core` is the `agentty` command."""

import sys

from .hotpath import main

sys.exit(main())

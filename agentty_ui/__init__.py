"""The agentty dashboard: a Textual app over `agentty_core.client.Client`."""

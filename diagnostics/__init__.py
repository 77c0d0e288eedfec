"""The diagnostics app: the five-step connection test and the mapping diagnostics of a connector."""

"""The audit app: the append-only record of who changed what on a connector."""

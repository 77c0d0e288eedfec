"""The records app: the platform's own copies of the records synced from WordPress, and their
pages."""
